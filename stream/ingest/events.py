"""The one vocabulary of ingest: what every transport's core says happened, and what it wants sent.

A core (native ``/v1/ingest``, AudioHook, Twilio, FreeSWITCH, AudioSocket) turns its wire format into
the *events* below, returned by its ``receive_*`` methods in order.  Its answers to the peer
(acknowledgements, error frames, close frames, AudioHook replies) are *outgoing* items it queues for
the driver to take with ``data_to_send()``, as websockets' sans-I/O protocol does: the driver moves
bytes and acts on events, and never builds a reply itself (:mod:`stream.ingest.driver`).

Audio is per leg, float32 at 16 kHz (decoded and resampled by the core), so the same samples in any
wire format reach the pipeline bit for bit the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from stream.ingest.refusal import CLOSE_POLICY_VIOLATION
from stream.live.session import CallParams

FloatArray = npt.NDArray[np.float32]
Metadata: TypeAlias = dict[str, str | int | float | bool | None]


# -- events: core -> driver ----------------------------------------------------------------------


@dataclass(frozen=True)
class OpenCall:
    """The core knows enough to open the call; ``token`` is an in-band credential, if any.

    The driver answers with the core's ``call_opened`` or ``call_refused``."""

    params: CallParams
    token: str | None = None


@dataclass(frozen=True, eq=False)
class LegAudio:
    """Decoded 16 kHz audio for one or more legs (legs may differ in length)."""

    legs: dict[str, FloatArray]


@dataclass(frozen=True, eq=False)
class LegGap:
    """Silence standing for audio the platform announced but did not send (it discarded it), per
    leg at 16 kHz: it keeps call time on the platform's clock without splitting an utterance."""

    legs: dict[str, FloatArray]


@dataclass(frozen=True)
class EndUtterances:
    """End every utterance in progress on this connection's legs now (the stream paused, or its
    language changed), so what was said so far is transcribed without waiting for a pause."""


@dataclass(frozen=True)
class MetadataChanged:
    """Keys to merge into the call's metadata."""

    changes: Metadata


@dataclass(frozen=True)
class EndOfCall:
    """The peer ended the stream; ``reason`` becomes ``call.ended.reason``.  The driver finishes
    the call (everything received is transcribed), then calls the core's ``call_ended``."""

    reason: str


@dataclass(frozen=True)
class Notice:
    """Worth an ``error`` event on the call (the platform reported an error), not a violation."""

    code: str
    message: str


@dataclass(frozen=True)
class Violation(Notice):
    """The peer broke its protocol (also worth an ``error`` event).  ``fatal`` ends the call (audio
    received so far is kept, and the call ends as ``timeout`` for the code ``timeout``, else
    ``error``); ``close_code`` is the websocket close code the core uses for it."""

    fatal: bool
    close_code: int = CLOSE_POLICY_VIOLATION


IngestEvent: TypeAlias = (
    OpenCall | LegAudio | LegGap | EndUtterances | MetadataChanged | EndOfCall | Notice | Violation
)


# -- outgoing: core -> peer (through the driver) ---------------------------------------------------


@dataclass(frozen=True)
class Send:
    """A message for the peer: text (a websocket text frame) or bytes (a binary frame, TCP data)."""

    data: str | bytes


@dataclass(frozen=True)
class SendClose:
    """Close the connection (websocket: with this close frame; TCP: after what was sent before)."""

    code: int
    reason: bytes = b""


Outgoing: TypeAlias = Send | SendClose
