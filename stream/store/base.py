"""The call store's interface: what the service, the CLI and the review code may ask of a store.

Durability contract.  The service persists each final transcript and guidance event *before*
delivering it; every write method commits before it returns, so whatever a client has seen is on
disk.  Writes are idempotent -- ``append_events`` ignores a ``(call_id, seq)`` already stored (the
first write wins), ``create_call`` ignores a call id already registered -- so a writer may retry after
an error without duplicating anything.

Privacy.  Event text reaches the store already masked (the utterance step masks once, upstream, before
anything is stored or shown), so events are stored exactly as consumers saw them.  Call metadata does
not pass through that step, so the store masks the values whose key names a kind of personal data
(:mod:`stream.store.metadata`).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assist.events import Event

CALL_STATUSES = ("live", "ended", "interrupted", "error")
END_STATUSES = ("ended", "interrupted", "error")
EndStatus = Literal["ended", "interrupted", "error"]
LIST_LIMIT_MAX = 10_000  # list_calls never returns more rows than this, whatever limit says


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why in one line."""


class UnknownCallError(StoreError):
    """An operation named a call that was never registered with ``create_call``."""


@dataclass(frozen=True)
class CallRecord:
    """One stored call.  ``duration`` and ``ended_at`` are None while the call is ``live``.

    ``findings`` counts the call's compliance warnings in force by severity.  It also satisfies
    ``assist.review.CallInfo``, so ``build_report(store.get_call(id), store.events(id))`` works.
    """

    call_id: str
    tenant: str
    node: str
    language: str
    status: str
    started_at: float
    ended_at: float | None
    duration: float | None
    metadata: Mapping[str, Any]
    findings: Mapping[str, int] = field(default_factory=dict)

    @property
    def agent(self) -> str | None:
        value = self.metadata.get("agent_name")
        return str(value) if value is not None else None


DateBound = float | dt.datetime | dt.date


def unix_time(value: DateBound, *, end: bool) -> float:
    """A ``list_calls`` date bound in unix seconds: a ``date`` is a whole UTC day (``end``: the day
    after it starts), a naive ``datetime`` is UTC."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(value, dt.date):
        day = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return (day + dt.timedelta(days=1) if end else day).timestamp()
    return float(value)


class Store(ABC):
    """The storage interface the service, the CLI and the review code use."""

    backend: str

    @abstractmethod
    def create_call(
        self,
        call_id: str,
        *,
        tenant: str,
        started_at: float,
        language: str,
        metadata: Mapping[str, Any],
        node: str,
    ) -> None:
        """Register a call as ``live``; a call id already stored is left as it is."""

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> None:
        """Store events (partials skipped) in one transaction, committed before returning."""

    @abstractmethod
    def end_call(
        self,
        call_id: str,
        *,
        status: EndStatus,
        ended_at: float | None = None,
        duration: float | None = None,
    ) -> None:
        """Close a call; ``ended_at`` defaults to now and ``duration`` to ``ended_at - started_at``."""

    @abstractmethod
    def mark_interrupted(self, node: str | None) -> list[str]:
        """Turn calls still ``live`` on ``node`` (every node when None) into ``interrupted``.

        Called when a node starts: its previous run died without ending them.  ``ended_at`` becomes the
        time of the call's last stored event, so the duration covers what was recorded.
        """

    @abstractmethod
    def get_call(self, call_id: str) -> CallRecord | None: ...

    @abstractmethod
    def events(self, call_id: str, since: int = 0) -> list[Event]:
        """The call's stored events with ``seq > since``, in sequence order.

        Same meaning as ``since`` in ``stream.live.bus.CallLog.history`` and the overlay's catch-up: the last
        sequence number already seen.  Sequence numbers start at 1, so the default returns everything.
        """

    @abstractmethod
    def list_calls(
        self,
        *,
        tenant: str | None = None,
        status: str | None = None,
        rule: str | None = None,
        severity: str | None = None,
        agent: str | None = None,
        date_from: DateBound | None = None,
        date_to: DateBound | None = None,
        limit: int = 100,
    ) -> list[CallRecord]:
        """Calls newest first.  ``rule``/``severity``: calls with at least one such finding (given both,
        one finding must match both).
        ``agent``: metadata ``agent_name``.  ``date_from`` is inclusive, ``date_to`` exclusive; a
        ``datetime.date`` is a whole UTC day (``date_to=date(2025, 11, 28)`` includes the 28th), a
        naive ``datetime`` is UTC, a float is unix seconds."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version the store is at (``SCHEMA_VERSION`` once opened)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
