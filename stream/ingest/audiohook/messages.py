"""AudioHook message parts: the protocol's constants, field checks, media choice and transcript entities.

Pure functions, shared by the core (:mod:`.protocol`) and the endpoint (:mod:`.endpoint`).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from assist.events import TranscriptFinal

VERSION: Final = "2"
MAX_TEXT_CHARS: Final = 65_535  # the protocol's limit on a text message (as the reference server enforces)
TRANSCRIPT_CONFIDENCE: Final = 1.0  # Whisper has no calibrated confidence; what is sent passed the guard
MAX_INFO_CHARS: Final = 512  # the disconnect ``info`` text is cut to this

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


@dataclass
class BadMessage(Exception):
    """A client message breaks the protocol; ``code`` is the violation's code."""

    code: str
    message: str


@dataclass(frozen=True)
class Handshake:
    session_id: str
    organization_id: str
    correlation_id: str


def is_seq(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_uuid(value: object, name: str) -> str:
    if not isinstance(value, str) or not UUID_PATTERN.fullmatch(value):
        raise BadMessage("invalid_message", f"{name} must be a UUID")
    return value.lower()


def parse_seconds(value: object, name: str) -> float:
    if not isinstance(value, str) or not DURATION_PATTERN.fullmatch(value):
        raise BadMessage("invalid_message", f"{name} must be a duration like PT1.5S")
    seconds = float(value[2:-1])
    if not math.isfinite(seconds) or seconds > 1e9:
        raise BadMessage("invalid_message", f"{name} is out of range")
    return seconds


def duration(seconds: float) -> str:
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def expect_params(p: dict[str, Any], kind: str, required: set[str]) -> None:
    """Required parameters present; unknown ones are ignored, as the protocol may grow."""
    missing = sorted(required - set(p))
    if missing:
        raise BadMessage("invalid_message", f"{kind}.parameters lacks {', '.join(missing)}")


def choose_media(offers: list[Any]) -> dict[str, Any] | None:
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


def tokens(text: str, start: float, end: float) -> list[tuple[str, float, float]]:
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


def transcript_entity(
    final: TranscriptFinal, legs: list[str], language_tag: str, call_id: str
) -> dict[str, Any]:
    """The ``transcript`` entity of one final transcript, as a Genesys transcription connector reads it;
    ``legs`` are the chosen media's channels as legs (``channelId`` is the index in it)."""
    word_tokens = [
        {
            "type": "word",
            "value": value,
            "confidence": TRANSCRIPT_CONFIDENCE,
            "offset": duration(start),
            "duration": duration(length),
        }
        for value, start, length in tokens(final.text, final.start, final.end)
    ]
    return {
        "type": "transcript",
        "data": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"callassist:{call_id}/{final.utterance_id}")),
            "channelId": legs.index(final.speaker),
            "isFinal": True,
            "offset": duration(final.start),
            "duration": duration(final.end - final.start),
            "alternatives": [
                {
                    "confidence": TRANSCRIPT_CONFIDENCE,
                    "languages": [language_tag],
                    "interpretations": [{"type": "display", "transcript": final.text, "tokens": word_tokens}],
                }
            ],
        },
    }
