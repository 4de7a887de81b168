"""Post-call review: report shape, each checklist item's pass / fail / not-applicable cases, findings on
the right utterance, score ordering, the fixture calls, and the HTML page."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import assist.review.report as review
from assist.events import (
    ComplianceRetracted,
    ComplianceWarning,
    CustomerSignal,
    Event,
    EventBody,
    Speaker,
    StageChanged,
    Suggestion,
    SuggestionItem,
    TranscriptFinal,
)
from assist.masking import mask
from assist.review.html import render_html
from assist.review.report import CallFacts, build_report

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1_764_331_200.0  # 2025-11-28 12:00 UTC = 20:00 Asia/Shanghai = 07:00 America/New_York
SEVERITY = {
    "threat_violence": "critical",
    "abusive_language": "critical",
    "false_criminal_threat": "critical",
    "impersonation": "critical",
    "third_party_disclosure": "critical",
    "harassment": "major",
    "misrepresentation": "major",
    "overbearing": "minor",
}
STAGES = ("opening", "empathy", "inquiry", "proposal", "confirmation")


class Script:
    """Builds a call's wire events the way the service emits them: final transcript, then guidance."""

    def __init__(self, language: str = "zh", call_id: str = "c1") -> None:
        self.language = language
        self.call_id = call_id
        self.events: list[Event] = []
        self.clock = 0.5
        self.stage: str | None = None
        self.n = 0

    def emit(self, body: EventBody, at: float) -> None:
        self.events.append(Event(self.call_id, len(self.events) + 1, T0 + at, body))

    def say(
        self,
        speaker: str,
        text: str,
        *,
        stage: str | None = None,
        rules: Sequence[str] = (),
        signals: Sequence[str] = (),
        start: float | None = None,
        dur: float = 3.0,
        gap: float = 0.5,
    ) -> str:
        uid = f"u{self.n}"
        self.n += 1
        begin = self.clock if start is None else start
        end = begin + dur
        self.clock = max(self.clock, end + gap)
        who: Speaker = "agent" if speaker == "agent" else "customer"
        self.emit(TranscriptFinal(who, uid, text, self.language, begin, end, 150.0), end)
        if stage is not None and stage != self.stage:
            self.emit(StageChanged(stage, self.stage, 0.9, uid), end)
            self.stage = stage
        for rule in rules:
            self.emit(
                ComplianceWarning(
                    uid, "agent", rule, SEVERITY[rule], text[:12], "why", "say this", "ev", 0.9
                ),
                end,
            )
        for signal in signals:
            self.emit(CustomerSignal(uid, signal, 0.8, text[:12]), end)
        self.emit(Suggestion(uid, self.stage, (SuggestionItem("next line", "reason", 0.5),)), end)
        return uid

    def agent(self, text: str, stage: str | None = None, **kw: Any) -> str:
        return self.say("agent", text, stage=stage, **kw)

    def customer(self, text: str, *signals: str, **kw: Any) -> str:
        return self.say("customer", text, signals=signals, **kw)

    def report(
        self, metadata: dict[str, Any] | None = None, started_at: float = T0, **kw: Any
    ) -> dict[str, Any]:
        call = CallFacts(
            self.call_id, started_at, self.language, metadata or {}, duration=kw.pop("duration", None)
        )
        return build_report(call, self.events, **kw).as_dict()


def check(report: dict[str, Any], cid: str) -> dict[str, Any]:
    item: dict[str, Any] = next(c for c in report["checklist"] if c["id"] == cid)
    return item


