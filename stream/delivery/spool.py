"""A durable, bounded, append-only spool of events the call store could not take.

When the store is away (PostgreSQL restarting, a SQLite file that cannot be written) the events a
client has already seen must still reach the post-call review.  They wait here: one line per event in
the events' wire JSON (``Event.to_json``, the README's "Event wire format"), appended and fsynced
before the append returns, so a spooled event survives a SIGKILL or a power cut exactly as a stored
one would.

The file is a log, not a queue: draining only advances an in-memory head, and the file is truncated
once every line in it has reached the store.  A crash mid-drain therefore replays lines the store
already holds; that is safe because every store write is idempotent (``append_events`` ignores a
``(call_id, seq)`` already stored, ``create_call`` a call already registered, ``end_call`` sets the
same values again).  A torn last line (a crash during an append, which therefore never returned and
was never delivered) is cut off when the file is read back.

The bound applies to the file (``max_bytes``, drained lines included until the truncation) and to the
lines not yet drained (``max_events``); beyond either, :class:`SpoolFull` is raised and nothing
already spooled is touched.  One process owns the file at a time (an exclusive ``flock``), so two
services pointed at one data directory cannot truncate each other's backlog.

Thread safety: every method takes the spool's lock, so the sink may call them from worker threads
(the fsync must not stall the event loop).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assist.events import Event, EventFormatError, event_from_dict

log = logging.getLogger(__name__)


class SpoolError(RuntimeError):
    """The spool cannot take an event; the message says why in one line."""


class SpoolFull(SpoolError):
    """The spool reached one of its named limits; the event was not spooled."""


@dataclass(frozen=True)
class Spooled:
    """One event waiting for the store, with the size of its line in the file."""

    event: Event
    size: int


class Spool:
    def __init__(self, path: str | Path, *, max_bytes: int, max_events: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_events = max_events
        self._pending: deque[Spooled] = deque()
        self._file_bytes = 0
        self._pending_bytes = 0
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._loaded = False  # appending before reading back would hide a previous run's lines
        self.skipped = 0  # unreadable lines found when loading (logged; never silently)

    # -- opening -------------------------------------------------------------------------------

    def load(self) -> list[Event]:
        """Read back what a previous run left (opening the file only if it exists).

        Returns the pending events in order; they also become the spool's backlog.
        """
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> list[Event]:
        if self._fd is None and not self.path.exists():
            self._loaded = True
            return []
        fd = self._open()
        raw = b""
        while chunk := os.pread(fd, 1 << 20, len(raw)):
            raw += chunk
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            log.warning("store spool %s: cutting a torn last line (%d bytes)", self.path, len(raw) - end)
            os.ftruncate(fd, end)
            os.fsync(fd)
        self._pending.clear()
        for number, line in enumerate(raw[:end].split(b"\n")[:-1], 1):
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, EventFormatError) as exc:
                self.skipped += 1
                log.error("store spool %s line %d is not an event, skipped: %s", self.path, number, exc)
                continue
            self._pending.append(Spooled(event, len(line) + 1))
        self._file_bytes = end
        self._pending_bytes = sum(s.size for s in self._pending)
        self._loaded = True
        return [s.event for s in self._pending]

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            busy = f"store spool {self.path} is in use by another process ({exc.strerror})"
            raise SpoolError(busy) from exc
        if new:  # the file's directory entry must survive a power cut too
            _fsync_dir(self.path.parent)
        self._fd = fd
        return fd

    # -- the log -------------------------------------------------------------------------------

    def append(self, event: Event) -> Spooled:
        """Append and fsync one event; :class:`SpoolFull` / :class:`SpoolError` when it cannot."""
        line = (event.to_json() + "\n").encode("utf-8")
        with self._lock:
            if len(self._pending) >= self.max_events:
                raise SpoolFull(
                    f"store spool full: {len(self._pending)} events waiting (store.spool_max_events)"
                )
            if self._file_bytes + len(line) > self.max_bytes:
                raise SpoolFull(
                    f"store spool full: {self._file_bytes} + {len(line)} bytes would exceed "
                    f"store.spool_max_bytes = {self.max_bytes}"
                )
            try:
                if not self._loaded:
                    self._load_locked()
                fd = self._open()
                written = os.write(fd, line)
                if written != len(line):
                    os.ftruncate(fd, self._file_bytes)  # never leave half a line behind a good one
                    raise OSError(28, "short write")
                os.fsync(fd)
            except OSError as exc:
                raise SpoolError(f"cannot write the store spool {self.path}: {exc}") from exc
            item = Spooled(event, len(line))
            self._file_bytes += len(line)
            self._pending_bytes += len(line)
            self._pending.append(item)
            return item

    def head(self, n: int = 1) -> list[Spooled]:
        """The first ``n`` events waiting, oldest first."""
        with self._lock:
            return list(itertools.islice(self._pending, n))

    def pop(self, items: Sequence[Spooled]) -> None:
        """``items`` (from :meth:`head`) reached the store.  Once nothing is pending the file is emptied.

        Naming the items makes a second pop of the same head (a cancelled drain racing the next
        one) harmless instead of dropping events that were never written.
        """
        with self._lock:
            for item in items:
                if not self._pending or self._pending[0] is not item:
                    break
                self._pending.popleft()
                self._pending_bytes -= item.size
            if not self._pending and self._fd is not None and self._file_bytes:
                try:
                    os.ftruncate(self._fd, 0)
                    os.fsync(self._fd)
                    self._file_bytes = 0
                except OSError as exc:  # harmless: the next start replays lines the store already has
                    log.warning("cannot empty the store spool %s: %s", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # releases the flock
                self._fd = None

    # -- figures -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def file_bytes(self) -> int:
        return self._file_bytes


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to open a directory for fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
