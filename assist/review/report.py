"""Post-call review: one call's metadata and stored events in, a scored QA report out.

The report is what a QA reviewer reads after the call (``callassist review``, the service's review
page, ``callassist analyze``): the call-level checklist of ``shared/domain.md`` section 4, every
compliance finding placed on its utterance, how the agent answered each customer signal, the stage
timeline, talk time, interruptions and long silences, and one score.  It is built only from the wire
events (``transcript.final``, ``stage.changed``, ``compliance.warning``, ``customer.signal``;
``suggestion`` and the rest are ignored), so a live call and an offline recording are reviewed alike.

The report is a typed value (:class:`assist.review.model.Report`); ``Report.as_dict()`` is its JSON
(``schema`` = ``REPORT_SCHEMA``; stable: fields are only ever added).  Times are seconds
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

Text in the report is shown as stored: personal data was masked once, upstream (the utterance step),
before anything was stored or shown.

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
from collections.abc import Mapping, Sequence
from typing import Any

from assist.events import Event
from assist.review.call import CallFacts, CallInfo, ReviewedCall
from assist.review.checklist import checklist
from assist.review.figures import interruptions, silences, stage_timeline, talk_time
from assist.review.model import (
    CHECK_IDS,
    CHECK_STATUSES,
    REPORT_SCHEMA,
    SEVERITY_ORDER,
    CallHeader,
    CheckItem,
    Deduction,
    Report,
    SignalOutcome,
    Summary,
    Utterance,
)
from assist.review.wording import DETAILS, TITLES, WORDS, say

__all__ = [
    "CHECK_IDS",
    "CHECK_POINTS",
    "CRITICAL_CAP",
    "REPORT_SCHEMA",
    "SEVERITY_ORDER",
    "SEVERITY_POINTS",
    "CallFacts",
    "CallInfo",
    "Report",
    "build_report",
]

SEVERITY_POINTS: Mapping[str, int] = {"critical": 25, "major": 10, "minor": 4}
CHECK_POINTS: Mapping[str, int] = {
    "identity_before_debt": 10,
    "agent_identified": 5,
    "allowed_hours": 10,
    "hardship_handled": 5,
    "requests_acknowledged": 10,
}
CRITICAL_CAP = 50


def _score(r: ReviewedCall, checks: Sequence[CheckItem]) -> tuple[int, tuple[Deduction, ...]]:
    """The score and every deduction behind it (weighting in the module docstring)."""
    breakdown: list[Deduction] = []
    for f in r.findings:
        sev = f.severity if f.severity in SEVERITY_POINTS else "minor"
        reason = say(DETAILS, "lost_finding", r.lang, sev=say(WORDS, sev, r.lang), rule=f.rule)
        breakdown.append(Deduction("finding", f.rule, sev, f.start, reason, -SEVERITY_POINTS[sev]))
    for c in checks:
        if c.status == "fail" and c.id in CHECK_POINTS:
            reason = say(DETAILS, "lost_check", r.lang, title=say(TITLES, c.id, r.lang))
            breakdown.append(Deduction("check", c.id, None, None, reason, -CHECK_POINTS[c.id]))
    score = max(0, 100 + sum(b.points for b in breakdown))
    if r.severity_counts()["critical"] and score > CRITICAL_CAP:
        reason = say(DETAILS, "lost_cap", r.lang, cap=CRITICAL_CAP)
        breakdown.append(Deduction("cap", "critical_cap", None, None, reason, CRITICAL_CAP - score))
        score = CRITICAL_CAP
    return score, tuple(breakdown)


def _header(r: ReviewedCall) -> CallHeader:
    local = r.local_start()
    started = dt.datetime.fromtimestamp(r.call.started_at, dt.UTC)
    return CallHeader(
        id=r.call.call_id,
        start_time=started.isoformat(),
        local_start_time=local.isoformat() if local else None,
        borrower_timezone=r.meta.get("borrower_timezone") or None,
        jurisdiction=r.jurisdiction,
        duration=round(r.duration, 3),
        language=r.lang,
        agent=_opt(r.meta.get("agent_name")),
        customer=_opt(r.meta.get("customer_name")),
        company=_opt(r.meta.get("company")),
        status=r.call.status,
    )


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def build_report(call: CallInfo, events: Sequence[Event]) -> Report:
    """The review report of one call (shape in the module docstring); pure and deterministic."""
    r = ReviewedCall(call, events)
    checks = checklist(r)
    score, breakdown = _score(r, checks)
    return Report(
        call=_header(r),
        utterances=tuple(
            Utterance(
                index=t.index,
                id=t.id,
                speaker=t.speaker,
                start=round(t.start, 3),
                end=round(t.end, 3),
                text=t.text,
                stage=t.stage,
                signals=tuple(t.signals),
                rules=tuple(t.rules),
            )
            for t in r.turns
        ),
        findings=tuple(r.findings),
        checklist=checks,
        score=score,
        score_breakdown=breakdown,
        stage_timeline=stage_timeline(r.turns, r.duration),
        signals=tuple(
            SignalOutcome(
                signal=s.signal,
                time=round(s.time, 3),
                utterance=s.turn.index if s.turn else None,
                quote=s.quote,
                score=round(s.score, 3),
                handled=s.handled,
                handled_by=s.handler.text if s.handler else None,
                handled_time=round(s.handler.start, 3) if s.handler else None,
            )
            for s in r.signals
        ),
        talk_time=talk_time(r.turns),
        interruptions=interruptions(r.turns),
        silences=silences(r.turns),
        summary=Summary(
            utterances=len(r.turns),
            findings=r.severity_counts(),
            checklist={s: sum(1 for c in checks if c.status == s) for s in CHECK_STATUSES},
        ),
    )