def good_zh() -> Script:
    s = Script("zh")
    s.agent("您好，这里是星禾消费金融贷后服务中心，我是客服专员林雨桐。请问是周明辉先生吗？", "opening")
    s.customer("对，我就是周明辉。", "confirm_identity")
    s.agent("谢谢您。系统显示您的消费贷已经逾期两期了，最近遇到什么情况了吗？", "inquiry")
    s.customer("公司裁员，我没工作了。", "hardship")
    s.agent("突然没了工作，压力肯定特别大。", "empathy")
    s.customer("能不能分几次还？", "request_plan")
    s.agent("可以，分十二期，每期一千零五十元。", "proposal")
    s.customer("那就按这个来吧。", "promise_to_pay")
    s.agent("我再跟您核对一遍：分十二期，每期一千零五十元，对吗？", "confirmation")
    s.customer("对，没问题。", "promise_to_pay")
    return s


# ------------------------------------------------------------------------------------------ shape


def test_report_shape_is_the_documented_one_and_json_serialisable() -> None:
    r = good_zh().report(
        {"borrower_timezone": "Asia/Shanghai", "agent_name": "林雨桐", "customer_name": "周明辉"}
    )
    assert r["schema"] == review.REPORT_SCHEMA
    assert set(r) >= {
        "call", "utterances", "findings", "checklist", "score", "score_breakdown", "stage_timeline",
        "signals", "talk_time", "interruptions", "silences", "summary",
    }  # fmt: skip
    assert r["call"] == {
        "id": "c1",
        "start_time": "2025-11-28T12:00:00+00:00",
        "local_start_time": "2025-11-28T20:00:00+08:00",
        "borrower_timezone": "Asia/Shanghai",
        "jurisdiction": "CN",
        "duration": 35.0,
        "language": "zh",
        "agent": "林雨桐",
        "customer": "周明辉",
        "company": None,
        "status": "ended",
    }
    u = r["utterances"][1]
    assert set(u) == {"index", "id", "speaker", "start", "end", "text", "stage", "signals", "rules"}
    assert (u["speaker"], u["signals"], u["stage"]) == ("customer", ["confirm_identity"], "opening")
    assert [c["id"] for c in r["checklist"]] == list(review.CHECK_IDS)
    assert [c["n"] for c in r["checklist"]] == [1, 2, 3, 4, 5, 6]
    for c in r["checklist"]:
        assert c["status"] in ("pass", "fail", "not_applicable")
        assert c["evidence"] is None or set(c["evidence"]) == {"quote", "time"}
        assert c["title"] and c["detail"]
    assert r["score"] == 100
    assert json.loads(json.dumps(r, ensure_ascii=False)) == r
    assert build_report(CallFacts("c1", T0, "zh"), good_zh().events) == build_report(
        CallFacts("c1", T0, "zh"), good_zh().events
    )  # deterministic


def test_empty_call_still_reports() -> None:
    r = build_report(CallFacts("empty", T0, "en", status="interrupted"), []).as_dict()
    assert r["utterances"] == [] and r["findings"] == [] and r["stage_timeline"] == []
    assert r["talk_time"] == {"agent_s": 0.0, "customer_s": 0.0, "agent_share": None}
    assert r["call"]["status"] == "interrupted"
    assert "<svg" in render_html(r)


# ------------------------------------------------------------------------------------------ item 1


def test_identity_confirmed_before_debt_passes() -> None:
    item = check(good_zh().report(), "identity_before_debt")
    assert item["status"] == "pass"
    assert item["evidence"] == {"quote": "对，我就是周明辉。", "time": 4.0}


def test_debt_mentioned_before_identity_fails() -> None:
    s = Script("zh")
    s.agent("喂，是赵丽萍吗？我是鼎泰资产管理公司的，找你谈一下欠款的事。", "opening")
    s.customer("是我。", "confirm_identity")
    item = check(s.report(), "identity_before_debt")
    assert item["status"] == "fail"
    assert item["evidence"]["quote"].endswith("找你谈一下欠款的事。")
    assert item["evidence"]["time"] == 0.5


