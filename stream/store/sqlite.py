"""The embedded store: one SQLite file in WAL mode with ``synchronous=FULL``, so a committed event
survives a SIGKILL and a power cut, and readers (the CLI, the review page) never block the writer."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assist.masking import DEFAULT_POLICY, MaskingPolicy
from stream.store.base import StoreError
from stream.store.sql import SqlStore, _Cursor

SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a second process (CLI, another migrator) waits for the write lock
SQLITE_WAL_RETRY_S = 0.02  # pause between attempts to switch a contended fresh file to WAL


class SqliteStore(SqlStore):
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
