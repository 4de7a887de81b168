"""The one receive loop: a connection's frames into its core, the core's events into the call.

Every transport (native ``/v1/ingest``, AudioHook, Twilio, FreeSWITCH over websockets; AudioSocket
over TCP) runs through :func:`run_connection`.  The loop reads a frame (waiting as long as the core
says), feeds it to the core, and acts on the events in order: the call is opened through an
:class:`~stream.ingest.base.IngestBridge` (credentials checked first) and the core told the outcome,
audio and gaps are fed, metadata merged, notices and violations become ``error`` events on the
call, and an end of call or a fatal violation finishes the call (everything received is
transcribed) before the core is told so.  What the peer must hear, the core queues; the driver
only moves it, through one writer task so replies leave in the order the core produced them even
when transcripts are forwarded concurrently (AudioHook).

The connection itself is behind :class:`Connection` (:mod:`stream.ingest.connections` has the
aiohttp websocket and the asyncio TCP one), so the loop is tested with scripted fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias

from assist.events import TranscriptFinal
from stream.auth import AuthError, Claims
from stream.ingest.base import IngestBridge, Refused
from stream.ingest.context import Credentials, IngestContext
from stream.ingest.core import IngestCore
from stream.ingest.events import (
    EndOfCall,
    EndUtterances,
    IngestEvent,
    LegAudio,
    LegGap,
    MetadataChanged,
    Notice,
    OpenCall,
    Outgoing,
    Violation,
)
from stream.ingest.refusal import refusal_code
from stream.live.bus import SubscriberTooSlow
from stream.live.calls import CallHandle

log = logging.getLogger(__name__)

FORWARDER_DRAIN_S: Final = 5.0
"""After the call finished, how long its last transcripts may take to reach the core (they are
all in the call's log by then; this only bounds a stuck subscription)."""


@dataclass(frozen=True)
class Ended:
    """The peer closed the connection (``close_code``: its websocket close code, or
    :data:`~stream.ingest.refusal.CLOSE_NORMAL` for a clean TCP end) or it dropped (``None``)."""

    close_code: int | None


@dataclass(frozen=True)
class Oversize:
    """The transport refused a frame over its own cap; ``detail`` is its word for it."""

    detail: str


Frame: TypeAlias = str | bytes | Ended | Oversize


class Connection(Protocol):
    """One peer connection as the driver sees it."""

    async def receive(self, timeout: float) -> Frame:
        """The next frame; ``TimeoutError`` if none within ``timeout`` seconds."""
        ...

    async def send(self, item: Outgoing) -> None:
        """Send one queued item; a peer that went away is not an error here."""
        ...

    async def aclose(self) -> None:
        """Release the connection (close it if the core did not)."""
        ...


def no_credentials(_token: str | None) -> Claims | None:
    """For transports without tokens (AudioSocket, AudioHook, which has its own client check)."""
    return None


async def run_connection(
    conn: Connection,
    core: IngestCore,
    ctx: IngestContext,
    name: str,
    *,
    credentials: Credentials = no_credentials,
) -> None:
    """Run one connection to its end: the call is finished and the connection released on return."""
    await _Driver(conn, core, ctx, name, credentials).run()


async def send_all(conn: Connection, core: IngestCore) -> None:
    """Send what the core queued, for an answer given outside a call (a refused handshake)."""
    for item in core.data_to_send():
        await conn.send(item)


class _Driver:
    def __init__(
        self, conn: Connection, core: IngestCore, ctx: IngestContext, name: str, credentials: Credentials
    ) -> None:
        self.conn = conn
        self.core = core
        self.name = name
        self.credentials = credentials
        self.bridge = IngestBridge(ctx, name)
        self.queue_limit = ctx.settings.limits.subscriber_queue
        self.reason = "disconnected"
        self.finished = False
        self.forwarder: asyncio.Task[None] | None = None
        self.outbox: asyncio.Queue[Outgoing | None] = asyncio.Queue()

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            while not self.core.done:
                try:
                    frame = await self.conn.receive(self.core.wait_s)
                except TimeoutError:
                    events = self.core.receive_timeout()
                else:
                    events = self._receive(frame)
                await self._act(events)
        except asyncio.CancelledError:
            self.reason = "shutdown"  # the service is stopping: finish the call, then let the task end
            raise
        except Exception:
            log.exception("%s connection failed", self.name)
            self.reason = "error"
        finally:
            await self._finish(self.reason)
            self.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer
            await self.conn.aclose()

    def _receive(self, frame: Frame) -> Sequence[IngestEvent]:
        if isinstance(frame, str):
            return self.core.receive_text(frame)
        if isinstance(frame, bytes):
            return self.core.receive_bytes(frame)
        if isinstance(frame, Oversize):
            return self.core.receive_oversize(frame.detail)
        return self.core.receive_eof(frame.close_code)

    async def _act(self, events: Sequence[IngestEvent]) -> None:
        # Replies first, in order and without awaiting: the forwarder may queue more while we await.
        self._pump()
        for ev in events:
            if self.finished:
                break
            match ev:
                case OpenCall():
                    await self._open(ev)
                case LegAudio(legs):
                    await self.bridge.feed(legs)
                case LegGap(legs):
                    await self.bridge.feed_gap(legs)
                case EndUtterances():
                    await self.bridge.end_utterances()
                case MetadataChanged(changes):
                    self.bridge.update_metadata(changes)
                case Violation(code, message, fatal):  # before Notice: a violation is one too
                    log.info("%s: %s: %s", self.name, code, message)
                    await self.bridge.error(code, message, fatal=fatal)
                    if fatal:
                        await self._finish("timeout" if code == "timeout" else "error")
                case Notice(code, message):
                    await self.bridge.error(code, message, fatal=False)
                case EndOfCall(reason):
                    await self._finish(reason)
        self._pump()

    async def _open(self, ev: OpenCall) -> None:
        try:
            claims = self.credentials(ev.token)
            handle = await self.bridge.open(ev.params, claims)
        except AuthError as err:
            await self._act(self.core.call_refused(refusal_code(err), err.reason))
            return
        except Refused as exc:
            await self._act(self.core.call_refused(exc.code, exc.message))
            return
        if self.core.answers_transcripts:
            self.forwarder = asyncio.create_task(self._forward(handle))
        self.core.call_opened(handle.call_id)
        self._pump()

    async def _finish(self, reason: str) -> None:
        """End the call once: everything received is transcribed (and, for a core that answers
        transcripts, forwarded) before the core hears that the call ended."""
        if self.finished:
            return
        self.finished = True
        self.reason = reason
        await self.bridge.close(reason)
        if self.forwarder is not None:
            try:
                await asyncio.wait_for(self.forwarder, FORWARDER_DRAIN_S)
            except Exception:
                log.warning("%s: transcript forwarding did not finish", self.name)
        self.core.call_ended()
        self._pump()

    async def _forward(self, handle: CallHandle) -> None:
        """Hand each final transcript of the call to the core (which may answer it)."""
        call_log = handle.session.log
        sub = call_log.subscribe(0, self.queue_limit)
        try:
            async for event in sub:
                if isinstance(event.body, TranscriptFinal):
                    self.core.receive_transcript(event.body, handle.call_id)
                    self._pump()
        except SubscriberTooSlow:
            log.warning("%s: transcript forwarding for %s fell behind and stopped", self.name, handle.call_id)
        finally:
            call_log.unsubscribe(sub)

    def _pump(self) -> None:
        for item in self.core.data_to_send():
            self.outbox.put_nowait(item)

    async def _write(self) -> None:
        while (item := await self.outbox.get()) is not None:
            await self.conn.send(item)