def test_debt_mentioned_without_any_confirmation_fails_and_never_mentioned_passes() -> None:
    s = Script("en")
    s.agent("Hi, this is Dan with Harbor Services about your overdue balance.", "opening")
    s.customer("Who?")
    assert check(s.report(), "identity_before_debt")["status"] == "fail"
    quiet = Script("en")
    quiet.agent("Hi, may I speak with Rebecca Hale?", "opening")
    quiet.customer("She's not here.")
    assert check(quiet.report(), "identity_before_debt")["status"] == "pass"


def test_agent_side_verification_counts_as_confirmation() -> None:
    s = Script("en")
    s.agent("Can you confirm your date of birth?", "opening")
    s.customer("March third, nineteen eighty six.")
    s.agent("Thank you for confirming. I'm calling about the balance on your card.", "inquiry")
    assert check(s.report(), "identity_before_debt")["status"] == "pass"


def test_debt_told_to_a_third_party_fails_and_silence_passes() -> None:
    s = Script("zh")
    s.agent("请问是赵丽萍吗？", "opening")
    s.customer("我是她同事，她不在。", "third_party")
    s.agent("那你转告她，她欠款逾期四个月了。")
    r = s.report()
    item = check(r, "identity_before_debt")
    assert item["status"] == "fail" and "欠款" in item["evidence"]["quote"]
    assert r["signals"][0]["signal"] == "third_party" and r["signals"][0]["handled"] is False
    ok = Script("zh")
    ok.agent("请问是赵丽萍吗？", "opening")
    ok.customer("我是她同事，她不在。", "third_party")
    ok.agent("好的，麻烦请她方便时回个电话，谢谢。")
    r2 = ok.report()
    assert check(r2, "identity_before_debt")["status"] == "pass"
    assert r2["signals"][0]["handled"] is True
    assert check(r2, "agent_identified")["status"] == "not_applicable"


# ------------------------------------------------------------------------------------------ item 2


def test_agent_identified_self_and_company_zh() -> None:
    assert check(good_zh().report(), "agent_identified")["status"] == "pass"
    s = Script("zh")
    s.agent("喂，我是鼎泰资产管理公司的，受快易借平台委托。", "opening")
    item = check(s.report(), "agent_identified")
    assert item["status"] == "fail" and "坐席姓名" in item["detail"]
    s2 = Script("zh")
    s2.agent("您好，我是小王，请问是赵女士吗？", "opening")
    item2 = check(s2.report(), "agent_identified")
    assert item2["status"] == "fail" and "公司名称" in item2["detail"]
    s3 = Script("zh")
    s3.agent("您好，这边是快易借，我的工号是1024。", "opening")
    assert check(s3.report({"company": "快易借"}), "agent_identified")["status"] == "pass"


def test_us_calls_need_the_debt_collector_disclosure() -> None:
    s = Script("en")
    s.agent("Good afternoon, this is Daniel Ortiz with Harborline Recovery Services.", "opening")
    s.customer("This is Rebecca.", "confirm_identity")
    s.agent("This call is from a debt collector; this is an attempt to collect a debt.", "opening")
    assert check(s.report(), "agent_identified")["status"] == "pass"
    bare = Script("en")
    bare.agent("Good afternoon, this is Daniel Ortiz with Harborline Recovery Services.", "opening")
    item = check(bare.report(), "agent_identified")
    assert item["status"] == "fail" and "attempt to collect a debt" in item["detail"]
    # an English call under Chinese rules does not need the US disclosure
    assert check(bare.report({"jurisdiction": "CN"}), "agent_identified")["status"] == "pass"
    nameless = Script("en")
    nameless.agent("Hello, is this Marcus Bell? We're calling from the legal department.", "opening")
    item2 = check(nameless.report(), "agent_identified")
    assert item2["status"] == "fail" and "the agent's name" in item2["detail"]


def test_asking_for_the_borrower_is_not_naming_a_company() -> None:
    s = Script("en")
    s.agent("Hi, this is Dan. May I speak with Rebecca Hale?", "opening")
    s.agent("This call is from a debt collector.")
    item = check(s.report(), "agent_identified")
    assert item["status"] == "fail" and item["detail"] == "Missing: the company."


