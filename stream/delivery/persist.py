"""The call store as a durable sink of every call's event log.

Each non-partial event is committed to the store *before* the log delivers it
to anyone (see :mod:`stream.live.bus`), so whatever an agent or supervisor has seen
survives a SIGKILL of the service.  The store is synchronous; writes run on a
worker thread so the event loop keeps serving audio meanwhile.

A store that fails (PostgreSQL restarting, disk full) must not stall live
calls: the failure is logged and counted, and the event still reaches the
overlay and MQTT.  ``healthz`` shows the count.
"""

from __future__ import annotations

import asyncio
import logging

from assist.events import CallEnded, CallStarted, Event, TranscriptPartial
from stream.store import Store

log = logging.getLogger(__name__)

_END_STATUS = {"stop": "ended", "disconnected": "ended", "timeout": "ended", "shutdown": "interrupted"}


class StoreSink:
    def __init__(self, store: Store, *, tenant: str, node: str) -> None:
        self.store = store
        self.tenant = tenant
        self.node = node
        self.failures = 0
        self.written = 0

    async def __call__(self, event: Event) -> None:
        body = event.body
        if isinstance(body, TranscriptPartial):
            return
        try:
            await asyncio.to_thread(self._write, event)
            self.written += 1
        except Exception:
            self.failures += 1
            log.exception("call store write failed for %s #%d", event.call_id, event.seq)

    def _write(self, event: Event) -> None:
        body = event.body
        if isinstance(body, CallStarted):
            self.store.create_call(
                event.call_id,
                tenant=self.tenant,
                started_at=event.ts,
                language=body.language,
                metadata=dict(body.metadata),
                node=self.node,
            )
        self.store.append_events([event])
        if isinstance(body, CallEnded):
            status = _END_STATUS.get(body.reason, "error")
            self.store.end_call(event.call_id, status=status, ended_at=event.ts, duration=body.duration)  # type: ignore[arg-type]

    def stats(self) -> dict[str, int]:
        return {"written": self.written, "failures": self.failures}
