"""The suggestion policy's choices per customer signal and call state (no model needed).

Runs on the real playbook when it is complete, otherwise on the synthetic one
from test_playbook, so the state machine is tested either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assist.playbook import default_playbook_dir, load_playbook
from assist.playbook_content import Playbook
from assist.signal_context import TurnContext, read_in_context
from assist.signals import SignalHit
from assist.suggest import (
    MAX_SUGGESTIONS,
    NO_REPEAT_TURNS,
    CallState,
    Pick,
    Suggester,
    call_slots,
    handles,
    note_agent_stage,
    note_signals,
)
from tests.fakes import synthetic, write

METADATA = {
    "customer_name": "赵丽萍",
    "amount": "8700元",
    "due_date": "20号",
    "instalment_amount": "2900元",
    "instalments": 3,
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    real = default_playbook_dir()
    try:
        return load_playbook(real)
    except Exception:
        return load_playbook(write(Path(tmp_path_factory.mktemp("pb")), synthetic()))


def new_state(pb: Playbook, language: str = "zh", metadata: dict[str, object] | None = None) -> CallState:
    return CallState(
        language=language, slots=call_slots(pb, language, METADATA if metadata is None else metadata)
    )


def turn(
    sugg: Suggester, st: CallState, signals: list[str] | None = None, stage: str | None = None
) -> list[str]:
    """One final utterance: customer signals or an agent stage, then the suggestions' line ids."""
    st.turn += 1
    if signals is not None:
        note_signals(st, signals)
    if stage is not None:
        st.stage = stage
        note_agent_stage(st, stage)
    return [p.line.id for p in sugg.suggest(st)]


def sources(pb: Playbook, ids: list[str]) -> set[str]:
    by_id = {line.id: line for line in pb.lines()}
    return {by_id[i].source for i in ids}


