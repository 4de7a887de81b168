"""Telephone audio codecs: G.711 mu-law / A-law and 16-bit little-endian PCM.

``audioop`` is deprecated and removed in Python 3.13, so G.711 is done here with
numpy.  Decoding is a lookup in a 256-entry table and encoding a lookup in a
65,536-entry table (one byte per possible int16 sample); both tables are built
once at import from the ITU-T G.711 segment rules, vectorised, so the hot path
is a single fancy-index per frame with no per-sample Python.

Decoded samples are the 16-bit scaled G.711 reconstruction values (the same
numbers ``audioop.ulaw2lin`` / ``alaw2lin`` produce): mu-law spans +-32124,
A-law +-32256.  Encoding follows the Sun/CCITT reference coder's arithmetic, so
it is byte-identical to ``audioop.lin2ulaw`` / ``lin2alaw``: recordings made
before the switch and after it are the same.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]

PCM_S16LE: Final = "pcm_s16le"
MULAW: Final = "mulaw"
ALAW: Final = "alaw"

BYTES_PER_SAMPLE: Final[dict[str, int]] = {PCM_S16LE: 2, MULAW: 1, ALAW: 1}

# G.711 constants (ITU-T G.711 tables 1a/2a; the bias/clip values are the
# 14-bit mu-law and 13-bit A-law ones used by the reference implementations).
_MULAW_BIAS: Final = 0x84  # 132: shifts every segment so the exponent is a simple bit position
_MULAW_BIAS_14: Final = _MULAW_BIAS >> 2  # the same bias in the encoder's 14-bit domain
_MULAW_CLIP_14: Final = 8158  # largest 14-bit magnitude that stays in the top segment once biased
_ALAW_XOR: Final = 0x55  # even-bit inversion applied on the wire
_SEGMENTS: Final = 8


def _build_mulaw_decode() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    u = ~code & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_alaw_decode() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    a = code ^ _ALAW_XOR
    sign = a & 0x80  # set means positive in A-law
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


def _build_mulaw_encode() -> npt.NDArray[np.uint8]:
    # Index i is the int16 sample whose two's-complement bit pattern is i.  The
    # arithmetic follows the Sun/CCITT reference coder in the 14-bit domain, so
    # the output is byte-identical to audioop.lin2ulaw (which this replaces).
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 2
    negative = pcm < 0
    magnitude = np.minimum(np.abs(pcm), _MULAW_CLIP_14) + _MULAW_BIAS_14
    # Segment = how many doublings above 0x3F the biased magnitude is (0..7).
    seg = np.zeros_like(magnitude)
    for s in range(1, _SEGMENTS):
        seg = np.where(magnitude >= (0x20 << s), s, seg)
    mantissa = (magnitude >> (seg + 1)) & 0x0F
    mask = np.where(negative, 0x7F, 0xFF)  # sign bit plus the all-bits inversion
    byte: npt.NDArray[np.int32] = ((seg << 4) | mantissa) ^ mask
    return byte.astype(np.uint8)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 3  # 13-bit domain
    positive = pcm >= 0
    magnitude = np.where(positive, pcm, -pcm - 1)
    seg = np.zeros_like(magnitude)
    for s in range(1, _SEGMENTS):
        seg = np.where(magnitude >= (0x10 << s), s, seg)
    mantissa = np.where(seg < 2, magnitude >> 1, magnitude >> seg) & 0x0F
    byte = (seg << 4) | mantissa
    mask = np.where(positive, 0xD5, 0x55)  # sign bit plus the even-bit inversion
    return (byte ^ mask).astype(np.uint8)


MULAW_DECODE: Final = _build_mulaw_decode()
ALAW_DECODE: Final = _build_alaw_decode()
_MULAW_ENCODE: Final = _build_mulaw_encode()
_ALAW_ENCODE: Final = _build_alaw_encode()
for _table in (MULAW_DECODE, ALAW_DECODE, _MULAW_ENCODE, _ALAW_ENCODE):
    _table.flags.writeable = False


class CodecError(ValueError):
    """Bytes that cannot be decoded with the requested encoding."""


def bytes_per_sample(encoding: str) -> int:
    try:
        return BYTES_PER_SAMPLE[encoding]
    except KeyError:
        raise CodecError(f"unsupported encoding {encoding!r}") from None


def decode(encoding: str, data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode wire bytes into int16 samples (interleaved channels stay interleaved)."""
    if encoding == MULAW:
        return MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
    if encoding == ALAW:
        return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
    if encoding == PCM_S16LE:
        if len(data) % 2:
            raise CodecError(f"pcm_s16le needs an even byte count, got {len(data)}")
        # astype to native order: a no-op copy on little-endian hosts, a swap elsewhere.
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    raise CodecError(f"unsupported encoding {encoding!r}")


def encode(encoding: str, samples: npt.ArrayLike) -> bytes:
    """Encode int16 samples as wire bytes (for the simulator and tests)."""
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        raise CodecError(f"encode expects int16 samples, got {pcm.dtype}")
    if encoding == MULAW:
        return _MULAW_ENCODE[pcm.view(np.uint16)].tobytes()
    if encoding == ALAW:
        return _ALAW_ENCODE[pcm.view(np.uint16)].tobytes()
    if encoding == PCM_S16LE:
        return pcm.astype("<i2").tobytes()
    raise CodecError(f"unsupported encoding {encoding!r}")


def encode_mulaw(samples: npt.ArrayLike) -> bytes:
    return encode(MULAW, samples)


def encode_alaw(samples: npt.ArrayLike) -> bytes:
    return encode(ALAW, samples)


def decode_mulaw(data: bytes | bytearray | memoryview) -> Int16Array:
    return decode(MULAW, data)


def decode_alaw(data: bytes | bytearray | memoryview) -> Int16Array:
    return decode(ALAW, data)
