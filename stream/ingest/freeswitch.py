"""FreeSWITCH ``mod_audio_fork``: ``WS /v1/adapters/freeswitch``.

The dialplan or an ESL client runs::

    uuid_audio_fork <uuid> start ws://host:8080/v1/adapters/freeswitch?token=... <mix> <rate> <metadata>

with ``<mix>`` ``mono`` (the caller only), ``mixed`` (both parties in one
channel) or ``stereo`` (caller on channel 0, callee on channel 1) and
``<rate>`` ``8k`` or ``16k``.  mod_audio_fork then sends ``<metadata>`` as the
first (text) frame and binary frames of signed 16-bit little-endian PCM (L16),
interleaved when stereo, until the fork stops or the call hangs up, when it
closes the socket.

mod_audio_fork does not tell the server the mix or the rate, so say them
(defaults: ``stereo``, 8000 Hz) in the URL query or in the metadata, which
must be a JSON object; metadata wins over the query:

=============  =========================================  ==============================
key            values                                     default
=============  =========================================  ==============================
``mix``        ``mono`` / ``mixed`` / ``stereo``          ``stereo``
``rate``       ``8000``/``8k`` or ``16000``/``16k``       ``8000`` (``sample_rate`` too)
``call_id``    1-128 of ``A-Za-z0-9._:-``                 ``uuid`` if given, else random
``language``   ``zh`` / ``en`` / ``zh-CN`` / ``en-US``...  ``default_language``
``token``      an ``ingest`` token                        (or ``Authorization`` header)
=============  =========================================  ==============================

Pass the channel's uuid, e.g. metadata ``{"call_id":"${uuid}","language":"zh"}``.
Other scalar metadata entries become call metadata.  Channel 0 (the caller,
also the whole of ``mono`` and ``mixed``) is the leg named by
``adapters.freeswitch_channel0_leg`` (default ``customer``); stereo channel 1
is the other leg.  ``mixed`` audio cannot be attributed to a speaker -- every
utterance lands on that one leg -- so use ``stereo`` for agent assist.

Later text frames (``uuid_audio_fork <uuid> send_text``) that are JSON objects
are merged into the call's metadata; the fork ending with close code 1000 ends
the call as ``stop``, any other end as ``disconnected``.

Errors: as the native protocol (socket closed with the code and
``"<code>: <message>"``): ``message_too_big`` 1009 (text over
``limits.max_control_bytes``, audio over ``limits.max_frame_bytes``),
``bad_json`` / ``invalid_start`` 1007 (first frame not a JSON object / bad
keys), ``unsupported_format`` 1003 (mix, rate or language we lack),
``not_started`` 1008 (audio before the metadata frame), ``misaligned_frame``
1007 (not whole sample frames) -- all fatal; a later text frame that is not a
JSON object is ``invalid_metadata``, reported and ignored.
"""

from __future__ import annotations

import json
import uuid
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
from stream.ingest.events import EndOfCall, IngestEvent, LegAudio, MetadataChanged, OpenCall, Violation
from stream.ingest.refusal import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    WS_MAX_MESSAGE_FACTOR,
)
from stream.live.session import CallParams
from stream.settings import LimitSettings

PATH: Final = "/v1/adapters/freeswitch"
MIXES: Final = ("mono", "mixed", "stereo")
RATES: Final = {"8000": 8000, "8k": 8000, "16000": 16000, "16k": 16000}
RESERVED_KEYS: Final = ("mix", "rate", "sample_rate", "call_id", "uuid", "language", "token")