def test_chinese_speaking_us_borrowers_get_the_disclosure_in_mandarin() -> None:
    s = Script("zh")
    s.agent("您好，我是星禾金融的林雨桐。", "opening")
    assert check(s.report({"jurisdiction": "US"}), "agent_identified")["status"] == "fail"
    s.agent("这是一通债务催收电话，您提供的信息将用于催收债务。")
    assert check(s.report({"jurisdiction": "US"}), "agent_identified")["status"] == "pass"


def test_metadata_names_are_recognised() -> None:
    s = Script("en")
    s.agent("hey it's dan from pinecrest, this call is from a debt collector", "opening")
    r = s.report({"agent_name": "Dan Ortiz", "company": "Pinecrest"})
    assert check(r, "agent_identified")["status"] == "pass"
    assert r["call"]["company"] == "Pinecrest"


# ------------------------------------------------------------------------------------------ item 3


@pytest.mark.parametrize(
    ("language", "meta", "utc_hour", "status"),
    [
        ("zh", {"borrower_timezone": "Asia/Shanghai"}, 12.0, "pass"),  # 20:00
        ("zh", {"borrower_timezone": "Asia/Shanghai"}, 13.99, "pass"),  # 21:59
        ("zh", {"borrower_timezone": "Asia/Shanghai"}, 14.0, "fail"),  # 22:00
        ("zh", {"borrower_timezone": "Asia/Shanghai"}, 23.99, "fail"),  # 07:59
        ("zh", {"borrower_timezone": "Asia/Shanghai"}, 0.0, "pass"),  # 08:00
        ("en", {"borrower_timezone": "America/New_York"}, 12.0, "fail"),  # 07:00
        ("en", {"borrower_timezone": "America/New_York"}, 13.0, "pass"),  # 08:00
        ("en", {"borrower_timezone": "America/New_York"}, 2.0, "fail"),  # 21:00 is already too late
        ("en", {"borrower_timezone": "America/New_York"}, 1.99, "pass"),  # 20:59
        ("en", {"borrower_timezone": "America/Los_Angeles"}, 4.5, "pass"),  # 20:30 PST
        ("en", {"borrower_timezone": "Asia/Shanghai", "jurisdiction": "CN"}, 13.5, "pass"),  # 21:30 CN rules
        (
            "zh",
            {"borrower_timezone": "America/New_York", "jurisdiction": "US"},
            2.5,
            "fail",
        ),  # 21:30 under US rules
        ("zh", {}, 3.0, "not_applicable"),
        ("en", {"borrower_timezone": "Mars/Olympus_Mons"}, 12.0, "not_applicable"),
    ],
)
def test_allowed_hours(language: str, meta: dict[str, Any], utc_hour: float, status: str) -> None:
    s = Script(language)
    s.agent("hello", "opening")
    started = T0 - 12 * 3600 + utc_hour * 3600  # T0 is 12:00 UTC
    item = check(s.report(meta, started_at=started), "allowed_hours")
    assert item["status"] == status, item["detail"]


# ------------------------------------------------------------------------------------------ item 4


def test_hardship_handled_passes_and_not_applicable_without_hardship() -> None:
    item = check(good_zh().report(), "hardship_handled")
    assert item["status"] == "pass" and "核对一遍" in item["evidence"]["quote"]
    s = Script("en")
    s.agent("Hello, this is Dan with Harbor Services.", "opening")
    s.customer("Yes, speaking.", "confirm_identity")
    assert check(s.report(), "hardship_handled")["status"] == "not_applicable"


