"""What every ingest transport shares: audio decoding, platform-field rules, and the bridge into calls.

A transport is two layers, like the native protocol (:mod:`stream.ingest.native`):

* a sans-IO *core* that turns the platform's wire messages into the events
  of :mod:`stream.ingest.events` (and queues the replies to send), so every
  ordering and validation rule is testable without a socket;
* the one driver (:mod:`stream.ingest.driver`) that moves bytes, acts on the
  events and hands audio to an :class:`IngestBridge`, which opens, feeds and
  closes a :class:`~stream.live.calls.CallHandle`.  There is no second
  pipeline: a call that arrives through any transport is the same
  :class:`~stream.live.session.CallSession` with the same endpointers,
  scheduler, guidance engine and event log.

Audio is decoded here to what the native protocol hands on: per-leg float32
at 16 kHz, band-limited-resampled with one :class:`~stream.audio.resample.StreamResampler`
per leg, so the same samples in any wire format give bit-for-bit the same
utterances (the adapter equivalence tests rely on it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from stream.audio import codecs
from stream.audio.resample import StreamResampler
from stream.auth import AuthError, Claims, verify_token
from stream.ingest.context import Credentials, IngestContext
from stream.ingest.events import FloatArray, IngestEvent, LegAudio, Metadata
from stream.ingest.native import (
    CALL_ID_PATTERN,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
    OUTPUT_SAMPLE_RATE,
)
from stream.live.calls import CallHandle, CallRejected
from stream.live.session import CallParams

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

LEGS: Final = ("agent", "customer")

LANGUAGE_TAGS: Final = {"en": "en-US", "zh": "zh-CN"}
"""The BCP-47 tag reported back to platforms that want one (AudioHook ``supportedLanguages``)."""

_PRIMARY_LANGUAGE: Final = {"en": "en", "zh": "zh", "cmn": "zh"}
"""Primary subtags we transcribe: English, and Mandarin written as ``zh`` or ``cmn``."""


# -- audio ---------------------------------------------------------------------------------------


class AudioDecoder:
    """Interleaved wire audio -> per-leg 16 kHz float32, with the resampler state carried across frames.

    ``channel_legs[i]`` names the leg carried by channel *i* (``None``: channel ignored).
    """

    def __init__(self, encoding: str, sample_rate: int, channel_legs: Sequence[str | None]) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channel_legs = tuple(channel_legs)
        self.frame_bytes = len(self.channel_legs) * codecs.bytes_per_sample(encoding)
        self._resamplers = {
            leg: StreamResampler(sample_rate, OUTPUT_SAMPLE_RATE)
            for leg in self.channel_legs
            if leg is not None
        }
        self.source_samples = 0  # per channel, audio plus inserted silence, at the source rate

    @property
    def legs(self) -> tuple[str, ...]:
        return tuple(self._resamplers)

    @property
    def seconds(self) -> float:
        return self.source_samples / self.sample_rate

    def misaligned(self, size: int) -> bool:
        return size % self.frame_bytes != 0

    def decode(self, data: bytes | bytearray | memoryview) -> dict[str, FloatArray]:
        """Decode a whole number of sample frames (check :meth:`misaligned` first)."""
        samples = codecs.decode(self.encoding, data).reshape(-1, len(self.channel_legs))
        self.source_samples += samples.shape[0]
        return {
            leg: self._resamplers[leg].process(samples[:, i])
            for i, leg in enumerate(self.channel_legs)
            if leg is not None
        }

    def silence(self, source_samples: int) -> dict[str, FloatArray]:
        """Audio the platform did not send (a gap it announced) enters the pipeline as silence, so
        leg time stays equal to the platform's stream position."""
        if source_samples <= 0:
            return {}
        zeros = np.zeros(source_samples, dtype=np.int16)
        self.source_samples += source_samples
        return {leg: r.process(zeros) for leg, r in self._resamplers.items()}

    def flush(self) -> dict[str, FloatArray]:
        """The resamplers' held-back tails (a few ms); call once at the end of the stream."""
        return {leg: r.flush() for leg, r in self._resamplers.items()}


def has_audio(legs: Mapping[str, FloatArray]) -> bool:
    return any(len(a) for a in legs.values())


def flush_tails(*decoders: AudioDecoder | None) -> list[IngestEvent]:
    """The decoders' held-back tails as one audio event (none if they hold nothing): the last
    few milliseconds of every leg, delivered when the stream ends however it ends."""
    legs: dict[str, FloatArray] = {}
    for decoder in decoders:
        if decoder is not None:
            legs.update(decoder.flush())
    return [LegAudio(legs)] if has_audio(legs) else []


# -- small shared rules --------------------------------------------------------------------------


def map_language(tag: str | None, default: str) -> str | None:
    """A platform language tag (``en-US``, ``zh-CN``, ``cmn-Hans-CN``, ``zh``) -> ``en``/``zh``.

    No tag means the service default; a tag we do not transcribe gives ``None``.
    """
    if not tag:
        return default
    primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    return _PRIMARY_LANGUAGE.get(primary)


