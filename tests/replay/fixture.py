"""A fixture call split into its legs, in the forms the platforms send."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream.audio import codecs
from stream.audio.wavfile import WavAudio, read_wav

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FRAME_MS = 20


@dataclass(frozen=True)
class FixtureCall:
    """``<name>.wav`` / ``<name>.8k.wav``: left channel the agent, right the customer."""

    name: str
    wav: WavAudio
    script: dict[str, Any]
    agent: np.ndarray  # int16 samples at wav.sample_rate
    customer: np.ndarray

    @property
    def language(self) -> str:
        return str(self.script["language"])

    @property
    def rate(self) -> int:
        return self.wav.sample_rate

    def legs(self) -> dict[str, np.ndarray]:
        return {"agent": self.agent, "customer": self.customer}

    def mulaw(self, leg: str) -> bytes:
        """The leg as G.711 mu-law (the wire bytes themselves when the fixture is mu-law)."""
        if self.wav.encoding == "mulaw":
            return self.wav.data[0 if leg == "agent" else 1 :: 2]
        return codecs.encode_mulaw(self.legs()[leg])

    def frames(self, frame_ms: int = FRAME_MS) -> Iterator[tuple[int, int]]:
        """(start, end) sample indices of consecutive frames."""
        step = self.rate * frame_ms // 1000
        for i in range(0, len(self.agent), step):
            yield i, min(i + step, len(self.agent))


@functools.cache
def load(name: str) -> FixtureCall:
    """``dev_en_02.8k`` (8 kHz mu-law) or ``dev_en_02`` (16 kHz s16)."""
    wav = read_wav(FIXTURES / f"{name}.wav")
    script = json.loads((FIXTURES / f"{name.split('.')[0]}.json").read_text(encoding="utf-8"))
    samples = codecs.decode(wav.encoding, wav.data).reshape(-1, wav.channels)
    return FixtureCall(
        name=name,
        wav=wav,
        script=script,
        agent=np.ascontiguousarray(samples[:, 0]),
        customer=np.ascontiguousarray(samples[:, 1]),
    )