def test_hardship_without_empathy_fails() -> None:
    s = Script("en")
    s.customer("My hours got cut and my daughter needed braces.", "hardship")
    s.agent("That's not my problem. Pay by tomorrow.", "inquiry", rules=["overbearing"])
    s.agent("So when will you pay?", "inquiry")
    s.agent("I can set up monthly payments of two hundred.", "proposal")
    item = check(s.report(), "hardship_handled")
    assert item["status"] == "fail" and item["evidence"]["time"] == 0.5
    assert "No empathy" in item["detail"]


def test_empathy_words_count_when_the_stage_did_not_change() -> None:
    s = Script("en")
    s.agent("Hello.", "inquiry")
    s.customer("I lost my job last month.", "hardship")
    s.agent("I'm so sorry to hear that, that must be hard.")  # no stage.changed: still "inquiry"
    s.agent("We could offer a payment plan of fifty a month.", "proposal")
    assert check(s.report(), "hardship_handled")["status"] == "pass"


def test_no_options_no_recap_or_no_yes_fail() -> None:
    s = Script("zh")
    s.customer("生意赔了，实在拿不出钱。", "hardship")
    s.agent("理解您的难处，压力确实很大。", "empathy")
    s.agent("那您大概什么时候有收入？", "inquiry")
    item = check(s.report(), "hardship_handled")
    assert item["status"] == "fail" and "方案" in item["detail"]

    s2 = Script("zh")
    s2.customer("能不能分期？", "request_plan")
    s2.agent("可以分三期，每期两千九百元。", "proposal")
    s2.customer("好，二十号前我先还第一期。", "promise_to_pay")
    s2.agent("行，那就这样。")
    assert "复述" in check(s2.report(), "hardship_handled")["detail"]

    s3 = Script("zh")
    s3.customer("能不能分期？", "request_plan")
    s3.agent("可以分三期，每期两千九百元。", "proposal")
    s3.customer("二十号前我先还第一期。", "promise_to_pay")
    s3.agent("那就这样，二十号之前先还第一期两千九百元。", "confirmation")
    item3 = check(s3.report(), "hardship_handled")
    assert item3["status"] == "fail" and "明确确认" in item3["detail"]


# ------------------------------------------------------------------------------------------ item 5


def test_requests_acknowledged() -> None:
    assert check(good_zh().report(), "requests_acknowledged")["status"] == "not_applicable"
    s = Script("en")
    s.customer("I don't owe that, I returned the sofa.", "dispute")
    s.agent("I understand, that must be frustrating.", "empathy")
    s.customer("Please stop calling me.", "cease_contact")
    s.agent(
        "I've marked the account as disputed and noted that you want no more phone calls.", "confirmation"
    )
    r = s.report()
    item = check(r, "requests_acknowledged")
    assert item["status"] == "pass" and "marked the account" in item["evidence"]["quote"]
    assert [x["handled"] for x in r["signals"]] == [True, True]


def test_lawyer_not_acknowledged_fails() -> None:
    s = Script("en")
    s.customer("I'm calling a lawyer today.", "lawyer")
    s.agent("Look, if you put down three hundred by Friday we can set up payments.", "proposal")
    s.agent("So, Friday?")
    s.agent("You should take my attorney advice.")  # third agent turn: outside the handling window
    item = check(s.report(), "requests_acknowledged")
    assert item["status"] == "fail"
    assert item["evidence"]["quote"] == "I'm calling a lawyer today."[:12]
    assert "lawyer representation" in item["detail"]


def test_a_reply_that_breaks_a_rule_never_handles_a_signal() -> None:
    s = Script("zh")
    s.customer("你别再打了！", "cease_contact")
    s.agent("不打？我们会天天打，打到你还为止，记录也没用。", rules=["harassment"])
    r = s.report()
    assert r["signals"][0]["handled"] is False
    assert check(r, "requests_acknowledged")["status"] == "fail"


# ------------------------------------------------------------------------------------------ item 6 + findings


