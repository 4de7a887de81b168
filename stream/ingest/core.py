"""The shape every transport's sans-I/O core has, and the parts most of them share.

:class:`IngestCore` is what the driver (:mod:`stream.ingest.driver`) needs: frames in through
``receive_*``, events (:mod:`stream.ingest.events`) out, replies queued for ``data_to_send()``, and
the core -- not the driver -- deciding how long to wait for the peer and what to say when it is
late, refused, or done.  Every protocol rule therefore lives in a core and is tested without a
network, as in websockets' ``Protocol``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from assist.events import TranscriptFinal
from stream.ingest.events import IngestEvent, Outgoing, SendClose, Violation
from stream.ingest.refusal import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    close_reason,
)
from stream.settings import LimitSettings

CALL_ENDED_REASON = b"call ended"  # the close reason once a call finished normally


class IngestCore(Protocol):
    """What the driver needs of a transport's core."""

    @property
    def done(self) -> bool:
        """The connection is over: the driver stops reading."""
        ...

    @property
    def wait_s(self) -> float:
        """How long the driver waits for the next frame before calling :meth:`receive_timeout`."""
        ...

    @property
    def answers_transcripts(self) -> bool:
        """The driver should hand the call's final transcripts to :meth:`receive_transcript`."""
        ...

    def receive_text(self, text: str) -> Sequence[IngestEvent]: ...

    def receive_bytes(self, data: bytes) -> Sequence[IngestEvent]: ...

    def receive_eof(self, close_code: int | None) -> Sequence[IngestEvent]:
        """The peer closed (``close_code``: its websocket close code; ``None`` if it dropped)."""
        ...

    def receive_oversize(self, detail: str) -> Sequence[IngestEvent]:
        """The transport refused a frame over its own size cap (aiohttp's)."""
        ...

    def receive_timeout(self) -> Sequence[IngestEvent]:
        """Nothing arrived within :attr:`wait_s`."""
        ...

    def receive_transcript(self, final: TranscriptFinal, call_id: str) -> None: ...

    def call_opened(self, call_id: str) -> None:
        """The answer to :class:`~stream.ingest.events.OpenCall`: the call is open."""
        ...

    def call_refused(self, code: str, message: str) -> Sequence[IngestEvent]:
        """The answer to :class:`~stream.ingest.events.OpenCall`: the call could not be opened
        (events to act on: a fatal violation, or another :class:`OpenCall` to try instead)."""
        ...

    def call_ended(self) -> None:
        """The call finished (after :class:`~stream.ingest.events.EndOfCall` or a fatal violation):
        everything received was transcribed."""
        ...

    def data_to_send(self) -> list[Outgoing]:
        """What must go to the peer, in order, since the last call; the queue is emptied."""
        ...


def idle_or_start_timeout(limits: LimitSettings, *, started: bool) -> float:
    """``limits.start_timeout_s`` for the call's start, then ``limits.idle_timeout_s`` between frames."""
    return limits.idle_timeout_s if started else limits.start_timeout_s


class CoreBase:
    """The outbox and the answers most cores give: nothing on open, ``1000 call ended`` at the end."""

    answers_transcripts = False

    def __init__(self) -> None:
        self._outgoing: list[Outgoing] = []
        self._close_queued = False

    def data_to_send(self) -> list[Outgoing]:
        out, self._outgoing = self._outgoing, []
        return out

    def receive_transcript(self, final: TranscriptFinal, call_id: str) -> None:
        return None

    def call_opened(self, call_id: str) -> None:
        return None

    def call_ended(self) -> None:
        self._close(CLOSE_NORMAL, CALL_ENDED_REASON)

    def _send(self, item: Outgoing) -> None:
        self._outgoing.append(item)

    def _close(self, code: int, reason: bytes) -> None:
        """Queue the connection's close, once."""
        if not self._close_queued:
            self._close_queued = True
            self._send(SendClose(code, reason))


class Phase(enum.Enum):
    AWAIT_START = "await_start"
    STREAMING = "streaming"
    CLOSED = "closed"  # after the end of the stream or a fatal violation


class StreamingCore(CoreBase):
    """Base of the cores for platforms that stream one call and read back at most a refusal
    (Twilio, FreeSWITCH, AudioSocket): the start and idle timeouts, and every fatal violation
    closing the connection with its code and ``"<code>: <message>"``, the only error channel
    those platforms read (they log it)."""

    START_MISSING = "no call start"  # what a start timeout says was missing
    IDLE_MISSING = "no audio"  # ... and an idle timeout

    def __init__(self, limits: LimitSettings) -> None:
        super().__init__()
        self.limits = limits
        self.state = Phase.AWAIT_START

    @property
    def started(self) -> bool:
        return self.state is not Phase.AWAIT_START

    @property
    def done(self) -> bool:
        return self.state is Phase.CLOSED

    @property
    def wait_s(self) -> float:
        return idle_or_start_timeout(self.limits, started=self.started)

    def receive_timeout(self) -> list[IngestEvent]:
        what = self.IDLE_MISSING if self.started else self.START_MISSING
        return self._fatal("timeout", f"{what} within {self.wait_s:g} s", CLOSE_POLICY_VIOLATION)

    def receive_oversize(self, detail: str) -> list[IngestEvent]:
        return self._fatal("message_too_big", "message over the size limit", CLOSE_MESSAGE_TOO_BIG)

    def call_refused(self, code: str, message: str) -> list[IngestEvent]:
        return self._fatal(code, message, CLOSE_POLICY_VIOLATION)

    def _tails(self) -> list[IngestEvent]:
        """The resamplers' held-back audio, once, when the stream ends."""
        return []

    def _fatal(self, code: str, message: str, close_code: int = CLOSE_INVALID_PAYLOAD) -> list[IngestEvent]:
        events = self._tails()
        self.state = Phase.CLOSED
        self._answer_fatal(code, message, close_code)
        return [*events, Violation(code, message, fatal=True, close_code=close_code)]

    def _answer_fatal(self, code: str, message: str, close_code: int) -> None:
        self._close(close_code, close_reason(code, message))
