"""The call store as a durable sink of every call's event log.

Each non-partial event is committed to the store *before* the log delivers it
to anyone (see :mod:`stream.live.bus`), so whatever an agent or supervisor has seen
survives a SIGKILL of the service.  The store is synchronous; writes run on a
worker thread so the event loop keeps serving audio meanwhile.

A store that fails (PostgreSQL restarting, a SQLite file that cannot be written)
must not stall live calls, nor lose what they said.  With a spool
(:mod:`stream.delivery.spool`, what :meth:`StoreSink.for_settings` builds) an
event the store refuses is appended to a local fsynced file and the call goes on;
a background task retries the store with backoff and drains the file in order.
Order is kept across the outage: once anything is spooled, every later event of
*any* call goes behind it until the spool is empty, so each call's events reach
the store in sequence order, ``create_call`` before its events and ``end_call``
after them.  Only when the spool itself is full or unwritable is an event lost;
that is logged as an error, counted, and shown by ``healthz`` (:meth:`stats`).

At start-up (:meth:`start`, awaited before the service listens) a spool left by
a previous run is replayed before any new event.  Its calls that never ended were
cut off by that run's death: once their events are in, they are closed as
``interrupted`` at their last event, as ``Store.mark_interrupted`` does for the
calls the store already had.  Without a spool (``spool=None``) a failed write is
only logged and counted, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from assist.events import CallEnded, CallStarted, Event, TranscriptPartial
from stream.delivery.spool import Spool, SpoolError
from stream.settings import Settings, StoreSettings
from stream.store import Store, UnknownCallError

log = logging.getLogger(__name__)

_END_STATUS = {"stop": "ended", "disconnected": "ended", "timeout": "ended", "shutdown": "interrupted"}
# A sink built without settings retries as the settings' defaults say (declared once, there).
SPOOL_RETRY_MIN_S = StoreSettings.spool_retry_min_s
SPOOL_RETRY_MAX_S = StoreSettings.spool_retry_max_s
SPOOL_DRAIN_BATCH = 200  # spooled events written per store transaction: a long backlog drains in seconds


class StoreSink:
    def __init__(
        self,
        store: Store,
        *,
        tenant: str,
        node: str,
        spool: Spool | None = None,
        retry_min_s: float = SPOOL_RETRY_MIN_S,
        retry_max_s: float = SPOOL_RETRY_MAX_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.node = node
        self.spool = spool
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self.failures = 0  # store writes that failed, first attempts and retries from the spool alike
        self.written = 0  # events committed to the store, directly or from the spool
        self.spooled = 0  # events that had to wait in the spool
        self.replayed = 0  # spooled events written to the store since
        self.lost = 0  # events neither stored nor spooled: spool full or unwritable, or refused by the store
        self.error: str | None = None  # why events are being lost right now; None once the spool takes them
        self.last_failure: str | None = None  # the store's last complaint, cleared by the next success
        self._appending = 0  # spool appends in flight: they count as "something is spooled"
        self._wake = asyncio.Event()
        self._started: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False  # after aclose: events still spool, for the next run to replay
        self._backlog = 0  # events of a previous run still ahead in the spool
        self._orphans: dict[str, float] = {}  # that run's unended calls -> their last event's time

    @classmethod
    def for_settings(cls, store: Store, settings: Settings) -> StoreSink:
        """The service's sink: spool under the data dir, limits from ``store.spool_*``."""
        s = settings.store
        spool = Spool(settings.store_spool_path(), max_bytes=s.spool_max_bytes, max_events=s.spool_max_events)
        return cls(
            store,
            tenant=settings.auth.tenant,
            node=settings.node_name(),
            spool=spool,
            retry_min_s=s.spool_retry_min_s,
            retry_max_s=s.spool_retry_max_s,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay what a previous run left in the spool (one attempt), then drain in the background.

        Idempotent; also run by the first event if the owner never called it, so a backlog always
        goes to the store before any new event.  A store still away at start-up does not hold the
        service up: new events queue behind the backlog.
        """
        if self.spool is None or (self._started is not None and self._started.done()):
            return
        if self._started is None:
            self._started = asyncio.ensure_future(self._replay())
        await asyncio.shield(self._started)

    async def _replay(self) -> None:
        try:
            await self._replay_backlog()
        except Exception as exc:  # never let a start-up surprise take every call's events with it
            self.error = f"store spool replay failed: {exc}"
            log.exception("store spool replay failed; the background drain keeps trying")
        if not self._closed:
            self._task = asyncio.create_task(self._drain_forever(), name="store-spool-drain")

    async def _replay_backlog(self) -> None:
        assert self.spool is not None
        try:
            backlog = await asyncio.to_thread(self.spool.load)
        except (OSError, SpoolError) as exc:
            self.error = f"cannot read the store spool: {exc}"
            log.error("%s; events the store refuses will be lost", self.error)
            backlog = []
        if backlog:
            self._backlog = len(backlog)
            ended = {e.call_id for e in backlog if isinstance(e.body, CallEnded)}
            for e in backlog:
                if e.call_id not in ended:
                    self._orphans[e.call_id] = max(e.ts, self._orphans.get(e.call_id, e.ts))
            log.warning(
                "store spool %s: replaying %d event(s) of %d call(s) left by the previous run",
                self.spool.path,
                len(backlog),
                len({e.call_id for e in backlog}),
            )
            if await self._drain_pass():
                log.info("store spool replayed")

    async def aclose(self) -> None:
        """Stop retrying; one last pass writes what it can, the rest stays spooled for the next run."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.spool is not None:
            if len(self.spool):
                await self._drain_pass()
            if len(self.spool):
                log.warning(
                    "store spool %s keeps %d event(s) for the next start", self.spool.path, len(self.spool)
                )
            self.spool.close()

    # -- the sink ----------------------------------------------------------------------------------

    async def __call__(self, event: Event) -> None:
        if isinstance(event.body, TranscriptPartial):
            return
        if self.spool is not None:
            await self.start()
            if len(self.spool) or self._appending:
                await self._spool(event)
                return
        try:
            await asyncio.to_thread(self._write, event)
            self.written += 1
            self.last_failure = self.error = None
            return
        except UnknownCallError as exc:  # can never succeed: retrying it would block the spool
            self.failures += 1
            self.lost += 1
            self.last_failure = str(exc)
            log.error("call store refused %s #%d: %s", event.call_id, event.seq, exc)
            return
        except Exception as exc:
            self.failures += 1
            self.last_failure = f"{type(exc).__name__}: {exc}"
            if self.spool is None:
                log.exception("call store write failed for %s #%d", event.call_id, event.seq)
                return
            log.warning(
                "call store write failed for %s #%d (%s); spooling until it is back",
                event.call_id,
                event.seq,
                self.last_failure,
            )
        await self._spool(event)

    async def _spool(self, event: Event) -> None:
        assert self.spool is not None
        self._appending += 1
        try:
            await asyncio.to_thread(self.spool.append, event)
        except SpoolError as exc:
            self.lost += 1
            self.error = str(exc)
            log.error("event %s #%d (%s) NOT stored: %s", event.call_id, event.seq, event.type, exc)
            return
        finally:
            self._appending -= 1
        self.spooled += 1
        self.error = None
        self._wake.set()
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._drain_forever(), name="store-spool-drain")

    # -- draining ----------------------------------------------------------------------------------

    async def _drain_forever(self) -> None:
        assert self.spool is not None
        delay = self.retry_min_s
        while True:
            if await self._drain_pass():
                delay = self.retry_min_s
                self._wake.clear()
                if not len(self.spool):
                    await self._wake.wait()
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    async def _drain_pass(self) -> bool:
        """Write spooled events in order until the spool is empty (True) or the store fails (False)."""
        assert self.spool is not None
        while True:
            if self._backlog == 0 and self._orphans:
                try:
                    await asyncio.to_thread(self._close_orphans)
                except Exception as exc:
                    self._retry_later(exc)
                    return False
            # a batch never straddles the previous run's backlog: its calls are closed right after it
            batch = self.spool.head(min(self._backlog or SPOOL_DRAIN_BATCH, SPOOL_DRAIN_BATCH))
            if not batch:
                return True
            try:
                await asyncio.to_thread(self._write_batch, [item.event for item in batch])
                done = batch
                self.written += len(done)
                self.replayed += len(done)
            except UnknownCallError:  # one event names a call the store lacks: find it, keep the rest
                done = []
                for item in batch:
                    if not await self._drain_one(item.event):
                        break
                    done.append(item)
            except Exception as exc:
                self._retry_later(exc)
                return False
            await asyncio.to_thread(self.spool.pop, done)
            self._backlog = max(0, self._backlog - len(done))
            if len(done) < len(batch):
                return False
            self.last_failure = None

    async def _drain_one(self, event: Event) -> bool:
        """Write one spooled event; False when the store fails (retry later).  A refused one is dropped."""
        try:
            await asyncio.to_thread(self._write, event)
        except UnknownCallError as exc:
            self.failures += 1
            self.lost += 1
            log.error("call store refused spooled %s #%d, dropped: %s", event.call_id, event.seq, exc)
            return True
        except Exception as exc:
            self._retry_later(exc)
            return False
        self.written += 1
        self.replayed += 1
        return True

    def _retry_later(self, exc: Exception) -> None:
        self.failures += 1
        self.last_failure = f"{type(exc).__name__}: {exc}"
        n = len(self.spool) if self.spool is not None else 0
        log.warning("call store still failing (%s); %d event(s) wait in the spool", self.last_failure, n)

    def _close_orphans(self) -> None:
        for call_id, last in list(self._orphans.items()):
            # UnknownCallError: its call.started never reached the store, there is nothing to close
            with contextlib.suppress(UnknownCallError):
                self.store.end_call(call_id, status="interrupted", ended_at=last)
            del self._orphans[call_id]

    def _write_batch(self, events: list[Event]) -> None:
        """Several events in one store transaction; calls created before and ended after it."""
        for event in events:
            if isinstance(event.body, CallStarted):
                self._create(event, event.body)
        self.store.append_events(events)
        for event in events:
            if isinstance(event.body, CallEnded):
                self._end(event, event.body)

    def _write(self, event: Event) -> None:
        body = event.body
        if isinstance(body, CallStarted):
            self._create(event, body)
        self.store.append_events([event])
        if isinstance(body, CallEnded):
            self._end(event, body)

    def _create(self, event: Event, body: CallStarted) -> None:
        self.store.create_call(
            event.call_id,
            tenant=self.tenant,
            started_at=event.ts,
            language=body.language,
            metadata=dict(body.metadata),
            node=self.node,
        )

    def _end(self, event: Event, body: CallEnded) -> None:
        status = _END_STATUS.get(body.reason, "error")
        self.store.end_call(event.call_id, status=status, ended_at=event.ts, duration=body.duration)  # type: ignore[arg-type]

    def stats(self) -> dict[str, Any]:
        """What ``healthz`` shows under ``store``."""
        out: dict[str, Any] = {"written": self.written, "failures": self.failures}
        if self.spool is None:
            return out
        head = next(iter(self.spool.head()), None)
        out.update(
            spool_events=len(self.spool),
            spool_bytes=self.spool.pending_bytes,
            spool_file_bytes=self.spool.file_bytes,
            spool_oldest_age_s=round(max(0.0, self._clock() - head.event.ts), 1) if head else None,
            spooled=self.spooled,
            replayed=self.replayed,
            lost=self.lost,
            error=self.error,
            last_failure=self.last_failure,
        )
        return out
