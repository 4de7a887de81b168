"""The AudioHook core (sans-IO): client messages in, events out, server messages queued.

The protocol's rules are in the package docstring (:mod:`stream.ingest.audiohook`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from assist.events import TranscriptFinal
from stream.ingest.audiohook.messages import (
    CHANNEL_LEGS,
    CLIENT_TYPES,
    CLOSE_REASONS,
    FORMATS,
    LANGUAGE_CODE_PATTERN,
    MAX_INFO_CHARS,
    MAX_TEXT_CHARS,
    NULL_UUID,
    VERSION,
    BadMessage,
    Handshake,
    choose_media,
    expect_params,
    is_seq,
    parse_seconds,
    parse_uuid,
    transcript_entity,
)
from stream.ingest.base import LANGUAGE_TAGS, AudioDecoder, clean_metadata, flush_tails, map_language
from stream.ingest.core import CoreBase
from stream.ingest.events import (
    EndOfCall,
    EndUtterances,
    IngestEvent,
    LegAudio,
    LegGap,
    Metadata,
    MetadataChanged,
    Notice,
    OpenCall,
    Send,
    Violation,
)
from stream.live.session import CallParams
from stream.settings import LimitSettings

MAX_GAP_FILL_S: Final = 600.0  # longest announced gap (discarded/paused audio) filled with silence
POSITION_TOLERANCE_S: Final = 0.001  # rounding slack between the client's position and our sample count
CLOSE_GRACE_S: Final = 5.0  # after disconnect/closed, how long the client has to close the socket


class State(enum.Enum):
    PREPARING = "preparing"  # waiting for open
    OPENING = "opening"  # open received, call being opened
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSING = "closing"  # close received, call finishing
    CLOSED = "closed"  # closed sent
    ERROR = "error"  # disconnect sent; waiting for the client's close


class AudioHookProtocol(CoreBase):
    """State machine of one AudioHook session (sans-IO)."""

    answers_transcripts = True

    def __init__(
        self,
        handshake: Handshake,
        *,
        limits: LimitSettings,
        default_language: str,
        unauthorized: str | None = None,
    ) -> None:
        super().__init__()
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
        self._params: CallParams | None = None  # the call asked for at open
        self._scoped = False  # the call id was already scoped to this session after a conflict
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    @property
    def wait_s(self) -> float:
        if self.state in (State.CLOSED, State.ERROR):
            return CLOSE_GRACE_S
        return self.limits.start_timeout_s if self.state is State.PREPARING else self.limits.idle_timeout_s

    # -- input -----------------------------------------------------------------------------------

    def receive_text(self, text: str) -> list[IngestEvent]:
        if self.state in (State.CLOSED, State.ERROR):
            return self._after_end(text)
        try:
            if len(text) > MAX_TEXT_CHARS:
                raise BadMessage("message_too_big", f"text message longer than {MAX_TEXT_CHARS} characters")
            message = self._parse(text)
            kind = message["type"]
            params = message["parameters"]
            if kind == "open":
                return self._on_open(params)
            if kind == "close":
                return self._on_close(params)
            if self.state is State.PREPARING:
                raise BadMessage("not_opened", f"{kind!r} before 'open'")
            if kind == "ping":
                self._reply("pong", {})
                return []
            if kind == "paused":
                expect_params(params, kind, set())
                if self.state is not State.ACTIVE:
                    return []  # already paused: Genesys may say so more than once
                self.state = State.PAUSED
                return [EndUtterances()]
            if kind in ("resumed", "discarded"):
                return self._on_gap(kind, params)
            if kind == "update":
                return self._on_update(params)
            return self._on_client_error(params)
        except BadMessage as bad:
            return self.violation(bad.code, bad.message)

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> list[IngestEvent]:
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

    def receive_eof(self, close_code: int | None = None) -> list[IngestEvent]:
        """The socket ended: the resamplers' tails, once."""
        self._done = True
        events = self._tails()
        if self.state not in (State.CLOSED, State.ERROR):
            self.state = State.CLOSED
        return events

    def receive_oversize(self, detail: str) -> list[IngestEvent]:
        """A frame over the websocket's own cap: still the protocol's error, and the end of reading."""
        self._done = True
        return self.violation("message_too_big", "websocket message over the size limit")

    def receive_timeout(self) -> list[IngestEvent]:
        if self.state in (State.CLOSED, State.ERROR):
            self._done = True  # the client did not close after closed/disconnect: we do
            return []
        if self.state is State.CLOSING:
            return []
        if self.state is State.PREPARING:
            return self.violation("timeout", f"no 'open' within {self.limits.start_timeout_s:g} s")
        return self.violation("timeout", f"no message within {self.limits.idle_timeout_s:g} s")

    # -- the driver's answers ----------------------------------------------------------------------

    def call_opened(self, call_id: str) -> None:
        """The call is open (or this is a probe): ``opened`` with the chosen media."""
        if self.state is not State.OPENING or self.media is None:
            return
        self.state = State.ACTIVE
        params: dict[str, Any] = {"media": [self.media], "startPaused": False}
        if self._wants_languages:
            params["supportedLanguages"] = [LANGUAGE_TAGS[lang] for lang in sorted(LANGUAGE_TAGS)]
        self._reply("opened", params)

    def call_refused(self, code: str, message: str) -> list[IngestEvent]:
        """The call could not be opened.  A conversation that already has (or had) a call gets
        one scoped to this session (``<conversationId>:<sessionId>``, e.g. its second session);
        otherwise ``disconnect`` (``unauthorized`` for auth refusals)."""
        if code == "call_conflict" and not self._scoped and self._params is not None:
            self._scoped = True
            return [OpenCall(replace(self._params, call_id=f"{self._params.call_id}:{self.session_id}"))]
        reason = "unauthorized" if code in ("unauthorized", "forbidden") else "error"
        return self._disconnect(code, message, reason=reason)

    def call_ended(self) -> None:
        """The call has finished after ``close`` (every transcript sent): ``closed``."""
        if self.state is not State.CLOSING:
            return
        self._reply("closed", {})
        self.state = State.CLOSED

    def receive_transcript(self, final: TranscriptFinal, call_id: str) -> None:
        """Send one final transcript as an ``event`` message, if this session carries its leg."""
        if self.state not in (State.ACTIVE, State.PAUSED, State.CLOSING) or self.media is None:
            return
        legs = [CHANNEL_LEGS[ch] for ch in self.media["channels"]]
        if final.speaker in legs:
            self._reply("event", {"entities": [transcript_entity(final, legs, self.language_tag, call_id)]})

    # -- handlers ---------------------------------------------------------------------------------

    def _on_open(self, p: dict[str, Any]) -> list[IngestEvent]:
        if self.state is not State.PREPARING:
            raise BadMessage("duplicate_open", "'open' was already received")
        expect_params(p, "open", {"organizationId", "conversationId", "participant", "media"})
        org = parse_uuid(p["organizationId"], "open.organizationId")
        conversation = parse_uuid(p["conversationId"], "open.conversationId")
        participant = p["participant"]
        if not isinstance(participant, dict):
            raise BadMessage("invalid_message", "open.participant must be an object")
        participant_id = parse_uuid(participant.get("id"), "open.participant.id")
        for name in ("ani", "aniName", "dnis"):
            if not isinstance(participant.get(name), str):
                raise BadMessage("invalid_message", f"open.participant.{name} must be a string")
        offers = p["media"]
        if not isinstance(offers, list):
            raise BadMessage("invalid_message", "open.media must be a list")
        language = p.get("language")
        if language is not None and not isinstance(language, str):
            raise BadMessage("invalid_message", "open.language must be a string")
        wants = p.get("supportedLanguages", False)
        if not isinstance(wants, bool):
            raise BadMessage("invalid_message", "open.supportedLanguages must be a boolean")
        custom = p.get("customConfig", {})
        if not isinstance(custom, dict):
            raise BadMessage("invalid_message", "open.customConfig must be an object")
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
        media = choose_media(offers)
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
            self.probe = True  # a connection probe: answered at once, no call is opened
            self.call_opened(NULL_UUID)
            return []
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
        self._params = params
        return [OpenCall(params)]

    def _on_close(self, p: dict[str, Any]) -> list[IngestEvent]:
        expect_params(p, "close", {"reason"})
        reason = p["reason"]
        if reason not in CLOSE_REASONS:
            raise BadMessage(
                "invalid_message", f"close.reason {reason!r} is not one of {', '.join(CLOSE_REASONS)}"
            )
        if self.state is State.CLOSING:
            return []
        self.state = State.CLOSING
        return [*self._tails(), EndOfCall(CLOSE_REASONS[reason])]

    def _on_gap(self, kind: str, p: dict[str, Any]) -> list[IngestEvent]:
        expect_params(p, kind, {"start", "discarded"})
        start = parse_seconds(p["start"], f"{kind}.start")
        discarded = parse_seconds(p["discarded"], f"{kind}.discarded")
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

    def _on_update(self, p: dict[str, Any]) -> list[IngestEvent]:
        expect_params(p, "update", {"language"})
        language = p["language"]
        if not isinstance(language, str) or not LANGUAGE_CODE_PATTERN.fullmatch(language):
            raise BadMessage("invalid_message", "update.language must be a language code such as en-US")
        events: list[IngestEvent] = [MetadataChanged({"genesys_language": language}), EndUtterances()]
        if map_language(language, self.default_language) != self.language:
            events.append(
                Notice(
                    "language_change_ignored",
                    f"the conversation language changed to {language}; this call stays {self.language}",
                )
            )
        return events

    def _on_client_error(self, p: dict[str, Any]) -> list[IngestEvent]:
        expect_params(p, "error", {"code", "message"})
        code, message = p["code"], p["message"]
        if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
            raise BadMessage("invalid_message", "error needs an integer code and a string message")
        return [Notice("client_error", f"AudioHook client error {code}: {message[:MAX_INFO_CHARS]}")]

    # -- helpers ----------------------------------------------------------------------------------

    def _parse(self, text: str) -> dict[str, Any]:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            raise BadMessage("bad_json", "text message is not valid JSON") from None
        if not isinstance(message, dict):
            raise BadMessage("invalid_message", "message must be a JSON object")
        if message.get("version") != VERSION:
            raise BadMessage("invalid_message", f"message version must be {VERSION!r}")
        kind = message.get("type")
        if not isinstance(kind, str):
            raise BadMessage("invalid_message", "message needs a string 'type'")
        if not isinstance(message.get("parameters"), dict):
            raise BadMessage("invalid_message", "message needs an object 'parameters'")
        seq, serverseq = message.get("seq"), message.get("serverseq")
        if not is_seq(seq) or not is_seq(serverseq):
            raise BadMessage("invalid_message", "message needs non-negative integer 'seq' and 'serverseq'")
        msg_id = message.get("id")
        if not isinstance(msg_id, str) or msg_id.lower() != self.session_id:
            raise BadMessage("invalid_message", "message id is not the session id of the handshake")
        position = parse_seconds(message.get("position"), "position")
        if seq != self.clientseq + 1:
            raise BadMessage("out_of_order", f"seq {seq} does not follow {self.clientseq}")
        self.clientseq = seq
        if serverseq > self.seq:
            raise BadMessage(
                "out_of_order", f"serverseq {serverseq} is ahead of the last server seq {self.seq}"
            )
        if serverseq < self.serverseq_seen:
            raise BadMessage(
                "out_of_order", f"serverseq {serverseq} went backwards (was {self.serverseq_seen})"
            )
        self.serverseq_seen = serverseq
        if position + POSITION_TOLERANCE_S < self.position:
            raise BadMessage(
                "invalid_position", f"position went backwards ({self.position:g} -> {position:g} s)"
            )
        received = self.decoder.seconds if self.decoder is not None else 0.0
        if position + POSITION_TOLERANCE_S < received:
            raise BadMessage(
                "invalid_position", f"position {position:g} s is behind the audio received ({received:g} s)"
            )
        self.position = max(self.position, position)
        if kind not in CLIENT_TYPES:
            raise BadMessage("unknown_type", f"{kind!r} is not an AudioHook client message")
        return message

    def _after_end(self, text: str) -> list[IngestEvent]:
        """After disconnect, only the client's ``close`` matters (answered with ``closed``)."""
        if self.state is State.CLOSED:
            return []
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return []
        if isinstance(message, dict) and message.get("type") == "close":
            if is_seq(message.get("seq")):
                self.clientseq = max(self.clientseq, message["seq"])
            self.state = State.CLOSING
            self.call_ended()
        return []

    def _reply(self, kind: str, params: Mapping[str, Any]) -> None:
        """Queue a server message; its ``seq`` is assigned now, so messages leave in ``seq`` order."""
        self.seq += 1
        message = {
            "version": VERSION,
            "type": kind,
            "seq": self.seq,
            "clientseq": self.clientseq,
            "id": self.handshake.session_id,
            "parameters": dict(params),
        }
        self._send(Send(json.dumps(message, ensure_ascii=False, separators=(",", ":"))))

    def _disconnect(self, code: str, info: str, *, reason: str = "error") -> list[IngestEvent]:
        events = self._tails()
        self._reply("disconnect", {"reason": reason, "info": info[:MAX_INFO_CHARS]})
        self.state = State.ERROR
        return [*events, Violation(code, info, fatal=True)]

    def _tails(self) -> list[IngestEvent]:
        """The resamplers' held-back audio, once."""
        events = flush_tails(self.decoder)
        self.decoder = None
        return events

    def violation(self, code: str, message: str) -> list[IngestEvent]:
        """A protocol violation found outside the core (e.g. a frame the websocket layer refused)."""
        if self.state in (State.CLOSED, State.ERROR, State.CLOSING):
            return []  # already ending: the client has its answer coming (closed) or has it (disconnect)
        return self._disconnect(code, message)
