"""G.711 and PCM codecs: table values, round trips, and a real telephone recording."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from stream.audio import codecs
from tests.fakes import read_pcm_wav, read_wav_chunks

FIXTURES = Path(__file__).parent / "fixtures"
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_BYTES = bytes(range(256))


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xEF, 132), (0x6F, -132)],
)
def test_mulaw_known_values(code: int, value: int) -> None:
    assert codecs.MULAW_DECODE[code] == value
    assert codecs.decode("mulaw", bytes([code]))[0] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)],
)
def test_alaw_known_values(code: int, value: int) -> None:
    assert codecs.ALAW_DECODE[code] == value
    assert codecs.decode("alaw", bytes([code]))[0] == value


def test_tables_are_odd_symmetric_and_cover_the_range() -> None:
    mu = codecs.MULAW_DECODE.astype(int)
    a = codecs.ALAW_DECODE.astype(int)
    assert np.array_equal(mu[:128], -mu[128:])  # the sign bit is the top bit
    assert np.array_equal(a[:128], -a[128:])
    assert len(np.unique(a)) == 256  # A-law has no negative zero
    assert len(np.unique(mu)) == 255  # mu-law has +0 and -0


def test_matches_audioop_byte_for_byte() -> None:
    """audioop is what the tables replace; where it still exists, they must agree exactly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    pcm = ALL_INT16.tobytes()
    assert codecs.decode("mulaw", ALL_BYTES).tobytes() == audioop.ulaw2lin(ALL_BYTES, 2)
    assert codecs.decode("alaw", ALL_BYTES).tobytes() == audioop.alaw2lin(ALL_BYTES, 2)
    assert codecs.encode("mulaw", ALL_INT16) == audioop.lin2ulaw(pcm, 2)
    assert codecs.encode("alaw", ALL_INT16) == audioop.lin2alaw(pcm, 2)


def test_encode_of_decoded_is_identity() -> None:
    assert codecs.encode("alaw", codecs.decode("alaw", ALL_BYTES)) == ALL_BYTES
    expected = bytearray(ALL_BYTES)
    expected[0x7F] = 0xFF  # -0 re-encodes as +0
    assert codecs.encode("mulaw", codecs.decode("mulaw", ALL_BYTES)) == bytes(expected)


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_round_trip_error_within_one_quantisation_step(encoding: str) -> None:
    levels = np.unique(codecs.decode(encoding, ALL_BYTES).astype(int))
    x = ALL_INT16.astype(int)
    y = codecs.decode(encoding, codecs.encode(encoding, ALL_INT16)).astype(int)
    inside = np.abs(x) <= levels[-1]
    # The interval between the two reconstruction levels around x bounds the error.
    hi = np.clip(np.searchsorted(levels, x[inside]), 1, len(levels) - 1)
    step = levels[hi] - levels[hi - 1]
    assert np.all(np.abs(y[inside] - x[inside]) <= step)
    # Out of range: clipped to the largest level, never wrapped.
    assert np.all(np.abs(y[~inside]) == levels[-1])
    assert np.all(np.sign(y[~inside]) == np.sign(x[~inside]))


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_speech_level_snr(encoding: str) -> None:
    """G.711 gives ~38 dB SQNR at speech levels; a broken segment table would not."""
    t = np.arange(8000) / 8000
    x = (0.3 * 32767 * np.sin(2 * np.pi * 1013 * t)).astype(np.int16)
    y = codecs.decode(encoding, codecs.encode(encoding, x)).astype(float)
    noise = y - x
    snr = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum(noise**2))
    assert snr > 35


def test_pcm_s16le() -> None:
    assert codecs.decode("pcm_s16le", b"\x01\x00\xff\xff\x00\x80").tolist() == [1, -1, -32768]
    assert codecs.encode("pcm_s16le", ALL_INT16) == ALL_INT16.astype("<i2").tobytes()
    assert np.array_equal(codecs.decode("pcm_s16le", codecs.encode("pcm_s16le", ALL_INT16)), ALL_INT16)
    with pytest.raises(codecs.CodecError, match="even"):
        codecs.decode("pcm_s16le", b"\x01\x00\x02")


def test_decode_returns_native_int16() -> None:
    for encoding in ("mulaw", "alaw", "pcm_s16le"):
        out = codecs.decode(encoding, b"\x12\x34")
        assert out.dtype == np.int16
        assert out.dtype.isnative


def test_bad_arguments() -> None:
    with pytest.raises(codecs.CodecError, match="unsupported"):
        codecs.decode("opus", b"\x00")
    with pytest.raises(codecs.CodecError, match="unsupported"):
        codecs.encode("opus", ALL_INT16)
    with pytest.raises(codecs.CodecError, match="int16"):
        codecs.encode("mulaw", np.zeros(4, dtype=np.float32))
    with pytest.raises(codecs.CodecError):
        codecs.bytes_per_sample("flac")
    assert [codecs.bytes_per_sample(e) for e in ("pcm_s16le", "mulaw", "alaw")] == [2, 1, 1]


def test_convenience_wrappers() -> None:
    assert codecs.encode_mulaw(ALL_INT16) == codecs.encode("mulaw", ALL_INT16)
    assert codecs.encode_alaw(ALL_INT16) == codecs.encode("alaw", ALL_INT16)
    assert np.array_equal(codecs.decode_mulaw(ALL_BYTES), codecs.MULAW_DECODE)
    assert np.array_equal(codecs.decode_alaw(ALL_BYTES), codecs.ALAW_DECODE)


def test_fixture_mulaw_recording_matches_the_16k_original() -> None:
    tag, channels, rate, data = read_wav_chunks(FIXTURES / "dev_zh_02.8k.wav")
    assert (tag, channels, rate) == (7, 2, 8000)  # WAVE_FORMAT_MULAW, stereo
    decoded = codecs.decode("mulaw", data).reshape(-1, channels).astype(float)
    rate16, original = read_pcm_wav(FIXTURES / "dev_zh_02.wav")
    assert rate16 == 16000
    for ch in range(channels):
        reference = signal.resample_poly(original[:, ch].astype(float), 1, 2)
        n = min(len(reference), len(decoded))
        assert abs(n - len(decoded)) <= 1
        corr = np.corrcoef(reference[:n], decoded[:n, ch])[0, 1]
        assert corr > 0.99, f"channel {ch}: correlation {corr:.4f}"
