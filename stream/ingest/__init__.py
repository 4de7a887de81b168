"""Telephony adapters: each platform's media fork, translated into the one ingest path.

Routes (set-up on each platform's side: docs/telephony.md):

- ``WS  /v1/adapters/audiohook``   Genesys Cloud AudioHook, protocol v2 (:mod:`.audiohook`)
- ``WS  /v1/adapters/twilio``      Twilio Media Streams (:mod:`.twilio`)
- ``WS  /v1/adapters/freeswitch``  FreeSWITCH ``mod_audio_fork`` (:mod:`.freeswitch`)
- ``TCP audiosocket_host:audiosocket_port``  Asterisk AudioSocket (:mod:`.audiosocket`), off by default

Each adapter only translates its wire format: calls are opened, fed and closed
through :class:`stream.live.calls.CallManager` exactly as the native ``/v1/ingest``
does (:class:`.base.IngestBridge`), so a call arriving through any of them
produces the same transcripts and guidance as the native endpoint for the same
audio, shows up in ``/v1/calls``, the overlay, the store and MQTT alike.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from stream.ingest import audiohook, freeswitch, twilio
from stream.ingest.audiosocket import AudioSocketServer

if TYPE_CHECKING:
    from stream.web.server import Service

__all__ = ["AudioSocketServer", "register_adapters", "start_audiosocket"]

log = logging.getLogger(__name__)


def register_adapters(app: web.Application, service: Service) -> None:
    """Add the websocket routes of the adapters to the service's application."""
    audiohook.add_route(app, service)
    twilio.add_route(app, service)
    freeswitch.add_route(app, service)


async def start_audiosocket(service: Service) -> AudioSocketServer | None:
    """Start the AudioSocket listener if ``adapters.audiosocket_port`` is set (``None`` if off).

    Stop it with ``await server.stop()`` before the calls are shut down, so each
    AudioSocket call finishes through its own connection.
    """
    settings = service.settings.adapters
    if not settings.audiosocket_port:
        return None
    server = AudioSocketServer(service)
    await server.start(settings.audiosocket_host, settings.audiosocket_port)
    return server
