"""The call's memory: fields as they are first said, then confirmed.

Confirmation goes both ways.  A term the customer states is confirmed when a
later agent line restates it (same amount and date; for a dispute or a stop-
calling request, the agent acknowledging it).  A term the agent proposes is
confirmed when the customer's next line agrees ("好的", "that works") or repeats
it.  Only the first customer line after an agent line answers that line: a "行"
three turns later is about something else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from assist.outcome.dates import local_today
from assist.outcome.extract import Facts, extract
from assist.outcome.model import (
    CeaseContact,
    Dispute,
    Field,
    Hardship,
    Lawyer,
    Outcome,
    Plan,
    Promise,
    ThirdParty,
    Utterance,
)

_ACKED = ("disputed", "cease_contact", "lawyer", "callback", "third_party_answered", "hardship")


def _same_promise(a: Promise, b: Promise) -> bool:
    return a.amount == b.amount and (a.due is None or b.due is None or a.due == b.due)


def _restates_promise(p: Promise, f: Facts) -> bool:
    return p.amount in f.amounts and (p.due is None or not f.dates or p.due in f.dates)


def _plan_terms(p: Plan) -> dict[str, Any]:
    return {k.name: getattr(p, k.name) for k in fields(p) if k.name not in ("kind", "currency")}


def _merge_plan(old: Plan, new: Plan, due_recurring: bool) -> tuple[Plan, bool]:
    """``old`` filled from ``new``; True when ``new`` changes a term ``old`` already had."""
    changed = new.kind != old.kind
    merged = old if not changed else new
    for name, value in _plan_terms(new).items():
        prev = getattr(old, name)
        if value is None or (name == "first_due" and due_recurring and prev is not None):
            continue
        if prev is not None and prev != value:
            changed = True
        merged = replace(merged, **{name: value})
    if merged.currency is None:
        merged = replace(merged, currency=new.currency or old.currency)
    return merged, changed


def _restates_plan(p: Plan, f: Facts) -> bool:
    if f.plan is not None and f.plan.kind == p.kind:
        _, changed = _merge_plan(p, f.plan, f.plan_due_recurring)
        return not changed
    return p.amount_each is not None and p.amount_each in f.amounts


class OutcomeTracker:
    """Feed finished utterances in order; ``add`` returns the outcome when it changed.

    ``call_time`` is when the call started (aware; naive means UTC) and ``timezone`` the
    borrower's IANA zone: relative dates ("周五", "the 20th") resolve against that local day.
    """

    def __init__(self, call_time: datetime, timezone: str) -> None:
        self._call_time = call_time
        self._tz = timezone
        self._today = local_today(call_time, timezone)
        self._outcome = Outcome()
        self._last_agent: Facts | None = None  # the agent line the next customer line answers
        self._cease_channel_open = False  # a stop-calling request still waiting for its channel

    @property
    def outcome(self) -> Outcome:
        return self._outcome

    def add(self, utterance: Utterance) -> Outcome | None:
        f = extract(utterance, self._today, self._call_time, self._tz)
        before = self._outcome
        if utterance.speaker == "agent":
            self._agent(f)
            self._last_agent = f
        else:
            self._customer(f)
            self._last_agent = None
        return self._outcome if self._outcome != before else None

    def _set(self, **changes: Any) -> None:
        self._outcome = replace(self._outcome, **changes)

    def _plan(self, f: Facts) -> None:
        if f.plan is None:
            return
        uid, who = f.utterance.utterance_id, f.utterance.speaker
        cur = self._outcome.plan
        if cur is None:
            self._set(plan=Field(f.plan, uid, who))
            return
        merged, changed = _merge_plan(cur.value, f.plan, f.plan_due_recurring)
        if changed:
            self._set(plan=Field(merged, uid, who))
        else:
            self._set(plan=replace(cur, value=merged))

    def _agent(self, f: Facts) -> None:
        o, uid = self._outcome, f.utterance.utterance_id
        promises = tuple(
            p.confirm(uid) if p.speaker == "customer" and _restates_promise(p.value, f) else p
            for p in o.promise_to_pay
        )
        changes: dict[str, Any] = {"promise_to_pay": promises}
        for name in _ACKED:
            field = getattr(o, name)
            if field is not None and name in f.acks:
                changes[name] = field.confirm(uid)
        if o.plan is not None and o.plan.speaker == "customer" and _restates_plan(o.plan.value, f):
            changes["plan"] = o.plan.confirm(uid)
        self._set(**changes)
        self._plan(f)

    def _customer(self, f: Facts) -> None:
        uid = f.utterance.utterance_id
        promises = list(self._outcome.promise_to_pay)
        for p in f.promises:
            if not any(_same_promise(p, q.value) for q in promises):
                promises.append(Field(p, uid, "customer"))
        agent = self._last_agent
        if agent is not None and not f.rejects:
            for p in agent.promises:
                if not any(_same_promise(p, q.value) for q in promises) and (
                    f.agrees or p.amount in f.amounts
                ):
                    promises.append(Field(p, agent.utterance.utterance_id, "agent", True, uid))
            promises = [
                q.confirm(uid)
                if q.speaker == "agent" and f.agrees and _restates_promise(q.value, agent)
                else q
                for q in promises
            ]
            plan = self._outcome.plan
            answered = plan is not None and plan.speaker == "agent" and _restates_plan(plan.value, agent)
            if plan is not None and answered and (f.agrees or _restates_plan(plan.value, f)):
                self._set(plan=plan.confirm(uid))
        self._set(promise_to_pay=tuple(promises))
        self._plan(f)
        self._flags(f)

    def _flags(self, f: Facts) -> None:
        o, uid = self._outcome, f.utterance.utterance_id
        if o.disputed is None and f.dispute is not None:
            self._set(disputed=Field(Dispute(f.dispute), uid, "customer"))
        if o.cease_contact is None and f.cease:
            self._set(cease_contact=Field(CeaseContact(f.channel), uid, "customer"))
            self._cease_channel_open = f.channel is None
        elif self._cease_channel_open and o.cease_contact is not None and f.channel is not None:
            self._set(cease_contact=replace(o.cease_contact, value=CeaseContact(f.channel)))
            self._cease_channel_open = False
        asked = self._last_agent is not None and "lawyer" in self._last_agent.acks
        if f.lawyer and o.lawyer is None:
            self._set(lawyer=Field(Lawyer(f.phone if f.lawyer else None), uid, "customer"))
        elif o.lawyer is not None and o.lawyer.value.contact is None and f.phone and (f.lawyer or asked):
            self._set(lawyer=replace(o.lawyer, value=Lawyer(f.phone)))  # the number, once asked for
        if f.callback is not None and (o.callback is None or o.callback.value != f.callback):
            self._set(callback=Field(f.callback, uid, "customer"))
        if o.third_party_answered is None and f.third_party is not None:
            self._set(third_party_answered=Field(ThirdParty(f.third_party), uid, "customer"))
        if o.hardship is None and f.hardship is not None:
            self._set(hardship=Field(Hardship(f.hardship), uid, "customer"))


def extract_outcome(utterances: Iterable[Utterance], call_time: datetime, timezone: str) -> Outcome:
    """The whole call's outcome: the tracker fed every utterance in order."""
    tracker = OutcomeTracker(call_time, timezone)
    for u in utterances:
        tracker.add(u)
    return tracker.outcome