class FreeSwitchProtocol(StreamingCore):
    """State machine of one audio fork (sans-IO); ``query`` is the URL's query parameters."""

    def __init__(
        self,
        *,
        limits: LimitSettings,
        channel0_leg: str,
        default_language: str,
        query: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits)
        self.channel0_leg = channel0_leg
        self.default_language = default_language
        self.query = dict(query or {})
        self.decoder: AudioDecoder | None = None
        self.mix = ""

    def receive_text(self, text: str) -> list[IngestEvent]:
        if self.state is Phase.CLOSED:
            return []
        if len(text) > self.limits.max_control_bytes:
            return self._fatal(
                "message_too_big",
                f"text frame over {self.limits.max_control_bytes} characters",
                CLOSE_MESSAGE_TOO_BIG,
            )
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            if self.state is Phase.AWAIT_START:
                return self._fatal("bad_json", "the first frame must be a JSON object of metadata")
            return [Violation("invalid_metadata", "text frame is not a JSON object; ignored", fatal=False)]
        if self.state is Phase.AWAIT_START:
            return self._on_metadata(value)
        kept, refused = clean_metadata({k: v for k, v in value.items() if k not in RESERVED_KEYS})
        events: list[IngestEvent] = [MetadataChanged(kept)] if kept else []
        if refused:
            events.append(
                Violation("invalid_metadata", f"entries {', '.join(refused)} not kept", fatal=False)
            )
        return events

    def receive_bytes(self, data: bytes) -> list[IngestEvent]:
        if self.state is Phase.CLOSED:
            return []
        if len(data) > self.limits.max_frame_bytes:
            return self._fatal(
                "message_too_big",
                f"audio frame of {len(data)} bytes exceeds {self.limits.max_frame_bytes}",
                CLOSE_MESSAGE_TOO_BIG,
            )
        if self.decoder is None:
            return self._fatal("not_started", "audio before the metadata frame", CLOSE_POLICY_VIOLATION)
        if self.decoder.misaligned(len(data)):
            return self._fatal(
                "misaligned_frame",
                f"audio frame of {len(data)} bytes is not a whole number of "
                f"{self.decoder.frame_bytes}-byte sample frames ({self.mix} L16)",
            )
        return [LegAudio(self.decoder.decode(data))] if data else []

    def receive_eof(self, close_code: int | None) -> list[IngestEvent]:
        if self.state is Phase.CLOSED:
            return []
        events = self._tails()
        self.state = Phase.CLOSED
        return [*events, EndOfCall("stop" if close_code == CLOSE_NORMAL else "disconnected")]

    def _on_metadata(self, meta: Mapping[str, Any]) -> list[IngestEvent]:
        def setting(*keys: str) -> Any:
            for key in keys:
                if key in meta:
                    return meta[key]
            for key in keys:
                if key in self.query:
                    return self.query[key]
            return None

        mix = setting("mix") or "stereo"
        if mix not in MIXES:
            return self._fatal(
                "unsupported_format", f"mix {mix!r} is not one of {', '.join(MIXES)}", CLOSE_UNSUPPORTED_DATA
            )
        raw_rate = setting("rate", "sample_rate")
        rate = RATES.get(str(raw_rate).lower()) if raw_rate is not None else 8000
        if rate is None:
            return self._fatal(
                "unsupported_format", f"rate {raw_rate!r} is not 8000 or 16000", CLOSE_UNSUPPORTED_DATA
            )
        language_tag = setting("language")
        language = map_language(
            language_tag if isinstance(language_tag, str) else None, self.default_language
        )
        if language is None or (language_tag is not None and not isinstance(language_tag, str)):
            return self._fatal(
                "unsupported_format", f"language {language_tag!r} is not supported", CLOSE_UNSUPPORTED_DATA
            )
        raw_id = setting("call_id", "uuid")
        call_id = valid_call_id(raw_id)
        if raw_id is not None and call_id is None:
            return self._fatal("invalid_start", "call_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        token = setting("token")
        other = next(leg for leg in LEGS if leg != self.channel0_leg)
        channels = [self.channel0_leg, other] if mix == "stereo" else [self.channel0_leg]
        self.mix = mix
        self.decoder = AudioDecoder("pcm_s16le", rate, channels)
        self.state = Phase.STREAMING
        kept, refused = clean_metadata({k: v for k, v in meta.items() if k not in RESERVED_KEYS}, already=2)
        params = CallParams(
            call_id=call_id or f"fs-{uuid.uuid4().hex[:16]}",
            language=language,
            sample_rate=rate,
            encoding="pcm_s16le",
            legs=tuple(channels),
            metadata={**kept, "source": "freeswitch", "audio_mix": mix},
        )
        events: list[IngestEvent] = [OpenCall(params, token=token if isinstance(token, str) else None)]
        if refused:
            events.append(
                Violation("invalid_metadata", f"entries {', '.join(refused)} not kept", fatal=False)
            )
        return events

    def _tails(self) -> list[IngestEvent]:
        return flush_tails(self.decoder)


async def handle(ctx: IngestContext, request: web.Request) -> web.StreamResponse:
    settings = ctx.settings
    query = {k: v for k, v in request.query.items() if k != "token"}  # the token is read by the gate
    core = FreeSwitchProtocol(
        limits=settings.limits,
        channel0_leg=settings.adapters.freeswitch_channel0_leg,
        default_language=settings.default_language,
        query=query,
    )
    limit = max(settings.limits.max_frame_bytes, settings.limits.max_control_bytes) * WS_MAX_MESSAGE_FACTOR
    return await run_websocket(
        ctx, request, core, "freeswitch", max_msg_size=limit, credentials=token_credentials(ctx, request)
    )


def add_route(app: web.Application, ctx: IngestContext) -> None:
    async def freeswitch(request: web.Request) -> web.StreamResponse:
        return await handle(ctx, request)

    app.router.add_get(PATH, freeswitch)
