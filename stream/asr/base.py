"""The one interface every transcription backend implements.

Backends are synchronous and CPU-bound; the scheduler runs them on a worker
thread so the event loop never blocks on a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000  # every backend takes its audio at this rate
Audio = npt.NDArray[np.float32]  # mono, SAMPLE_RATE, float32 in [-1, 1]


@dataclass(frozen=True)
class AsrRequest:
    audio: Audio
    language: str  # "zh" | "en": fixed per call, never auto-detected (auto-detection costs ~0.5 s)
    prompt: str = ""  # initial prompt; for Mandarin it carries the simplified-Chinese hint
    hotwords: str = ""  # domain words from the playbook, space-separated
    partial: bool = False  # a provisional transcription of a still-open utterance


@dataclass(frozen=True)
class AsrResult:
    text: str
    no_speech_prob: float
    avg_logprob: float
    compute_ms: float


class Transcriber(Protocol):
    name: str

    def transcribe(self, request: AsrRequest) -> AsrResult: ...