def test_findings_are_mapped_to_their_utterance() -> None:
    s = good_zh()
    uid = s.agent(
        "少跟我哭穷，你们这种老赖我见多了。", rules=["abusive_language", "overbearing"], start=40.0, dur=4.0
    )
    r = s.report()
    assert [f["rule"] for f in r["findings"]] == ["abusive_language", "overbearing"]  # critical first
    f = r["findings"][0]
    target = next(u for u in r["utterances"] if u["id"] == uid)
    assert (f["start"], f["end"], f["utterance"], f["speaker"]) == (40.0, 44.0, target["index"], "agent")
    assert (f["severity"], f["why"], f["rephrase"], f["partial"]) == ("critical", "why", "say this", False)
    assert target["rules"] == ["abusive_language", "overbearing"]
    assert all(u["rules"] == [] for u in r["utterances"] if u["id"] != uid)
    item = check(r, "no_violations")
    assert item["status"] == "fail" and item["evidence"] == {"quote": f["quote"], "time": 40.0}
    assert check(good_zh().report(), "no_violations")["status"] == "pass"


def test_a_partial_warning_and_its_final_repeat_are_one_finding() -> None:
    s = Script("zh")
    uid = s.agent("你不还就是诈骗，我们马上报警。", start=10.0, dur=5.0)
    w = ComplianceWarning(
        uid, "agent", "false_criminal_threat", "critical", "诈骗", "why", "r", "ev", 0.9, partial=True
    )
    s.emit(w, 12.0)
    s.emit(
        ComplianceWarning(uid, "agent", "false_criminal_threat", "critical", "诈骗", "why", "r", "ev", 0.9),
        15.0,
    )
    # a warning raised on a partial whose final transcript never arrived (the call died) keeps its time
    s.emit(
        ComplianceWarning(
            "lost", "agent", "threat_violence", "critical", "小心点", "why", "r", "ev", 0.9, True
        ),
        30.0,
    )
    r = s.report()
    assert [(f["rule"], f["partial"], f["start"], f["utterance"]) for f in r["findings"]] == [
        ("false_criminal_threat", False, 10.0, 0),
        ("threat_violence", True, 30.0, None),
    ]


def test_a_retracted_partial_warning_is_no_finding_and_costs_no_points() -> None:
    s = Script("en")
    uid = s.agent("If you don't pay by Friday we add the contract's late fee.", start=10.0, dur=5.0)
    s.emit(
        ComplianceWarning(
            uid, "agent", "false_criminal_threat", "critical", "arrested", "w", "r", "e", 1.0, partial=True
        ),
        12.0,
    )
    s.emit(ComplianceRetracted(uid, "false_criminal_threat", "critical", "not in the final transcript"), 15.0)
    r = s.report()
    assert r["findings"] == []
    assert check(r, "no_violations")["status"] == "pass"
    clean = Script("en")
    clean.agent("If you don't pay by Friday we add the contract's late fee.", start=10.0, dur=5.0)
    assert r["score"] == clean.report()["score"]


# ------------------------------------------------------------------------------------------ score


def test_critical_findings_score_below_clean_calls() -> None:
    clean = good_zh().report()["score"]
    worst_clean = Script("zh")
    worst_clean.agent("喂，找你说欠款的事。")  # fails items 1 (debt first) and 2 (no name, no company)
    worst_clean.customer("生意赔了。", "hardship")
    worst_clean.agent("那你什么时候还？")  # fails item 4
    worst_clean.customer("我有律师。", "lawyer")
    worst_clean.agent("你今天能还多少？")  # fails item 5
    worst = worst_clean.report(
        {"borrower_timezone": "Asia/Shanghai"}, started_at=T0 + 3 * 3600
    )  # 23:00: item 3
    assert worst["summary"]["checklist"]["fail"] == 5
    assert worst["score"] == 100 - sum(review.CHECK_POINTS.values()) == 60
    critical = good_zh()
    critical.agent("你们这种老赖。", rules=["abusive_language"])
    minor = good_zh()
    minor.agent("没得商量。", rules=["overbearing"])
    major = good_zh()
    major.agent("罚息明天翻倍。", rules=["misrepresentation"])
    c, mi, ma = critical.report(), minor.report(), major.report()
    assert c["score"] <= review.CRITICAL_CAP < worst["score"] < clean
    assert c["score"] < ma["score"] < mi["score"] < clean
    assert mi["score"] == 100 - review.SEVERITY_POINTS["minor"]
    assert sum(b["points"] for b in c["score_breakdown"]) == c["score"] - 100


