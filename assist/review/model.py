"""The review report as typed values, and its one JSON form.

The JSON is a documented, versioned format (``REPORT_SCHEMA``; shape in :mod:`assist.review.report`)
that files, the service's review route and other tools read, so :meth:`Report.as_dict` spells every
key in its documented order and nothing else does.  :meth:`Report.from_dict` reads that form back
(a report file, a batch's output) leniently: a missing or malformed part becomes an empty one, so a
page can still be drawn from a report another tool wrote or cut short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

REPORT_SCHEMA = "callassist.review/1"
SEVERITY_ORDER = ("critical", "major", "minor")
CHECK_STATUSES = ("pass", "fail", "not_applicable")
CHECK_IDS = (
    "identity_before_debt",
    "agent_identified",
    "allowed_hours",
    "hardship_handled",
    "requests_acknowledged",
    "no_violations",
)


def _plain(value: Any) -> Any:
    if isinstance(value, _Part):
        return value.as_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


P = TypeVar("P", bound="_Part")


class _Part:
    """A report part whose JSON object has exactly its fields, in field order."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[P], data: Any) -> P:
        """Lenient: a missing key takes the field's default (None, or empty)."""
        src = data if isinstance(data, Mapping) else {}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in src:
                value = src[f.name]
                kwargs[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


def _parts(kind: type[P], value: Any) -> tuple[P, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    return tuple(kind.from_dict(v) for v in value if isinstance(v, Mapping))


@dataclass(frozen=True)
class CallHeader(_Part):
    id: str = ""
    start_time: str | None = None  # ISO 8601 UTC
    local_start_time: str | None = None  # ISO 8601 in the borrower's zone
    borrower_timezone: str | None = None
    jurisdiction: str | None = None  # "US" | "CN"
    duration: float | None = None
    language: str = ""
    agent: str | None = None
    customer: str | None = None
    company: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Utterance(_Part):
    index: int | None = None
    id: str = ""
    speaker: str = ""
    start: float = 0.0
    end: float = 0.0
    text: str = ""
    stage: str | None = None  # in effect after this utterance
    signals: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding(_Part):
    rule: str = ""
    severity: str = ""
    speaker: str = ""
    start: float = 0.0
    end: float = 0.0
    utterance: int | None = None
    quote: str = ""
    why: str = ""
    rephrase: str = ""
    partial: bool = False


@dataclass(frozen=True)
class Evidence(_Part):
    quote: str = ""
    time: float = 0.0


@dataclass(frozen=True)
class CheckItem(_Part):
    id: str = ""
    n: int | None = None
    title: str = ""
    status: str = ""
    evidence: Evidence | None = None
    detail: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> CheckItem:
        item = super().from_dict(data)
        found: Any = item.evidence
        return replace(item, evidence=Evidence.from_dict(found) if isinstance(found, Mapping) else None)


@dataclass(frozen=True)
class Deduction(_Part):
    """One line of the score breakdown; ``severity`` only for findings (the key is absent otherwise)."""

    kind: str = ""  # "finding" | "check" | "cap"
    id: str = ""
    severity: str | None = None
    time: float | None = None
    reason: str = ""
    points: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if self.severity is None:
            del out["severity"]
        return out


@dataclass(frozen=True)
class StageSpan(_Part):
    stage: str = ""
    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True)
class SignalOutcome(_Part):
    signal: str = ""
    time: float = 0.0
    utterance: int | None = None
    quote: str = ""
    score: float = 0.0
    handled: bool = False
    handled_by: str | None = None
    handled_time: float | None = None


@dataclass(frozen=True)
class TalkTime(_Part):
    agent_s: float = 0.0
    customer_s: float = 0.0
    agent_share: float | None = None


@dataclass(frozen=True)
class Interruption(_Part):
    time: float = 0.0
    by: str = ""
    interrupted: str = ""
    overlap: float = 0.0
    utterance: int | None = None
    quote: str = ""


@dataclass(frozen=True)
class Silence(_Part):
    start: float = 0.0
    end: float = 0.0
    duration: float = 0.0
    after: str | None = None


@dataclass(frozen=True)
class Summary(_Part):
    utterances: int = 0
    findings: Mapping[str, int] = field(default_factory=dict)
    checklist: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """One call's review (built by :func:`assist.review.report.build_report`)."""

    call: CallHeader
    utterances: tuple[Utterance, ...]
    findings: tuple[Finding, ...]
    checklist: tuple[CheckItem, ...]
    score: int
    score_breakdown: tuple[Deduction, ...]
    stage_timeline: tuple[StageSpan, ...]
    signals: tuple[SignalOutcome, ...]
    talk_time: TalkTime
    interruptions: tuple[Interruption, ...]
    silences: tuple[Silence, ...]
    summary: Summary
    schema: str = REPORT_SCHEMA

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON object (``REPORT_SCHEMA``), keys in their documented order."""
        return {
            "schema": self.schema,
            "call": self.call.as_dict(),
            "utterances": _plain(self.utterances),
            "findings": _plain(self.findings),
            "checklist": _plain(self.checklist),
            "score": self.score,
            "score_breakdown": _plain(self.score_breakdown),
            "stage_timeline": _plain(self.stage_timeline),
            "signals": _plain(self.signals),
            "talk_time": self.talk_time.as_dict(),
            "interruptions": _plain(self.interruptions),
            "silences": _plain(self.silences),
            "summary": self.summary.as_dict(),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """A report read back from its JSON form (leniently: see the module docstring)."""
        return cls(
            call=CallHeader.from_dict(data.get("call")),
            utterances=_parts(Utterance, data.get("utterances")),
            findings=_parts(Finding, data.get("findings")),
            checklist=_parts(CheckItem, data.get("checklist")),
            score=data.get("score", 0),
            score_breakdown=_parts(Deduction, data.get("score_breakdown")),
            stage_timeline=_parts(StageSpan, data.get("stage_timeline")),
            signals=_parts(SignalOutcome, data.get("signals")),
            talk_time=TalkTime.from_dict(data.get("talk_time")),
            interruptions=_parts(Interruption, data.get("interruptions")),
            silences=_parts(Silence, data.get("silences")),
            summary=Summary.from_dict(data.get("summary")),
            schema=str(data.get("schema", REPORT_SCHEMA)),
        )