def test_before_identity_only_lines_that_say_nothing_about_the_debt(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    by_id = {line.id: line for line in playbook.lines()}
    for _ in range(4):
        ids = turn(sugg, st, stage="opening")
        assert all(not by_id[i].needs_identity for i in ids)
    assert not st.identity_confirmed


def test_confirm_identity_unlocks_the_purpose_of_the_call(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, stage="opening")
    ids = turn(sugg, st, signals=["confirm_identity"])
    assert st.identity_confirmed
    by_id = {line.id: line for line in playbook.lines()}
    assert any(by_id[i].needs_identity for i in ids), ids


def test_hardship_empathy_then_inquiry_then_options(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    ids = turn(sugg, st, signals=["hardship"])
    assert ids and sources(playbook, ids) <= {"signal:hardship", "stage:empathy"}
    st.turn += NO_REPEAT_TURNS  # let earlier lines age out so the flow step is visible
    ids = turn(sugg, st, stage="empathy")
    assert "stage:inquiry" in sources(playbook, ids), ids
    ids = turn(sugg, st, stage="inquiry")
    assert "stage:proposal" in sources(playbook, ids), ids


def test_request_plan_leads_to_proposal(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    st.turn += NO_REPEAT_TURNS
    ids = turn(sugg, st, signals=["request_plan"])
    assert sources(playbook, ids) & {"signal:request_plan", "stage:proposal"}
    assert ids[0] in {line.id for line in playbook.signal("request_plan").responses} | {
        line.id for line in playbook.stage("proposal").suggestions
    }


def test_promise_to_pay_leads_to_recap(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    ids = turn(sugg, st, signals=["promise_to_pay"])
    assert sources(playbook, ids) <= {"signal:promise_to_pay", "stage:confirmation"}, ids


@pytest.mark.parametrize("signal", ["cease_contact", "dispute", "lawyer", "hostile"])
def test_signal_responses_come_first(playbook: Playbook, signal: str) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    st.turn += NO_REPEAT_TURNS
    ids = turn(sugg, st, signals=[signal])
    responses = {line.id for line in playbook.signal(signal).responses}
    assert ids and ids[0] in responses
    assert st.active_signal == signal


@pytest.mark.parametrize("signal", ["cease_contact", "lawyer"])
def test_sticky_signals_stop_collection_lines_for_the_rest_of_the_call(
    playbook: Playbook, signal: str
) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    turn(sugg, st, signals=[signal])
    for _ in range(3):
        ids = turn(sugg, st, stage="proposal")
        assert "stage:proposal" not in sources(playbook, ids)


def test_third_party_only_lines_without_the_debt(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    by_id = {line.id: line for line in playbook.lines()}
    for _ in range(NO_REPEAT_TURNS + 2):
        ids = turn(sugg, st, signals=["third_party"])
        assert all(not by_id[i].needs_identity for i in ids)
    assert st.third_party_answered and not st.identity_confirmed


def test_multi_signal_priority(playbook: Playbook) -> None:
    st = new_state(playbook)
    note_signals(st, ["request_plan", "hardship"])
    assert st.active_signal == "hardship"
    note_signals(st, ["hostile", "third_party"])
    assert st.active_signal == "third_party"


def test_at_most_three_and_no_repeat(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    history: list[list[str]] = []
    for stage in ["inquiry", "inquiry", "proposal", "proposal", "confirmation"]:
        ids = turn(sugg, st, stage=stage)
        assert len(ids) <= MAX_SUGGESTIONS
        assert len(set(ids)) == len(ids)
        for earlier in history[-(NO_REPEAT_TURNS - 1) :]:
            assert not set(ids) & set(earlier)
        history.append(ids)


def test_unknown_slots_skip_the_line_never_show_a_raw_slot(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook, "en", metadata={})
    turn(sugg, st, signals=["confirm_identity"])
    for stage in ["opening", "inquiry", "proposal", "confirmation"] * 2:
        st.turn += 1
        st.stage = stage
        for pick in sugg.suggest(st):
            assert "{" not in pick.text and "}" not in pick.text
            assert "{amount}" not in pick.line.text.en or "amount" in st.slots


def test_slots_are_filled_from_metadata_and_defaults(playbook: Playbook) -> None:
    slots = call_slots(
        playbook, "zh", {"customer_name": "赵丽萍", "amount": 8700, "company": {"zh": "快易借"}}
    )
    assert slots["customer_name"] == "赵丽萍"
    assert slots["amount"] == "8700"
    assert slots["company"] == "快易借"
    assert slots["agent_name"] == playbook.agent_name.zh
    assert "due_date" not in slots


def test_excluded_lines_are_never_suggested(playbook: Playbook) -> None:
    all_ids = frozenset(line.id for line in playbook.lines())
    sugg = Suggester(playbook, excluded=all_ids)
    st = new_state(playbook)
    assert turn(sugg, st, signals=["hardship"]) == []


def test_reasons_name_the_signal(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook, "en")
    turn(sugg, st, signals=["confirm_identity"])
    st.turn += NO_REPEAT_TURNS
    st.turn += 1
    note_signals(st, ["hardship"])
    picks = sugg.suggest(st)
    assert picks and picks[0].reason == "customer signalled hardship: empathise first"


# -- the suggestion event answers what the customer just said (issue 12)

SOURCE_KINDS = ("signal:", "stage:", "next:", "party:")


def picks_after(sugg: Suggester, st: CallState, **kw: object) -> list[Pick]:
    st.turn += 1
    signals = kw.get("signals")
    stage = kw.get("stage")
    if isinstance(signals, list):
        note_signals(st, signals)
    if isinstance(stage, str):
        st.stage = stage
        note_agent_stage(st, stage)
    return sugg.suggest(st)


def test_every_item_says_what_it_answers(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    seen: set[str] = set()
    for step in [{"signals": ["third_party"]}, {"signals": ["confirm_identity"]}, {"stage": "inquiry"}]:
        for p in picks_after(sugg, st, **step):
            assert p.source.startswith(SOURCE_KINDS), p
            seen.add(p.source)
    assert {"party:third_party", "signal:confirm_identity"} <= seen, seen


def test_a_signal_raised_again_is_answered_again(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    picks_after(sugg, st, signals=["confirm_identity"])
    for _ in range(3):  # every response gets shown well within the repeat window
        assert any(handles(p.source, "dispute") for p in picks_after(sugg, st, signals=["dispute"]))
        picks_after(sugg, st, stage="empathy")


def test_each_signal_of_one_turn_gets_a_line(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    picks_after(sugg, st, signals=["confirm_identity"])
    got = {p.source for p in picks_after(sugg, st, signals=["dispute", "cease_contact"])}
    assert {"signal:dispute", "signal:cease_contact"} <= got, got


def test_a_promise_after_a_lawyer_still_gets_a_recap(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    picks_after(sugg, st, signals=["confirm_identity"])
    picks_after(sugg, st, signals=["lawyer"])
    picks_after(sugg, st, stage="proposal")
    got = picks_after(sugg, st, signals=["promise_to_pay"])
    assert any(handles(p.source, "promise_to_pay") for p in got), [p.source for p in got]
    # the lawyer still restricts what the agent is offered between signals
    assert all(p.source != "stage:proposal" for p in picks_after(sugg, st, stage="proposal"))


def test_the_debtor_taking_the_phone_ends_third_party_mode(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    callbacks = {line.id for line in playbook.signal("third_party").responses}
    picks_after(sugg, st, signals=["third_party"])
    picks_after(sugg, st, stage="opening")
    picks_after(sugg, st, signals=["third_party"])
    got = picks_after(sugg, st, signals=["confirm_identity"])
    assert got and any(handles(p.source, "confirm_identity") for p in got)
    for _ in range(4):
        assert not {p.line.id for p in got} & callbacks
        assert all(p.source != "party:third_party" for p in got)
        got = picks_after(sugg, st, stage="inquiry")


@pytest.mark.parametrize(("language", "sticky"), [("zh", "cease_contact"), ("en", "lawyer")])
def test_no_empty_panel_mid_call_and_never_the_panel_just_shown(
    playbook: Playbook, language: str, sticky: str
) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook, language, metadata={})
    picks_after(sugg, st, signals=["confirm_identity"])
    before: set[str] = set()
    for step in [{"stage": "confirmation"}] * 12 + [{"signals": [sticky]}] + [{"stage": "*"}] * 8:
        ids = {p.line.id for p in picks_after(sugg, st, **step)}
        assert ids, (st.turn, step)
        assert not ids & before, (st.turn, step)
        before = ids


# -- a customer turn read with the agent line before it (assist/signals.py read_in_context)


def hit(signal: str) -> SignalHit:
    return SignalHit(signal, 0.7, "")


@pytest.mark.parametrize(
    ("language", "agent", "customer", "hits", "expected"),
    [
        ("zh", "您好，请问是陈浩先生吗？", "对，是我。", [], {"confirm_identity"}),
        ("zh", "麻烦报一下身份证后四位。", "三一零八。", [], {"confirm_identity"}),
        (
            "en",
            "Could you confirm the last four of your account number?",
            "Six two zero one.",
            [],
            {"confirm_identity"},
        ),
        (
            "en",
            "Can you confirm your date of birth?",
            "October twelfth, ninety one.",
            [],
            {"confirm_identity"},
        ),
        (
            "en",
            "Good afternoon, may I speak with Rebecca Hale?",
            "This is Rebecca. What is this about?",
            [],
            {"confirm_identity"},
        ),
        (
            "zh",
            "我们可以给您分八期，每个月还八百元，您看可以吗？",
            "好的。",
            ["confirm_identity"],
            {"promise_to_pay"},
        ),
        (
            "en",
            "We could take one hundred next Friday. How does that sound?",
            "Okay.",
            [],
            {"promise_to_pay"},
        ),
        ("en", "I'll email the agreement today.", "Okay.", [], set()),
        (
            "zh",
            "您的借款已经逾期十天了。",
            "不对吧？我十号就用手机银行转过去了。",
            ["promise_to_pay", "dispute"],
            {"dispute"},
        ),
        (
            "zh",
            "想跟您沟通一下还款安排。",
            "上次打电话的人说自己是法院的，你们还有脸打过来？",
            ["lawyer", "hostile"],
            {"hostile"},
        ),
        ("en", "I'm calling about your balance.", "My attorney handles this now.", ["lawyer"], {"lawyer"}),
    ],
)
def test_turn_read_in_context(
    language: str, agent: str, customer: str, hits: list[str], expected: set[str]
) -> None:
    got = read_in_context([hit(s) for s in hits], customer, language, TurnContext(agent))
    assert {h.signal for h in got} == expected


def test_relative_fetching_the_debtor_then_the_debtor() -> None:
    relative = TurnContext("请问林晓雯女士在吗？", third_party_on_line=True)
    got = read_in_context([], "行吧，你稍等，我去叫她。", "zh", relative)
    assert [h.signal for h in got] == ["third_party"]
    got = read_in_context(
        [], "喂，你好，我是林晓雯。", "zh", TurnContext("好的，麻烦您了。", third_party_on_line=True)
    )
    assert [h.signal for h in got] == ["confirm_identity"]
    got = read_in_context([], "Hi, this is Tom.", "en", TurnContext("Thanks.", third_party_on_line=True))
    assert [h.signal for h in got] == ["confirm_identity"]


def test_a_what_if_question_keeps_the_dispute_open() -> None:
    ctx = TurnContext("核实期间我们暂停催收。", last_signal="dispute")
    got = read_in_context([hit("promise_to_pay")], "那要是你们查了半天，还说没收到呢？", "zh", ctx)
    assert [h.signal for h in got] == ["dispute"]
    assert read_in_context([], "Where do I send them?", "en", TurnContext("", last_signal="dispute")) == []
