"""The native ingest protocol (sans-IO core): websocket messages in, typed events out.

The driver (:mod:`stream.ingest.driver`) owns the socket; for every message it
calls :meth:`IngestProtocol.receive_text` or :meth:`IngestProtocol.receive_bytes`
(and :meth:`IngestProtocol.receive_eof` when the connection drops) and acts on
the returned events (:mod:`stream.ingest.events`), in order.  Nothing here
raises on bad input: violations come back as
:class:`~stream.ingest.events.Violation` events carrying the websocket close
code, and the frames the client must get (the ``started`` acknowledgement,
``error`` frames, the close) are queued for ``data_to_send()``, so the state
machine is testable without a network.

Wire format
-----------

One websocket connection carries one call.

1. The first message is a JSON text frame::

       {"type": "start",
        "call_id": "c-2025-001",          // 1-128 chars of [A-Za-z0-9._:-]
        "language": "zh",                 // "zh" | "en"
        "sample_rate": 8000,              // 8000 | 16000
        "encoding": "mulaw",              // "pcm_s16le" | "mulaw" | "alaw"
        "channels": ["agent", "customer"],
        "metadata": {"agent_name": "...", "amount": 1840}}   // optional

   ``channels[i]`` names the leg carried by channel *i* of the interleaved
   audio; each of ``"agent"`` and ``"customer"`` may appear once, and a
   one-element list is a mono connection carrying just that leg.
   ``metadata`` is an object of at most 32 keys (each 1-64 chars) whose values
   are JSON scalars (string up to 512 chars, number, boolean or null); typical
   keys are agent_name, customer_name, company, amount, borrower_timezone.
   Unknown fields in ``start`` are rejected so typos do not pass silently.

2. Then binary frames of interleaved audio in the declared encoding:
   little-endian signed 16-bit for ``pcm_s16le`` (2 bytes per sample), one
   G.711 byte per sample for ``mulaw``/``alaw``.  A frame must hold a whole
   number of sample frames (``len(channels) x bytes-per-sample``) and at most
   ``limits.max_frame_bytes`` bytes.  20 ms frames are typical; any size
   within the limit works, and empty frames are ignored.

3. Optional text frames ``{"type": "metadata", "metadata": {...}}`` at any
   point after ``start``: keys are merged into the call's metadata (same rules
   as in ``start``; an invalid update is rejected whole).

4. Finally ``{"type": "stop"}``.  The server then finishes transcribing and
   closes the connection with 1000.

Every text frame is at most ``limits.max_control_bytes`` bytes of UTF-8.

Errors
------

============================  =====  ======  =========================================
code                          close  fatal   when
============================  =====  ======  =========================================
``message_too_big``           1009   yes     text or binary frame over its size limit
``bad_json``                  1007   early   text frame is not valid JSON
``not_an_object``             1007   early   JSON is not an object
``missing_type``              1007   early   object without a string ``type``
``unknown_type``              1008   early   ``type`` is not start/metadata/stop
``invalid_start``             1007   yes     a start field is missing, mistyped or malformed
``unsupported_format``        1003   yes     sample_rate/encoding/language not supported
``duplicate_start``           1008   yes     a second ``start``
``not_started``               1008   yes     audio, metadata or stop before ``start``
``misaligned_frame``          1007   yes     audio frame not a whole number of sample frames
``invalid_metadata``          1007   no      a metadata update breaks the metadata rules
``closed``                    1008   no      anything after ``stop`` or a fatal violation
============================  =====  ======  =========================================

"early": fatal before ``start`` (the connection cannot be salvaged), not after
it: a garbled control message is reported and ignored while the audio keeps
flowing.  1003 means "unsupported data", 1007 "invalid payload", 1008 "policy
(protocol order) violation", 1009 "message too big".

A fatal violation ends the call, but audio already received is kept: the
resampler tails come back as a final :class:`~stream.ingest.events.LegAudio`
event just before the violation, and the server then flushes the endpointers
as on ``stop``.  Every violation is also sent to the client as
``{"type": "error", "code": ..., "message": ..., "fatal": ...}``, and a fatal
one closes the socket with its close code and ``"<code>: <message>"``.
``timeout`` (1008, fatal) is the driver waiting ``limits.start_timeout_s`` for
``start`` or ``limits.idle_timeout_s`` for any frame.

Audio events carry each leg as float32 in [-1, 1) at 16 kHz, decoded,
deinterleaved and band-limited-resampled with one
:class:`~stream.audio.resample.StreamResampler` per leg, so leg time is exactly
samples / 16000 (the resampler compensates its own 4.4 ms filter delay).
"""

