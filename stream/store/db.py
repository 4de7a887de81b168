"""The durable call store: every call's metadata and its final transcripts and guidance events,
written as they happen so that a QA reviewer can replay and score the call afterwards.

One small synchronous interface (:class:`Store`), two implementations behind ``open_store(url)``:

* SQLite (``sqlite:///abs/path/calls.db`` or a plain path), the embedded default: one file in WAL mode
  with ``synchronous=FULL``, so a committed event survives a SIGKILL and a power cut, and readers (the
  CLI, the review page) never block the writer.
* PostgreSQL (``postgresql://user@host:port/db``, psycopg 3), so several service nodes share one store.

Durability contract.  The service persists each final transcript and guidance event *before*
delivering it; every write method commits before it returns, so whatever a client has seen is on
disk.  Writes are idempotent -- ``append_events`` ignores a ``(call_id, seq)`` already stored (the
first write wins), ``create_call`` ignores a call id already registered -- so a writer may retry after
an error without duplicating anything.  On PostgreSQL a lost connection is re-opened and the operation
retried once for the same reason.

Privacy.  Personal data is masked (:mod:`assist.masking`) before it is written: transcript text,
warning quotes and evidence, signal quotes, suggestion lines, and metadata values whose key names a
kind of personal data (``PERSONAL_KEY_WORDS``: phone, e-mail, card, account, caller ...).  Other
metadata (telephony ids, time zone names) is stored as given: masking would break the link back to the
telephony system.  Pass ``masking=None`` only when the caller already masks.

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
import datetime as dt
import json
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from assist.events import (
    CallStarted,
    ComplianceRetracted,
    ComplianceWarning,
    CustomerSignal,
    Event,
    EventBody,
    Suggestion,
    SuggestionItem,
    TranscriptFinal,
    TranscriptPartial,
    event_from_dict,
)
from assist.masking import DEFAULT_POLICY, MaskingPolicy, mask

SCHEMA_VERSION = 2
CALL_STATUSES = ("live", "ended", "interrupted", "error")
END_STATUSES = ("ended", "interrupted", "error")
EndStatus = Literal["ended", "interrupted", "error"]
SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a second process (CLI, another migrator) waits for the write lock
SQLITE_WAL_RETRY_S = 0.02  # pause between attempts to switch a contended fresh file to WAL
PG_ADVISORY_LOCK_KEY = 0x63616C6C61737369  # "callassi": serialises migrations across nodes
PG_CONNECT_TIMEOUT_S = 10
LIST_LIMIT_MAX = 10_000  # list_calls never returns more rows than this, whatever limit says
LANGUAGE_CACHE_MAX = 10_000  # call id -> language entries kept for masking; ended calls are dropped
# Metadata keys are split into words (snake, kebab, camelCase); a key with one of these words holds
# personal data and its value is masked.  Masking only touches long digit runs and e-mail addresses,
# so a broad list ("from", "to": caller and callee numbers) costs nothing on other values.
PERSONAL_KEY_WORDS = frozenset(
    {"phone", "mobile", "tel", "cell", "msisdn", "ani", "caller", "callee", "from", "to", "email", "mail"}
    | {"card", "idcard", "ssn", "account", "acct", "passport", "iban"}
)
_KEY_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _personal_key(key: str) -> bool:
    return any(w.lower() in PERSONAL_KEY_WORDS for w in _KEY_WORD.findall(key))


T = TypeVar("T")


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why in one line."""


class UnknownCallError(StoreError):
    """An operation named a call that was never registered with ``create_call``."""


