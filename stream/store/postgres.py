"""The shared store: PostgreSQL (psycopg 3), so several service nodes keep their calls in one place.

A lost connection is re-opened and the operation retried once: every store operation is idempotent,
so the retry cannot duplicate anything.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from assist.masking import DEFAULT_POLICY, MaskingPolicy
from stream.store.base import StoreError
from stream.store.sql import SqlStore, _Cursor

PG_ADVISORY_LOCK_KEY = 0x63616C6C61737369  # "callassi": serialises migrations across nodes
PG_CONNECT_TIMEOUT_S = 10
T = TypeVar("T")


class PostgresStore(SqlStore):
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