from __future__ import annotations

import enum
import json
import math
import re
from typing import Any, Final, TypeAlias

from stream.audio import codecs
from stream.audio.resample import StreamResampler
from stream.ingest.core import CoreBase, idle_or_start_timeout
from stream.ingest.events import EndOfCall, LegAudio, Metadata, MetadataChanged, OpenCall, Send, Violation
from stream.ingest.refusal import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    close_reason,
)
from stream.live.session import CallParams
from stream.settings import SUPPORTED_ENCODINGS, SUPPORTED_LANGUAGES, SUPPORTED_SAMPLE_RATES, LimitSettings

OUTPUT_SAMPLE_RATE: Final = 16000
LEG_NAMES: Final = ("agent", "customer")
CALL_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_METADATA_KEYS: Final = 32
MAX_METADATA_KEY_CHARS: Final = 64
MAX_METADATA_VALUE_CHARS: Final = 512
START_FIELDS: Final = ("type", "call_id", "language", "sample_rate", "encoding", "channels", "metadata")

ProtocolEvent: TypeAlias = OpenCall | LegAudio | MetadataChanged | EndOfCall | Violation


class State(enum.Enum):
    AWAIT_START = "await_start"
    STREAMING = "streaming"
    CLOSED = "closed"  # after stop, a fatal violation or end of stream


