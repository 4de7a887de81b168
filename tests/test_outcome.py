"""Outcome extraction (assist/outcome, assist/numbers): numbers, dates, fields, confirmation, labels."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import pytest

from assist.numbers import find_numbers, money, parse_en_words, parse_zh_number
from assist.outcome import OUTCOME_SCHEMA, Outcome, OutcomeTracker, Utterance, extract_outcome
from assist.outcome.dates import find_dates, find_time, local_today

ROOT = Path(__file__).resolve().parents[1]
WED = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)  # Wednesday 4 March, 10:30 in Shanghai, 21:30 (3rd) in LA
SH = "Asia/Shanghai"
NY = "America/New_York"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_outcomes", ROOT / "bench" / "outcomes.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_outcomes"] = mod
    spec.loader.exec_module(mod)
    return mod


BENCH = _bench()


def run(lang: str, *lines: tuple[str, str], when: datetime = WED, tz: str = SH) -> Outcome:
    utts = [Utterance(f"t{i}", sp, text, lang) for i, (sp, text) in enumerate(lines)]  # type: ignore[arg-type]
    return extract_outcome(utts, when, tz)


def A(text: str) -> tuple[str, str]:
    return ("agent", text)


def C(text: str) -> tuple[str, str]:
    return ("customer", text)


# --- numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("两万", 20000),
        ("1万2", 12000),
        ("一万二", 12000),
        ("一千零五十", 1050),
        ("一千零五", 1005),
        ("两千九", 2900),
        ("两千九百", 2900),
        ("三千二", 3200),
        ("一万二千六百", 12600),
        ("八千七百", 8700),
        ("1.5万", 15000),
        ("3千", 3000),
        ("十五", 15),
        ("二十", 20),
        ("一百五", 150),
        ("2900", 2900),
    ],
)
def test_zh_numerals(token: str, value: float) -> None:
    assert parse_zh_number(token) == value


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("two hundred", 200),
        ("three hundred and fifty", 350),
        ("one thousand eight hundred forty", 1840),
        ("twelve hundred", 1200),
        ("a thousand", 1000),
        ("twenty five", 25),
        ("nineteen eighty six", None),  # a year read out, not one number
    ],
)
def test_en_number_words(words: str, value: float | None) -> None:
    assert parse_en_words(words) == value


@pytest.mark.parametrize(
    ("text", "lang", "amounts"),
    [
        ("每期一千零五十元，第一期从下个月十五号开始", "zh", [(1050, "CNY")]),
        ("二十号之前我先凑两千九", "zh", [(2900, None)]),
        ("我先还1万2，剩下的下个月", "zh", [(12000, None)]),
        ("一共1,050元", "zh", [(1050, "CNY")]),
        ("2900块", "zh", [(2900, "CNY")]),
        ("最后四位是三七零八", "zh", []),  # an ID read digit by digit
        ("分三期，逾期十天了", "zh", []),  # counts and days are not money
        ("I can pay $620 by Friday", "en", [(620, "USD")]),
        ("two hundred a month", "en", [(200, None)]),
        ("a balance of one thousand eight hundred forty dollars", "en", [(1840, "USD")]),
        ("about $1.2k, ninety days late", "en", [(1200, "USD")]),
        ("$3,150 owed, call 555-201-3344", "en", [(3150, "USD")]),
        ("the 20th, three calls, 30 days", "en", []),
        ("I can pay 3 hundred on Friday", "en", [(300, None)]),
        ("$1,200.50 today, 2k next week", "en", [(1200.5, "USD"), (2000, None)]),
        ("我先还2千9，再还1.5万", "zh", [(2900, None), (15000, None)]),
    ],
)
def test_money_in_text(text: str, lang: str, amounts: list[tuple[float, str | None]]) -> None:
    assert [(n.value, n.currency) for n in money(text, lang)] == amounts


def test_rough_figures_are_flagged() -> None:
    assert [n.approximate for n in find_numbers("一千出头的话", "zh")] == [True]
    assert [n.approximate for n in find_numbers("about 500 dollars", "en")] == [True]


# --- dates -----------------------------------------------------------------------------------------------


def _d(text: str, lang: str, today: date) -> list[str]:
    return [m.value.isoformat() for m in find_dates(text, lang, today)]


@pytest.mark.parametrize(
    ("text", "lang", "today", "expected"),
    [
        ("周五", "zh", date(2026, 3, 4), "2026-03-06"),
        ("周五", "zh", date(2026, 3, 6), "2026-03-06"),  # today is Friday: today
        ("周五", "zh", date(2026, 3, 7), "2026-03-13"),
        ("下周一", "zh", date(2026, 3, 8), "2026-03-09"),  # said on a Sunday: tomorrow
        ("下周一", "zh", date(2026, 3, 4), "2026-03-09"),
        ("this Friday", "en", date(2026, 12, 30), "2027-01-01"),
        ("next Monday", "en", date(2026, 12, 30), "2027-01-04"),
        ("月底", "zh", date(2028, 2, 3), "2028-02-29"),  # leap year
        ("月底", "zh", date(2026, 2, 3), "2026-02-28"),
        ("下个月底", "zh", date(2026, 12, 3), "2027-01-31"),
        ("end of the month", "en", date(2026, 4, 30), "2026-04-30"),
        ("15号", "zh", date(2026, 3, 4), "2026-03-15"),
        ("15号", "zh", date(2026, 3, 20), "2026-04-15"),
        ("十五号", "zh", date(2026, 12, 20), "2027-01-15"),
        ("the 20th", "en", date(2026, 12, 21), "2027-01-20"),
        ("the 31st", "en", date(2026, 2, 10), "2026-02-28"),  # past the month's end: its last day
        ("下个月十五号", "zh", date(2026, 3, 4), "2026-04-15"),
        ("the 15th of next month", "en", date(2026, 12, 4), "2027-01-15"),
        ("the first of every month", "en", date(2026, 3, 4), "2026-04-01"),
        ("三月二十号", "zh", date(2026, 3, 21), "2027-03-20"),
        ("March 20th", "en", date(2026, 3, 4), "2026-03-20"),
        ("tonight", "en", date(2026, 12, 31), "2026-12-31"),
        ("明天", "zh", date(2026, 12, 31), "2027-01-01"),
        ("后天", "zh", date(2026, 2, 27), "2026-03-01"),
        ("tomorrow", "en", date(2028, 2, 28), "2028-02-29"),
        ("七天内", "zh", date(2026, 3, 28), "2026-04-04"),
        ("Friday, February 6th", "en", date(2026, 1, 30), "2026-02-06"),  # the weekday yields to the date
    ],
)
def test_date_resolution(text: str, lang: str, today: date, expected: str) -> None:
    assert _d(text, lang, today) == [expected]


def test_local_day_follows_the_borrowers_timezone() -> None:
    instant = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert local_today(instant, SH) == date(2027, 1, 1)
    assert local_today(instant, NY) == date(2026, 12, 31)
    assert local_today(instant.replace(tzinfo=None), "UTC") == date(2026, 12, 31)  # naive = UTC
    zh = run("zh", C("我明天就还两千"), when=instant, tz=SH)
    en = run("en", C("I'll pay $200 tomorrow"), when=instant, tz=NY)
    assert zh.promise_to_pay[0].value.due == date(2027, 1, 2)
    assert en.promise_to_pay[0].value.due == date(2027, 1, 1)


def test_tonight_is_the_local_day() -> None:
    late = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # 28 Feb 22:00 in New York, 1 Mar 11:00 in Shanghai
    assert run("en", C("I'll pay $100 tonight"), when=late, tz=NY).promise_to_pay[0].value.due == date(
        2026, 2, 28
    )
    assert run("zh", C("我今晚先还五百"), when=late, tz=SH).promise_to_pay[0].value.due == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("下午三点再打", "zh", "15:00"),
        ("晚上七点半", "zh", "19:30"),
        ("两点", "zh", "14:00"),
        ("call me back after six", "en", "18:00"),
        ("at 3:30 pm", "en", "15:30"),
        ("around 10", "en", "10:00"),
        ("no time here", "en", None),
    ],
)
def test_clock_times(text: str, lang: str, expected: str | None) -> None:
    assert find_time(text, lang) == expected


# --- fields on short dialogues -------------------------------------------------------------------------


def test_promise_zh_and_en() -> None:
    o = run("zh", A("本期应还三千六百元。"), C("我周五先还一千五，剩下的月底再还。"))
    (p,) = o.promise_to_pay
    assert (p.value.amount, p.value.currency, p.value.due, p.source) == (1500, "CNY", date(2026, 3, 6), "t1")
    o = run("en", C("I can send $250 on the 20th."), tz=NY)
    (p,) = o.promise_to_pay
    assert (p.value.amount, p.value.currency, p.value.due) == (250, "USD", date(2026, 3, 20))


def test_no_promise_from_a_past_payment_or_a_refusal() -> None:
    assert run("zh", C("我上个月已经还了两千了")).promise_to_pay == ()
    assert run("en", C("I can't pay $500 by Friday."), tz=NY).promise_to_pay == ()


def test_instalment_plan() -> None:
    o = run("zh", A("可以分成十二期，每期一千零五十元，第一期从下个月十五号开始。"), C("好的，就按这个来。"))
    assert o.plan is not None
    p = o.plan.value
    assert (p.kind, p.count, p.amount_each, p.first_due) == ("instalments", 12, 1050, date(2026, 4, 15))
    assert (o.plan.source, o.plan.confirmed, o.plan.confirmed_by) == ("t0", True, "t1")


def test_deferral_settlement_grace() -> None:
    d = run("zh", A("我们可以申请延期三个月，从六月十号开始恢复还款。"), C("行。")).plan
    assert d is not None and (d.value.kind, d.value.months_deferred, d.value.first_due) == (
        "deferral",
        3,
        date(2026, 6, 10),
    )
    s = run("en", A("We can settle the account for $2,500 if it's paid by the end of the month."), tz=NY).plan
    assert s is not None and (s.value.kind, s.value.count, s.value.amount_each, s.value.first_due) == (
        "settlement",
        1,
        2500,
        date(2026, 3, 31),
    )
    g = run("zh", A("我们可以给您七天宽限期。")).plan
    assert g is not None and (g.value.kind, g.value.days_grace) == ("grace", 7)


def test_alternatives_are_no_plan() -> None:
    o = run("en", A("We can offer a payment plan or a thirty day deferral."), C("Fine."), tz=NY)
    assert o.plan is None


@pytest.mark.parametrize(
    ("lang", "text", "what"),
    [
        ("zh", "不对吧？我十号就转过去了，三千二一分不少。", "amount"),
        ("zh", "有人冒用了我的身份证。", "identity"),
        ("zh", "这不是我的，我从来没借过钱。", "not_my_debt"),
        ("en", "I don't owe that, I returned the sofa.", "amount"),
        ("en", "Someone opened that card in my name, it's identity theft.", "identity"),
        ("en", "That's not my account, I never opened it.", "not_my_debt"),
    ],
)
def test_dispute(lang: str, text: str, what: str) -> None:
    o = run(lang, C(text))
    assert o.disputed is not None and o.disputed.value.what == what
    assert o.promise_to_pay == ()  # "转过去了" is a past transfer, not a promise


@pytest.mark.parametrize(
    ("lang", "lines", "channel"),
    [
        ("zh", ["查清楚之前不要再打我电话，有什么事发短信给我。"], "sms"),
        ("zh", ["以后别再打我电话了，有什么事寄书面材料给我。"], "mail"),
        ("en", ["Please stop calling me and put everything in writing."], "written"),
        ("en", ["Don't call me at work again. Send everything by email."], "email"),
        ("en", ["Stop calling me.", "Just text me."], "sms"),  # channel given in the next line
        ("zh", ["别再打电话了。"], None),
    ],
)
def test_cease_contact(lang: str, lines: list[str], channel: str | None) -> None:
    o = run(lang, *[C(t) for t in lines])
    assert o.cease_contact is not None and o.cease_contact.value.channel == channel
    assert o.callback is None


def test_employer_is_not_cease_contact() -> None:
    assert run("zh", C("二十号之前我先凑两千九。但你别给我单位打电话。")).cease_contact is None


def test_lawyer() -> None:
    o = run("zh", C("我已经委托律师了，电话是13912345678。"), A("好的，我记录一下律师的联系方式。"))
    assert o.lawyer is not None and o.lawyer.value.contact == "13912345678" and o.lawyer.confirmed
    o = run("en", C("I'm calling a lawyer today."), A("Look, just pay."))
    assert o.lawyer is not None and o.lawyer.value.contact is None and not o.lawyer.confirmed
    assert run("en", C("I don't have a lawyer."), tz=NY).lawyer is None


def test_callback() -> None:
    o = run("zh", C("我在开会，你下午三点再打给我吧。"), A("好的，那我下午三点再打给您。"))
    assert o.callback is not None
    assert (o.callback.value.date, o.callback.value.time, o.callback.confirmed) == (None, "15:00", True)
    o = run("en", C("Can you call me back tomorrow at 6 pm?"), tz=NY)
    assert o.callback is not None
    # WED is 3 March 21:30 in New York: tomorrow there is 4 March
    assert (o.callback.value.date, o.callback.value.time) == (date(2026, 3, 4), "18:00")
    o = run("en", C("Call me back in two hours."), tz=NY)
    assert o.callback is not None and (o.callback.value.date, o.callback.value.time) == (
        date(2026, 3, 3),
        "23:30",
    )


def test_third_party_and_hardship() -> None:
    o = run("zh", C("她在厨房忙呢，我是她丈夫。"), A("麻烦您请她来接一下电话。"))
    assert o.third_party_answered is not None and o.third_party_answered.value.relation == "spouse"
    assert o.third_party_answered.confirmed_by == "t1"
    o = run("en", C("He's not home. I'm his mother."), tz=NY)
    assert o.third_party_answered is not None and o.third_party_answered.value.relation == "parent"
    assert run("zh", C("我爱人每个月有份工资。")).third_party_answered is None
    for lang, text, reason in [
        ("zh", "公司上个月裁员，我也在名单里。", "job_loss"),
        ("zh", "去年开服装店赔了。", "business_failure"),
        ("zh", "我做了手术，还在恢复。", "illness"),
        ("en", "My hours got cut at the warehouse.", "income_cut"),
        ("en", "My husband passed away in May.", "family"),
    ]:
        h = run(lang, C(text)).hardship
        assert h is not None and h.value.reason == reason, text


# --- confirmation ----------------------------------------------------------------------------------------


def test_agent_restating_confirms_a_customer_promise() -> None:
    o = run("zh", C("二十号之前我先凑两千九。"), A("那就这样，二十号之前先还两千九百元。"))
    assert o.promise_to_pay[0].confirmed and o.promise_to_pay[0].confirmed_by == "t1"


def test_agent_restating_other_terms_does_not_confirm() -> None:
    o = run("zh", C("二十号之前我先还两千九。"), A("二十五号之前还三千元吧。"))
    assert not o.promise_to_pay[0].confirmed
    o = run("en", C("I'll pay $300 on Friday."), A("So $300 on Monday then."), tz=NY)
    assert not o.promise_to_pay[0].confirmed


def test_customer_agreeing_to_an_offer_makes_a_confirmed_promise() -> None:
    o = run("en", A("Can you pay $400 by Friday?"), C("OK, that works."), tz=NY)
    (p,) = o.promise_to_pay
    assert (p.value.amount, p.source, p.speaker, p.confirmed, p.confirmed_by) == (
        400,
        "t0",
        "agent",
        True,
        "t1",
    )


def test_rejecting_or_answering_later_does_not_confirm() -> None:
    o = run("zh", A("分三期，每期两千九百块，这个月二十号之前交第一期。"), C("不行，太多了。"))
    assert o.plan is not None and not o.plan.confirmed
    o = run("zh", A("分三期，每期两千九百块。"), C("那要是我拿不出来呢？"), A("再说吧。"), C("行。"))
    assert o.plan is not None and not o.plan.confirmed  # "行" answers t2, which did not restate the plan
    o = run("en", A("Can you pay $400 by Friday?"), C("No, I can't."), tz=NY)
    assert o.promise_to_pay == ()


def test_changed_terms_replace_the_plan_unconfirmed() -> None:
    o = run("zh", A("分三期，每期两千九百块。"), C("好的。"), A("改成分六期，每期一千四百五十元。"))
    assert o.plan is not None
    assert (o.plan.value.count, o.plan.value.amount_each, o.plan.source, o.plan.confirmed) == (
        6,
        1450,
        "t2",
        False,
    )


# --- incremental API and JSON ----------------------------------------------------------------------------


def test_tracker_reports_only_changes() -> None:
    t = OutcomeTracker(WED, SH)
    assert t.add(Utterance("u1", "agent", "您好，请问是周先生吗？", "zh")) is None
    first = t.add(Utterance("u2", "customer", "我周五先还一千。", "zh"))
    assert first is not None and first.promise_to_pay[0].value.amount == 1000
    assert t.add(Utterance("u3", "customer", "嗯。", "zh")) is None
    confirmed = t.add(Utterance("u4", "agent", "好的，周五前还一千元。", "zh"))
    assert confirmed is not None and confirmed.promise_to_pay[0].confirmed_by == "u4"
    assert t.outcome == confirmed


def test_json_form() -> None:
    o = run("zh", C("我周五先还一千五。"))
    d = json.loads(o.to_json())
    assert d["schema"] == OUTCOME_SCHEMA == 1
    assert d["promise_to_pay"] == [
        {
            "amount": 1500,
            "currency": "CNY",
            "due": "2026-03-06",
            "source": "t0",
            "speaker": "customer",
            "confirmed": False,
            "confirmed_by": None,
        }
    ]
    assert d["plan"] is None and set(d) == {"schema", *BENCH.FIELDS}


# --- labelled calls ----------------------------------------------------------------------------------------

FIXTURES = list(BENCH.fixture_calls())


@pytest.mark.parametrize("call", FIXTURES, ids=lambda c: c if isinstance(c, str) else c.id)
def test_fixture_call_reference_text_gives_its_label(call: object) -> None:
    if isinstance(call, str):
        pytest.skip(f"{call}: transcript not on this machine")
    misses = [(name, exp, got) for name, ok, _, exp, got in BENCH.score(call) if not ok]
    assert misses == []


def test_all_five_fixture_calls_are_labelled() -> None:
    assert sorted(c if isinstance(c, str) else c.id for c in FIXTURES) == [
        "dev_en_01",
        "dev_en_02",
        "dev_zh_01",
        "dev_zh_02",
        "dev_zh_03",
    ]


@pytest.mark.parametrize("call", list(BENCH.own_calls()), ids=lambda c: c.id)
def test_own_call_gives_its_label(call: object) -> None:
    assert call.material.startswith("own")  # type: ignore[attr-defined]
    assert [(n, e, g) for n, ok, _, e, g in BENCH.score(call) if not ok] == []


def test_whisper_forms() -> None:
    """Forms from the corpus's Whisper-base transcripts: 期 heard as 七/7, digits, no "then"."""
    o = run(
        "zh", A("最多给你分三七环款,每七两千九百块,这个月20号之前交第一期。"), C("20号之前我先错两千九。")
    )
    assert o.plan is not None
    assert (o.plan.value.count, o.plan.value.amount_each, o.plan.value.first_due) == (
        3,
        2900,
        date(2026, 3, 20),
    )
    assert o.plan.confirmed_by == "t1"
    assert [(p.value.amount, p.value.due) for p in o.promise_to_pay] == [(2900, date(2026, 3, 20))]
    o = run("zh", A("我帮您申请分成12000每71050元,第一期从下个月15号开始。"))
    assert o.plan is not None and o.plan.value.amount_each == 1050
    assert run("zh", A("可以分成十七期，每期五百元。")).plan.value.count == 17  # type: ignore[union-attr]
    o = run("en", A("300 by Friday and 200 on the first of every month."), C("Okay."), tz=NY)
    assert o.plan is not None and (o.plan.value.amount_each, o.plan.value.first_due) == (
        200,
        date(2026, 4, 1),
    )
    assert [(p.value.amount, p.source) for p in o.promise_to_pay] == [(300, "t0")]


