"""The ingest routes: native ``/v1/ingest`` and the telephony adapters, registered on the web app.

:mod:`stream.web.server` calls :func:`register_routes` with itself as the
:class:`~stream.ingest.context.IngestContext`; nothing here knows the web service.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from stream.auth import AuthError
from stream.ingest import audiohook, freeswitch, twilio
from stream.ingest.audiosocket import AudioSocketServer
from stream.ingest.connections import WebSocketConnection, run_websocket
from stream.ingest.context import IngestContext
from stream.ingest.driver import send_all
from stream.ingest.native import IngestProtocol
from stream.ingest.refusal import WS_MAX_MESSAGE_FACTOR, http_refusal, is_websocket_upgrade, refusal_code

NATIVE_PATH: Final = "/v1/ingest"


def register_routes(app: web.Application, ctx: IngestContext) -> None:
    """Add the native ingest route and the adapters' websocket routes."""

    async def ingest(request: web.Request) -> web.StreamResponse:
        return await native_ingest(ctx, request)

    app.router.add_get(NATIVE_PATH, ingest)
    audiohook.add_route(app, ctx)
    twilio.add_route(app, ctx)
    freeswitch.add_route(app, ctx)


async def native_ingest(ctx: IngestContext, request: web.Request) -> web.StreamResponse:
    """One native ingest connection (protocol in :mod:`stream.ingest.native`).

    The token's role and tenant are checked before the upgrade; its scope over the call id once
    ``start`` names the call (so a refused token learns nothing about the call).
    """
    limits = ctx.settings.limits
    try:
        claims = ctx.gate.claims(request)
        ctx.gate.may_send_audio(claims)
    except AuthError as err:
        return await _refuse(request, err, IngestProtocol(limits))
    size = limits.max_frame_bytes * WS_MAX_MESSAGE_FACTOR
    core = IngestProtocol(limits)
    return await run_websocket(ctx, request, core, "ingest", max_msg_size=size, credentials=lambda _: claims)


async def _refuse(request: web.Request, err: AuthError, core: IngestProtocol) -> web.StreamResponse:
    """Refused before the call exists: the core's answer to any refusal (an ``error`` frame, then
    1008); a plain HTTP request gets the HTTP refusal."""
    if not is_websocket_upgrade(request):
        raise http_refusal(err)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    core.call_refused(refusal_code(err), err.reason)
    await send_all(WebSocketConnection(ws), core)
    return ws


async def start_audiosocket(ctx: IngestContext) -> AudioSocketServer | None:
    """Start the AudioSocket listener if ``adapters.audiosocket_port`` is set (``None`` if off).

    Stop it with ``await server.stop()`` before the calls are shut down, so each
    AudioSocket call finishes through its own connection.
    """
    settings = ctx.settings.adapters
    if not settings.audiosocket_port:
        return None
    server = AudioSocketServer(ctx)
    await server.start(settings.audiosocket_host, settings.audiosocket_port)
    return server