class _Reject(Exception):
    """Internal: unwinds validation to a single violation."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


class IngestProtocol(CoreBase):
    """State machine for one ingest connection."""

    def __init__(self, limits: LimitSettings) -> None:
        super().__init__()
        self.limits = limits
        self.state = State.AWAIT_START
        self.params: CallParams | None = None
        self.opened = False  # the driver opened the call (and the client was told)
        self._metadata: Metadata = {}
        self._resamplers: dict[str, StreamResampler] = {}
        self._frame_bytes = 0  # bytes per interleaved sample frame

    @property
    def metadata(self) -> Metadata:
        return dict(self._metadata)

    @property
    def done(self) -> bool:
        """After ``stop``, a fatal violation or the end of the stream."""
        return self.state is State.CLOSED

    @property
    def wait_s(self) -> float:
        return idle_or_start_timeout(self.limits, started=self.opened)  # start: until the call is open

    def receive_text(self, text: str) -> list[ProtocolEvent]:
        if self.state is State.CLOSED:
            return [self._closed()]
        try:
            if len(text) > self.limits.max_control_bytes or (
                len(text.encode("utf-8", "surrogatepass")) > self.limits.max_control_bytes
            ):
                raise _Reject(
                    "message_too_big",
                    f"text frame exceeds {self.limits.max_control_bytes} bytes",
                    CLOSE_MESSAGE_TOO_BIG,
                )
            message = _parse_json(text)
            kind = message.get("type")
            if not isinstance(kind, str):
                raise _Reject("missing_type", "message needs a string 'type'", CLOSE_INVALID_PAYLOAD)
            if kind == "start":
                return self._on_start(message)
            if kind not in ("metadata", "stop"):
                raise _Reject(
                    "unknown_type",
                    f"unknown message type {kind!r} (start, metadata, stop)",
                    CLOSE_POLICY_VIOLATION,
                )
            if self.state is State.AWAIT_START:
                raise _Reject("not_started", f"{kind!r} before 'start'", CLOSE_POLICY_VIOLATION)
            if kind == "metadata":
                return self._on_metadata(message)
            events = self._drain()
            self.state = State.CLOSED
            return [*events, EndOfCall("stop")]
        except _Reject as r:
            fatal = self.state is State.AWAIT_START or r.code in _ALWAYS_FATAL
            return self._violation(r, fatal)

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> list[ProtocolEvent]:
        if self.state is State.CLOSED:
            return [self._closed()]
        try:
            if len(data) > self.limits.max_frame_bytes:
                raise _Reject(
                    "message_too_big",
                    f"audio frame of {len(data)} bytes exceeds {self.limits.max_frame_bytes}",
                    CLOSE_MESSAGE_TOO_BIG,
                )
            if self.state is State.AWAIT_START or self.params is None:
                raise _Reject("not_started", "audio before 'start'", CLOSE_POLICY_VIOLATION)
            if len(data) % self._frame_bytes:
                raise _Reject(
                    "misaligned_frame",
                    f"audio frame of {len(data)} bytes is not a whole number of "
                    f"{self._frame_bytes}-byte sample frames ({len(self.params.legs)} channel(s) of "
                    f"{self.params.encoding})",
                    CLOSE_INVALID_PAYLOAD,
                )
        except _Reject as r:
            return self._violation(r, fatal=True)
        if not data:
            return []
        samples = codecs.decode(self.params.encoding, data).reshape(-1, len(self.params.legs))
        legs = {leg: self._resamplers[leg].process(samples[:, i]) for i, leg in enumerate(self.params.legs)}
        return [LegAudio(legs)]

    def receive_eof(self, close_code: int | None = None) -> list[ProtocolEvent]:
        """The connection ended without ``stop``: return the audio still held back."""
        if self.state is State.CLOSED:
            return []
        events = self._drain()
        self.state = State.CLOSED
        return events

    def receive_oversize(self, detail: str) -> list[ProtocolEvent]:
        return self._violation(_Reject("message_too_big", detail, CLOSE_MESSAGE_TOO_BIG), fatal=True)

    def receive_timeout(self) -> list[ProtocolEvent]:
        what = "no audio" if self.opened else "no start frame"
        message = f"{what} within {self.wait_s:g} s"
        return self._violation(_Reject("timeout", message, CLOSE_POLICY_VIOLATION), fatal=True)

    # -- the driver's answers ----------------------------------------------

    def call_opened(self, call_id: str) -> None:
        self.opened = True
        ack = {"type": "started", "call_id": call_id, "events": f"/v1/calls/{call_id}/events"}
        self._send(Send(json.dumps(ack)))

    def call_refused(self, code: str, message: str) -> list[ProtocolEvent]:
        return self._violation(_Reject(code, message, CLOSE_POLICY_VIOLATION), fatal=True)

    # -- handlers ---------------------------------------------------------

    def _on_start(self, message: dict[str, Any]) -> list[ProtocolEvent]:
        if self.state is not State.AWAIT_START:
            raise _Reject("duplicate_start", "'start' was already received", CLOSE_POLICY_VIOLATION)
        params = _parse_start(message)
        self.params = params
        self._metadata = dict(params.metadata)
        self._frame_bytes = len(params.legs) * codecs.bytes_per_sample(params.encoding)
        self._resamplers = {
            leg: StreamResampler(params.sample_rate, OUTPUT_SAMPLE_RATE) for leg in params.legs
        }
        self.state = State.STREAMING
        return [OpenCall(params)]

    def _on_metadata(self, message: dict[str, Any]) -> list[ProtocolEvent]:
        extra = sorted(set(message) - {"type", "metadata"})
        if extra:
            raise _Reject("invalid_metadata", f"unknown field(s) {', '.join(extra)}", CLOSE_INVALID_PAYLOAD)
        if "metadata" not in message:
            raise _Reject("invalid_metadata", "missing field 'metadata'", CLOSE_INVALID_PAYLOAD)
        changes = _check_metadata(message["metadata"], "metadata", "invalid_metadata")
        merged = {**self._metadata, **changes}
        if len(merged) > MAX_METADATA_KEYS:
            raise _Reject(
                "invalid_metadata", f"metadata would exceed {MAX_METADATA_KEYS} keys", CLOSE_INVALID_PAYLOAD
            )
        self._metadata = merged
        return [MetadataChanged(changes)]

    # -- helpers ----------------------------------------------------------

    def _drain(self) -> list[ProtocolEvent]:
        """Flush the resamplers so the last few milliseconds of every leg are delivered."""
        if not self._resamplers:
            return []
        legs = {leg: r.flush() for leg, r in self._resamplers.items()}
        if not any(len(a) for a in legs.values()):
            return []
        return [LegAudio(legs)]

    def _violation(self, r: _Reject, fatal: bool) -> list[ProtocolEvent]:
        """The violation event, and what the client gets: an ``error`` frame, and the close if fatal."""
        events: list[ProtocolEvent] = []
        if fatal:
            events = self._drain()
            self.state = State.CLOSED
        events.append(Violation(r.code, r.message, fatal, r.close_code))
        error = {"type": "error", "code": r.code, "message": r.message, "fatal": fatal}
        self._send(Send(json.dumps(error, ensure_ascii=False)))
        if fatal:
            self._close(r.close_code, close_reason(r.code, r.message))
        return events

    @staticmethod
    def _closed() -> Violation:
        return Violation("closed", "the call has ended; message ignored", False, CLOSE_POLICY_VIOLATION)


# Fatal whenever they happen: they break the stream itself rather than one control message.
_ALWAYS_FATAL: Final = frozenset(
    {"message_too_big", "invalid_start", "unsupported_format", "duplicate_start", "not_started"}
)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or "nested too deeply"
        raise _Reject("bad_json", f"text frame is not valid JSON: {reason}", CLOSE_INVALID_PAYLOAD) from None
    if not isinstance(value, dict):
        raise _Reject("not_an_object", "text frame must be a JSON object", CLOSE_INVALID_PAYLOAD)
    return value


def _invalid(field_name: str, why: str) -> _Reject:
    return _Reject("invalid_start", f"start.{field_name} {why}", CLOSE_INVALID_PAYLOAD)


def _unsupported(field_name: str, value: Any, allowed: tuple[Any, ...]) -> _Reject:
    return _Reject(
        "unsupported_format",
        f"start.{field_name} {value!r} is not supported (one of {', '.join(map(str, allowed))})",
        CLOSE_UNSUPPORTED_DATA,
    )


def _parse_start(m: dict[str, Any]) -> CallParams:
    extra = sorted(set(m) - set(START_FIELDS))
    if extra:
        raise _Reject(
            "invalid_start", f"start has unknown field(s) {', '.join(extra)}", CLOSE_INVALID_PAYLOAD
        )
    for name in START_FIELDS:
        if name not in m and name != "metadata":
            raise _invalid(name, "is missing")

    call_id = m["call_id"]
    if not isinstance(call_id, str) or not CALL_ID_PATTERN.fullmatch(call_id):
        raise _invalid("call_id", "must be 1-128 characters of A-Z a-z 0-9 . _ : -")

    language = m["language"]
    if not isinstance(language, str):
        raise _invalid("language", "must be a string")
    if language not in SUPPORTED_LANGUAGES:
        raise _unsupported("language", language, SUPPORTED_LANGUAGES)

    rate = m["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise _invalid("sample_rate", "must be an integer")
    if rate not in SUPPORTED_SAMPLE_RATES:
        raise _unsupported("sample_rate", rate, SUPPORTED_SAMPLE_RATES)

    encoding = m["encoding"]
    if not isinstance(encoding, str):
        raise _invalid("encoding", "must be a string")
    if encoding not in SUPPORTED_ENCODINGS:
        raise _unsupported("encoding", encoding, SUPPORTED_ENCODINGS)

    channels = m["channels"]
    if not isinstance(channels, list) or not 1 <= len(channels) <= len(LEG_NAMES):
        raise _invalid("channels", f"must be a list of 1-{len(LEG_NAMES)} leg names")
    for leg in channels:
        if leg not in LEG_NAMES:
            raise _invalid("channels", f"has {leg!r}; legs are {', '.join(LEG_NAMES)}")
    if len(set(channels)) != len(channels):
        raise _invalid("channels", "names a leg twice")

    metadata = _check_metadata(m.get("metadata", {}), "start.metadata", "invalid_start")
    return CallParams(call_id, language, rate, encoding, tuple(channels), metadata)


def _check_metadata(value: Any, where: str, code: str) -> Metadata:
    def bad(name: str, why: str) -> _Reject:
        return _Reject(code, f"{name} {why}", CLOSE_INVALID_PAYLOAD)

    if not isinstance(value, dict):
        raise bad(where, "must be an object")
    if len(value) > MAX_METADATA_KEYS:
        raise bad(where, f"has more than {MAX_METADATA_KEYS} keys")
    out: Metadata = {}
    for key, item in value.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS or not _utf8_ok(key):
            shown = key[:MAX_METADATA_KEY_CHARS]
            raise bad(where, f"key {shown!r} must be 1-{MAX_METADATA_KEY_CHARS} characters of valid text")
        if isinstance(item, str):
            if len(item) > MAX_METADATA_VALUE_CHARS:
                raise bad(f"{where}.{key}", f"is longer than {MAX_METADATA_VALUE_CHARS} characters")
            if not _utf8_ok(item):
                raise bad(f"{where}.{key}", "is not valid text (unpaired surrogate)")
        elif isinstance(item, float) and not math.isfinite(item):
            raise bad(f"{where}.{key}", "must be finite")
        elif item is not None and not isinstance(item, bool | int | float):
            raise bad(f"{where}.{key}", "must be a string, number, boolean or null")
        out[key] = item
    return out


def _utf8_ok(text: str) -> bool:
    """JSON escapes can smuggle lone surrogates in, which would break every later UTF-8 encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