def test_an_overdue_notice_agreed_to_is_no_promise() -> None:
    o = run("zh", A("您三千元的账单十五号到期了，已经逾期。"), C("嗯。"))
    assert o.promise_to_pay == ()
    o = run("en", A("Your payment of $300 was due on the 5th."), C("Yes."), tz=NY)
    assert o.promise_to_pay == ()
    o = run("zh", A("您看这周五之前能不能先还一千？"), C("行。"))
    assert [(p.value.amount, p.value.due, p.confirmed) for p in o.promise_to_pay] == [
        (1000, date(2026, 3, 6), True)
    ]


def test_a_refused_amount_is_not_the_plan() -> None:
    o = run("en", C("I can't do $500 a month, but I could do $200 a month."), tz=NY)
    assert o.plan is not None and o.plan.value.amount_each == 200


def test_spoken_prices_and_a_lawyers_number_given_when_asked() -> None:
    assert parse_en_words("one fifty") == 150
    assert parse_en_words("two twenty five") == 225
    assert money("call me at three twenty", "en") == []  # a time, not $320
    o = run(
        "en",
        C("Talk to my lawyer."),
        A("Can I get your lawyer's name and number?"),
        C("It's John Park, 212-555-0199."),
        tz=NY,
    )
    assert o.lawyer is not None and o.lawyer.value.contact == "212-555-0199"
    p = run("en", C("Can we push it back two months?"), tz=NY).plan
    assert p is not None and (p.value.kind, p.value.months_deferred) == ("deferral", 2)


def test_holdout_misses_stay_fixed() -> None:
    o = run("en", C("Not today. I get paid next Friday, and I can pay $600 then."), tz=NY)
    assert [p.value.due for p in o.promise_to_pay] == [
        date(2026, 3, 13)
    ]  # NY: Tue 3 March; next week's Friday
    assert find_time("call back tonight after eight", "en") == "20:00"
    assert find_time("今晚八点再打", "zh") == "20:00"
    o = run("en", C("He's not here, this is his brother."), A("Sure, I'll call back later."), tz=NY)
    assert o.third_party_answered is not None and o.third_party_answered.confirmed


def test_a_refused_clause_does_not_sink_the_promise_after_it() -> None:
    o = run("en", C("I can't pay $500 by Friday, but I can pay $200 on Monday."), tz=NY)
    assert [(p.value.amount, p.value.due) for p in o.promise_to_pay] == [(200, date(2026, 3, 9))]
    o = run("zh", C("五千我拿不出来，下周一先还两千。"))
    assert [(p.value.amount, p.value.due) for p in o.promise_to_pay] == [(2000, date(2026, 3, 9))]
    o = run("en", C("I'll pay $300 no later than Friday."), tz=NY)
    assert [p.value.amount for p in o.promise_to_pay] == [300]
