"""The websocket transport shared by the one-way adapters (Twilio Media Streams, FreeSWITCH audio fork).

Those platforms stream and never listen, so the transport only moves frames
into a sans-IO core (:class:`WireCore`) and acts on its events, exactly as the
native ``/v1/ingest`` handler does: the call is opened through an
:class:`~stream.ingest.base.IngestBridge` (token checked first), audio is
fed as it arrives, a non-fatal violation becomes an ``error`` event on the
call, and a fatal one also closes the socket with the violation's close code
and ``"<code>: <message>"`` as the close reason (the only error channel these
platforms read: they log it).  The bridge is closed on every exit path, so
audio already received is transcribed.

Timeouts: the core must open the call within ``limits.start_timeout_s``, and
after that a silence of ``limits.idle_timeout_s`` (no frame at all) ends the
call as ``timeout`` (close code 1008).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from aiohttp import WSMsgType, web

from stream.auth import AuthError
from stream.ingest.base import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    EndOfCall,
    IngestBridge,
    LegAudio,
    MetadataChanged,
    Notice,
    OpenCall,
    Refused,
    Violation,
    ingest_claims,
)

if TYPE_CHECKING:
    from stream.web.server import Service

log = logging.getLogger(__name__)

CLOSE_REASON_BYTES = 120  # RFC 6455 caps a close reason at 123 bytes

WireEvent = OpenCall | LegAudio | MetadataChanged | EndOfCall | Notice | Violation


class WireCore(Protocol):
    """What the driver needs of a sans-IO adapter core."""

    @property
    def started(self) -> bool: ...

    def receive_text(self, text: str) -> list[WireEvent]: ...

    def receive_bytes(self, data: bytes) -> list[WireEvent]: ...

    def receive_eof(self, close_code: int | None) -> list[WireEvent]: ...


def close_reason(code: str, message: str) -> bytes:
    return f"{code}: {message}".encode()[:CLOSE_REASON_BYTES]


async def drive(
    service: Service, request: web.Request, core: WireCore, name: str, *, max_msg_size: int
) -> web.WebSocketResponse:
    """Run one adapter connection to its end; returns the (closed) websocket response."""
    limits = service.settings.limits
    ws = web.WebSocketResponse(max_msg_size=max_msg_size)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="websocket upgrade required")
    await ws.prepare(request)
    bridge = IngestBridge(service, name)
    reason = "disconnected"
    try:
        while not ws.closed:
            timeout = limits.idle_timeout_s if core.started else limits.start_timeout_s
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                what = "no audio" if core.started else "no call start"
                message = f"{what} within {timeout:g} s"
                await bridge.error("timeout", message, fatal=True)
                await ws.close(code=CLOSE_POLICY_VIOLATION, message=close_reason("timeout", message))
                reason = "timeout" if bridge.handle is not None else "error"
                break
            if msg.type == WSMsgType.TEXT:
                events = core.receive_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                events = core.receive_bytes(msg.data)
            elif msg.type == WSMsgType.ERROR:  # over aiohttp's own size cap
                events = [
                    *core.receive_eof(None),
                    Violation("message_too_big", "message over the size limit", True, CLOSE_MESSAGE_TOO_BIG),
                ]
            else:  # the platform closed the socket (or it dropped): keep the resamplers' tails
                events = core.receive_eof(ws.close_code)
            stop = False
            for ev in events:
                if isinstance(ev, OpenCall):
                    try:
                        claims = ingest_claims(service, request, ev.token)
                        await bridge.open(ev.params, claims)
                    except AuthError as err:
                        code = "unauthorized" if err.status == 401 else "forbidden"
                        await ws.close(code=CLOSE_POLICY_VIOLATION, message=close_reason(code, err.reason))
                        reason, stop = "error", True
                        break
                    except Refused as exc:
                        await ws.close(
                            code=CLOSE_POLICY_VIOLATION, message=close_reason(exc.code, exc.message)
                        )
                        reason, stop = "error", True
                        break
                elif isinstance(ev, LegAudio):
                    await bridge.feed(ev.legs)
                elif isinstance(ev, MetadataChanged):
                    bridge.update_metadata(ev.changes)
                elif isinstance(ev, Notice):
                    await bridge.error(ev.code, ev.message, fatal=False)
                elif isinstance(ev, EndOfCall):
                    reason, stop = ev.reason, True
                elif isinstance(ev, Violation):
                    log.info("%s: %s: %s", name, ev.code, ev.message)
                    await bridge.error(ev.code, ev.message, fatal=ev.fatal)
                    if ev.fatal:
                        if not ws.closed:
                            await ws.close(code=ev.close_code, message=close_reason(ev.code, ev.message))
                        reason, stop = "error", True
                        break
            if stop or msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
    except Exception:
        log.exception("%s connection failed", name)
        reason = "error"
    finally:
        await bridge.close(reason)
        if not ws.closed:
            await ws.close(code=CLOSE_NORMAL, message=b"call ended")
    return ws
