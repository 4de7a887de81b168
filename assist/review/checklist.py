"""The six checklist items of ``shared/domain.md`` section 4, each asked of one reviewed call.

Each returns its :class:`~assist.review.model.CheckItem` (status, evidence, one-line detail in the
call's language); the order and meaning are documented in :mod:`assist.review.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assist.review.call import ReviewedCall, Turn
from assist.review.model import CHECK_IDS, SEVERITY_ORDER, CheckItem, Evidence
from assist.review.vocabulary import (
    AFFIRM_WORDS,
    AGENT_VERIFIED,
    DEBT_WORDS,
    MINI_MIRANDA,
    OPTION_WORDS,
    RECAP_WORDS,
    names_company,
    names_self,
)
from assist.review.wording import DETAILS, TITLES, WORDS, mmss, say

OPENING_AGENT_TURNS = 3  # the agent must name self and company within the first N agent turns
ALLOWED_HOURS: Mapping[str, tuple[int, int]] = {"US": (8, 21), "CN": (8, 22)}  # local [from, to)


def _item(
    r: ReviewedCall, cid: str, status: str, evidence: Evidence | None, detail: str, **kw: Any
) -> CheckItem:
    """The item ``cid`` with its one-line ``detail`` (a key of ``DETAILS``, filled in with ``kw``)."""
    return CheckItem(
        id=cid,
        n=CHECK_IDS.index(cid) + 1,
        title=say(TITLES, cid, r.lang),
        status=status,
        evidence=evidence,
        detail=say(DETAILS, detail, r.lang, **kw),
    )


def check_identity(r: ReviewedCall) -> CheckItem:
    cid = "identity_before_debt"
    debt = [a for a in r.agent_turns() if DEBT_WORDS.search(a.text)]
    confirms = [s.turn for s in r.signals if s.signal == "confirm_identity" and s.turn is not None]
    confirms += [a for a in r.agent_turns() if AGENT_VERIFIED.search(a.text)]
    confirm = min(confirms, key=lambda t: t.index) if confirms else None
    answered = [s.turn for s in r.signals if s.signal == "third_party" and s.turn is not None]
    for tp in answered:
        later = [c.index for c in confirms if c.index > tp.index]
        until = min(later) if later else len(r.turns)
        told = next((d for d in debt if tp.index < d.index < until), None)
        if told is not None:
            return _item(r, cid, "fail", r.evidence(told), "third_party_told", t2=mmss(told.start))
    if not debt:
        return _item(r, cid, "pass", r.evidence(confirm), "debt_never")
    first = debt[0]
    if confirm is None:
        return _item(r, cid, "fail", r.evidence(first), "debt_no_id", t2=mmss(first.start))
    if confirm.index > first.index:
        return _item(r, cid, "fail", r.evidence(first), "debt_before_id", t2=mmss(first.start))
    return _item(
        r, cid, "pass", r.evidence(confirm), "debt_after_id", t1=mmss(confirm.start), t2=mmss(first.start)
    )


def check_identified(r: ReviewedCall) -> CheckItem:
    cid = "agent_identified"
    if r.first_signal("third_party") and not r.first_signal("confirm_identity"):
        return _item(r, cid, "not_applicable", None, "third_party_only")
    opening = r.agent_turns()[:OPENING_AGENT_TURNS]
    named = next((t for t in opening if names_self(t.text, str(r.meta.get("agent_name") or ""))), None)
    company = next((t for t in opening if names_company(t.text, str(r.meta.get("company") or ""))), None)
    us = r.jurisdiction == "US"
    disclosed = next((t for t in r.agent_turns() if MINI_MIRANDA.search(t.text)), None)
    missing = [k for k, ok in (("agent name", named), ("company", company)) if ok is None]
    if us and disclosed is None:
        missing.append("disclosure")
    if missing:
        what = ("、" if r.lang == "zh" else ", ").join(say(WORDS, k, r.lang) for k in missing)
        first = opening[0] if opening else None
        return _item(r, cid, "fail", r.evidence(first), "ident_missing", what=what)
    return _item(r, cid, "pass", r.evidence(named), "ident_ok_us" if us else "ident_ok")


def check_hours(r: ReviewedCall) -> CheckItem:
    cid = "allowed_hours"
    tz = str(r.meta.get("borrower_timezone") or "").strip()
    if not tz:
        return _item(r, cid, "not_applicable", None, "no_tz")
    local = r.local_start()
    if local is None:
        return _item(r, cid, "not_applicable", None, "bad_tz", tz=tz)
    lo, hi = ALLOWED_HOURS[r.jurisdiction]
    ok = lo * 60 <= local.hour * 60 + local.minute < hi * 60
    when = local.strftime("%Y-%m-%d %H:%M")
    status = "pass" if ok else "fail"
    return _item(r, cid, status, None, "hours", local=when, tz=tz, j=r.jurisdiction, lo=lo, hi=hi)


def check_hardship(r: ReviewedCall) -> CheckItem:
    cid = "hardship_handled"
    hardship = r.first_signal("hardship")
    asked = r.first_signal("request_plan")
    promise = r.first_signal("promise_to_pay")
    if not (hardship or asked or promise):
        return _item(r, cid, "not_applicable", None, "no_hardship")
    if hardship and not hardship.handled:
        return _item(r, cid, "fail", r.signal_evidence(hardship), "no_empathy", t=mmss(hardship.time))
    need = [s for s in (hardship, asked) if s is not None]
    if need:
        since = min(s.time for s in need)
        offered = next(
            (
                a
                for a in r.agent_turns()
                if a.start > since and not a.rules and (a.stage == "proposal" or OPTION_WORDS.search(a.text))
            ),
            None,
        )
        if offered is None:
            first = min(need, key=lambda s: s.time)
            return _item(r, cid, "fail", r.signal_evidence(first), "no_options", t=mmss(since))
    good: Turn | None = hardship.handler if hardship else None
    if promise is not None:
        recap = next(
            (
                a
                for a in r.agent_turns()
                if a.start > promise.time and (a.stage == "confirmation" or RECAP_WORDS.search(a.text))
            ),
            None,
        )
        if recap is None:
            return _item(r, cid, "fail", r.signal_evidence(promise), "no_recap", t=mmss(promise.time))
        yes = next(
            (
                t
                for t in r.turns
                if t.speaker == "customer"
                and t.start > recap.start
                and ("promise_to_pay" in t.signals or AFFIRM_WORDS.search(t.text))
            ),
            None,
        )
        if yes is None:
            return _item(r, cid, "fail", r.evidence(recap), "no_yes", t=mmss(recap.start))
        good = recap
    return _item(r, cid, "pass", r.evidence(good), "hardship_ok")


def check_requests(r: ReviewedCall) -> CheckItem:
    cid = "requests_acknowledged"
    kinds = ("dispute", "cease_contact", "lawyer")
    present = [k for k in kinds if r.first_signal(k)]
    if not present:
        return _item(r, cid, "not_applicable", None, "no_requests")
    handlers: list[Turn] = []
    for k in present:
        occurrences = [s for s in r.signals if s.signal == k]
        done = next((s for s in occurrences if s.handled), None)
        if done is None:
            s = occurrences[0]
            what = say(WORDS, k, r.lang)
            return _item(r, cid, "fail", r.signal_evidence(s), "request_missed", what=what, t=mmss(s.time))
        if done.handler is not None:
            handlers.append(done.handler)
    what = ("、" if r.lang == "zh" else ", ").join(say(WORDS, k, r.lang) for k in present)
    first = min(handlers, key=lambda t: t.start) if handlers else None
    return _item(r, cid, "pass", r.evidence(first), "requests_ok", what=what)


def check_findings(r: ReviewedCall) -> CheckItem:
    cid = "no_violations"
    if not r.findings:
        return _item(r, cid, "pass", None, "clean")
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    worst = min(r.findings, key=lambda f: (rank.get(f.severity, len(rank)), f.start))
    counts = r.severity_counts()
    sep = "，" if r.lang == "zh" else ", "
    text = sep.join(f"{say(WORDS, s, r.lang)} {counts[s]}" for s in SEVERITY_ORDER if counts[s])
    return _item(r, cid, "fail", Evidence(quote=worst.quote, time=worst.start), "findings", counts=text)


def checklist(r: ReviewedCall) -> tuple[CheckItem, ...]:
    """The six items, in checklist order."""
    return (
        check_identity(r),
        check_identified(r),
        check_hours(r),
        check_hardship(r),
        check_requests(r),
        check_findings(r),
    )
