"""Ingest: the native protocol and each telephony platform's media fork, into the one call path.

Routes (set-up on each platform's side: docs/telephony.md), registered by
:func:`register_routes` with a narrow :class:`~.context.IngestContext`:

- ``WS  /v1/ingest``                the native protocol (:mod:`.native`)
- ``WS  /v1/adapters/audiohook``   Genesys Cloud AudioHook, protocol v2 (:mod:`.audiohook`)
- ``WS  /v1/adapters/twilio``      Twilio Media Streams (:mod:`.twilio`)
- ``WS  /v1/adapters/freeswitch``  FreeSWITCH ``mod_audio_fork`` (:mod:`.freeswitch`)
- ``TCP audiosocket_host:audiosocket_port``  Asterisk AudioSocket (:mod:`.audiosocket`), off by default

Each transport is a sans-IO core that only translates its wire format into the
one vocabulary of :mod:`.events` and queues its own replies; one driver
(:mod:`.driver`) runs them all, opening, feeding and closing calls through
:class:`stream.live.calls.CallManager` (:class:`.base.IngestBridge`).  So a call
arriving through any of them produces the same transcripts and guidance as the
native endpoint for the same audio, shows up in ``/v1/calls``, the overlay, the
store and MQTT alike.
"""

from __future__ import annotations

from stream.ingest.audiosocket import AudioSocketServer
from stream.ingest.routes import register_routes, start_audiosocket

__all__ = ["AudioSocketServer", "register_routes", "start_audiosocket"]
