"""Typed events and their one JSON wire form.

Every event a call produces -- transcripts from the audio side, guidance from the
playbook side -- is a small frozen dataclass (a *body*).  The call's event log
stamps it with the call id, a per-call sequence number and a wall-clock time,
giving an :class:`Event`.  ``Event.to_dict()`` is the documented wire format
(README, "Event wire format"): a flat JSON object

    {"type": "transcript.final", "call_id": "...", "seq": 7, "ts": 1764331200.123, ...body fields}

Consumers (the overlay, MQTT subscribers, the call store) all see exactly this
shape, and :func:`event_from_dict` turns it back into typed objects so that the
store and the tests round-trip through the wire form rather than around it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

Speaker: TypeAlias = Literal["agent", "customer"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
T = TypeVar("T")


@dataclass(frozen=True)
class CallStarted:
    TYPE: ClassVar[str] = "call.started"
    language: str
    sample_rate: int
    encoding: str
    legs: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TranscriptPartial:
    """A provisional transcript of an utterance still being spoken.

    Partials are rate-limited and the first thing dropped under load, so a
    consumer must never rely on seeing one.
    """

    TYPE: ClassVar[str] = "transcript.partial"
    speaker: Speaker
    utterance_id: str
    text: str
    language: str
    start: float
    end: float


@dataclass(frozen=True)
class TranscriptFinal:
    """The transcript of one finished utterance.

    ``start``/``end`` are seconds of call time (from the first audio sample);
    ``latency_ms`` is measured from the moment the endpointer closed the
    utterance to the moment the text was ready.
    """

    TYPE: ClassVar[str] = "transcript.final"
    speaker: Speaker
    utterance_id: str
    text: str
    language: str
    start: float
    end: float
    latency_ms: float


@dataclass(frozen=True)
class CallEnded:
    TYPE: ClassVar[str] = "call.ended"
    reason: str  # "stop", "disconnected", "error", "interrupted"
    duration: float


@dataclass(frozen=True)
class ErrorEvent:
    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = False


@dataclass(frozen=True)
class StageChanged:
    TYPE: ClassVar[str] = "stage.changed"
    stage: str
    previous: str | None
    confidence: float
    utterance_id: str


@dataclass(frozen=True)
class SuggestionItem:
    text: str
    reason: str
    score: float = 0.0
    # What the line answers, machine-readable: "signal:<id>", "party:third_party", "stage:<id>" or
    # "next:<id>" (assist/suggest.py Pick.source); empty in events stored before it existed.
    source: str = ""


@dataclass(frozen=True)
class Suggestion:
    TYPE: ClassVar[str] = "suggestion"
    utterance_id: str
    stage: str | None
    items: tuple[SuggestionItem, ...]


@dataclass(frozen=True)
class ComplianceWarning:
    TYPE: ClassVar[str] = "compliance.warning"
    utterance_id: str
    speaker: Speaker
    rule: str
    severity: str  # "critical" | "major" | "minor"
    quote: str
    why: str
    rephrase: str
    evidence: str
    score: float
    partial: bool = False  # raised from a partial transcript, before the sentence ended


@dataclass(frozen=True)
class ComplianceRetracted:
    """Withdraws a warning raised from a partial transcript that the final one does not bear out.

    The recogniser revises its hearing as the sentence goes on, and a partial can hear a threat
    the final does not: a warning the agent never earned must not stay on the overlay or count
    in the call's score.  Names the warning by ``utterance_id`` and ``rule`` (each utterance
    raises a rule at most once).
    """

    TYPE: ClassVar[str] = "compliance.retracted"
    utterance_id: str
    rule: str
    severity: str  # the retracted warning's, so counts by severity can be corrected
    reason: str


@dataclass(frozen=True)
class CustomerSignal:
    TYPE: ClassVar[str] = "customer.signal"
    utterance_id: str
    signal: str
    score: float
    quote: str


EventBody: TypeAlias = (
    CallStarted
    | TranscriptPartial
    | TranscriptFinal
    | CallEnded
    | ErrorEvent
    | StageChanged
    | Suggestion
    | ComplianceWarning
    | ComplianceRetracted
    | CustomerSignal
)

BODY_TYPES: dict[str, type[EventBody]] = {
    cls.TYPE: cls
    for cls in (
        CallStarted,
        TranscriptPartial,
        TranscriptFinal,
        CallEnded,
        ErrorEvent,
        StageChanged,
        Suggestion,
        ComplianceWarning,
        ComplianceRetracted,
        CustomerSignal,
    )
}

ENVELOPE_FIELDS = ("type", "call_id", "seq", "ts")


@dataclass(frozen=True)
class Event:
    """A body stamped by the call's event log."""

    call_id: str
    seq: int
    ts: float
    body: EventBody

    @property
    def type(self) -> str:
        return self.body.TYPE

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.body.TYPE,
            "call_id": self.call_id,
            "seq": self.seq,
            "ts": self.ts,
        }
        for f in dataclasses.fields(self.body):
            value = getattr(self.body, f.name)
            out[f.name] = _plain(value)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class EventFormatError(ValueError):
    """A wire-form object that is not a valid event."""


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Parse the wire form back into a typed event (inverse of ``Event.to_dict``)."""
    try:
        kind = data["type"]
        cls = BODY_TYPES[kind]
    except KeyError as exc:
        raise EventFormatError(f"unknown or missing event type: {data.get('type')!r}") from exc
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise EventFormatError(f"{kind}: missing field {f.name!r}")
        value = data[f.name]
        if cls is Suggestion and f.name == "items":
            value = tuple(SuggestionItem(**item) for item in value)
        elif cls is CallStarted and f.name == "legs":
            value = tuple(value)
        kwargs[f.name] = value
    try:
        body = cls(**kwargs)
        return Event(call_id=str(data["call_id"]), seq=int(data["seq"]), ts=float(data["ts"]), body=body)
    except (KeyError, TypeError, ValueError) as exc:
        raise EventFormatError(f"{kind}: {exc}") from exc


# -- compliance warnings in force -------------------------------------------------------------------

WarningKey: TypeAlias = tuple[str, str]


def warning_key(body: ComplianceWarning | ComplianceRetracted) -> WarningKey:
    """``(utterance_id, rule)``: the name a retraction gives the warning it withdraws (an utterance
    raises a rule at most once, so the pair names one warning)."""
    return (body.utterance_id, body.rule)


class WarningsInForce(Generic[T]):
    """The call's compliance warnings still in force, folded one event at a time.

    Written once because every view of a call (the store's finding counts, the review, the supervisor
    feed, the tests) must agree on it: a ``compliance.retracted`` withdraws the warning with its
    utterance and rule; a warning from the final transcript supersedes one raised from a partial for
    the same utterance and rule; otherwise the first stands, so a re-sent event changes nothing.
    Each warning carries whatever item its caller keeps for it (the event, a summary...), held in
    the order the warnings were first raised.
    """

    def __init__(self) -> None:
        self._standing: dict[WarningKey, tuple[ComplianceWarning, T]] = {}

    def add(self, warning: ComplianceWarning, item: T) -> None:
        """A warning raised; ``item`` is what the caller keeps for it, if it stands."""
        key = warning_key(warning)
        held = self._standing.get(key)
        if held is None or (held[0].partial and not warning.partial):
            self._standing[key] = (warning, item)

    def retract(self, retraction: ComplianceRetracted) -> None:
        """A warning withdrawn (one never raised, or already withdrawn, is no error)."""
        self._standing.pop(warning_key(retraction), None)

    def items(self) -> list[T]:
        """The items of the warnings in force, oldest first."""
        return [item for _, item in self._standing.values()]

    def __len__(self) -> int:
        return len(self._standing)


def warnings_in_force(events: Iterable[Event]) -> list[Event]:
    """The warning events of a call log still in force (rules in :class:`WarningsInForce`), oldest
    first."""
    fold: WarningsInForce[Event] = WarningsInForce()
    for e in events:
        if isinstance(e.body, ComplianceWarning):
            fold.add(e.body, e)
        elif isinstance(e.body, ComplianceRetracted):
            fold.retract(e.body)
    return fold.items()