# ------------------------------------------------------------------------------------------ timeline


def test_stage_timeline_carries_stages_forward() -> None:
    r = good_zh().report()
    stages = [u["stage"] for u in r["utterances"]]
    assert stages[:4] == ["opening", "opening", "inquiry", "inquiry"]
    assert [(s["stage"], s["start"]) for s in r["stage_timeline"]] == [
        ("opening", 0.5),
        ("inquiry", 7.5),
        ("empathy", 14.5),
        ("proposal", 21.5),
        ("confirmation", 28.5),
    ]
    assert all(
        a["end"] == b["start"] for a, b in zip(r["stage_timeline"], r["stage_timeline"][1:], strict=False)
    )
    assert r["stage_timeline"][-1]["end"] == r["call"]["duration"]


def test_talk_time_interruptions_and_silences() -> None:
    s = Script("zh")
    s.agent("今天必须全部结清，没得商量。", start=0.0, dur=6.0)
    s.customer("你说谁是老赖？", start=5.3, dur=3.0)  # 0.7 s overlap: an interruption
    s.agent("好的。", start=8.2, dur=1.0)  # 0.1 s overlap: endpointer padding, not an interruption
    s.customer("嗯。", start=16.0, dur=1.0)  # 6.8 s gap: a silence
    s.agent("那我们再联系。", start=19.0, dur=2.0)  # 2 s gap: not listed
    r = s.report()
    assert r["talk_time"] == {"agent_s": 9.0, "customer_s": 4.0, "agent_share": 0.692}
    assert r["interruptions"] == [
        {
            "time": 5.3,
            "by": "customer",
            "interrupted": "agent",
            "overlap": 0.7,
            "utterance": 1,
            "quote": "你说谁是老赖？",
        }
    ]
    assert r["silences"] == [{"start": 9.2, "end": 16.0, "duration": 6.8, "after": "agent"}]


# ------------------------------------------------------------------------------------------ masking


def test_report_text_is_masked() -> None:
    """Personal data is masked once, upstream (the utterance step), before anything is stored or
    shown: the report shows the stored text as it is, neither masking it again nor unmasking it."""
    raw_text = "我的手机是幺三八零零一三八零零零"
    s = Script("zh")
    s.customer(mask(raw_text, language="zh"), "confirm_identity")
    r = s.report()
    assert r["utterances"][0]["text"] == "我的手机是[电话 ****8000]"
    assert r["signals"][0]["quote"] == "我的手机是[电话 ****8000]"[:12]  # the quote as stored
    # a quote cut after a phone word still has its 7 digits masked upstream
    assert mask(raw_text[:12], language="zh").startswith("我的手机是[电话 ****")
    raw = Script("zh")
    raw.customer(raw_text, "confirm_identity")  # a deployment with masking turned off
    assert raw.report()["utterances"][0]["text"] == "我的手机是幺三八零零一三八零零零"


# ------------------------------------------------------------------------------------------ fixtures


def fixture_events(data: dict[str, Any]) -> list[Event]:
    s = Script(data["language"], data["id"])
    for turn in data["turns"]:
        s.say(
            turn["speaker"],
            turn["text"],
            stage=turn["stage"] if turn["speaker"] == "agent" and turn["stage"] in STAGES else None,
            rules=turn["rules"],
            signals=[] if turn["intent"] in ("-", "") else [turn["intent"]],
            start=turn["start"],
            dur=turn["end"] - turn["start"],
        )
    return s.events


