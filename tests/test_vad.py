"""VADs: Silero on a fixture call leg (speech vs the -60 dBFS floor), the energy fallback."""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from stream.audio.vad import EnergyVad, SileroVad, Vad, make_vad, rms_dbfs

FIXTURES = Path(__file__).parent / "fixtures"
RATE = 16_000
FRAME = 512


def load_leg(call: str, channel: int) -> npt.NDArray[np.float32]:
    with wave.open(str(FIXTURES / f"{call}.wav")) as w:
        assert w.getframerate() == RATE
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    out: npt.NDArray[np.float32] = (pcm[:, channel] / 32768.0).astype(np.float32)
    return out


def turns(call: str, speaker: str) -> list[dict[str, Any]]:
    script = json.loads((FIXTURES / f"{call}.json").read_text(encoding="utf-8"))
    return [t for t in script["turns"] if t["speaker"] == speaker]


def frame_probs(vad: Vad, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    n = len(audio) // vad.frame_samples
    f = vad.frame_samples
    return np.array([vad.speech_prob(audio[i * f : (i + 1) * f]) for i in range(n)])


@pytest.fixture(scope="module")
def agent_leg() -> npt.NDArray[np.float32]:
    return load_leg("dev_en_01", 0)


@pytest.fixture(scope="module")
def agent_probs(agent_leg: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return frame_probs(SileroVad(), agent_leg)


def frame_mask(n_frames: int, spans: list[tuple[float, float]]) -> npt.NDArray[np.bool_]:
    centres = (np.arange(n_frames) * FRAME + FRAME / 2) / RATE
    mask = np.zeros(n_frames, dtype=bool)
    for start, end in spans:
        mask |= (centres >= start) & (centres < end)
    return mask


def test_silero_hears_speech_in_every_agent_turn(agent_probs: npt.NDArray[np.float64]) -> None:
    for turn in turns("dev_en_01", "agent"):
        inside = agent_probs[frame_mask(len(agent_probs), [(turn["start"], turn["end"])])]
        share = float(np.mean(inside >= 0.5))
        # Word gaps and sentence pauses are legitimately non-speech; most of a turn is speech.
        assert share > 0.6, f"turn at {turn['start']}: only {share:.0%} of frames are speech"


def test_silero_is_quiet_on_the_noise_floor_between_turns(
    agent_leg: npt.NDArray[np.float32], agent_probs: npt.NDArray[np.float64]
) -> None:
    agent_turns = [(t["start"] - 0.3, t["end"] + 0.3) for t in turns("dev_en_01", "agent")]
    gaps = ~frame_mask(len(agent_probs), agent_turns)
    assert gaps.sum() > 500  # about 40 s of the agent leg is the customer talking
    gap_audio = np.concatenate([agent_leg[i * FRAME : (i + 1) * FRAME] for i in np.flatnonzero(gaps)])
    assert -65 < rms_dbfs(gap_audio) < -55  # the fixture's noise floor, as documented
    assert float(np.mean(agent_probs[gaps] >= 0.5)) < 0.01
    assert float(np.max(agent_probs[gaps])) < 0.5


def test_streaming_frames_match_faster_whisper_batch(agent_leg: npt.NDArray[np.float32]) -> None:
    """Per-frame feeding with carried context and LSTM state equals faster-whisper's batched run."""
    fw_vad = pytest.importorskip("faster_whisper.vad")
    audio = agent_leg[: FRAME * 600]  # ~19 s
    reference = np.asarray(fw_vad.get_vad_model()(audio)).ravel()
    ours = frame_probs(SileroVad(), audio)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_instances_share_the_session_but_not_the_state(agent_leg: npt.NDArray[np.float32]) -> None:
    speech = agent_leg[int(1.0 * RATE) : int(1.0 * RATE) + FRAME * 40]
    silence = agent_leg[int(9.0 * RATE) : int(9.0 * RATE) + FRAME * 40]  # customer's turn: floor only
    a, b = SileroVad(), SileroVad()
    assert a._session is b._session
    interleaved_a, interleaved_b = [], []
    for i in range(40):
        interleaved_a.append(a.speech_prob(speech[i * FRAME : (i + 1) * FRAME]))
        interleaved_b.append(b.speech_prob(silence[i * FRAME : (i + 1) * FRAME]))
    np.testing.assert_allclose(interleaved_a, frame_probs(SileroVad(), speech), atol=1e-6)
    np.testing.assert_allclose(interleaved_b, frame_probs(SileroVad(), silence), atol=1e-6)


def test_reset_restores_a_fresh_state(agent_leg: npt.NDArray[np.float32]) -> None:
    audio = agent_leg[RATE : RATE + FRAME * 30]
    vad = SileroVad()
    first = frame_probs(vad, audio)
    vad.reset()
    np.testing.assert_allclose(frame_probs(vad, audio), first, atol=1e-6)


def test_silero_rejects_other_frame_sizes() -> None:
    with pytest.raises(ValueError, match="512"):
        SileroVad().speech_prob(np.zeros(480, dtype=np.float32))


def test_silero_per_frame_cost(agent_leg: npt.NDArray[np.float32]) -> None:
    vad = SileroVad()
    frames = [agent_leg[RATE + i * FRAME : RATE + (i + 1) * FRAME] for i in range(300)]
    vad.speech_prob(frames[0])  # warm-up
    batches = []  # best of several: the cores are shared, and contention only ever adds time
    for start in range(0, len(frames), 50):
        t0 = time.perf_counter()
        for frame in frames[start : start + 50]:
            vad.speech_prob(frame)
        batches.append((time.perf_counter() - t0) / 50)
    per_frame_ms = min(batches) * 1e3
    print(f"silero: {per_frame_ms:.3f} ms per {FRAME}-sample (32 ms) frame, 1 thread")
    assert per_frame_ms < 8.0  # a quarter of real time would already be alarming; ~0.25 ms expected


def test_energy_vad_levels() -> None:
    vad = EnergyVad()
    t = np.arange(vad.frame_samples) / RATE
    loud = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # -23 dBFS
    floor = (10 ** (-60 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert vad.speech_prob(loud) > 0.99
    assert vad.speech_prob(floor) < 0.01
    assert vad.speech_prob(np.zeros(vad.frame_samples, dtype=np.float32)) < 1e-6
    at_threshold = (10 ** (vad.threshold_dbfs / 20) * np.ones(vad.frame_samples)).astype(np.float32)
    assert vad.speech_prob(at_threshold) == pytest.approx(0.5, abs=1e-3)
    vad.reset()  # stateless, but part of the protocol


def test_rms_dbfs() -> None:
    t = np.arange(RATE) / RATE
    assert rms_dbfs(np.sin(2 * np.pi * 100 * t).astype(np.float32)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(np.ones(10, dtype=np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(np.zeros(10, dtype=np.float32)) == -120.0
    assert rms_dbfs(np.zeros(0, dtype=np.float32)) == -120.0


def test_energy_vad_on_the_fixture(agent_leg: npt.NDArray[np.float32]) -> None:
    probs = frame_probs(EnergyVad(), agent_leg)
    agent_turns = [(t["start"] - 0.3, t["end"] + 0.3) for t in turns("dev_en_01", "agent")]
    gaps = ~frame_mask(len(probs), agent_turns)
    assert float(np.mean(probs[gaps] >= 0.5)) < 0.01


def test_make_vad() -> None:
    silero: Vad = make_vad("silero")
    energy: Vad = make_vad("energy")
    assert isinstance(silero, SileroVad) and silero.frame_samples == 512
    assert isinstance(energy, EnergyVad) and energy.frame_samples == 512
    assert make_vad("silero") is not silero  # one instance per leg
    with pytest.raises(ValueError, match="unknown VAD"):
        make_vad("webrtc")
