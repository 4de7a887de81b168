"""Streaming 8 -> 16 kHz resampler: chunk invariance, spectrum, alignment, bookkeeping."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from stream.audio.resample import StreamResampler

FloatArray = npt.NDArray[np.float64]
CHUNK_20MS_8K = 160


def band_limited_noise(n: int, rate: int, cutoff: float, seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    taps = signal.firwin(401, cutoff, fs=rate)
    out: FloatArray = signal.lfilter(taps, 1, rng.standard_normal(n + 400))[400:] * 0.2
    return out


def run_chunked(r: StreamResampler, x: npt.NDArray[np.generic], sizes: list[int]) -> npt.NDArray[np.float32]:
    parts, i = [], 0
    for size in sizes:
        parts.append(r.process(x[i : i + size]))  # type: ignore[arg-type]
        i += size
    assert i >= len(x)
    parts.append(r.flush())
    return np.concatenate(parts)


def one_shot(x: npt.NDArray[np.generic], src: int = 8000) -> npt.NDArray[np.float32]:
    r = StreamResampler(src)
    return np.concatenate((r.process(x), r.flush()))  # type: ignore[arg-type]


def power_spectrum(y: npt.NDArray[np.floating], rate: int) -> tuple[FloatArray, FloatArray]:
    windowed = np.asarray(y, dtype=np.float64) * np.blackman(len(y))
    power = (np.abs(np.fft.rfft(windowed)) ** 2).astype(np.float64)
    freqs = np.fft.rfftfreq(len(y), 1 / rate).astype(np.float64)
    return freqs, power


def test_chunked_equals_one_shot_in_20ms_chunks() -> None:
    x = (band_limited_noise(8000 * 3 + 37, 8000, 3400) * 32767).astype(np.int16)
    whole = one_shot(x)
    chunked = run_chunked(StreamResampler(8000), x, [CHUNK_20MS_8K] * (len(x) // CHUNK_20MS_8K + 1))
    assert len(chunked) == len(whole) == 2 * len(x)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)


def test_chunked_equals_one_shot_for_ragged_chunks_and_float_input() -> None:
    rng = np.random.default_rng(1)
    x = band_limited_noise(12_345, 8000, 3400).astype(np.float32)
    sizes = [0, 1, 2, 3, *rng.integers(0, 500, 200).tolist()]
    whole = one_shot(x)
    chunked = run_chunked(StreamResampler(8000), x, [*sizes, len(x)])
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)


def test_length_bookkeeping_is_exact() -> None:
    r = StreamResampler(8000)
    delay = r.delay_samples
    assert delay == 70  # 141-tap linear-phase filter: (141 - 1) / 2
    total_in = total_out = 0
    for size in (10, 25, 160, 1, 160, 333):
        out = r.process(np.zeros(size, dtype=np.int16))
        total_in += size
        total_out += len(out)
        assert total_out == max(0, 2 * total_in - delay)
        assert r.pending_samples == 2 * total_in - total_out
    total_out += len(r.flush())
    assert total_out == 2 * total_in
    assert r.pending_samples == 0


def test_short_stream_shorter_than_the_filter_delay() -> None:
    x = np.full(10, 1000, dtype=np.int16)
    r = StreamResampler(8000)
    assert len(r.process(x)) == 0
    assert len(r.flush()) == 20


def test_flush_resets_for_a_new_stream() -> None:
    x = (band_limited_noise(1000, 8000, 3000) * 30000).astype(np.int16)
    r = StreamResampler(8000)
    assert len(r.flush()) == 0  # nothing received, nothing owed
    first = np.concatenate((r.process(x), r.flush()))
    second = np.concatenate((r.process(x), r.flush()))
    np.testing.assert_array_equal(first, second)


def test_output_is_time_aligned_with_the_input() -> None:
    """Group delay is compensated: upsampling a decimated band-limited signal gives it back in place."""
    original = band_limited_noise(32_000, 16_000, 3300)
    decimated = original[::2].astype(np.float32)  # exact: nothing above 4 kHz to alias
    restored = one_shot(decimated)
    core = slice(500, -500)  # the stream's edges start from silence on both sides
    err = np.max(np.abs(restored[core] - original[core])) / np.max(np.abs(original))
    assert err < 1e-3
    lags = range(-3, 4)
    corr = [np.corrcoef(np.roll(restored, lag)[core], original[core])[0, 1] for lag in lags]
    assert int(np.argmax(corr)) == 3  # lag 0


def test_3khz_tone_keeps_its_frequency_and_level() -> None:
    t = np.arange(8000) / 8000
    tone = (0.5 * 32767 * np.sin(2 * np.pi * 3000 * t)).astype(np.int16)
    y = one_shot(tone)[800:-800]
    freqs, power = power_spectrum(y, 16_000)
    assert abs(freqs[np.argmax(power)] - 3000) <= 16_000 / len(y)
    rms_in = np.sqrt(np.mean((tone[400:-400] / 32768.0) ** 2))
    rms_out = np.sqrt(np.mean(y.astype(float) ** 2))
    assert abs(20 * np.log10(rms_out / rms_in)) < 0.1  # flat passband


@pytest.mark.parametrize("kind", ["tone", "noise"])
def test_image_energy_above_4khz_is_below_minus_40db(kind: str) -> None:
    if kind == "tone":
        t = np.arange(16_000) / 8000
        x = (0.5 * 32767 * np.sin(2 * np.pi * 3000 * t)).astype(np.int16)
    else:  # telephone-band noise: speech-like spectrum up to 3.4 kHz
        x = (band_limited_noise(16_000, 8000, 3400) * 32767).astype(np.int16)
    y = one_shot(x)[1000:-1000].astype(float)
    freqs, power = power_spectrum(y, 16_000)
    image_db = 10 * np.log10(power[freqs >= 4000].sum() / power.sum())
    assert image_db < -40, image_db

    naive = np.repeat(x, 2)[1000:-1000] / 32768.0  # the artefact the resampler exists to avoid
    freqs, power = power_spectrum(naive, 16_000)
    assert 10 * np.log10(power[freqs >= 4000].sum() / power.sum()) > -20


def test_16k_is_a_pass_through() -> None:
    x = (band_limited_noise(1234, 16_000, 7000) * 30000).astype(np.int16)
    r = StreamResampler(16_000)
    assert r.delay_samples == 0
    out = r.process(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (x / 32768.0).astype(np.float32))
    assert len(r.flush()) == 0
    f = np.linspace(-1, 1, 50, dtype=np.float32)
    np.testing.assert_array_equal(StreamResampler(16_000).process(f), f)


def test_rejects_bad_rates_and_input() -> None:
    with pytest.raises(ValueError, match="integer"):
        StreamResampler(11_025)
    with pytest.raises(ValueError, match="integer"):
        StreamResampler(16_000, 8000)
    with pytest.raises(ValueError):
        StreamResampler(0)
    r = StreamResampler(8000)
    with pytest.raises(ValueError, match="1-D"):
        r.process(np.zeros((2, 160), dtype=np.int16))
    with pytest.raises(TypeError, match="int16 or float32"):
        r.process(np.zeros(160, dtype=np.int32))  # type: ignore[arg-type]


def test_cost_per_20ms_chunk() -> None:
    r = StreamResampler(8000)
    chunk = (band_limited_noise(CHUNK_20MS_8K, 8000, 3400) * 30000).astype(np.int16)
    batches = []  # best of several: the cores are shared, and contention only ever adds time
    for _ in range(10):
        t0 = time.perf_counter()
        for _ in range(200):
            r.process(chunk)
        batches.append((time.perf_counter() - t0) / 200)
    per_chunk_us = min(batches) * 1e6
    print(f"resampler: {per_chunk_us:.1f} us per 20 ms chunk (8 -> 16 kHz)")
    assert per_chunk_us < 1000  # generous: ~25 us expected; 1 ms would still be 5% of real time