@pytest.mark.parametrize("name", ["dev_zh_01", "dev_zh_02", "dev_en_01", "dev_en_02"])
def test_fixture_calls(name: str) -> None:
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    tz = "Asia/Shanghai" if data["language"] == "zh" else "America/New_York"
    start = T0 + 3 * 3600 if data["language"] == "en" else T0  # 10:00 New York, 20:00 Shanghai
    r = build_report(
        CallFacts(name, start, data["language"], {"borrower_timezone": tz}), fixture_events(data)
    ).as_dict()
    # every labeled violation at its turn, and nothing on a compliant turn
    expected = sorted((i, rule) for i, t in enumerate(data["turns"]) for rule in t["rules"])
    assert sorted((f["utterance"], f["rule"]) for f in r["findings"]) == expected
    for f in r["findings"]:
        assert f["start"] == data["turns"][f["utterance"]]["start"]
    statuses = {c["id"]: c["status"] for c in r["checklist"]}
    compliant = not expected
    assert statuses["no_violations"] == ("pass" if compliant else "fail")
    assert statuses["allowed_hours"] == "pass"
    if compliant:
        assert r["score"] == 100
        assert "fail" not in statuses.values()
    else:
        assert r["score"] <= review.CRITICAL_CAP
        assert statuses["hardship_handled"] == "fail"  # both bad calls ignore the borrower's hardship
    if name == "dev_zh_02":
        assert statuses["identity_before_debt"] == "fail"  # 欠款 in the very first sentence
        assert statuses["agent_identified"] == "fail"  # company only, no name
        assert len(r["interruptions"]) == 1
    if name == "dev_en_02":
        assert statuses["agent_identified"] == "fail"  # no debt-collector disclosure
        assert statuses["requests_acknowledged"] == "fail"  # the lawyer is ignored
    if name == "dev_en_01":
        assert statuses["requests_acknowledged"] == "pass"
    html = render_html(r)
    assert "<svg" in html and html.count("<polygon") == len(r["findings"])


# ------------------------------------------------------------------------------------------ HTML


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_text_and_is_self_contained() -> None:
    s = Script("en")
    evil = '</td><script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
    s.agent("Hello, this is Dan with Harbor Services.", "opening")
    s.customer(evil, "dispute")
    s.agent(evil, rules=["abusive_language"])
    r = s.report({"agent_name": "<b>Dan</b>", "borrower_timezone": "America/New_York"})
    page = render_html(r)
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;Dan&lt;/b&gt;" in page
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "link" not in parsed.tags
    assert parsed.tags.count("svg") == 1 and "rect" in parsed.tags and "polygon" in parsed.tags
    assert any(evil in t for t in parsed.text)  # the words survive, as text
    urls = [v for k, v in parsed.attrs if k in ("src", "href") and v]
    assert all(u.startswith("#u") for u in urls)  # only in-page links: no external assets
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page and "<style>" in page


def test_html_labels_follow_the_call_language() -> None:
    zh = render_html(good_zh().report())
    assert '<html lang="zh-CN">' in zh and "通话质检报告" in zh and "检查清单" in zh and "时间轴" in zh
    en = Script("en")
    en.agent("Hello", "opening")
    page = render_html(en.report())
    assert "Call review" in page and "Checklist" in page
    # the page renders from the report read back from its JSON file, too
    assert render_html(json.loads(json.dumps(good_zh().report()))) == zh


def test_html_timeline_marks_findings_and_links_them_to_utterances() -> None:
    s = good_zh()
    s.agent("你们这种老赖。", rules=["abusive_language"], start=40.0)
    page = render_html(s.report())
    idx = s.report()["findings"][0]["utterance"]
    assert f'id="u{idx}"' in page
    assert re.search(rf'<a href="#u{idx}"><polygon[^>]*fill="#c1121f"', page)
