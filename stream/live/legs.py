"""A call's legs, each cut into utterances by its own endpointer.

Shared by the live session (audio as it arrives) and the offline commands (a recording's legs
pushed in chunks), so both cut a recording into exactly the same utterances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from stream.audio.endpointer import Endpointer, EndpointEvent, UtteranceEnded
from stream.audio.vad import Vad, make_vad
from stream.settings import EndpointSettings

SAMPLE_RATE = 16000  # what every leg is resampled to before it reaches here
CHUNK_SECONDS = 0.5  # how much of a recording the endpointer gets per push offline; any size works

VadFactory = Callable[[], Vad]


class LegEndpoints:
    """One endpointer per leg, and how much audio each leg has had (the call's duration)."""

    def __init__(
        self, settings: EndpointSettings, legs: Iterable[str] = (), *, vad: VadFactory | None = None
    ) -> None:
        self._settings = settings
        self._vad: VadFactory = vad or (lambda: make_vad(settings.vad))
        self._endpointers: dict[str, Endpointer] = {}
        self._samples: dict[str, int] = {}
        for leg in legs:
            self.add(leg)

    def add(self, leg: str) -> None:
        """A leg joins (a mono connection arriving on its own); a known leg is left as it is."""
        if leg not in self._endpointers:
            self._endpointers[leg] = Endpointer(self._vad(), self._settings, leg=leg)
            self._samples[leg] = 0

    def __contains__(self, leg: object) -> bool:
        return leg in self._endpointers

    @property
    def duration(self) -> float:
        return max(self._samples.values(), default=0) / SAMPLE_RATE

    def push(self, audio: Mapping[str, np.ndarray]) -> list[EndpointEvent]:
        """16 kHz audio per leg heard; unknown legs are ignored."""
        return self._through(audio, Endpointer.push)

    def bridge(self, audio: Mapping[str, np.ndarray]) -> list[EndpointEvent]:
        """Audio standing for a gap the platform announced: counted in call time, never heard."""
        return self._through(audio, Endpointer.bridge)

    def _through(
        self, audio: Mapping[str, np.ndarray], step: Callable[[Endpointer, np.ndarray], list[EndpointEvent]]
    ) -> list[EndpointEvent]:
        events: list[EndpointEvent] = []
        for leg, chunk in audio.items():
            endpointer = self._endpointers.get(leg)
            if endpointer is None:
                continue
            self._samples[leg] += len(chunk)
            events += step(endpointer, chunk)
        return events

    def cut(self, legs: Iterable[str] | None = None) -> list[EndpointEvent]:
        """End the utterance in progress on these legs (default: all) now."""
        events: list[EndpointEvent] = []
        for leg in self._endpointers if legs is None else legs:
            endpointer = self._endpointers.get(leg)
            if endpointer is not None:
                events += endpointer.cut()
        return events

    def flush(self) -> list[EndpointEvent]:
        """End of the call: close every open utterance."""
        events: list[EndpointEvent] = []
        for endpointer in self._endpointers.values():
            events += endpointer.flush()
        return events


def endpoint_recording(
    legs: Mapping[str, np.ndarray], settings: EndpointSettings, *, vad: VadFactory | None = None
) -> list[UtteranceEnded]:
    """Every utterance of a recording's legs (16 kHz), leg after leg, as the live session cuts them."""
    endpoints = LegEndpoints(settings, legs, vad=vad)
    step = int(SAMPLE_RATE * CHUNK_SECONDS)
    ended: list[UtteranceEnded] = []
    for leg, audio in legs.items():
        for i in range(0, len(audio), step):
            ended += _ended(endpoints.push({leg: audio[i : i + step]}))
    return ended + _ended(endpoints.flush())


def _ended(events: list[EndpointEvent]) -> list[UtteranceEnded]:
    """Offline, only finished utterances matter (partial snapshots are dropped at once)."""
    return [ev for ev in events if isinstance(ev, UtteranceEnded)]
