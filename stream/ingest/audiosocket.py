"""Asterisk AudioSocket: a TCP listener on ``adapters.audiosocket_host:audiosocket_port``.

Protocol (Asterisk ``res_audiosocket``; CyCoreSystems/audiosocket README):
every message is ``type (1 byte) | payload length (2 bytes, big-endian) |
payload``.  Types: ``0x00`` hangup, ``0x01`` the stream's UUID (16 bytes, the
first message), ``0x03`` a DTMF digit (ignored here), ``0x10`` audio: signed
16-bit little-endian PCM, 8 kHz mono (Asterisk sends 20 ms = 320 bytes),
``0xff`` an error (optional one-byte code; Asterisk's ``0x01`` is "hangup of
calling party").  Newer Asterisk versions define ``0x11``-``0x18`` for other
slin rates; those are refused as unsupported.

One connection carries one leg.  Pairing (``adapters.audiosocket_pairing``):

* ``suffix`` (default): the dialplan gives the two legs' sockets one UUID that
  differs only in the last hex digit -- ``a`` for the agent, ``c`` for the
  customer -- and both join the call whose id is that UUID with the last digit
  ``0``.  E.g. with ``CALL=${UUID()}``: ``AudioSocket(${CALL:0:35}a,host:9092)``
  on a snoop channel of the agent's audio and ``AudioSocket(${CALL:0:35}c,host:9092)``
  on the customer's; the overlay of the call is ``/overlay/${CALL:0:35}0``.  A
  UUID ending in anything else is a one-leg call (``adapters.audiosocket_leg``)
  whose id is the UUID itself.
* ``none``: every connection is its own one-leg call (``audiosocket_leg``), id = UUID.

The call language is ``default_language`` (AudioSocket carries no metadata).
AudioSocket has no authentication, so the listener is off by default (port 0)
and should listen on loopback or a private interface only; with ``auth.enabled``
and a non-loopback host a warning is logged at start-up.

Errors: the server answers a violation with an error message
``0xff 0x00 0x01 <code>`` then a hangup ``0x00 0x00 0x00`` and closes the
socket (Asterisk logs the error and hangs up the AudioSocket channel).  Codes:

======  =====================  ===================================================
code    violation              when
======  =====================  ===================================================
0x10    ``not_started``        audio before the UUID
0x11    ``duplicate_start``    a second UUID
0x12    ``invalid_start``      a UUID payload that is not 16 bytes
0x13    ``misaligned_frame``   audio of an odd number of bytes
0x14    ``message_too_big``    a payload longer than ``limits.max_frame_bytes``
0x15    ``unsupported_format`` audio at another rate (types 0x11-0x18)
0x16    ``refused``            the call cannot be opened (conflict, capacity)
0x17    ``timeout``            no UUID within ``start_timeout_s`` / no message
                               within ``idle_timeout_s``
======  =====================  ===================================================

An unknown message type is reported on the call (``unknown_type``) and
skipped.  The socket closing, a hangup, or an error ``0x01`` end the call as
``stop``; another error from Asterisk ends it as ``error``.  Audio received
before any of these is kept and transcribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
import uuid
from typing import Final

from stream.ingest.base import AudioDecoder, flush_tails
from stream.ingest.connections import StreamConnection
from stream.ingest.context import IngestContext
from stream.ingest.core import Phase, StreamingCore
from stream.ingest.driver import run_connection
from stream.ingest.events import EndOfCall, IngestEvent, LegAudio, Notice, OpenCall, Send, Violation
from stream.ingest.refusal import CLOSE_NORMAL, CLOSE_POLICY_VIOLATION
from stream.live.session import CallParams
from stream.settings import LimitSettings

log = logging.getLogger(__name__)

KIND_HANGUP: Final = 0x00
KIND_UUID: Final = 0x01
KIND_DTMF: Final = 0x03
KIND_SLIN_8K: Final = 0x10
KIND_SLIN_OTHER: Final = range(0x11, 0x19)
KIND_ERROR: Final = 0xFF
HEADER: Final = struct.Struct(">BH")
SAMPLE_RATE: Final = 8000
ASTERISK_HANGUP_ERROR: Final = 0x01  # Asterisk's error code for "hangup of calling party": a normal end
SUFFIX_LEGS: Final = {"a": "agent", "c": "customer"}

ERROR_CODES: Final = {
    "not_started": 0x10,
    "duplicate_start": 0x11,
    "invalid_start": 0x12,
    "misaligned_frame": 0x13,
    "message_too_big": 0x14,
    "unsupported_format": 0x15,
    "refused": 0x16,
    "timeout": 0x17,
}


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def error_reply(code: str) -> bytes:
    """The bytes that answer a violation: an error message with our code, then a hangup."""
    return frame(KIND_ERROR, bytes([ERROR_CODES.get(code, ERROR_CODES["refused"])])) + frame(KIND_HANGUP)


def pair(stream: uuid.UUID, pairing: str, unpaired_leg: str) -> tuple[str, str]:
    """(call id, leg) of a stream UUID under the pairing rule (see the module docstring)."""
    text = str(stream)
    if pairing == "suffix" and text[-1] in SUFFIX_LEGS:
        return text[:-1] + "0", SUFFIX_LEGS[text[-1]]
    return text, unpaired_leg


class AudioSocketProtocol(StreamingCore):
    """Byte-stream parser and state machine of one AudioSocket connection (sans-IO)."""

    START_MISSING = "no UUID"
    IDLE_MISSING = "no message"

    def __init__(self, *, limits: LimitSettings, pairing: str, unpaired_leg: str, language: str) -> None:
        super().__init__(limits)
        self.pairing = pairing
        self.unpaired_leg = unpaired_leg
        self.language = language
        self.decoder: AudioDecoder | None = None
        self._buffer = bytearray()

    def receive_text(self, text: str) -> list[IngestEvent]:
        return self.receive_bytes(text.encode())  # TCP carries no text; here for the core protocol

    def receive_bytes(self, data: bytes) -> list[IngestEvent]:
        if self.done:
            return []
        self._buffer += data
        events: list[IngestEvent] = []
        while not self.done and len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if length > self.limits.max_frame_bytes:
                return [
                    *events,
                    *self._fatal(
                        "message_too_big", f"payload of {length} bytes exceeds {self.limits.max_frame_bytes}"
                    ),
                ]
            if len(self._buffer) < HEADER.size + length:
                break
            payload = bytes(self._buffer[HEADER.size : HEADER.size + length])
            del self._buffer[: HEADER.size + length]
            events += self._on_frame(kind, payload)
        return events

    def receive_eof(self, close_code: int | None = CLOSE_NORMAL) -> list[IngestEvent]:
        """The socket closed: a normal end for AudioSocket ("socket closure is also sufficient");
        ``None``: it dropped."""
        if self.done:
            return []
        events = self._tails()
        self.state = Phase.CLOSED
        return [*events, EndOfCall("stop" if close_code == CLOSE_NORMAL else "disconnected")]

    def _on_frame(self, kind: int, payload: bytes) -> list[IngestEvent]:
        if kind == KIND_UUID:
            if self.state is not Phase.AWAIT_START:
                return self._fatal("duplicate_start", "a second UUID message")
            if len(payload) != 16:
                return self._fatal("invalid_start", f"UUID payload of {len(payload)} bytes (16 expected)")
            stream = uuid.UUID(bytes=payload)
            call_id, leg = pair(stream, self.pairing, self.unpaired_leg)
            self.decoder = AudioDecoder("pcm_s16le", SAMPLE_RATE, [leg])
            self.state = Phase.STREAMING
            params = CallParams(
                call_id=call_id,
                language=self.language,
                sample_rate=SAMPLE_RATE,
                encoding="pcm_s16le",
                legs=(leg,),
                metadata={"source": "asterisk-audiosocket", f"audiosocket_uuid_{leg}": str(stream)},
            )
            return [OpenCall(params)]
        if kind == KIND_SLIN_8K:
            if self.decoder is None:
                return self._fatal("not_started", "audio before the UUID message")
            if len(payload) % 2:
                return self._fatal("misaligned_frame", f"audio payload of {len(payload)} bytes (odd)")
            return [LegAudio(self.decoder.decode(payload))] if payload else []
        if kind in KIND_SLIN_OTHER:
            return self._fatal(
                "unsupported_format", f"audio type 0x{kind:02x} (only 0x10, 8 kHz slin, is supported)"
            )
        if kind == KIND_HANGUP:
            events = self._tails()
            self.state = Phase.CLOSED
            return [*events, EndOfCall("stop")]
        if kind == KIND_ERROR:
            code = payload[0] if payload else None
            events = self._tails()
            self.state = Phase.CLOSED
            if code == ASTERISK_HANGUP_ERROR:
                return [*events, EndOfCall("stop")]
            shown = f"0x{code:02x}" if code is not None else "without a code"
            return [*events, Notice("peer_error", f"Asterisk reported error {shown}"), EndOfCall("error")]
        if kind == KIND_DTMF:
            return []
        return [Violation("unknown_type", f"message type 0x{kind:02x} skipped", fatal=False)]

    def _tails(self) -> list[IngestEvent]:
        events = flush_tails(self.decoder)
        self.decoder = None
        return events

    def _fatal(self, code: str, message: str, close_code: int = CLOSE_POLICY_VIOLATION) -> list[IngestEvent]:
        self._buffer.clear()
        return super()._fatal(code, message, close_code)

    def _answer_fatal(self, code: str, message: str, close_code: int) -> None:
        self._send(Send(error_reply(code)))  # codes we do not number (refusals) are 0x16 refused


class AudioSocketServer:
    """The TCP listener; every connection feeds the same ingest path as ``/v1/ingest``."""

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free port, for tests)."""
        self._server = await asyncio.start_server(self._on_connection, host, port)
        log.info("AudioSocket listening on %s:%d", host, self.port)
        if self.ctx.settings.auth.enabled and not _is_loopback(host):
            log.warning("AudioSocket on %s has no authentication: keep it on a private network", host)

    async def stop(self) -> None:
        """Stop listening and end every connection (each finishes its call first)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        settings = self.ctx.settings
        core = AudioSocketProtocol(
            limits=settings.limits,
            pairing=settings.adapters.audiosocket_pairing,
            unpaired_leg=settings.adapters.audiosocket_leg,
            language=settings.default_language,
        )
        await run_connection(StreamConnection(reader, writer), core, self.ctx, "audiosocket")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
