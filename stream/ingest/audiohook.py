"""Genesys Cloud AudioHook (protocol version 2): ``WS /v1/adapters/audiohook``.

Genesys (the *client*) opens a websocket per conversation, sends JSON control
messages and binary audio; we (the *server*) answer.  Message formats follow the
published protocol (its types in purecloudlabs/audiohook-reference-implementation,
``app/audiohook/src/protocol``), re-implemented here.

Handshake
---------
Required headers ``Audiohook-Organization-Id``, ``Audiohook-Session-Id`` and
``Audiohook-Correlation-Id`` (UUIDs; otherwise HTTP 400, the request is not
from an AudioHook client) and ``X-API-KEY``, which must be one of
``adapters.audiohook_api_keys`` (none configured: every connection is refused
unless ``auth.enabled`` is false).  With ``adapters.audiohook_client_secret``
set, the request must also carry a valid HTTP message signature
(:mod:`stream.ingest.httpsig`).  A refused client gets the protocol's answer:
the websocket is accepted after :data:`AUTH_FAILURE_DELAY_S` (so timing tells
nothing about which check failed), its ``open`` is answered with
``disconnect`` ``{"reason": "unauthorized"}``, and its ``close`` with ``closed``.

Messages
--------
Every message carries ``version: "2"``, ``id`` (the session id of the
handshake), ``type``, ``seq`` and ``parameters``; client messages add
``serverseq`` (the last server ``seq`` the client saw) and ``position`` (an
ISO 8601 ``PT<seconds>S`` stream position); server messages add ``clientseq``.
Checked on every client message: ``seq`` is exactly one more than the last,
``serverseq`` neither exceeds what we sent nor goes backwards, ``position``
never goes backwards and is never behind the audio received.

* ``open`` -> ``opened`` with one media format chosen from the offered list:
  stereo before mono, PCMU before L16, then the client's order; 8000 Hz (16000
  also accepted); channel ``external`` is the customer leg, ``internal`` the
  agent.  ``supportedLanguages: true`` is answered with ``en-US``/``zh-CN``.
  The call id is the ``conversationId`` (``<conversationId>:<sessionId>`` if
  that id is already taken, e.g. a second session of the same conversation);
  a ``conversationId`` of all zeros is Genesys's *connection probe*: answered,
  but no call is opened.
* ``ping`` -> ``pong``; ``paused`` / ``resumed`` (no audio while paused);
  ``paused`` and ``update`` end the utterance in progress on every leg, so
  what was said before them is transcribed and sent now (a pause may last
  long; after a language change the rest is a new utterance), as Genesys's
  conformance suite expects;
  ``discarded`` and ``resumed`` announce audio the client did not send: it
  enters the pipeline as a *gap* (silence that keeps call time equal to the
  client's stream position but neither ends nor starts an utterance; at most
  :data:`MAX_GAP_FILL_S` per gap, never past the client's ``position``; a gap
  said to start after the position is noted on the call, not filled).  The
  position counts discarded audio but not paused time, so a ``resumed`` after
  a pause fills nothing unless the client's position moved on;
  ``update`` (a language change is also noted on the
  call: its language is fixed at open); ``error`` becomes an ``error`` event on
  the call; ``close`` -> the call finishes (everything received is
  transcribed, and the transcripts sent) -> ``closed``.
* Audio: binary frames of the chosen format, interleaved in the chosen channel
  order; PCMU is G.711 mu-law, L16 is signed 16-bit little-endian (as the
  reference implementation sends it).  At most ``limits.max_frame_bytes`` per
  frame; text messages at most :data:`MAX_TEXT_CHARS`.

Every final transcript of the call goes back to the client as an ``event``
message with one ``transcript`` entity (``id``, ``channelId`` = index in the
chosen channels, ``isFinal``, ``offset``/``duration`` on the stream-position
clock, one alternative with ``languages`` and a ``display`` interpretation and
its word ``tokens``), which is what a Genesys transcription connector reads.
Whisper gives neither calibrated confidences nor word timings, so confidence
is :data:`TRANSCRIPT_CONFIDENCE` and token times are spread over the utterance
in proportion to token length (estimates, documented as such).  Partial
transcripts are not sent: the connector expects revisions only as finals.

Errors
------
Every protocol violation (bad JSON or message shape, wrong ``id``/``seq``/
``serverseq``/``position``, unknown type, a message out of order, oversized or
misaligned audio, audio while paused) gets the protocol's error response: a
``disconnect`` ``{"reason": "error", "info": ...}``, after which the client
sends ``close`` and gets ``closed``.  The call ends with reason ``error`` and an
``error`` event, and audio already received is kept and transcribed.  No
``start_timeout_s`` ``open`` / ``idle_timeout_s`` silence (no message at all)
is answered the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hmac
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeGuard

from aiohttp import WSMsgType, web

from assist.events import TranscriptFinal
from stream.ingest.base import (
    LANGUAGE_TAGS,
    AudioDecoder,
    EndUtterances,
    IngestBridge,
    LegAudio,
    LegGap,
    MetadataChanged,
    Notice,
    Refused,
    Violation,
    clean_metadata,
    has_audio,
    map_language,
)
from stream.ingest.httpsig import SignatureVerifier, SignedRequest, canonical_header
from stream.ingest.native import Metadata
from stream.live.bus import SubscriberTooSlow
from stream.live.calls import CallHandle
from stream.live.session import CallParams
from stream.settings import LimitSettings, Settings

if TYPE_CHECKING:
    from stream.web.server import Service

log = logging.getLogger(__name__)

PATH: Final = "/v1/adapters/audiohook"
VERSION: Final = "2"
MAX_TEXT_CHARS: Final = 65_535  # the protocol's limit on a text message (as the reference server enforces)
MAX_GAP_FILL_S: Final = 600.0  # longest announced gap (discarded/paused audio) filled with silence
POSITION_TOLERANCE_S: Final = 0.001  # rounding slack between the client's position and our sample count
AUTH_FAILURE_DELAY_S: Final = 0.5  # a refused handshake is answered no sooner than this
CLOSE_GRACE_S: Final = 5.0  # after disconnect/closed, how long the client has to close the socket
TRANSCRIPT_CONFIDENCE: Final = 1.0  # Whisper has no calibrated confidence; what is sent passed the guard
MAX_INFO_CHARS: Final = 512  # the disconnect ``info`` text is cut to this
WS_MAX_MESSAGE_FACTOR: Final = 4  # aiohttp's cap is this multiple of our limits, so the core sees oversize

NULL_UUID: Final = "00000000-0000-0000-0000-000000000000"
UUID_PATTERN: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
DURATION_PATTERN: Final = re.compile(r"PT(\d*\.)?\d+S")
LANGUAGE_CODE_PATTERN: Final = re.compile(r"[a-z]{2,3}-[A-Za-z]{2,3}")  # the protocol's language code form
CHANNEL_LEGS: Final = {"external": "customer", "internal": "agent"}
FORMATS: Final = {"PCMU": "mulaw", "L16": "pcm_s16le"}
RATES: Final = (8000, 16000)
CLOSE_REASONS: Final = {"end": "stop", "error": "error", "disconnect": "error", "reconnect": "disconnected"}
CLIENT_TYPES: Final = ("open", "close", "discarded", "error", "paused", "resumed", "ping", "update")


class State(enum.Enum):
    PREPARING = "preparing"  # waiting for open
    OPENING = "opening"  # open received, call being opened
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSING = "closing"  # close received, call finishing
    CLOSED = "closed"  # closed sent
    ERROR = "error"  # disconnect sent; waiting for the client's close


@dataclass(frozen=True)
class Reply:
    """A server message to send, its ``seq`` already assigned: send replies in the order returned."""

    text: str


@dataclass(frozen=True)
class OpenSession:
    """``open`` accepted by the core: open the call (``params``; ``None`` for a connection probe),
    then call :meth:`AudioHookProtocol.accept_open` or :meth:`AudioHookProtocol.refuse_open`."""

    params: CallParams | None


@dataclass(frozen=True)
class CloseRequest:
    """``close`` received: finish the call, then call :meth:`AudioHookProtocol.close_done`."""

    reason: str


Event: TypeAlias = (
    Reply
    | OpenSession
    | CloseRequest
    | LegAudio
    | LegGap
    | EndUtterances
    | MetadataChanged
    | Notice
    | Violation
)


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Handshake:
    session_id: str
    organization_id: str
    correlation_id: str


class AudioHookProtocol:
    """State machine of one AudioHook session (sans-IO)."""

    def __init__(
        self,
        handshake: Handshake,
        *,
        limits: LimitSettings,
        default_language: str,
        unauthorized: str | None = None,
    ) -> None:
        self.handshake = handshake
        self.session_id = handshake.session_id.lower()
        self.limits = limits
        self.default_language = default_language
        self.unauthorized = unauthorized
        self.state = State.PREPARING
        self.seq = 0  # last server seq assigned
        self.clientseq = 0  # last client seq accepted
        self.serverseq_seen = 0
        self.position = 0.0  # last client position, seconds
        self.media: dict[str, Any] | None = None
        self.decoder: AudioDecoder | None = None
        self.language = default_language
        self.language_tag = LANGUAGE_TAGS[default_language]
        self.probe = False
        self._wants_languages = False

    # -- input -----------------------------------------------------------------------------------

    def receive_text(self, text: str) -> list[Event]:
        if self.state in (State.CLOSED, State.ERROR):
            return self._after_end(text)
        try:
            if len(text) > MAX_TEXT_CHARS:
                raise _Bad("message_too_big", f"text message longer than {MAX_TEXT_CHARS} characters")
            message = self._parse(text)
            kind = message["type"]
            params = message["parameters"]
            if kind == "open":
                return self._on_open(params)
            if kind == "close":
                return self._on_close(params)
            if self.state is State.PREPARING:
                raise _Bad("not_opened", f"{kind!r} before 'open'")
            if kind == "ping":
                return [self._reply("pong", {})]
            if kind == "paused":
                _expect_params(params, kind, set())
                if self.state is not State.ACTIVE:
                    return []  # already paused: Genesys may say so more than once
                self.state = State.PAUSED
                return [EndUtterances()]
            if kind in ("resumed", "discarded"):
                return self._on_gap(kind, params)
            if kind == "update":
                return self._on_update(params)
            return self._on_client_error(params)
        except _Bad as bad:
            return self.violation(bad.code, bad.message)

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self.state in (State.CLOSED, State.ERROR, State.CLOSING):
            return []  # stragglers after close or disconnect: the call is already finishing
        if len(data) > self.limits.max_frame_bytes:
            return self.violation(
                "message_too_big", f"audio frame of {len(data)} bytes exceeds {self.limits.max_frame_bytes}"
            )
        if self.state is State.PAUSED:
            return self.violation("audio_while_paused", "audio received while paused")
        if self.state is not State.ACTIVE or self.decoder is None:
            return self.violation("not_opened", "audio before 'opened'")
        if self.decoder.misaligned(len(data)):
            return self.violation(
                "misaligned_frame",
                f"audio frame of {len(data)} bytes is not a whole number of "
                f"{self.decoder.frame_bytes}-byte sample frames",
            )
        if not data:
            return []
        return [LegAudio(self.decoder.decode(data))]

    def receive_eof(self) -> list[Event]:
        """The socket ended: the resamplers' tails, once."""
        events: list[Event] = []
        if self.decoder is not None:
            tail = self.decoder.flush()
            if has_audio(tail):
                events.append(LegAudio(tail))
            self.decoder = None
        if self.state not in (State.CLOSED, State.ERROR):
            self.state = State.CLOSED
        return events

    # -- transport calls --------------------------------------------------------------------------

    def accept_open(self) -> list[Event]:
        """The call is open (or this is a probe): ``opened`` with the chosen media."""
        if self.state is not State.OPENING or self.media is None:
            return []
        self.state = State.ACTIVE
        params: dict[str, Any] = {"media": [self.media], "startPaused": False}
        if self._wants_languages:
            params["supportedLanguages"] = [LANGUAGE_TAGS[lang] for lang in sorted(LANGUAGE_TAGS)]
        return [self._reply("opened", params)]

    def refuse_open(self, code: str, info: str) -> list[Event]:
        """The call could not be opened: ``disconnect`` (``unauthorized`` for auth refusals)."""
        reason = "unauthorized" if code in ("unauthorized", "forbidden") else "error"
        return self._disconnect(code, info, reason=reason)

    def close_done(self) -> list[Event]:
        """The call has finished after ``close``: ``closed``."""
        if self.state is not State.CLOSING:
            return []
        reply = self._reply("closed", {})
        self.state = State.CLOSED
        return [reply]

    def timeout(self, what: str) -> list[Event]:
        if self.state in (State.CLOSED, State.ERROR, State.CLOSING):
            return []
        return self.violation("timeout", what)

    def transcript(self, final: TranscriptFinal, call_id: str) -> Reply | None:
        """The ``event`` message carrying one final transcript, if this session carries its leg."""
        if self.state not in (State.ACTIVE, State.PAUSED, State.CLOSING) or self.media is None:
            return None
        legs = [CHANNEL_LEGS[ch] for ch in self.media["channels"]]
        if final.speaker not in legs:
            return None
        tokens = [
            {
                "type": "word",
                "value": value,
                "confidence": TRANSCRIPT_CONFIDENCE,
                "offset": _duration(start),
                "duration": _duration(length),
            }
            for value, start, length in _tokens(final.text, final.start, final.end)
        ]
        entity = {
            "type": "transcript",
            "data": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"callassist:{call_id}/{final.utterance_id}")),
                "channelId": legs.index(final.speaker),
                "isFinal": True,
                "offset": _duration(final.start),
                "duration": _duration(final.end - final.start),
                "alternatives": [
                    {
                        "confidence": TRANSCRIPT_CONFIDENCE,
                        "languages": [self.language_tag],
                        "interpretations": [{"type": "display", "transcript": final.text, "tokens": tokens}],
                    }
                ],
            },
        }
        return self._reply("event", {"entities": [entity]})

    # -- handlers ---------------------------------------------------------------------------------

    def _on_open(self, p: dict[str, Any]) -> list[Event]:
        if self.state is not State.PREPARING:
            raise _Bad("duplicate_open", "'open' was already received")
        _expect_params(p, "open", {"organizationId", "conversationId", "participant", "media"})
        org = _uuid(p["organizationId"], "open.organizationId")
        conversation = _uuid(p["conversationId"], "open.conversationId")
        participant = p["participant"]
        if not isinstance(participant, dict):
            raise _Bad("invalid_message", "open.participant must be an object")
        participant_id = _uuid(participant.get("id"), "open.participant.id")
        for name in ("ani", "aniName", "dnis"):
            if not isinstance(participant.get(name), str):
                raise _Bad("invalid_message", f"open.participant.{name} must be a string")
        offers = p["media"]
        if not isinstance(offers, list):
            raise _Bad("invalid_message", "open.media must be a list")
        language = p.get("language")
        if language is not None and not isinstance(language, str):
            raise _Bad("invalid_message", "open.language must be a string")
        wants = p.get("supportedLanguages", False)
        if not isinstance(wants, bool):
            raise _Bad("invalid_message", "open.supportedLanguages must be a boolean")
        custom = p.get("customConfig", {})
        if not isinstance(custom, dict):
            raise _Bad("invalid_message", "open.customConfig must be an object")
        self._wants_languages = wants
        self.state = State.OPENING
        if self.unauthorized is not None:
            return self._disconnect("unauthorized", self.unauthorized, reason="unauthorized")
        if org != self.handshake.organization_id.lower():
            return self._disconnect(
                "unauthorized",
                "open.organizationId differs from Audiohook-Organization-Id",
                reason="unauthorized",
            )
        mapped = map_language(language, self.default_language)
        if mapped is None:
            supported = ", ".join(LANGUAGE_TAGS.values())
            return self._disconnect(
                "unsupported_language", f"language {language} is not supported ({supported})"
            )
        self.language = mapped
        self.language_tag = language or LANGUAGE_TAGS[mapped]
        media = _choose_media(offers)
        if media is None:
            return self._disconnect(
                "unsupported_format",
                "no offered media format is supported (PCMU or L16, 8000 Hz, external/internal channels)",
            )
        self.media = media
        self.decoder = AudioDecoder(
            FORMATS[media["format"]], media["rate"], [CHANNEL_LEGS[ch] for ch in media["channels"]]
        )
        if conversation == NULL_UUID:
            self.probe = True
            return [OpenSession(None)]
        metadata: Metadata = {
            "source": "genesys-audiohook",
            "genesys_conversation_id": conversation,
            "genesys_organization_id": org,
            "genesys_session_id": self.session_id,
            "genesys_correlation_id": self.handshake.correlation_id,
            "genesys_participant_id": participant_id,
            "genesys_language": self.language_tag,
        }
        extra, _refused = clean_metadata(custom, already=len(metadata))
        params = CallParams(
            call_id=conversation,
            language=mapped,
            sample_rate=media["rate"],
            encoding=FORMATS[media["format"]],
            legs=tuple(CHANNEL_LEGS[ch] for ch in media["channels"]),
            metadata={**extra, **metadata},
        )
        return [OpenSession(params)]

    def _on_close(self, p: dict[str, Any]) -> list[Event]:
        _expect_params(p, "close", {"reason"})
        reason = p["reason"]
        if reason not in CLOSE_REASONS:
            raise _Bad("invalid_message", f"close.reason {reason!r} is not one of {', '.join(CLOSE_REASONS)}")
        if self.state is State.CLOSING:
            return []
        self.state = State.CLOSING
        events: list[Event] = []
        if self.decoder is not None:
            tail = self.decoder.flush()
            self.decoder = None
            if has_audio(tail):
                events.append(LegAudio(tail))
        events.append(CloseRequest(CLOSE_REASONS[reason]))
        return events

    def _on_gap(self, kind: str, p: dict[str, Any]) -> list[Event]:
        _expect_params(p, kind, {"start", "discarded"})
        start = _seconds(p["start"], f"{kind}.start")
        discarded = _seconds(p["discarded"], f"{kind}.discarded")
        if kind == "resumed" and self.state is State.PAUSED:
            self.state = State.ACTIVE
        if start > self.position + POSITION_TOLERANCE_S:
            # Inconsistent, but only about audio that is not here: noted, nothing filled.
            return [
                Notice(
                    "invalid_position", f"{kind}.start {start:g} s is after the position {self.position:g} s"
                )
            ]
        if self.decoder is None:
            return []
        # Fill what the client did not send, but never past the position it reports.
        gap = min(discarded, self.position - self.decoder.seconds, MAX_GAP_FILL_S)
        samples = round(gap * self.decoder.sample_rate)
        if samples <= 0:
            return []
        return [LegGap(self.decoder.silence(samples))]

    def _on_update(self, p: dict[str, Any]) -> list[Event]:
        _expect_params(p, "update", {"language"})
        language = p["language"]
        if not isinstance(language, str) or not LANGUAGE_CODE_PATTERN.fullmatch(language):
            raise _Bad("invalid_message", "update.language must be a language code such as en-US")
        events: list[Event] = [MetadataChanged({"genesys_language": language}), EndUtterances()]
        if map_language(language, self.default_language) != self.language:
            events.append(
                Notice(
                    "language_change_ignored",
                    f"the conversation language changed to {language}; this call stays {self.language}",
                )
            )
        return events

    def _on_client_error(self, p: dict[str, Any]) -> list[Event]:
        _expect_params(p, "error", {"code", "message"})
        code, message = p["code"], p["message"]
        if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
            raise _Bad("invalid_message", "error needs an integer code and a string message")
        return [Notice("client_error", f"AudioHook client error {code}: {message[:MAX_INFO_CHARS]}")]

    # -- helpers ----------------------------------------------------------------------------------

    def _parse(self, text: str) -> dict[str, Any]:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            raise _Bad("bad_json", "text message is not valid JSON") from None
        if not isinstance(message, dict):
            raise _Bad("invalid_message", "message must be a JSON object")
        if message.get("version") != VERSION:
            raise _Bad("invalid_message", f"message version must be {VERSION!r}")
        kind = message.get("type")
        if not isinstance(kind, str):
            raise _Bad("invalid_message", "message needs a string 'type'")
        if not isinstance(message.get("parameters"), dict):
            raise _Bad("invalid_message", "message needs an object 'parameters'")
        seq, serverseq = message.get("seq"), message.get("serverseq")
        if not _is_seq(seq) or not _is_seq(serverseq):
            raise _Bad("invalid_message", "message needs non-negative integer 'seq' and 'serverseq'")
        msg_id = message.get("id")
        if not isinstance(msg_id, str) or msg_id.lower() != self.session_id:
            raise _Bad("invalid_message", "message id is not the session id of the handshake")
        position = _seconds(message.get("position"), "position")
        if seq != self.clientseq + 1:
            raise _Bad("out_of_order", f"seq {seq} does not follow {self.clientseq}")
        self.clientseq = seq
        if serverseq > self.seq:
            raise _Bad("out_of_order", f"serverseq {serverseq} is ahead of the last server seq {self.seq}")
        if serverseq < self.serverseq_seen:
            raise _Bad("out_of_order", f"serverseq {serverseq} went backwards (was {self.serverseq_seen})")
        self.serverseq_seen = serverseq
        if position + POSITION_TOLERANCE_S < self.position:
            raise _Bad("invalid_position", f"position went backwards ({self.position:g} -> {position:g} s)")
        received = self.decoder.seconds if self.decoder is not None else 0.0
        if position + POSITION_TOLERANCE_S < received:
            raise _Bad(
                "invalid_position", f"position {position:g} s is behind the audio received ({received:g} s)"
            )
        self.position = max(self.position, position)
        if kind not in CLIENT_TYPES:
            raise _Bad("unknown_type", f"{kind!r} is not an AudioHook client message")
        return message

    def _after_end(self, text: str) -> list[Event]:
        """After disconnect, only the client's ``close`` matters (answered with ``closed``)."""
        if self.state is State.CLOSED:
            return []
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return []
        if isinstance(message, dict) and message.get("type") == "close":
            if _is_seq(message.get("seq")):
                self.clientseq = max(self.clientseq, message["seq"])
            self.state = State.CLOSING
            return self.close_done()
        return []

    def _reply(self, kind: str, params: Mapping[str, Any]) -> Reply:
        self.seq += 1
        message = {
            "version": VERSION,
            "type": kind,
            "seq": self.seq,
            "clientseq": self.clientseq,
            "id": self.handshake.session_id,
            "parameters": dict(params),
        }
        return Reply(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    def _disconnect(self, code: str, info: str, *, reason: str = "error") -> list[Event]:
        events: list[Event] = []
        if self.decoder is not None:
            tail = self.decoder.flush()
            self.decoder = None
            if has_audio(tail):
                events.append(LegAudio(tail))
        events.append(self._reply("disconnect", {"reason": reason, "info": info[:MAX_INFO_CHARS]}))
        events.append(Violation(code, info, fatal=True))
        self.state = State.ERROR
        return events

    def violation(self, code: str, message: str) -> list[Event]:
        """A protocol violation found outside the core (e.g. a frame the websocket layer refused)."""
        if self.state in (State.CLOSED, State.ERROR, State.CLOSING):
            return []  # already ending: the client has its answer coming (closed) or has it (disconnect)
        return self._disconnect(code, message)


def _is_seq(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _uuid(value: object, name: str) -> str:
    if not isinstance(value, str) or not UUID_PATTERN.fullmatch(value):
        raise _Bad("invalid_message", f"{name} must be a UUID")
    return value.lower()


def _seconds(value: object, name: str) -> float:
    if not isinstance(value, str) or not DURATION_PATTERN.fullmatch(value):
        raise _Bad("invalid_message", f"{name} must be a duration like PT1.5S")
    seconds = float(value[2:-1])
    if not math.isfinite(seconds) or seconds > 1e9:
        raise _Bad("invalid_message", f"{name} is out of range")
    return seconds


def _duration(seconds: float) -> str:
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def _expect_params(p: dict[str, Any], kind: str, required: set[str]) -> None:
    """Required parameters present; unknown ones are ignored, as the protocol may grow."""
    missing = sorted(required - set(p))
    if missing:
        raise _Bad("invalid_message", f"{kind}.parameters lacks {', '.join(missing)}")


def _choose_media(offers: list[Any]) -> dict[str, Any] | None:
    """Stereo before mono, PCMU before L16, then the client's order; returned exactly as offered."""
    usable: list[tuple[int, int, int, dict[str, Any]]] = []
    for i, offer in enumerate(offers):
        if not isinstance(offer, dict) or offer.get("type") != "audio":
            continue
        fmt, rate, channels = offer.get("format"), offer.get("rate"), offer.get("channels")
        if fmt not in FORMATS or rate not in RATES or isinstance(rate, bool):
            continue
        if not isinstance(channels, list) or not 1 <= len(channels) <= 2:
            continue
        if any(ch not in CHANNEL_LEGS for ch in channels) or len(set(channels)) != len(channels):
            continue
        usable.append((-len(channels), 0 if fmt == "PCMU" else 1, i, offer))
    if not usable:
        return None
    return min(usable, key=lambda u: u[:3])[3]


_TOKEN_RE: Final = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def _tokens(text: str, start: float, end: float) -> list[tuple[str, float, float]]:
    """Words (or single CJK characters) with times spread over the utterance by length: estimates."""
    words = _TOKEN_RE.findall(text)
    total = sum(len(w) for w in words)
    if not words or total == 0:
        return []
    span = max(end - start, 0.0)
    out: list[tuple[str, float, float]] = []
    done = 0
    for w in words:
        out.append((w, start + span * done / total, span * len(w) / total))
        done += len(w)
    return out


# -- handshake checks ---------------------------------------------------------------------------


def handshake_of(request: web.Request) -> Handshake | None:
    values = [
        request.headers.get(name, "").strip()
        for name in ("Audiohook-Session-Id", "Audiohook-Organization-Id", "Audiohook-Correlation-Id")
    ]
    if not all(UUID_PATTERN.fullmatch(v) for v in values):
        return None
    return Handshake(session_id=values[0], organization_id=values[1], correlation_id=values[2])


def signed_request(request: web.Request) -> SignedRequest:
    headers = {name.lower(): canonical_header(request.headers.getall(name)) for name in set(request.headers)}
    return SignedRequest(method=request.method, target=request.raw_path, headers=headers)


def check_client(settings: Settings, request: web.Request, verifier: SignatureVerifier | None) -> str | None:
    """Why this client is refused (API key, then signature), or ``None``."""
    keys = settings.adapters.audiohook_api_keys
    api_key = request.headers.get("X-API-KEY", "").strip()
    if keys:
        if not api_key:
            return "missing X-API-KEY header"
        # Compare with every key, so the time taken does not say how close a guess was.
        matches = [hmac.compare_digest(api_key.encode(), k.encode()) for k in keys]
        if not any(matches):
            return "unknown API key"
    elif settings.auth.enabled:
        return "no AudioHook API keys are configured on this service"
    signed = signed_request(request)
    if verifier is not None:
        if not api_key:
            return "missing X-API-KEY header"
        return verifier.verify(signed, api_key)
    if keys and signed.is_signed():
        return "request is signed but no client secret is configured on this service"
    return None


# -- transport ---------------------------------------------------------------------------------


class AudioHookEndpoint:
    """The aiohttp handler; one per service (it owns the nonce memory of the signature checks)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        secret = service.settings.adapters.audiohook_client_secret
        self.verifier = SignatureVerifier(base64.b64decode(secret)) if secret else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        settings = self.service.settings
        handshake = handshake_of(request)
        if handshake is None:
            raise web.HTTPBadRequest(
                text=json.dumps(
                    {
                        "error": "bad_request",
                        "message": "Audiohook-Session-Id, Audiohook-Organization-Id and "
                        "Audiohook-Correlation-Id headers (UUIDs) are required",
                    }
                ),
                content_type="application/json",
            )
        refused = check_client(settings, request, self.verifier)
        if refused is not None:
            log.warning("audiohook: refusing session %s: %s", handshake.session_id, refused)
            await asyncio.sleep(AUTH_FAILURE_DELAY_S)
        limits = settings.limits
        ws = web.WebSocketResponse(
            max_msg_size=max(MAX_TEXT_CHARS, limits.max_frame_bytes) * WS_MAX_MESSAGE_FACTOR
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="websocket upgrade required")
        await ws.prepare(request)
        session = _Session(self.service, ws, handshake, refused)
        await session.run()
        return ws


class _Session:
    """One connection: the receive loop, an ordered outbox, and the transcript forwarder."""

    def __init__(
        self, service: Service, ws: web.WebSocketResponse, handshake: Handshake, refused: str | None
    ) -> None:
        settings = service.settings
        self.service = service
        self.ws = ws
        self.limits = settings.limits
        self.core = AudioHookProtocol(
            handshake,
            limits=settings.limits,
            default_language=settings.default_language,
            unauthorized=refused,
        )
        self.bridge = IngestBridge(service, "audiohook")
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.forwarder: asyncio.Task[None] | None = None
        self.reason = "disconnected"

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            await self._receive_loop()
        except Exception:
            log.exception("audiohook session failed")
            self.reason = "error"
        finally:
            await self.bridge.close(self.reason)
            if self.forwarder is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.forwarder, CLOSE_GRACE_S)
            self.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer
            if not self.ws.closed:
                await self.ws.close()

    async def _receive_loop(self) -> None:
        core = self.core
        while not self.ws.closed:
            if core.state in (State.CLOSED, State.ERROR):
                timeout, what = CLOSE_GRACE_S, ""
            elif core.state is State.PREPARING:
                timeout, what = (
                    self.limits.start_timeout_s,
                    f"no 'open' within {self.limits.start_timeout_s:g} s",
                )
            else:
                timeout, what = (
                    self.limits.idle_timeout_s,
                    f"no message within {self.limits.idle_timeout_s:g} s",
                )
            try:
                msg = await self.ws.receive(timeout=timeout)
            except TimeoutError:
                if core.state in (State.CLOSED, State.ERROR):
                    return  # the client did not close after closed/disconnect: we do
                await self._handle(core.timeout(what))
                continue
            if msg.type == WSMsgType.TEXT:
                await self._handle(core.receive_text(msg.data))
            elif msg.type == WSMsgType.BINARY:
                await self._handle(core.receive_bytes(msg.data))
            elif msg.type == WSMsgType.ERROR:  # over aiohttp's own cap: still the protocol's error
                await self._handle(core.violation("message_too_big", "websocket message over the size limit"))
                return
            else:
                await self._handle(core.receive_eof())
                return

    async def _handle(self, events: list[Event]) -> None:
        # Replies first, in order and without awaiting: their seq numbers were assigned in this
        # order, and the forwarder task may assign the next one while we await below.
        for ev in events:
            if isinstance(ev, Reply):
                self.outbox.put_nowait(ev.text)
        for ev in events:
            if isinstance(ev, LegAudio):
                await self.bridge.feed(ev.legs)
            elif isinstance(ev, LegGap):
                await self.bridge.feed_gap(ev.legs)
            elif isinstance(ev, EndUtterances):
                await self.bridge.end_utterances()
            elif isinstance(ev, OpenSession):
                await self._open(ev.params)
            elif isinstance(ev, MetadataChanged):
                self.bridge.update_metadata(ev.changes)
            elif isinstance(ev, Notice):
                await self.bridge.error(ev.code, ev.message, fatal=False)
            elif isinstance(ev, Violation):
                log.info("audiohook: %s: %s", ev.code, ev.message)
                self.reason = "error"
                await self.bridge.error(ev.code, ev.message, fatal=True)
                await self.bridge.close("error")
            elif isinstance(ev, CloseRequest):
                self.reason = ev.reason
                await self.bridge.close(self.reason)
                if self.forwarder is not None:
                    await self.forwarder  # every transcript is sent before 'closed'
                await self._handle(self.core.close_done())

    async def _open(self, params: CallParams | None) -> None:
        if params is None:  # connection probe: answer, open nothing
            await self._handle(self.core.accept_open())
            return
        try:
            handle = await self.bridge.open(params, None)
        except Refused as first:
            if first.code != "call_conflict":
                await self._handle(self.core.refuse_open(first.code, first.message))
                return
            # The conversation already has (or had) a call: a second session gets its own id.
            scoped = CallParams(
                call_id=f"{params.call_id}:{self.core.session_id}",
                language=params.language,
                sample_rate=params.sample_rate,
                encoding=params.encoding,
                legs=params.legs,
                metadata=params.metadata,
            )
            try:
                handle = await self.bridge.open(scoped, None)
            except Refused as exc:
                await self._handle(self.core.refuse_open(exc.code, exc.message))
                return
        self.forwarder = asyncio.create_task(self._forward(handle))
        await self._handle(self.core.accept_open())

    async def _forward(self, handle: CallHandle) -> None:
        """Send each final transcript of the call back to the client as an ``event``."""
        call_log = handle.session.log
        sub = call_log.subscribe(0, self.limits.subscriber_queue)
        try:
            async for event in sub:
                if isinstance(event.body, TranscriptFinal):
                    reply = self.core.transcript(event.body, handle.call_id)
                    if reply is not None:
                        self.outbox.put_nowait(reply.text)
        except SubscriberTooSlow:
            log.warning("audiohook: transcript forwarding for %s fell behind and stopped", handle.call_id)
        finally:
            call_log.unsubscribe(sub)

    async def _write(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None:
                return
            if self.ws.closed:
                continue
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                continue


def add_route(app: web.Application, service: Service) -> None:
    endpoint = AudioHookEndpoint(service)
    app.router.add_get(PATH, endpoint.handle)
