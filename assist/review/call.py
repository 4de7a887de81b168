"""A call as the review reads it: its stored events turned into turns, findings and signals.

Built only from the wire events (``transcript.final``, ``stage.changed``, ``compliance.warning``,
``compliance.retracted``, ``customer.signal``; the rest is ignored), so a live call and an offline
recording are read alike.  Text is taken as stored: it was masked once, upstream, before anything was
stored or shown.
"""

from __future__ import annotations

import datetime as dt
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
    WarningsInForce,
)
from assist.review.model import SEVERITY_ORDER, Evidence, Finding
from assist.review.vocabulary import DEBT_WORDS, EXPECTED_STAGES, SIGNAL_WORDS

HANDLING_WINDOW_TURNS = 2  # a customer signal must be answered within this many agent turns


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


@dataclass
class Turn:
    """One utterance, with what the rest of the call says about it (filled in while reading)."""

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
class Signal:
    """One customer signal and whether (and by which agent turn) it was answered."""

    signal: str
    turn: Turn | None
    time: float
    quote: str
    score: float
    handled: bool = False
    handler: Turn | None = None


class ReviewedCall:
    """The call's turns, findings and signals, and the questions the checklist asks of them."""

    def __init__(self, call: CallInfo, events: Sequence[Event]) -> None:
        self.call = call
        self.lang = "zh" if call.language.lower().startswith("zh") else "en"
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

    def evidence(self, turn: Turn | None, quote: str | None = None) -> Evidence | None:
        if turn is None:
            return None
        return Evidence(quote=quote if quote is not None else turn.text, time=round(turn.start, 3))

    def signal_evidence(self, s: Signal) -> Evidence | None:
        """A customer signal as evidence: its own quote, at its turn."""
        return self.evidence(s.turn, s.quote or None)

    # -- reading the events

    def _turns(self, events: Sequence[Event]) -> list[Turn]:
        finals: dict[str, tuple[int, TranscriptFinal]] = {}
        for e in events:
            if isinstance(e.body, TranscriptFinal):
                finals[e.body.utterance_id] = (e.seq, e.body)  # a re-sent final replaces the earlier one
        ordered = sorted(finals.values(), key=lambda p: (p[1].start, p[1].end, p[0]))
        return [
            Turn(i, b.utterance_id, b.speaker, float(b.start), float(b.end), b.text, seq)
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

    def _findings(self, events: Sequence[Event]) -> list[Finding]:
        in_force: WarningsInForce[Event] = WarningsInForce()
        for e in events:
            if isinstance(e.body, ComplianceRetracted):
                # the final transcript did not bear out a warning raised from a partial one
                in_force.retract(e.body)
            elif isinstance(e.body, ComplianceWarning):
                in_force.add(e.body, e)  # the final-transcript warning replaces an early partial one
        out: list[Finding] = []
        for e in in_force.items():
            b = e.body
            assert isinstance(b, ComplianceWarning)
            turn = self.by_id.get(b.utterance_id)
            start = turn.start if turn else self._call_time(e)
            end = turn.end if turn else start
            if turn is not None and b.rule not in turn.rules:
                turn.rules.append(b.rule)
            out.append(
                Finding(
                    rule=b.rule,
                    severity=b.severity,
                    speaker=b.speaker,
                    start=round(start, 3),
                    end=round(end, 3),
                    utterance=turn.index if turn else None,
                    quote=b.quote,
                    why=b.why,
                    rephrase=b.rephrase,
                    partial=b.partial,
                )
            )
        rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
        out.sort(key=lambda f: (f.start, rank.get(f.severity, len(rank)), f.rule))
        return out

    def _signals(self, events: Sequence[Event]) -> list[Signal]:
        seen: set[tuple[str, str]] = set()
        out: list[Signal] = []
        for e in events:
            b = e.body
            if not isinstance(b, CustomerSignal) or (b.utterance_id, b.signal) in seen:
                continue
            seen.add((b.utterance_id, b.signal))
            turn = self.by_id.get(b.utterance_id)
            if turn is not None and b.signal not in turn.signals:
                turn.signals.append(b.signal)
            out.append(Signal(b.signal, turn, turn.start if turn else self._call_time(e), b.quote, b.score))
        out.sort(key=lambda s: s.time)
        for s in out:
            s.handled, s.handler = self._handled(s)
        return out

    # -- helpers

    def agent_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.speaker == "agent"]

    def agent_after(self, t: float, n: int = HANDLING_WINDOW_TURNS) -> list[Turn]:
        return [a for a in self.agent_turns() if a.start > t][:n]

    def first_signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.signal == name), None)

    def _handled(self, s: Signal) -> tuple[bool, Turn | None]:
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

    def local_start(self) -> dt.datetime | None:
        tz = str(self.meta.get("borrower_timezone") or "").strip()
        if not tz:
            return None
        try:
            return dt.datetime.fromtimestamp(self.call.started_at, ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError):
            return None

    def severity_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITY_ORDER, 0)
        for f in self.findings:
            sev = f.severity if f.severity in counts else "minor"
            counts[sev] += 1
        return counts

    # -- timeline figures