def valid_call_id(value: object) -> str | None:
    return value if isinstance(value, str) and CALL_ID_PATTERN.fullmatch(value) else None


def clean_metadata(raw: Mapping[str, Any], *, already: int = 0) -> tuple[Metadata, list[str]]:
    """Keep the entries the native protocol would accept (JSON scalars, key and value limits of
    :mod:`stream.ingest.native`, at most ``MAX_METADATA_KEYS`` in all); return them and the refused keys.

    Platforms send whatever their operators configure, so bad entries are dropped and reported
    rather than failing the call.
    """
    kept: Metadata = {}
    refused: list[str] = []
    for key, value in raw.items():
        ok_key = isinstance(key, str) and 1 <= len(key) <= MAX_METADATA_KEY_CHARS and _text_ok(key)
        ok_value = (
            value is None
            or isinstance(value, bool | int)
            or (isinstance(value, float) and np.isfinite(value))
        )
        if isinstance(value, str):
            ok_value = len(value) <= MAX_METADATA_VALUE_CHARS and _text_ok(value)
        if ok_key and ok_value and already + len(kept) < MAX_METADATA_KEYS:
            kept[key] = value
        else:
            refused.append(str(key)[:MAX_METADATA_KEY_CHARS])
    return kept, refused


def _text_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- the bridge into the ingest path -------------------------------------------------------------


class Refused(Exception):
    """The call could not be opened (auth, conflict, capacity); ``code`` as the native ingest uses."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def token_credentials(ctx: IngestContext, request: web.Request) -> Credentials:
    """Credentials from the platform's message (its token) or else from the upgrade request."""
    return lambda token: ingest_claims(ctx, request, token)


def ingest_claims(ctx: IngestContext, request: web.Request | None, token: str | None) -> Claims | None:
    """Who may send this audio: an ``ingest`` token from the platform's message (``token``) or the
    request (``Authorization: Bearer`` / ``?token=``).  ``None`` when auth is off; ``AuthError`` if refused.
    """
    gate = ctx.gate
    if not gate.enabled:
        return None
    claims: Claims | None
    if token is not None:
        claims = verify_token(gate.secret, token)
    elif request is not None:
        claims = gate.claims(request)
    else:
        raise AuthError(401, "missing token")
    gate.may_send_audio(claims)
    return claims


class IngestBridge:
    """One connection's path into :class:`~stream.live.calls.CallManager` (the driver owns it).

    The token's scope is checked before the call is looked up, the call opened
    (or joined, for one-leg-per-connection platforms), audio fed as it arrives,
    and :meth:`close` run on every exit path so audio already received is
    transcribed and the call ends exactly once.
    """

    def __init__(self, ctx: IngestContext, transport: str) -> None:
        self.ctx = ctx
        self.transport = transport
        self.handle: CallHandle | None = None

    @property
    def call_id(self) -> str | None:
        return self.handle.call_id if self.handle is not None else None

    async def open(self, params: CallParams, claims: Claims | None) -> CallHandle:
        gate = self.ctx.gate
        try:
            gate.may_ingest_call(claims, params.call_id)
        except AuthError as err:
            raise Refused("unauthorized" if err.status == 401 else "forbidden", err.reason) from None
        live = self.ctx.calls.registry.live(params.call_id)
        if live is not None and live.session.ended:
            # Its last connection left and it is finishing: a leg joining now would feed a session
            # that no longer transcribes.  (No await between this check and the join below.)
            raise Refused("call_conflict", f"call {params.call_id} is ending; use a new call id")
        new_call = live is None
        try:
            handle = await self.ctx.calls.open(params)
        except CallRejected as exc:
            raise Refused(exc.code, str(exc)) from None
        gate.note_ingest(claims, handle.call_id, new_call=new_call)
        self.handle = handle
        log.info("%s: call %s opened (legs %s)", self.transport, handle.call_id, ",".join(params.legs))
        return handle

    async def feed(self, legs: Mapping[str, FloatArray]) -> None:
        if self.handle is not None and has_audio(legs):
            await self.handle.feed(legs)

    async def feed_gap(self, legs: Mapping[str, FloatArray]) -> None:
        if self.handle is not None and has_audio(legs):
            await self.handle.feed_gap(legs)

    async def end_utterances(self) -> None:
        if self.handle is not None and not self.handle.closed:
            await self.handle.end_utterances()

    def update_metadata(self, changes: Mapping[str, Any]) -> None:
        if self.handle is not None and changes:
            self.handle.update_metadata(changes)

    async def error(self, code: str, message: str, *, fatal: bool) -> None:
        if self.handle is not None and not self.handle.closed:
            await self.handle.error(code, message, fatal=fatal)

    async def close(self, reason: str) -> None:
        if self.handle is not None:
            await self.handle.close(reason)
