"""Offline transcription of a recorded call, with the live service's own steps.

A recording goes through exactly the steps live audio does -- decode, resample, per-leg endpointing
(:func:`stream.live.legs.endpoint_recording`), Whisper, then the live
:class:`~stream.live.utterance.UtteranceStep` (hallucination guard, masking, guidance) -- only as fast
as the CPU allows instead of at real-time pace, so offline and live transcripts agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from assist.events import EventBody, TranscriptFinal
from stream.asr.base import Transcriber
from stream.audio.codecs import decode
from stream.audio.resample import StreamResampler
from stream.audio.wavfile import WavAudio, WavError
from stream.live.legs import VadFactory, endpoint_recording
from stream.live.pipeline import AsrPlan
from stream.live.utterance import Heard, UtteranceStep
from stream.settings import Settings

STEREO_LEGS = ("agent", "customer")  # left channel = agent, right = customer
OFFLINE_LATENCY_MS = 0.0  # no listener waits for an offline transcript


@dataclass(frozen=True)
class Utterance:
    speaker: str
    start: float
    end: float
    text: str
    language: str
    utterance_id: str

    def to_dict(self) -> dict[str, object]:
        return {
            "speaker": self.speaker,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "language": self.language,
        }


def leg_audio(wav: WavAudio, legs: tuple[str, ...] = STEREO_LEGS) -> dict[str, np.ndarray]:
    """Decode and resample each channel to 16 kHz float32, keyed by leg."""
    if wav.sample_rate not in (8000, 16000):
        raise WavError(f"sample rate {wav.sample_rate} Hz is not supported (need 8000 or 16000)")
    pcm = decode(wav.encoding, wav.data).reshape(-1, wav.channels)
    out: dict[str, np.ndarray] = {}
    for ch in range(wav.channels):
        leg = legs[ch] if wav.channels > 1 else legs[0]
        resampler = StreamResampler(wav.sample_rate)
        audio = resampler.process(pcm[:, ch])
        tail = resampler.flush()
        out[leg] = np.concatenate([audio, tail]) if len(tail) else audio
    return out


def hear_legs(
    legs: Mapping[str, np.ndarray],
    *,
    language: str,
    transcriber: Transcriber,
    settings: Settings,
    plan: AsrPlan,
    vad: VadFactory | None = None,
) -> list[Heard]:
    """Every utterance of every leg transcribed, in the order they ended (ties: earlier start, then
    the agent), which is the order the live per-call queue judges them in.  ``vad``: as for
    :class:`stream.live.legs.LegEndpoints`."""
    heard = []
    for ev in endpoint_recording(legs, settings.endpoint, vad=vad):
        req = plan.request(ev.audio, language)
        heard.append(Heard.of(ev, req, transcriber.transcribe(req)))
    heard.sort(key=lambda h: (round(h.end, 3), round(h.start, 3), h.speaker))
    return heard


def judge(heard: list[Heard], step: UtteranceStep) -> list[tuple[Heard, list[EventBody]]]:
    """Each utterance's final through the live step, in order; what each one produced."""
    return [(h, step.final(h, latency_ms=OFFLINE_LATENCY_MS)) for h in heard]


def utterances_of(bodies: list[EventBody]) -> list[Utterance]:
    """The final transcripts among these events, in time order."""
    out = [
        Utterance(
            speaker=b.speaker,
            start=b.start,
            end=b.end,
            text=b.text,
            language=b.language,
            utterance_id=b.utterance_id,
        )
        for b in bodies
        if isinstance(b, TranscriptFinal)
    ]
    out.sort(key=lambda u: (u.start, u.speaker))
    return out


def transcripts(heard: list[Heard], *, language: str, masking: bool) -> list[Utterance]:
    """What ``callassist transcribe`` prints: the finals of :func:`hear_legs`, guarded and masked
    (``store.masking``) as live finals are, without guidance."""
    step = UtteranceStep(language, None, masking=masking)
    return utterances_of([b for _, bodies in judge(heard, step) for b in bodies])
