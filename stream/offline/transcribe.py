"""Offline transcription of a recorded call, with the live service's own endpointing.

A recording goes through exactly the steps live audio does -- decode, resample,
per-leg endpointing, Whisper, hallucination guard -- only as fast as the CPU
allows instead of at real-time pace, so offline and live transcripts agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from stream.asr.base import Transcriber
from stream.audio.codecs import decode
from stream.audio.endpointer import Endpointer, UtteranceEnded
from stream.audio.resample import StreamResampler
from stream.audio.vad import make_vad
from stream.audio.wavfile import WavAudio, WavError
from stream.live.pipeline import AsrPlan, accept_text
from stream.settings import Settings

CHUNK_SECONDS = 0.5  # how much audio the endpointer gets per push; any size works
STEREO_LEGS = ("agent", "customer")  # left channel = agent, right = customer


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


def segment(audio: np.ndarray, leg: str, settings: Settings) -> Iterator[UtteranceEnded]:
    endpointer = Endpointer(make_vad(settings.endpoint.vad), settings.endpoint, leg=leg)
    step = int(16000 * CHUNK_SECONDS)
    for i in range(0, len(audio), step):
        for ev in endpointer.push(audio[i : i + step]):
            if isinstance(ev, UtteranceEnded):
                yield ev
    for ev in endpointer.flush():
        if isinstance(ev, UtteranceEnded):
            yield ev


def transcribe_legs(
    legs: dict[str, np.ndarray],
    *,
    language: str,
    transcriber: Transcriber,
    settings: Settings,
    plan: AsrPlan,
) -> list[Utterance]:
    utterances: list[Utterance] = []
    for leg, audio in legs.items():
        for ev in segment(audio, leg, settings):
            req = plan.request(ev.audio, language)
            text = accept_text(transcriber.transcribe(req), req)
            if text:
                utterances.append(
                    Utterance(
                        speaker="agent" if leg == "agent" else "customer",
                        start=round(ev.start, 3),
                        end=round(ev.end, 3),
                        text=text,
                        language=language,
                        utterance_id=ev.utterance_id,
                    )
                )
    utterances.sort(key=lambda u: (u.start, u.speaker))
    return utterances
