"""Post-call review: one call's metadata and stored events in, a scored QA report out.

The report is what a QA reviewer reads after the call (``callassist review``, the service's review
page, ``callassist analyze``): the call-level checklist of ``shared/domain.md`` section 4, every
compliance finding placed on its utterance, how the agent answered each customer signal, the stage
timeline, talk time, interruptions and long silences, and one score.  It is built only from the wire
events (``transcript.final``, ``stage.changed``, ``compliance.warning``, ``customer.signal``;
``suggestion`` and the rest are ignored), so a live call and an offline recording are reviewed alike.

Report JSON (``schema`` = ``REPORT_SCHEMA``; stable: fields are only ever added).  Times are seconds
of call time (from the first audio sample) rounded to 3 decimals unless named ``*_time``::

    {
      "schema": "callassist.review/1",
      "call": {"id", "start_time": ISO 8601 UTC, "local_start_time": ISO 8601 in the borrower's zone | null,
               "borrower_timezone": IANA name | null, "jurisdiction": "US" | "CN",
               "duration": s, "language": "zh" | "en", "agent": str | null, "customer": str | null,
               "company": str | null, "status": "live" | "ended" | "interrupted" | "error"},
      "utterances": [{"index", "id", "speaker": "agent" | "customer", "start", "end", "text",
                      "stage": stage id in effect after this utterance | null,
                      "signals": [signal id], "rules": [rule id]}],
      "findings": [{"rule", "severity": "critical" | "major" | "minor", "speaker", "start", "end",
                    "utterance": index | null, "quote", "why", "rephrase", "partial": bool}],
      "checklist": [{"id", "n": 1..6, "title", "status": "pass" | "fail" | "not_applicable",
                     "evidence": {"quote", "time"} | null, "detail": one line}],
      "score": 0..100,
      "score_breakdown": [{"kind": "finding" | "check" | "cap", "id": rule or checklist id | "critical_cap",
                           "severity": (findings only), "time": s | null, "reason": one line,
                           "points": negative int}],
      "stage_timeline": [{"stage", "start", "end"}],
      "signals": [{"signal", "time", "utterance": index | null, "quote", "score",
                   "handled": bool, "handled_by": agent quote | null, "handled_time": s | null}],
      "talk_time": {"agent_s", "customer_s", "agent_share": 0..1 | null},
      "interruptions": [{"time", "by", "interrupted", "overlap", "utterance": index, "quote"}],
      "silences": [{"start", "end", "duration", "after": speaker | null}],
      "summary": {"utterances", "findings": {"critical", "major", "minor"},
                  "checklist": {"pass", "fail", "not_applicable"}}
    }

Checklist, in order (``title`` and ``detail`` are in the call's language):

1. ``identity_before_debt``: the first agent mention of the debt (``DEBT_WORDS``) comes after a
   ``confirm_identity`` signal or the agent's "thanks for confirming"; fail if the debt is mentioned
   after a ``third_party`` signal (before any later confirmation); pass if the debt never comes up.
2. ``agent_identified``: own name (metadata ``agent_name``, "我是/我叫/工号", "this is <Name>") and
   company (metadata ``company`` or a company-like phrase) within the first ``OPENING_AGENT_TURNS``
   agent turns; US jurisdiction also needs the debt-collector disclosure anywhere in the call;
   not applicable when only a third party answered.
3. ``allowed_hours``: start time in metadata ``borrower_timezone`` within ``ALLOWED_HOURS`` of the
   jurisdiction (metadata ``jurisdiction``, else en -> US, zh -> CN); not applicable without a
   (valid) time zone.
4. ``hardship_handled``: hardship answered with empathy; after hardship or a plan request, options
   offered; after a promise to pay, a recap followed by the borrower's yes.  Not applicable when none
   of these signals occurred.
5. ``requests_acknowledged``: each kind of ``dispute``/``cease_contact``/``lawyer`` signal handled at
   least once; not applicable when none occurred.
6. ``no_violations``: no findings; evidence is the most severe, earliest one.

Text in the report is masked (:mod:`assist.masking`) unless the caller turns masking off; text the
store already masked is left as it is.

Score (documented weighting; critical findings weigh most): start at 100, take off
``SEVERITY_POINTS`` per finding (critical 25, major 10, minor 4) and ``CHECK_POINTS`` per failed
checklist item 1-5 (40 at most in total; item 6 is the findings themselves), floor at 0; any
critical finding caps the score at ``CRITICAL_CAP`` (50).  So a call with a critical finding always
scores below every call without findings, which cannot fall under 60.

Heuristics are deliberately small and named here: debt mention and identity verification by short
bilingual keyword lists; "handled" means one of the agent's next ``HANDLING_WINDOW_TURNS`` turns is in
the expected stage or says the expected thing (and raised no finding).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assist.events import (
    ComplianceRetracted,
    ComplianceWarning,
    CustomerSignal,
    Event,
    StageChanged,
    TranscriptFinal,
)
from assist.masking import DEFAULT_POLICY, MaskingPolicy, mask

REPORT_SCHEMA = "callassist.review/1"
SILENCE_MIN_S = 5.0  # a gap with nobody speaking longer than this is listed as a silence
INTERRUPTION_MIN_OVERLAP_S = 0.3  # endpointer padding makes turns that merely abut overlap slightly
HANDLING_WINDOW_TURNS = 2  # a customer signal must be answered within this many agent turns
OPENING_AGENT_TURNS = 3  # the agent must name self and company within the first N agent turns
ALLOWED_HOURS: Mapping[str, tuple[int, int]] = {"US": (8, 21), "CN": (8, 22)}  # local [from, to)
SEVERITY_POINTS: Mapping[str, int] = {"critical": 25, "major": 10, "minor": 4}
CHECK_POINTS: Mapping[str, int] = {
    "identity_before_debt": 10,
    "agent_identified": 5,
    "allowed_hours": 10,
    "hardship_handled": 5,
    "requests_acknowledged": 10,
}
CRITICAL_CAP = 50
SEVERITY_ORDER = ("critical", "major", "minor")
CHECK_IDS = (
    "identity_before_debt",
    "agent_identified",
    "allowed_hours",
    "hardship_handled",
    "requests_acknowledged",
    "no_violations",
)


class CallInfo(Protocol):
    """What the review needs to know about a call; ``stream.store.CallRecord`` satisfies it."""

    @property
    def call_id(self) -> str: ...

    @property
    def started_at(self) -> float: ...  # unix seconds

    @property
    def language(self) -> str: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...

    @property
    def status(self) -> str: ...

    @property
    def duration(self) -> float | None: ...


@dataclass(frozen=True)
class CallFacts:
    """A plain :class:`CallInfo` for calls that never went through the store (offline analysis)."""

    call_id: str
    started_at: float
    language: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    status: str = "ended"
    duration: float | None = None


# ----------------------------------------------------------------------------- bilingual vocabulary


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


DEBT_WORDS = _rx(
    r"欠款|欠费|欠钱|欠的钱|欠债|债务|逾期|还款|还钱|贷款|借款|账单|催收|结清|还清|未还|应还|滞纳金|罚息|本金",
    r"\b(debts?|owe[ds]?|owing|overdue|past[- ]due|balance|loans?|arrears|delinquent|outstanding amount)\b",
    r"\b(missed|late) payments?\b",
)
AGENT_VERIFIED = _rx(
    r"(谢谢|感谢)(您|你)?的?(确认|配合核实|核实)|身份(已经?|已)?(核实|确认)|核实(无误|完毕|通过)",
    r"thanks? (you )?for (confirming|verifying)|(you've|you have) been verified|identity (is |has been )?"
    r"(confirmed|verified)",
)
MINI_MIRANDA = _rx(
    r"debt collector|attempt to collect (a|the|this) debt|collect(ing)? (a|the|this) debt",
    r"债务催收|催收(机构|公司|人员|电话)|用于催收|目的是催收",
)
_ZH_SELF = re.compile(r"我(?:是|叫|姓)([^，。,.！？!?；;：:\s]{1,24})")
_ZH_COMPANY_SUFFIX = r"(?:公司|中心|银行|平台|机构|集团|事务所|金融|资产|小贷|保险|部门?)"
_ZH_COMPANY = re.compile(r"[\u4e00-\u9fffA-Za-z]{2,}" + _ZH_COMPANY_SUFFIX)
_ZH_ROLE = re.compile(r"的|客服|专员|经理|顾问|主管|催收员|工作人员|调解员|法务|坐席|业务员|贷后")
_ZH_WORK_ID = re.compile(r"工号")
_EN_SELF = re.compile(
    r"\b(?:[Tt]his is|[Mm]y name is|[Mm]y name's|I am|I'm|[Ii]t's)\s+"
    r"(?:(?:[Aa]ttorney|[Aa]gent|[Oo]fficer|Mr\.?|Ms\.?|Mrs\.?|Miss)\s+)?([A-Z][a-z]+)"
)
_EN_COMPANY = re.compile(
    r"(?<!speak )(?<!talk )(?<!speaking )(?<!talking )(?<!meet )"  # "may I speak with Rebecca" is no company
    r"\b(?:with|from|at|on behalf of)\s+(?:the\s+)?([A-Z][\w&'.-]*(?:\s+[A-Z][\w&'.-]*)*)"
    r"|\b(?:[A-Z][\w&'.-]*\s+)+(?:Services|Collections?|Bank|Financial|Finance|Recovery|Credit|Associates|"
    r"LLC|Inc|Group|Capital|Lending)\b"
)
EMPATHY_WORDS = _rx(
    r"理解|明白|不容易|辛苦|压力|抱歉|遗憾|体谅|别着急|不着急|难处|难为",
    r"\bunderstand|\bsorry\b|must be (hard|difficult|tough|stressful|frustrating)|"
    r"sounds (like )?(hard|difficult|tough|stressful)|\bthat's (hard|tough|difficult)|i hear you",
    r"hard time|difficult time|frustrating",
)
OPTION_WORDS = _rx(
    r"分期|分[一二三四五六七八九十两\d]+期|延期|宽限|减免|部分还款|先还一部分|还款方案|方案",
    r"instal?lments?|payment plan|\bdefer|deferral|extension|grace period|settle|settlement|reduced|"
    r"partial payment|monthly payments?|a month\b|per month",
)
PLAN_WORDS = _rx(
    r"分期|延期|宽限|方案|每月|每期|多少|能还|首付|先还",
    r"\bplan\b|instal?lments?|monthly|"
    r"per month|\bdefer|extension|grace|how much|afford",
)
RECAP_WORDS = _rx(
    r"核对|确认|复述|再说一遍|对吗|是吗|没问题吧|就是说|总结一下",
    r"\bconfirm|to recap|just to be clear|let me repeat|\bcorrect\?|\bright\?|agreement|in writing",
)
AFFIRM_WORDS = _rx(
    r"对|是的|好的?|可以|行|没问题|同意|嗯|按这个",
    r"\b(yes|yeah|yep|okay|ok|sure|fine|agreed|correct|that works|sounds good|deal|will do)\b",
)
ACK_WORDS: Mapping[str, re.Pattern[str]] = {
    "dispute": _rx(
        r"核实|核查|核对|记录|备注|登记|异议|争议|查一下|查询|调查|反馈|撤销|更正",
        r"disput|verif|validat|investigat|look into|\breview|\bnoted\b|on hold|\brecord|removed|"
        r"correct(ed|ion)",
    ),
    "cease_contact": _rx(
        r"记录|备注|登记|不再|不会再|书面|短信|邮件|信函|不打扰",
        r"\bnoted\b|\bnote that\b|won't call|will not call|no more (phone )?calls|stop calling|in writing|"
        r"written|by mail|mail you|email you|\brecord",
    ),
    "lawyer": _rx(r"律师", r"\blawyer|attorney|counsel|legal representative"),
    "hostile": _rx(
        r"理解|抱歉|对不起|不好意思|冷静|别生气|稍后|改天|再联系|体谅",
        r"\bunderstand|\bsorry\b|apolog|\bcalm\b|\blater\b|another time|call you back|i hear you",
    ),
}
EXPECTED_STAGES: Mapping[str, tuple[str, ...]] = {
    "hardship": ("empathy",),
    "request_plan": ("inquiry", "proposal", "confirmation"),
    "promise_to_pay": ("confirmation",),
    "hostile": ("empathy",),
}
SIGNAL_WORDS: Mapping[str, re.Pattern[str]] = {
    "hardship": EMPATHY_WORDS,
    "request_plan": PLAN_WORDS,
    "promise_to_pay": RECAP_WORDS,
    **ACK_WORDS,
}

# --------------------------------------------------------------------------------- bilingual text

TITLES: Mapping[str, tuple[str, str]] = {
    "identity_before_debt": ("Identity confirmed before the debt was mentioned", "提及欠款前已核实身份"),
    "agent_identified": ("Agent identified self and company", "坐席已说明本人姓名和公司"),
    "allowed_hours": (
        "Call placed in allowed hours (borrower's local time)",
        "在允许时段内致电（借款人当地时间）",
    ),
    "hardship_handled": (
        "Hardship met with empathy; options offered; plan recapped and confirmed",
        "困难时先共情；提供方案；复述并确认还款计划",
    ),
    "requests_acknowledged": (
        "Disputes, stop-calling requests and lawyer representation acknowledged",
        "异议、停止来电要求和律师代理已确认并记录",
    ),
    "no_violations": ("No compliance rule fired", "未触发任何合规规则"),
}
DETAILS: Mapping[str, tuple[str, str]] = {
    "debt_never": ("The debt was never mentioned.", "通话中未提及欠款。"),
    "debt_after_id": (
        "Identity confirmed at {t1}; debt first mentioned at {t2}.",
        "{t1} 核实身份，{t2} 首次提及欠款。",
    ),
    "debt_before_id": (
        "Debt mentioned at {t2} before identity was confirmed.",
        "{t2} 在核实身份前提及欠款。",
    ),
    "debt_no_id": (
        "Debt mentioned at {t2}; identity was never confirmed.",
        "{t2} 提及欠款，但始终未核实身份。",
    ),
    "third_party_told": (
        "Debt mentioned at {t2} after a third party answered.",
        "{t2} 在第三方接听后提及欠款。",
    ),
    "third_party_only": (
        "A third party answered; self and company need not be named.",
        "第三方接听，无需说明身份和公司。",
    ),
    "ident_ok": ("Agent named self and company.", "坐席说明了本人姓名和公司。"),
    "ident_ok_us": (
        "Agent named self and company and gave the debt-collector disclosure.",
        "坐席说明了本人姓名和公司，并告知催收身份。",
    ),
    "ident_missing": ("Missing: {what}.", "缺少：{what}。"),
    "no_tz": ("No borrower time zone in the call metadata.", "通话元数据中没有借款人时区。"),
    "bad_tz": ("Unknown time zone {tz!r}.", "未知时区 {tz!r}。"),
    "hours": (
        "Placed at {local} {tz} ({j}: allowed {lo:02d}:00-{hi:02d}:00).",
        "致电时间 {local} {tz}（{j}：允许 {lo:02d}:00-{hi:02d}:00）。",
    ),
    "no_hardship": (
        "No hardship, plan request or promise to pay in this call.",
        "本通话无困难、协商或还款承诺。",
    ),
    "hardship_ok": ("Every step was taken.", "各步骤均已完成。"),
    "no_empathy": ("No empathy after the hardship at {t}.", "{t} 客户表示困难后坐席未表达共情。"),
    "no_options": ("No repayment options offered after {t}.", "{t} 之后未提供还款方案。"),
    "no_recap": ("The agreed plan was not recapped after {t}.", "{t} 达成约定后未复述还款计划。"),
    "no_yes": ("The recap at {t} got no explicit yes.", "{t} 复述计划后未得到客户明确确认。"),
    "no_requests": (
        "No dispute, stop-calling request or lawyer in this call.",
        "本通话无异议、停止来电或律师代理。",
    ),
    "requests_ok": ("Acknowledged: {what}.", "已确认：{what}。"),
    "request_missed": ("Not acknowledged: {what} at {t}.", "未确认：{t} 的{what}。"),
    "clean": ("No findings.", "无违规。"),
    "findings": ("{counts}.", "{counts}。"),
    "lost_finding": ("{sev} finding: {rule}", "{sev}违规：{rule}"),
    "lost_check": ("Checklist failed: {title}", "检查项未通过：{title}"),
    "lost_cap": ("A critical finding caps the score at {cap}", "存在严重违规，得分上限 {cap}"),
}
WORDS: Mapping[str, tuple[str, str]] = {
    "agent name": ("the agent's name", "坐席姓名"),
    "company": ("the company", "公司名称"),
    "disclosure": ('the "attempt to collect a debt" disclosure', "催收身份告知"),
    "dispute": ("dispute", "异议"),
    "cease_contact": ("stop-calling request", "停止来电要求"),
    "lawyer": ("lawyer representation", "律师代理"),
    "critical": ("critical", "严重"),
    "major": ("major", "较重"),
    "minor": ("minor", "轻微"),
}


def _say(table: Mapping[str, tuple[str, str]], key: str, lang: str, **kw: Any) -> str:
    en, zh = table[key]
    return (zh if lang == "zh" else en).format(**kw)


def _mmss(t: float) -> str:
    t = max(0.0, t)
    return f"{int(t // 60):02d}:{int(t % 60):02d}"


# ------------------------------------------------------------------------------------- the build


@dataclass
class _Turn:
    index: int
    id: str
    speaker: str
    start: float
    end: float
    text: str
    seq: int
    stage: str | None = None
    signals: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


@dataclass
class _Signal:
    signal: str
    turn: _Turn | None
    time: float
    quote: str
    score: float
    handled: bool = False
    handler: _Turn | None = None


@dataclass
class _Check:
    id: str
    status: str
    evidence: dict[str, Any] | None
    detail: str


class _Review:
    def __init__(self, call: CallInfo, events: Sequence[Event], masking: MaskingPolicy | None) -> None:
        self.call = call
        self.lang = "zh" if call.language.lower().startswith("zh") else "en"
        self.masking = masking
        self.meta = call.metadata
        ordered = sorted(events, key=lambda e: e.seq)
        self.turns = self._turns(ordered)
        self.by_id = {t.id: t for t in self.turns}
        self._stages(ordered)
        self.findings = self._findings(ordered)
        self.signals = self._signals(ordered)
        last_end = max((t.end for t in self.turns), default=0.0)
        self.duration = call.duration if call.duration is not None else last_end
        self.jurisdiction = self._jurisdiction()

    # -- text

    def m(self, text: str) -> str:
        return mask(text, language=self.lang, policy=self.masking) if self.masking and text else text

    def evidence(self, turn: _Turn | None, quote: str | None = None) -> dict[str, Any] | None:
        if turn is None:
            return None
        return {"quote": self.m(quote if quote is not None else turn.text), "time": round(turn.start, 3)}

    # -- parsing

    def _turns(self, events: Sequence[Event]) -> list[_Turn]:
        finals: dict[str, tuple[int, TranscriptFinal]] = {}
        for e in events:
            if isinstance(e.body, TranscriptFinal):
                finals[e.body.utterance_id] = (e.seq, e.body)  # a re-sent final replaces the earlier one
        ordered = sorted(finals.values(), key=lambda p: (p[1].start, p[1].end, p[0]))
        return [
            _Turn(i, b.utterance_id, b.speaker, float(b.start), float(b.end), b.text, seq)
            for i, (seq, b) in enumerate(ordered)
        ]

    def _call_time(self, e: Event) -> float:
        return max(0.0, e.ts - self.call.started_at)

    def _stages(self, events: Sequence[Event]) -> None:
        """Stage in effect after each turn: stage.changed only fires on a change, so carry it forward."""
        own: dict[str, str] = {}
        loose: list[tuple[float, str]] = []  # changes whose utterance never got a final transcript
        for e in events:
            if isinstance(e.body, StageChanged):
                if e.body.utterance_id in self.by_id:
                    own[e.body.utterance_id] = e.body.stage
                else:
                    loose.append((self._call_time(e), e.body.stage))
        current: str | None = None
        for t in self.turns:
            while loose and loose[0][0] <= t.start:
                current = loose.pop(0)[1]
            current = own.get(t.id, current)
            t.stage = current

    def _findings(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        chosen: dict[tuple[str, str], tuple[Event, ComplianceWarning]] = {}
        for e in events:
            b = e.body
            if isinstance(b, ComplianceRetracted):
                # the final transcript did not bear out a warning raised from a partial one
                chosen.pop((b.utterance_id, b.rule), None)
            elif isinstance(b, ComplianceWarning):
                key = (b.utterance_id, b.rule)
                # the final-transcript warning replaces an early one raised from a partial
                if key not in chosen or (chosen[key][1].partial and not b.partial):
                    chosen[key] = (e, b)
        out: list[dict[str, Any]] = []
        for e, b in chosen.values():
            turn = self.by_id.get(b.utterance_id)
            start = turn.start if turn else self._call_time(e)
            end = turn.end if turn else start
            if turn is not None and b.rule not in turn.rules:
                turn.rules.append(b.rule)
            out.append(
                {
                    "rule": b.rule,
                    "severity": b.severity,
                    "speaker": b.speaker,
                    "start": round(start, 3),
                    "end": round(end, 3),
                    "utterance": turn.index if turn else None,
                    "quote": self.m(b.quote),
                    "why": b.why,
                    "rephrase": self.m(b.rephrase),
                    "partial": b.partial,
                }
            )
        rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
        out.sort(key=lambda f: (f["start"], rank.get(f["severity"], len(rank)), f["rule"]))
        return out

    def _signals(self, events: Sequence[Event]) -> list[_Signal]:
        seen: set[tuple[str, str]] = set()
        out: list[_Signal] = []
        for e in events:
            b = e.body
            if not isinstance(b, CustomerSignal) or (b.utterance_id, b.signal) in seen:
                continue
            seen.add((b.utterance_id, b.signal))
            turn = self.by_id.get(b.utterance_id)
            if turn is not None and b.signal not in turn.signals:
                turn.signals.append(b.signal)
            out.append(_Signal(b.signal, turn, turn.start if turn else self._call_time(e), b.quote, b.score))
        out.sort(key=lambda s: s.time)
        for s in out:
            s.handled, s.handler = self._handled(s)
        return out

    # -- helpers

    def agent_turns(self) -> list[_Turn]:
        return [t for t in self.turns if t.speaker == "agent"]

    def agent_after(self, t: float, n: int = HANDLING_WINDOW_TURNS) -> list[_Turn]:
        return [a for a in self.agent_turns() if a.start > t][:n]

    def first_signal(self, name: str) -> _Signal | None:
        return next((s for s in self.signals if s.signal == name), None)

    def _handled(self, s: _Signal) -> tuple[bool, _Turn | None]:
        replies = self.agent_after(s.time)
        if s.signal == "third_party":
            # handled by saying nothing about the debt: every reply in the window must avoid it
            told = [r for r in replies if DEBT_WORDS.search(r.text) or r.rules]
            return (not told, replies[0] if replies and not told else None)
        stages = EXPECTED_STAGES.get(s.signal, ())
        words = SIGNAL_WORDS.get(s.signal)
        for r in replies:
            if r.rules:
                continue  # a reply that broke a rule never counts as handling anything
            if s.signal not in SIGNAL_WORDS and s.signal not in EXPECTED_STAGES:
                return True, r  # confirm_identity and unknown signals: the agent went on properly
            if (r.stage in stages) or (words is not None and words.search(r.text)):
                return True, r
        return False, None

    def _jurisdiction(self) -> str:
        raw = str(self.meta.get("jurisdiction", "")).strip().lower()
        if raw in ("us", "usa", "united states", "en-us"):
            return "US"
        if raw in ("cn", "china", "prc", "zh-cn", "mainland"):
            return "CN"
        return "US" if self.lang == "en" else "CN"

    # -- checklist

    def check_identity(self) -> _Check:
        cid = "identity_before_debt"
        debt = [a for a in self.agent_turns() if DEBT_WORDS.search(a.text)]
        confirms = [s.turn for s in self.signals if s.signal == "confirm_identity" and s.turn is not None]
        confirms += [a for a in self.agent_turns() if AGENT_VERIFIED.search(a.text)]
        confirm = min(confirms, key=lambda t: t.index) if confirms else None
        answered = [s.turn for s in self.signals if s.signal == "third_party" and s.turn is not None]
        for tp in answered:
            later = [c.index for c in confirms if c.index > tp.index]
            until = min(later) if later else len(self.turns)
            told = next((d for d in debt if tp.index < d.index < until), None)
            if told is not None:
                return _Check(
                    cid,
                    "fail",
                    self.evidence(told),
                    _say(DETAILS, "third_party_told", self.lang, t2=_mmss(told.start)),
                )
        if not debt:
            return _Check(cid, "pass", self.evidence(confirm), _say(DETAILS, "debt_never", self.lang))
        first = debt[0]
        if confirm is None:
            return _Check(
                cid,
                "fail",
                self.evidence(first),
                _say(DETAILS, "debt_no_id", self.lang, t2=_mmss(first.start)),
            )
        if confirm.index > first.index:
            return _Check(
                cid,
                "fail",
                self.evidence(first),
                _say(DETAILS, "debt_before_id", self.lang, t2=_mmss(first.start)),
            )
        return _Check(
            cid,
            "pass",
            self.evidence(confirm),
            _say(DETAILS, "debt_after_id", self.lang, t1=_mmss(confirm.start), t2=_mmss(first.start)),
        )

    def _names_self(self, text: str) -> bool:
        name = str(self.meta.get("agent_name") or "").strip()
        if name:
            parts = [name] + [p for p in name.split() if len(p) >= 2]
            if re.fullmatch(r"[\u4e00-\u9fff]{3,4}", name):
                parts.append(name[1:])  # given name alone: 雨桐
            if any(p.lower() in text.lower() for p in parts):
                return True
        if _ZH_WORK_ID.search(text) or _EN_SELF.search(text):
            return True
        for m in _ZH_SELF.finditer(text):
            phrase = m.group(1)
            tail = re.split(_ZH_COMPANY_SUFFIX + "的?", phrase)[-1]
            if _ZH_ROLE.sub("", tail):
                return True
        return False

    def _names_company(self, text: str) -> bool:
        company = str(self.meta.get("company") or "").strip()
        if company and company.lower() in text.lower():
            return True
        return bool(_ZH_COMPANY.search(text) or _EN_COMPANY.search(text))

    def check_identified(self) -> _Check:
        cid = "agent_identified"
        if self.first_signal("third_party") and not self.first_signal("confirm_identity"):
            return _Check(cid, "not_applicable", None, _say(DETAILS, "third_party_only", self.lang))
        opening = self.agent_turns()[:OPENING_AGENT_TURNS]
        named = next((t for t in opening if self._names_self(t.text)), None)
        company = next((t for t in opening if self._names_company(t.text)), None)
        us = self.jurisdiction == "US"
        disclosed = next((t for t in self.agent_turns() if MINI_MIRANDA.search(t.text)), None)
        missing = [k for k, ok in (("agent name", named), ("company", company)) if ok is None]
        if us and disclosed is None:
            missing.append("disclosure")
        if missing:
            what = ("、" if self.lang == "zh" else ", ").join(_say(WORDS, k, self.lang) for k in missing)
            first = opening[0] if opening else None
            return _Check(
                cid, "fail", self.evidence(first), _say(DETAILS, "ident_missing", self.lang, what=what)
            )
        return _Check(
            cid, "pass", self.evidence(named), _say(DETAILS, "ident_ok_us" if us else "ident_ok", self.lang)
        )

    def local_start(self) -> dt.datetime | None:
        tz = str(self.meta.get("borrower_timezone") or "").strip()
        if not tz:
            return None
        try:
            return dt.datetime.fromtimestamp(self.call.started_at, ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError):
            return None

    def check_hours(self) -> _Check:
        cid = "allowed_hours"
        tz = str(self.meta.get("borrower_timezone") or "").strip()
        if not tz:
            return _Check(cid, "not_applicable", None, _say(DETAILS, "no_tz", self.lang))
        local = self.local_start()
        if local is None:
            return _Check(cid, "not_applicable", None, _say(DETAILS, "bad_tz", self.lang, tz=tz))
        lo, hi = ALLOWED_HOURS[self.jurisdiction]
        ok = lo * 60 <= local.hour * 60 + local.minute < hi * 60
        detail = _say(
            DETAILS,
            "hours",
            self.lang,
            local=local.strftime("%Y-%m-%d %H:%M"),
            tz=tz,
            j=self.jurisdiction,
            lo=lo,
            hi=hi,
        )
        return _Check(cid, "pass" if ok else "fail", None, detail)

    def check_hardship(self) -> _Check:
        cid = "hardship_handled"
        hardship = self.first_signal("hardship")
        asked = self.first_signal("request_plan")
        promise = self.first_signal("promise_to_pay")
        if not (hardship or asked or promise):
            return _Check(cid, "not_applicable", None, _say(DETAILS, "no_hardship", self.lang))
        if hardship and not hardship.handled:
            return _Check(
                cid,
                "fail",
                self.evidence(hardship.turn, hardship.quote or None),
                _say(DETAILS, "no_empathy", self.lang, t=_mmss(hardship.time)),
            )
        need = [s for s in (hardship, asked) if s is not None]
        if need:
            since = min(s.time for s in need)
            offered = next(
                (
                    a
                    for a in self.agent_turns()
                    if a.start > since
                    and not a.rules
                    and (a.stage == "proposal" or OPTION_WORDS.search(a.text))
                ),
                None,
            )
            if offered is None:
                first = min(need, key=lambda s: s.time)
                return _Check(
                    cid,
                    "fail",
                    self.evidence(first.turn, first.quote or None),
                    _say(DETAILS, "no_options", self.lang, t=_mmss(since)),
                )
        good: _Turn | None = hardship.handler if hardship else None
        if promise is not None:
            recap = next(
                (
                    a
                    for a in self.agent_turns()
                    if a.start > promise.time and (a.stage == "confirmation" or RECAP_WORDS.search(a.text))
                ),
                None,
            )
            if recap is None:
                return _Check(
                    cid,
                    "fail",
                    self.evidence(promise.turn, promise.quote or None),
                    _say(DETAILS, "no_recap", self.lang, t=_mmss(promise.time)),
                )
            yes = next(
                (
                    t
                    for t in self.turns
                    if t.speaker == "customer"
                    and t.start > recap.start
                    and ("promise_to_pay" in t.signals or AFFIRM_WORDS.search(t.text))
                ),
                None,
            )
            if yes is None:
                return _Check(
                    cid,
                    "fail",
                    self.evidence(recap),
                    _say(DETAILS, "no_yes", self.lang, t=_mmss(recap.start)),
                )
            good = recap
        return _Check(cid, "pass", self.evidence(good), _say(DETAILS, "hardship_ok", self.lang))

    def check_requests(self) -> _Check:
        cid = "requests_acknowledged"
        kinds = ("dispute", "cease_contact", "lawyer")
        present = [k for k in kinds if self.first_signal(k)]
        if not present:
            return _Check(cid, "not_applicable", None, _say(DETAILS, "no_requests", self.lang))
        handlers: list[_Turn] = []
        for k in present:
            occurrences = [s for s in self.signals if s.signal == k]
            done = next((s for s in occurrences if s.handled), None)
            if done is None:
                s = occurrences[0]
                what = _say(WORDS, k, self.lang)
                return _Check(
                    cid,
                    "fail",
                    self.evidence(s.turn, s.quote or None),
                    _say(DETAILS, "request_missed", self.lang, what=what, t=_mmss(s.time)),
                )
            if done.handler is not None:
                handlers.append(done.handler)
        what = ("、" if self.lang == "zh" else ", ").join(_say(WORDS, k, self.lang) for k in present)
        first = min(handlers, key=lambda t: t.start) if handlers else None
        return _Check(cid, "pass", self.evidence(first), _say(DETAILS, "requests_ok", self.lang, what=what))

    def check_findings(self) -> _Check:
        cid = "no_violations"
        if not self.findings:
            return _Check(cid, "pass", None, _say(DETAILS, "clean", self.lang))
        rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
        worst = min(self.findings, key=lambda f: (rank.get(f["severity"], len(rank)), f["start"]))
        counts = self.severity_counts()
        sep = "，" if self.lang == "zh" else ", "
        text = sep.join(f"{_say(WORDS, s, self.lang)} {counts[s]}" for s in SEVERITY_ORDER if counts[s])
        return _Check(
            cid,
            "fail",
            {"quote": worst["quote"], "time": worst["start"]},
            _say(DETAILS, "findings", self.lang, counts=text),
        )

    def severity_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITY_ORDER, 0)
        for f in self.findings:
            sev = f["severity"] if f["severity"] in counts else "minor"
            counts[sev] += 1
        return counts

    # -- timeline figures

    def stage_timeline(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for t in self.turns:
            if t.stage is None or (out and out[-1]["stage"] == t.stage):
                continue
            if out:
                out[-1]["end"] = round(t.start, 3)
            out.append({"stage": t.stage, "start": round(t.start, 3), "end": None})
        if out:
            out[-1]["end"] = round(max(self.duration, out[-1]["start"]), 3)
        return out

    def talk_time(self) -> dict[str, Any]:
        agent = sum(t.end - t.start for t in self.turns if t.speaker == "agent")
        customer = sum(t.end - t.start for t in self.turns if t.speaker == "customer")
        total = agent + customer
        return {
            "agent_s": round(agent, 3),
            "customer_s": round(customer, 3),
            "agent_share": round(agent / total, 3) if total > 0 else None,
        }

    def interruptions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        last: dict[str, _Turn] = {}
        for t in self.turns:
            other = last.get("customer" if t.speaker == "agent" else "agent")
            if other is not None and other.end - t.start >= INTERRUPTION_MIN_OVERLAP_S:
                out.append(
                    {
                        "time": round(t.start, 3),
                        "by": t.speaker,
                        "interrupted": other.speaker,
                        "overlap": round(min(other.end, t.end) - t.start, 3),
                        "utterance": t.index,
                        "quote": self.m(t.text),
                    }
                )
            prev = last.get(t.speaker)
            if prev is None or t.end >= prev.end:
                last[t.speaker] = t
        return out

    def silences(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        covered_to: float | None = None
        speaker: str | None = None
        for t in self.turns:
            if covered_to is not None and t.start - covered_to > SILENCE_MIN_S:
                out.append(
                    {
                        "start": round(covered_to, 3),
                        "end": round(t.start, 3),
                        "duration": round(t.start - covered_to, 3),
                        "after": speaker,
                    }
                )
            if covered_to is None or t.end >= covered_to:
                covered_to, speaker = t.end, t.speaker
        return out

    # -- assembly

    def build(self) -> dict[str, Any]:
        checks = [
            self.check_identity(),
            self.check_identified(),
            self.check_hours(),
            self.check_hardship(),
            self.check_requests(),
            self.check_findings(),
        ]
        breakdown: list[dict[str, Any]] = []
        for f in self.findings:
            sev = f["severity"] if f["severity"] in SEVERITY_POINTS else "minor"
            reason = _say(DETAILS, "lost_finding", self.lang, sev=_say(WORDS, sev, self.lang), rule=f["rule"])
            item = {"kind": "finding", "id": f["rule"], "severity": sev, "time": f["start"], "reason": reason}
            breakdown.append({**item, "points": -SEVERITY_POINTS[sev]})
        for c in checks:
            if c.status == "fail" and c.id in CHECK_POINTS:
                reason = _say(DETAILS, "lost_check", self.lang, title=_say(TITLES, c.id, self.lang))
                breakdown.append(
                    {
                        "kind": "check",
                        "id": c.id,
                        "time": None,
                        "reason": reason,
                        "points": -CHECK_POINTS[c.id],
                    }
                )
        score = max(0, 100 + sum(int(b["points"]) for b in breakdown))
        counts = self.severity_counts()
        if counts["critical"] and score > CRITICAL_CAP:
            reason = _say(DETAILS, "lost_cap", self.lang, cap=CRITICAL_CAP)
            breakdown.append(
                {
                    "kind": "cap",
                    "id": "critical_cap",
                    "time": None,
                    "reason": reason,
                    "points": CRITICAL_CAP - score,
                }
            )
            score = CRITICAL_CAP
        local = self.local_start()
        started = dt.datetime.fromtimestamp(self.call.started_at, dt.UTC)
        status_counts = {
            s: sum(1 for c in checks if c.status == s) for s in ("pass", "fail", "not_applicable")
        }
        return {
            "schema": REPORT_SCHEMA,
            "call": {
                "id": self.call.call_id,
                "start_time": started.isoformat(),
                "local_start_time": local.isoformat() if local else None,
                "borrower_timezone": self.meta.get("borrower_timezone") or None,
                "jurisdiction": self.jurisdiction,
                "duration": round(self.duration, 3),
                "language": self.lang,
                "agent": _opt(self.meta.get("agent_name")),
                "customer": _opt(self.meta.get("customer_name")),
                "company": _opt(self.meta.get("company")),
                "status": self.call.status,
            },
            "utterances": [
                {
                    "index": t.index,
                    "id": t.id,
                    "speaker": t.speaker,
                    "start": round(t.start, 3),
                    "end": round(t.end, 3),
                    "text": self.m(t.text),
                    "stage": t.stage,
                    "signals": list(t.signals),
                    "rules": list(t.rules),
                }
                for t in self.turns
            ],
            "findings": self.findings,
            "checklist": [
                {
                    "id": c.id,
                    "n": CHECK_IDS.index(c.id) + 1,
                    "title": _say(TITLES, c.id, self.lang),
                    "status": c.status,
                    "evidence": c.evidence,
                    "detail": c.detail,
                }
                for c in checks
            ],
            "score": score,
            "score_breakdown": breakdown,
            "stage_timeline": self.stage_timeline(),
            "signals": [
                {
                    "signal": s.signal,
                    "time": round(s.time, 3),
                    "utterance": s.turn.index if s.turn else None,
                    "quote": self.m(s.quote),
                    "score": round(s.score, 3),
                    "handled": s.handled,
                    "handled_by": self.m(s.handler.text) if s.handler else None,
                    "handled_time": round(s.handler.start, 3) if s.handler else None,
                }
                for s in self.signals
            ],
            "talk_time": self.talk_time(),
            "interruptions": self.interruptions(),
            "silences": self.silences(),
            "summary": {"utterances": len(self.turns), "findings": counts, "checklist": status_counts},
        }


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def build_report(
    call: CallInfo, events: Sequence[Event], *, masking: MaskingPolicy | None = DEFAULT_POLICY
) -> dict[str, Any]:
    """The review report of one call (shape in the module docstring); pure and deterministic."""
    return _Review(call, events, masking).build()
