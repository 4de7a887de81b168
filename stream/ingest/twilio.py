"""Twilio Media Streams: ``WS /v1/adapters/twilio``.

TwiML ``<Start><Stream url="wss://host/v1/adapters/twilio" track="both_tracks">``
with ``<Parameter>`` children makes Twilio open a websocket and send JSON text
frames (message formats as published in Twilio's "Media Streams - WebSocket
Messages" page):

* ``{"event": "connected", "protocol": "Call", "version": "1.0.0"}``
* ``{"event": "start", "sequenceNumber": "1", "streamSid": "MZ...", "start": {"streamSid": "MZ...",
  "accountSid": "AC...", "callSid": "CA...", "tracks": ["inbound", "outbound"],
  "customParameters": {...}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
  "channels": 1}}}``
* ``{"event": "media", "sequenceNumber": "3", "streamSid": "MZ...", "media": {"track": "inbound",
  "chunk": "2", "timestamp": "20", "payload": "<base64 mu-law>"}}`` -- 20 ms, 8 kHz, one track each
* ``{"event": "mark", ...}``, ``{"event": "dtmf", ...}`` (accepted, not used), and finally
  ``{"event": "stop", "sequenceNumber": "...", "streamSid": "MZ...", "stop": {...}}``.

Mapping: ``inbound`` (audio Twilio receives from the caller) is the leg named
by ``adapters.twilio_inbound_leg`` (default ``customer``), ``outbound`` the
other one; a ``both_tracks`` stream is one connection carrying both legs, and
two single-track streams of the same call join one call.  The call id is the
``callSid`` (or the custom parameter ``call_id``); the language comes from the
custom parameter ``language`` (``zh``/``en``/``zh-CN``/``en-US``...) or
``default_language``; the token (role ``ingest``) from the custom parameter
``token``, or ``?token=`` / ``Authorization`` on the URL request.  The other
custom parameters, and the stream/call/account sids, become call metadata.

Leg time follows Twilio's clock: a media ``timestamp`` (ms since the stream
started) ahead of the audio received on that track means packets were not
sent, and the gap is filled with silence (at most :data:`MAX_GAP_FILL_S` per
gap) so both legs stay aligned.

Errors (the socket is closed with the code and ``"<code>: <message>"``, the
only error channel Twilio reads; Twilio does not resend):

=====================  =====  ======  ==================================================
code                   close  fatal   when
=====================  =====  ======  ==================================================
``message_too_big``    1009   yes     a text frame over :func:`max_text_chars`, or a
                                      media payload over ``limits.max_frame_bytes``
``bad_json``           1007   early   not JSON / not an object / no string ``event``
``unknown_type``       1008   early   an ``event`` Twilio does not send
``invalid_start``      1007   yes     ``start`` lacks sids or tracks, or has bad ones
``unsupported_format`` 1003   yes     not 8 kHz mono mu-law, or a language we lack
``duplicate_start``    1008   yes     a second ``start``
``not_started``        1008   yes     ``media``/``stop`` before ``start``
``out_of_order``       --     no      ``sequenceNumber`` not increasing (message dropped)
``sequence_gap``       --     no      ``sequenceNumber`` skipped ahead (messages lost)
``invalid_media``      --     no      bad track / payload / timestamp (message dropped)
``stream_mismatch``    --     no      another stream's ``streamSid`` (message dropped)
``unexpected_binary``  --     no      a binary frame (Twilio sends only text)
=====================  =====  ======  ==================================================

"early": fatal before ``start``, reported and skipped after it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from stream.ingest.base import (
    LEGS,
    AudioDecoder,
    clean_metadata,
    flush_tails,
    map_language,
    token_credentials,
    valid_call_id,
)
from stream.ingest.connections import run_websocket
from stream.ingest.context import IngestContext
from stream.ingest.core import Phase, StreamingCore
from stream.ingest.events import EndOfCall, IngestEvent, LegAudio, Metadata, OpenCall, Violation
from stream.ingest.refusal import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    WS_MAX_MESSAGE_FACTOR,
)
from stream.live.session import CallParams
from stream.settings import LimitSettings

PATH: Final = "/v1/adapters/twilio"
SAMPLE_RATE: Final = 8000
ENCODING: Final = "audio/x-mulaw"
MAX_GAP_FILL_S: Final = 60.0  # longest timestamp gap on one track that is filled with silence
MIN_GAP_MS: Final = 10  # timestamps ahead by less than this (half a packet) are jitter, not a gap
RESERVED_PARAMETERS: Final = ("token", "language", "call_id")  # custom parameters we consume
EVENTS: Final = ("connected", "start", "media", "mark", "dtmf", "stop")
TRACK_NAMES: Final = {"inbound": "inbound", "outbound": "outbound", "inbound_track": "inbound",
                      "outbound_track": "outbound"}  # fmt: skip


def max_text_chars(limits: LimitSettings) -> int:
    """A media message is a base64 payload of at most ``max_frame_bytes`` plus a little JSON."""
    return limits.max_control_bytes + 4 * math.ceil(limits.max_frame_bytes / 3)


class TwilioProtocol(StreamingCore):
    """State machine of one Media Streams connection (sans-IO)."""

    def __init__(self, *, limits: LimitSettings, inbound_leg: str, default_language: str) -> None:
        super().__init__(limits)
        self.inbound_leg = inbound_leg
        self.outbound_leg = next(leg for leg in LEGS if leg != inbound_leg)
        self.default_language = default_language
        self.stream_sid: str | None = None
        self.last_seq: int | None = None
        self.tracks: dict[str, str] = {}  # Twilio track -> leg
        self.decoders: dict[str, AudioDecoder] = {}  # Twilio track -> decoder

    def receive_text(self, text: str) -> list[IngestEvent]:
        if self.state is Phase.CLOSED:
            return []
        if len(text) > max_text_chars(self.limits):
            return self._fatal(
                "message_too_big",
                f"message over {max_text_chars(self.limits)} characters",
                CLOSE_MESSAGE_TOO_BIG,
            )
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return self._early("bad_json", "message is not valid JSON", CLOSE_INVALID_PAYLOAD)
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            return self._early(
                "bad_json", "message must be an object with a string 'event'", CLOSE_INVALID_PAYLOAD
            )
        kind = message["event"]
        if kind not in EVENTS:
            return self._early("unknown_type", f"unknown event {kind!r}", CLOSE_POLICY_VIOLATION)
        if kind == "connected":
            return (
                []
                if self.state is Phase.AWAIT_START
                else self._note("out_of_order", "'connected' after 'start'")
            )
        notes = self._sequence(message)
        if notes is None:
            return self._note(
                "out_of_order", f"sequenceNumber {message.get('sequenceNumber')!r} is not increasing"
            )
        if kind == "start":
            return [*notes, *self._on_start(message)]
        if self.state is Phase.AWAIT_START:
            return self._fatal("not_started", f"{kind!r} before 'start'", CLOSE_POLICY_VIOLATION)
        sid = message.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            return [
                *notes,
                *self._note("stream_mismatch", f"message of stream {sid!r} on stream {self.stream_sid}"),
            ]
        if kind == "media":
            return [*notes, *self._on_media(message.get("media"))]
        if kind == "stop":
            events: list[IngestEvent] = [*notes, *self._tails(), EndOfCall("stop")]
            self.state = Phase.CLOSED
            return events
        return notes  # mark, dtmf: nothing to do for a listener

    def receive_bytes(self, data: bytes) -> list[IngestEvent]:
        if self.state is Phase.CLOSED:
            return []
        return self._note(
            "unexpected_binary", f"binary frame of {len(data)} bytes ignored (Twilio sends JSON)"
        )

    def receive_eof(self, close_code: int | None) -> list[IngestEvent]:
        if self.state is Phase.CLOSED:
            return []
        events = self._tails()
        self.state = Phase.CLOSED
        return [*events, EndOfCall("disconnected")]

    # -- handlers ---------------------------------------------------------------------------------

    def _on_start(self, message: Mapping[str, Any]) -> list[IngestEvent]:
        if self.state is not Phase.AWAIT_START:
            return self._fatal("duplicate_start", "'start' was already received", CLOSE_POLICY_VIOLATION)
        start = message.get("start")
        if not isinstance(start, dict):
            return self._fatal("invalid_start", "'start' needs a 'start' object")
        stream_sid, call_sid = start.get("streamSid", message.get("streamSid")), start.get("callSid")
        if not isinstance(stream_sid, str) or not stream_sid or valid_call_id(call_sid) is None:
            return self._fatal("invalid_start", "start needs a streamSid and a callSid")
        tracks = start.get("tracks", ["inbound"])
        if (
            not isinstance(tracks, list)
            or not tracks
            or any(t not in TRACK_NAMES for t in tracks)
            or len({TRACK_NAMES[t] for t in tracks}) != len(tracks)
        ):
            return self._fatal(
                "invalid_start", "start.tracks must list 'inbound' and/or 'outbound' once each"
            )
        fmt = start.get("mediaFormat", {})
        if not isinstance(fmt, dict):
            return self._fatal("invalid_start", "start.mediaFormat must be an object")
        got = (fmt.get("encoding", ENCODING), fmt.get("sampleRate", SAMPLE_RATE), fmt.get("channels", 1))
        if got != (ENCODING, SAMPLE_RATE, 1):
            return self._fatal(
                "unsupported_format",
                f"media format {got} is not {ENCODING} 8000 Hz mono",
                CLOSE_UNSUPPORTED_DATA,
            )
        custom = start.get("customParameters", {})
        if not isinstance(custom, dict):
            return self._fatal("invalid_start", "start.customParameters must be an object")
        token = custom.get("token")
        language = map_language(_text(custom.get("language")), self.default_language)
        if language is None:
            return self._fatal(
                "unsupported_format",
                f"language {custom.get('language')!r} is not supported",
                CLOSE_UNSUPPORTED_DATA,
            )
        call_id = valid_call_id(custom.get("call_id")) or str(call_sid)
        self.stream_sid = stream_sid
        for track in tracks:
            name = TRACK_NAMES[track]
            leg = self.inbound_leg if name == "inbound" else self.outbound_leg
            self.tracks[name] = leg
            self.decoders[name] = AudioDecoder("mulaw", SAMPLE_RATE, [leg])
        self.state = Phase.STREAMING
        metadata: Metadata = {
            "source": "twilio",
            "twilio_call_sid": str(call_sid),
            "twilio_stream_sid": stream_sid,
        }
        if isinstance(start.get("accountSid"), str):
            metadata["twilio_account_sid"] = start["accountSid"]
        extra, refused = clean_metadata(
            {k: v for k, v in custom.items() if k not in RESERVED_PARAMETERS}, already=len(metadata)
        )
        params = CallParams(
            call_id=call_id,
            language=language,
            sample_rate=SAMPLE_RATE,
            encoding="mulaw",
            legs=tuple(self.tracks.values()),
            metadata={**extra, **metadata},
        )
        events: list[IngestEvent] = [OpenCall(params, token=token if isinstance(token, str) else None)]
        if refused:
            events += self._note("invalid_metadata", f"custom parameter(s) {', '.join(refused)} not kept")
        return events

    def _on_media(self, media: object) -> list[IngestEvent]:
        if not isinstance(media, dict):
            return self._note("invalid_media", "media message without a 'media' object")
        track = TRACK_NAMES.get(media.get("track", "inbound"))
        decoder = self.decoders.get(track) if track is not None else None
        if track is None or decoder is None:
            return self._note("invalid_media", f"media for track {media.get('track')!r}, not in this stream")
        payload = media.get("payload")
        if not isinstance(payload, str):
            return self._note("invalid_media", "media.payload must be a base64 string")
        if len(payload) > 4 * math.ceil(self.limits.max_frame_bytes / 3):
            return self._fatal(
                "message_too_big",
                f"media payload over {self.limits.max_frame_bytes} bytes",
                CLOSE_MESSAGE_TOO_BIG,
            )
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self._note("invalid_media", "media.payload is not valid base64")
        if len(audio) > self.limits.max_frame_bytes:
            return self._fatal(
                "message_too_big",
                f"media payload of {len(audio)} bytes exceeds {self.limits.max_frame_bytes}",
                CLOSE_MESSAGE_TOO_BIG,
            )
        events: list[IngestEvent] = []
        timestamp = media.get("timestamp")
        if timestamp is not None:
            ms = _integer(timestamp)
            if ms is None or ms < 0:
                return self._note("invalid_media", f"media.timestamp {timestamp!r} is not a number of ms")
            gap_ms = ms - decoder.source_samples * 1000 // SAMPLE_RATE
            if gap_ms >= MIN_GAP_MS:
                fill = min(gap_ms / 1000, MAX_GAP_FILL_S)
                events.append(LegAudio(decoder.silence(round(fill * SAMPLE_RATE))))
        if audio:
            events.append(LegAudio(decoder.decode(audio)))
        return events

    # -- helpers ----------------------------------------------------------------------------------

    def _sequence(self, message: Mapping[str, Any]) -> list[IngestEvent] | None:
        """``None``: drop the message (a repeat or late); otherwise notes about skipped numbers."""
        raw = message.get("sequenceNumber")
        if raw is None:
            return []
        seq = _integer(raw)
        if seq is None:
            return self._note("out_of_order", f"sequenceNumber {raw!r} is not a number")
        if self.last_seq is not None and seq <= self.last_seq:
            return None
        notes: list[IngestEvent] = []
        if self.last_seq is not None and seq > self.last_seq + 1:
            notes = self._note("sequence_gap", f"sequenceNumber jumped from {self.last_seq} to {seq}")
        self.last_seq = seq
        return notes

    def _tails(self) -> list[IngestEvent]:
        return flush_tails(*self.decoders.values())

    def _early(self, code: str, message: str, close_code: int) -> list[IngestEvent]:
        if self.state is Phase.AWAIT_START:
            return self._fatal(code, message, close_code)
        return self._note(code, message)

    @staticmethod
    def _note(code: str, message: str) -> list[IngestEvent]:
        return [Violation(code, message, fatal=False)]


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def handle(ctx: IngestContext, request: web.Request) -> web.StreamResponse:
    settings = ctx.settings
    core = TwilioProtocol(
        limits=settings.limits,
        inbound_leg=settings.adapters.twilio_inbound_leg,
        default_language=settings.default_language,
    )
    return await run_websocket(
        ctx,
        request,
        core,
        "twilio",
        max_msg_size=max_text_chars(settings.limits) * WS_MAX_MESSAGE_FACTOR,
        credentials=token_credentials(ctx, request),
    )


def add_route(app: web.Application, ctx: IngestContext) -> None:
    async def twilio(request: web.Request) -> web.StreamResponse:
        return await handle(ctx, request)

    app.router.add_get(PATH, twilio)