@dataclass(frozen=True)
class CallRecord:
    """One stored call.  ``duration`` and ``ended_at`` are None while the call is ``live``.

    ``findings`` counts the call's compliance warnings by severity.  It also satisfies
    ``assist.review.report.CallInfo``, so ``build_report(store.get_call(id), store.events(id))`` works.
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


def open_store(url: str, *, masking: MaskingPolicy | None = DEFAULT_POLICY) -> Store:
    """Open (creating and migrating as needed) the store at ``url``.

    ``url``: ``postgresql://...`` / ``postgres://...``, ``sqlite:///abs/path.db``, ``sqlite:rel.db`` or a
    plain file path.  ``masking``: what is masked before writing (default: every kind); None: nothing.
    """
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, masking=masking)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        if path.startswith("//"):
            path = path[2:]  # sqlite:///abs/path -> /abs/path
    elif "://" in url:
        raise StoreError(f"unsupported store URL scheme in {url!r}: use sqlite:///path or postgresql://")
    else:
        path = url
    if not path or path == ":memory:":
        raise StoreError("the call store needs a file path (an in-memory store would lose every call)")
    return SqliteStore(path, masking=masking)


# --------------------------------------------------------------------------------------- schema

# Statements per version; {real}/{bigint} are filled per dialect.  Never edit a released version:
# add a new one.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
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
assert max(_MIGRATIONS) == SCHEMA_VERSION

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


class _SqlStore(Store):
    """Everything both SQL backends share; subclasses supply connections and transactions."""

    _real = "REAL"
    _bigint = "INTEGER"

    def __init__(self, masking: MaskingPolicy | None) -> None:
        self._masking = masking
        self._lock = threading.Lock()
        self._languages: dict[str, str] = {}  # call id -> language, for masking events of that call
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
            for statement in _MIGRATIONS[version]:
                cur.execute(self._ddl(statement))
            cur.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time())
            )

    def schema_version(self) -> int:
        sql = "SELECT MAX(version) FROM schema_version"
        row = self._run(lambda c: c.execute(sql).fetchone(), write=False)
        return int(row[0]) if row and row[0] is not None else 0

    # -- masking

    def _mask(self, text: str, language: str) -> str:
        return mask(text, language=language, policy=self._masking) if self._masking and text else text

    def _mask_metadata(self, metadata: Mapping[str, Any], language: str) -> dict[str, Any]:
        def walk(key: str, value: Any) -> Any:
            if isinstance(value, Mapping):
                return {str(k): walk(str(k), v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [walk(key, v) for v in value]
            if isinstance(value, str) and _personal_key(key):
                return self._mask(value, language)
            if isinstance(value, int) and not isinstance(value, bool) and _personal_key(key):
                return self._mask(str(value), language)
            return value

        return {str(k): walk(str(k), v) for k, v in metadata.items()}

    def _mask_body(self, body: EventBody, language: str) -> EventBody:
        if self._masking is None:
            return body
        if isinstance(body, TranscriptFinal):
            return dataclasses.replace(body, text=self._mask(body.text, body.language or language))
        if isinstance(body, ComplianceWarning):
            return dataclasses.replace(
                body, quote=self._mask(body.quote, language), evidence=self._mask(body.evidence, language)
            )
        if isinstance(body, CustomerSignal):
            return dataclasses.replace(body, quote=self._mask(body.quote, language))
        if isinstance(body, Suggestion):
            items = tuple(
                SuggestionItem(text=self._mask(i.text, language), reason=i.reason, score=i.score)
                for i in body.items
            )
            return dataclasses.replace(body, items=items)
        if isinstance(body, CallStarted):
            meta = self._mask_metadata(body.metadata, body.language or language)
            return dataclasses.replace(body, metadata=meta)
        return body

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

    def _language_of(self, cur: _Cursor, call_id: str) -> str:
        lang = self._languages.get(call_id)
        if lang is None:
            found = cur.execute("SELECT language FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            if found is None:
                raise UnknownCallError(f"call {call_id!r} is not in the store: create_call() first")
            lang = str(found[0])
            if len(self._languages) >= LANGUAGE_CACHE_MAX:
                self._languages.clear()
            self._languages[call_id] = lang
        return lang

    def append_events(self, events: Sequence[Event]) -> None:
        wanted = [e for e in events if not isinstance(e.body, TranscriptPartial)]
        if not wanted:
            return

        def go(cur: _Cursor) -> None:
            rows = []
            for e in wanted:
                body = self._mask_body(e.body, self._language_of(cur, e.call_id))
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
            if json.loads(raw).get("utterance_id") == body.utterance_id:
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
        with self._lock:
            self._languages.pop(call_id, None)

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
            params.append(_unix(date_from, end=False))
        if date_to is not None:
            where.append("c.started_at < ?")
            params.append(_unix(date_to, end=True))
        sql = f"SELECT {', '.join('c.' + c.strip() for c in _CALL_COLUMNS.split(','))} FROM calls c"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.started_at DESC, c.call_id LIMIT ?"
        params.append(max(0, min(int(limit), LIST_LIMIT_MAX)))

        def go(cur: _Cursor) -> list[CallRecord]:
            return self._records(cur, cur.execute(sql, params).fetchall())

        return self._run(go, write=False)


def _unix(value: DateBound, *, end: bool) -> float:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(value, dt.date):
        day = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return (day + dt.timedelta(days=1) if end else day).timestamp()
    return float(value)


# --------------------------------------------------------------------------------------- SQLite


class SqliteStore(_SqlStore):
    backend = "sqlite"

    def __init__(self, path: str | Path, *, masking: MaskingPolicy | None = DEFAULT_POLICY) -> None:
        super().__init__(masking)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            mode = self._enter_wal()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode}); on a network share?")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._run(self._migrate, write=True)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the call store {self.path}: {exc}") from exc

    def _enter_wal(self) -> Any:
        """Switch to WAL, retrying while another opener holds the file.

        SQLite does not run the busy handler for a journal-mode change, so several nodes opening
        a fresh store at once get an immediate "database is locked" from all but one of them.
        """
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        while True:
            try:
                return self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(SQLITE_WAL_RETRY_S)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[_Cursor]:
        cur = _Cursor(self._conn.cursor(), "qmark")
        if not write:
            yield cur
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _is_fk_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "FOREIGN KEY" in str(exc)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


# --------------------------------------------------------------------------------------- PostgreSQL


class PostgresStore(_SqlStore):
    backend = "postgresql"
    _real = "DOUBLE PRECISION"
    _bigint = "BIGINT"

    def __init__(self, url: str, *, masking: MaskingPolicy | None = DEFAULT_POLICY) -> None:
        super().__init__(masking)
        import psycopg  # imported here so SQLite-only installs never need it

        self._psycopg = psycopg
        self._url = url
        self._conn = self._connect()
        self._run(self._migrate_locked, write=True)

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=PG_CONNECT_TIMEOUT_S,
                application_name="callassist",
            )
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot connect to the call store at {_redact(self._url)}: {exc}") from exc

    def _migrate_locked(self, cur: _Cursor) -> None:
        # Transaction-scoped: released at commit or rollback, even if this process dies mid-migration.
        cur.execute("SELECT pg_advisory_xact_lock(?)", (PG_ADVISORY_LOCK_KEY,))
        self._migrate(cur)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[_Cursor]:
        with self._conn.transaction(), self._conn.cursor() as raw:
            yield _Cursor(raw, "format")

    def _run(self, fn: Callable[[_Cursor], T], *, write: bool) -> T:
        """Run ``fn`` in a transaction, re-opening a lost connection and retrying once.

        Every store operation is idempotent, so a retry after a connection lost mid-commit cannot
        duplicate anything.
        """
        try:
            return super()._run(fn, write=write)
        except self._psycopg.OperationalError:
            with self._lock:
                if self._closed or not (self._conn.closed or self._conn.broken):
                    raise
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = self._connect()
            return super()._run(fn, write=write)

    def _is_fk_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg.errors.ForeignKeyViolation)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
