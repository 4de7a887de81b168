"""What both SQL backends share: the versioned schema, its migration, and every query.

Schema.  Versioned in ``schema_version`` (one row per applied migration) and migrated on open inside
one transaction: on PostgreSQL under a transaction-level advisory lock, on SQLite under ``BEGIN
IMMEDIATE``, so nodes starting together migrate once and the others wait.  A store written by a newer
version is refused rather than downgraded.  ``call_events`` keeps each event's wire JSON (the README's
"Event wire format", exactly what consumers saw) plus indexed copies of ``type``, ``ts``, ``speaker``,
``rule`` and ``severity`` for filtering (a warning's rule and severity are cleared when a later
``compliance.retracted`` withdraws it; its row and JSON stay).  Partial transcripts are never stored.

Threads.  One connection per store, serialised by a lock: the service's writer thread and the
occasional reader (review page, CLI) share it safely; throughput is bounded by one commit per
``append_events`` call, so batch events when there are several at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from assist.events import (
    CallStarted,
    ComplianceRetracted,
    ComplianceWarning,
    Event,
    EventBody,
    TranscriptPartial,
    event_from_dict,
    warning_key,
)
from assist.masking import MaskingPolicy
from stream.store.base import (
    END_STATUSES,
    LIST_LIMIT_MAX,
    CallRecord,
    DateBound,
    EndStatus,
    Store,
    StoreError,
    UnknownCallError,
    unix_time,
)
from stream.store.metadata import mask_metadata

SCHEMA_VERSION = 2
T = TypeVar("T")

# --------------------------------------------------------------------------------------- schema

# Statements per version; {real}/{bigint} are filled per dialect.  Never edit a released version:
# add a new one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE calls (
            call_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            node TEXT NOT NULL,
            language TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at {real} NOT NULL,
            ended_at {real},
            duration {real},
            agent TEXT,
            metadata TEXT NOT NULL
        )""",
        "CREATE INDEX calls_started ON calls (started_at)",
        "CREATE INDEX calls_tenant_started ON calls (tenant, started_at)",
        "CREATE INDEX calls_node_status ON calls (node, status)",
        "CREATE INDEX calls_agent ON calls (agent)",
        """CREATE TABLE call_events (
            call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            seq {bigint} NOT NULL,
            type TEXT NOT NULL,
            ts {real} NOT NULL,
            speaker TEXT,
            rule TEXT,
            severity TEXT,
            body TEXT NOT NULL,
            PRIMARY KEY (call_id, seq)
        )""",
        "CREATE INDEX call_events_rule ON call_events (rule, call_id) WHERE rule IS NOT NULL",
        "CREATE INDEX call_events_severity ON call_events (severity, call_id) WHERE severity IS NOT NULL",
    ),
    # v2: the supervisor's "live calls on every node" view filters by status alone
    2: ("CREATE INDEX calls_status_started ON calls (status, started_at)",),
}
assert max(MIGRATIONS) == SCHEMA_VERSION

_SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at {real} NOT NULL)"
)


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders on both backends."""

    def __init__(self, raw: Any, paramstyle: str) -> None:
        self.raw = raw
        self._pg = paramstyle == "format"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        self.raw.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.raw.fetchall()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self.raw.fetchone()
        return tuple(row) if row is not None else None

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)


_CALL_COLUMNS = "call_id, tenant, node, language, status, started_at, ended_at, duration, metadata"


class SqlStore(Store):
    """Everything both SQL backends share; subclasses supply connections and transactions."""

    _real = "REAL"
    _bigint = "INTEGER"

    def __init__(self, masking: MaskingPolicy | None) -> None:
        self._masking = masking
        self._lock = threading.Lock()
        self._closed = False

    # -- backend hooks

    @abstractmethod
    def _transaction(self, write: bool) -> contextlib.AbstractContextManager[_Cursor]: ...

    @abstractmethod
    def _is_fk_violation(self, exc: BaseException) -> bool: ...

    def _run(self, fn: Callable[[_Cursor], T], *, write: bool) -> T:
        with self._lock:
            if self._closed:
                raise StoreError("the call store is closed")
            with self._transaction(write) as cur:
                return fn(cur)

    def _ddl(self, sql: str) -> str:
        return sql.format(real=self._real, bigint=self._bigint)

    def _migrate(self, cur: _Cursor) -> None:
        """Bring the schema to SCHEMA_VERSION; the caller holds the migration lock."""
        cur.execute(self._ddl(_SCHEMA_VERSION_DDL))
        row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the call store has schema version {current}, newer than this callassist supports "
                f"({SCHEMA_VERSION}); upgrade callassist"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                cur.execute(self._ddl(statement))
            cur.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time())
            )

    def schema_version(self) -> int:
        sql = "SELECT MAX(version) FROM schema_version"
        row = self._run(lambda c: c.execute(sql).fetchone(), write=False)
        return int(row[0]) if row and row[0] is not None else 0

    # -- metadata masking (event text arrives masked from the utterance step)

    def _mask_metadata(self, metadata: Mapping[str, Any], language: str) -> dict[str, Any]:
        return mask_metadata(metadata, language, self._masking)

    def _stored_body(self, cur: _Cursor, call_id: str, body: EventBody) -> EventBody:
        """The body as written: a call.started event's metadata is masked like the call's own."""
        if not isinstance(body, CallStarted):
            return body
        meta = self._mask_metadata(body.metadata, body.language or self._language_of(cur, call_id))
        return dataclasses.replace(body, metadata=meta)

    # -- writes

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
        meta = self._mask_metadata(metadata, language)
        agent = meta.get("agent_name")
        row = (
            call_id,
            tenant,
            node,
            language,
            "live",
            float(started_at),
            str(agent) if agent is not None else None,
            json.dumps(meta, ensure_ascii=False, separators=(",", ":"), default=str),
        )

        def go(cur: _Cursor) -> None:
            cur.execute(
                "INSERT INTO calls (call_id, tenant, node, language, status, started_at, agent, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
                row,
            )

        self._run(go, write=True)

    @staticmethod
    def _language_of(cur: _Cursor, call_id: str) -> str:
        found = cur.execute("SELECT language FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if found is None:
            raise UnknownCallError(f"call {call_id!r} is not in the store: create_call() first")
        return str(found[0])

    def append_events(self, events: Sequence[Event]) -> None:
        wanted = [e for e in events if not isinstance(e.body, TranscriptPartial)]
        if not wanted:
            return

        def go(cur: _Cursor) -> None:
            rows = []
            for e in wanted:
                body = self._stored_body(cur, e.call_id, e.body)
                stored = Event(call_id=e.call_id, seq=e.seq, ts=e.ts, body=body)
                rows.append(
                    (
                        e.call_id,
                        e.seq,
                        body.TYPE,
                        float(e.ts),
                        getattr(body, "speaker", None),
                        body.rule if isinstance(body, ComplianceWarning) else None,
                        body.severity if isinstance(body, ComplianceWarning) else None,
                        stored.to_json(),
                    )
                )
            cur.executemany(
                "INSERT INTO call_events (call_id, seq, type, ts, speaker, rule, severity, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id, seq) DO NOTHING",
                rows,
            )
            for e in wanted:
                if isinstance(e.body, ComplianceRetracted):
                    self._clear_retracted(cur, e.call_id, e.body)

        try:
            self._run(go, write=True)
        except Exception as exc:
            if self._is_fk_violation(exc):
                raise UnknownCallError(f"events for a call not in the store: {exc}") from exc
            raise

    @staticmethod
    def _clear_retracted(cur: _Cursor, call_id: str, body: ComplianceRetracted) -> None:
        """A retracted warning keeps its row (the log is append-only) but leaves the rule and
        severity columns, so finding counts and the rule/severity filters skip it."""
        rows = cur.execute(
            "SELECT seq, body FROM call_events WHERE call_id = ? AND type = ? AND rule = ? "
            "AND severity IS NOT NULL",
            (call_id, ComplianceWarning.TYPE, body.rule),
        ).fetchall()
        for seq, raw in rows:
            stored = event_from_dict(json.loads(raw)).body
            if isinstance(stored, ComplianceWarning) and warning_key(stored) == warning_key(body):
                cur.execute(
                    "UPDATE call_events SET rule = NULL, severity = NULL WHERE call_id = ? AND seq = ?",
                    (call_id, seq),
                )

    def end_call(
        self,
        call_id: str,
        *,
        status: EndStatus,
        ended_at: float | None = None,
        duration: float | None = None,
    ) -> None:
        if status not in END_STATUSES:
            raise StoreError(f"end_call status must be one of {', '.join(END_STATUSES)}, got {status!r}")
        end = time.time() if ended_at is None else float(ended_at)

        def go(cur: _Cursor) -> None:
            cur.execute(
                "UPDATE calls SET status = ?, ended_at = ?, duration = COALESCE(?, ? - started_at) "
                "WHERE call_id = ?",
                (status, end, duration, end, call_id),
            )
            if cur.rowcount == 0:
                raise UnknownCallError(f"call {call_id!r} is not in the store")

        self._run(go, write=True)

    def mark_interrupted(self, node: str | None) -> list[str]:
        last = (
            "COALESCE((SELECT MAX(e.ts) FROM call_events e WHERE e.call_id = calls.call_id), "
            "calls.started_at)"
        )
        sql = (
            f"UPDATE calls SET status = 'interrupted', ended_at = {last}, "
            f"duration = {last} - calls.started_at WHERE status = 'live'"
        )
        params: tuple[Any, ...] = ()
        if node is not None:
            sql += " AND node = ?"
            params = (node,)
        rows = self._run(lambda c: c.execute(sql + " RETURNING call_id", params).fetchall(), write=True)
        return sorted(str(r[0]) for r in rows)

    # -- reads

    def _records(self, cur: _Cursor, rows: list[tuple[Any, ...]]) -> list[CallRecord]:
        counts: dict[str, dict[str, int]] = {}
        ids = [str(r[0]) for r in rows]
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            marks = ", ".join("?" for _ in chunk)
            for call_id, severity, n in cur.execute(
                "SELECT call_id, severity, COUNT(*) FROM call_events "
                f"WHERE severity IS NOT NULL AND call_id IN ({marks}) GROUP BY call_id, severity",
                chunk,
            ).fetchall():
                counts.setdefault(str(call_id), {})[str(severity)] = int(n)
        return [
            CallRecord(
                call_id=str(r[0]),
                tenant=str(r[1]),
                node=str(r[2]),
                language=str(r[3]),
                status=str(r[4]),
                started_at=float(r[5]),
                ended_at=float(r[6]) if r[6] is not None else None,
                duration=float(r[7]) if r[7] is not None else None,
                metadata=json.loads(r[8]),
                findings=counts.get(str(r[0]), {}),
            )
            for r in rows
        ]

    def get_call(self, call_id: str) -> CallRecord | None:
        def go(cur: _Cursor) -> CallRecord | None:
            rows = cur.execute(f"SELECT {_CALL_COLUMNS} FROM calls WHERE call_id = ?", (call_id,)).fetchall()
            records = self._records(cur, rows)
            return records[0] if records else None

        return self._run(go, write=False)

    def events(self, call_id: str, since: int = 0) -> list[Event]:
        rows = self._run(
            lambda c: c.execute(
                "SELECT body FROM call_events WHERE call_id = ? AND seq > ? ORDER BY seq", (call_id, since)
            ).fetchall(),
            write=False,
        )
        return [event_from_dict(json.loads(r[0])) for r in rows]

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
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("tenant", tenant), ("status", status), ("agent", agent)):
            if value is not None:
                where.append(f"c.{column} = ?")
                params.append(value)
        if rule is not None or severity is not None:
            sub = "SELECT 1 FROM call_events e WHERE e.call_id = c.call_id"
            if rule is not None:
                sub += " AND e.rule = ?"
                params.append(rule)
            if severity is not None:
                sub += " AND e.severity = ?"
                params.append(severity)
            where.append(f"EXISTS ({sub})")
        if date_from is not None:
            where.append("c.started_at >= ?")
            params.append(unix_time(date_from, end=False))
        if date_to is not None:
            where.append("c.started_at < ?")
            params.append(unix_time(date_to, end=True))
        sql = f"SELECT {', '.join('c.' + c.strip() for c in _CALL_COLUMNS.split(','))} FROM calls c"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.started_at DESC, c.call_id LIMIT ?"
        params.append(max(0, min(int(limit), LIST_LIMIT_MAX)))

        def go(cur: _Cursor) -> list[CallRecord]:
            return self._records(cur, cur.execute(sql, params).fetchall())

        return self._run(go, write=False)
