"""Reading call recordings: RIFF/WAVE with PCM s16, G.711 mu-law or A-law.

The standard library's ``wave`` module refuses G.711 WAVs (format tags 6 and 7),
which is exactly what telephony systems record, so we walk the chunks ourselves.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
MAX_WAV_BYTES = 2 * 1024**3  # refuse anything RIFF cannot describe anyway

_ENCODINGS = {WAVE_FORMAT_PCM: "pcm_s16le", WAVE_FORMAT_ALAW: "alaw", WAVE_FORMAT_MULAW: "mulaw"}


class WavError(ValueError):
    """The file is not a WAV we can read; the message says why in one line."""


@dataclass(frozen=True)
class WavAudio:
    encoding: str  # pcm_s16le | mulaw | alaw
    sample_rate: int
    channels: int
    data: bytes  # interleaved frames in ``encoding``

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm_s16le" else 1

    @property
    def frames(self) -> int:
        return len(self.data) // (self.bytes_per_sample * self.channels)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def read_wav(path: str | Path) -> WavAudio:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise WavError(f"cannot read {p}: {exc.strerror}") from exc
    return parse_wav(raw, name=str(p))


def parse_wav(raw: bytes, *, name: str = "<bytes>") -> WavAudio:
    if len(raw) > MAX_WAV_BYTES:
        raise WavError(f"{name}: larger than {MAX_WAV_BYTES} bytes")
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavError(f"{name}: not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    while pos + 8 <= len(raw):
        cid = raw[pos : pos + 4]
        (size,) = struct.unpack_from("<I", raw, pos + 4)
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise WavError(f"{name}: fmt chunk too short")
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body, 0)
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                (tag,) = struct.unpack_from("<H", body, 24)
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            data = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise WavError(f"{name}: no fmt chunk")
    if data is None:
        raise WavError(f"{name}: no data chunk")
    tag, channels, rate, bits = fmt
    encoding = _ENCODINGS.get(tag)
    if encoding is None:
        raise WavError(f"{name}: unsupported WAV format tag {tag} (need PCM s16, mu-law or A-law)")
    if encoding == "pcm_s16le" and bits != 16:
        raise WavError(f"{name}: {bits}-bit PCM is not supported (need 16-bit)")
    if channels not in (1, 2):
        raise WavError(f"{name}: {channels} channels (need mono or stereo)")
    audio = WavAudio(encoding=encoding, sample_rate=rate, channels=channels, data=data)
    usable = audio.frames * audio.bytes_per_sample * channels
    if usable != len(data):
        audio = WavAudio(encoding=encoding, sample_rate=rate, channels=channels, data=data[:usable])
    return audio
