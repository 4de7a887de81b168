"""Which recordings ``callassist analyze`` was given, and what a report of each depends on.

Inputs
  * stereo WAV (PCM s16, mu-law or A-law; 8 or 16 kHz): left channel agent, right channel customer.
    The recording's name is the file name without ``.wav`` (``dev_zh_02.8k.wav`` -> ``dev_zh_02.8k``).
  * ``--pairs``: two mono WAVs per call, named ``<call>.agent.wav`` and ``<call>.customer.wav`` (given
    in any order).  Names rather than argument order, because a shell glob sorts ``a.customer.wav``
    before ``a.agent.wav`` and a silently swapped pair would blame the customer for the agent's words.

Sidecar JSON (optional): the first of ``<name>.json``, then ``<name>`` with its last dotted suffix
removed (``dev_zh_02.8k`` -> ``dev_zh_02.json``), next to the first audio file.  Used keys:
``language`` ("zh" | "en"), ``metadata`` (object: agent_name, borrower_timezone, ...; as a live call's
start frame) and ``start_time`` (ISO 8601, naive = UTC).  The shared corpus's label files qualify.

Language: ``--language`` for every recording, else the sidecar's, else ``settings.default_language``
("zh").  Whisper is forced to it, as the live service is to the start frame's language.

Start time: the sidecar's ``start_time``, else the audio file's modification time minus its
duration (a recorder writes the file when the call ends).  It only matters for the allowed-hours
check, which also needs ``metadata.borrower_timezone``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.audio.wavfile import read_wav
from stream.settings import SUPPORTED_LANGUAGES, Settings

BATCH_FORMAT = 1  # bump when the analysis changes what a report contains, to invalidate old reports
PAIR_SUFFIXES = {".agent.wav": "agent", ".customer.wav": "customer"}
HASH_CHUNK = 1 << 20


class BatchError(RuntimeError):
    """The batch cannot start (bad arguments, unreadable inputs); one line says why."""


@dataclass(frozen=True)
class Recording:
    """One call to analyze: its audio files (one stereo, or agent then customer) and what goes with it."""

    name: str
    files: tuple[Path, ...]
    language: str
    language_from: str
    metadata: Mapping[str, Any]
    start_time: float | None  # unix seconds from the sidecar; None: derived from the file time
    sidecar: Path | None
    duration: float
    fingerprint: str = ""


def plan_recordings(
    paths: Sequence[str | Path],
    *,
    pairs: bool,
    language: str | None,
    default_language: str,
) -> list[Recording]:
    """Group the input files into recordings and settle each one's language and metadata.

    Fails (``BatchError``) before any model work on anything that would fail later anyway: a missing
    or unreadable file, a mono file without ``--pairs``, an incomplete pair, two recordings that would
    write the same report.
    """
    if language is not None and language not in SUPPORTED_LANGUAGES:
        raise BatchError(f"--language must be one of {', '.join(SUPPORTED_LANGUAGES)}")
    groups: list[tuple[str, tuple[Path, ...]]] = []
    if pairs:
        legs: dict[str, dict[str, Path]] = {}
        order: list[str] = []
        for p in map(Path, paths):
            lower = p.name.lower()
            suffix = next((s for s in PAIR_SUFFIXES if lower.endswith(s)), None)
            if suffix is None:
                raise BatchError(f"{p}: with --pairs, name files <call>.agent.wav and <call>.customer.wav")
            call = p.name[: -len(suffix)]
            key = str(p.parent / call)
            if key not in legs:
                legs[key] = {}
                order.append(key)
            leg = PAIR_SUFFIXES[suffix]
            if leg in legs[key]:
                raise BatchError(f"{p}: the {leg} leg of {call} is given twice")
            legs[key][leg] = p
        for key in order:
            found = legs[key]
            missing = [leg for leg in ("agent", "customer") if leg not in found]
            if missing:
                raise BatchError(
                    f"{Path(key).name}: no {missing[0]} file ({Path(key).name}.{missing[0]}.wav)"
                )
            groups.append((Path(key).name, (found["agent"], found["customer"])))
    else:
        for p in map(Path, paths):
            name = p.name[:-4] if p.name.lower().endswith(".wav") else p.name
            groups.append((name, (p,)))
    names: dict[str, Path] = {}
    out: list[Recording] = []
    for name, files in groups:
        if name in names:
            raise BatchError(f"two recordings are named {name} ({names[name]} and {files[0]}): rename one")
        names[name] = files[0]
        out.append(_recording(name, files, pairs=pairs, language=language, default_language=default_language))
    return out


def _recording(
    name: str, files: tuple[Path, ...], *, pairs: bool, language: str | None, default_language: str
) -> Recording:
    durations = []
    for f in files:
        wav = read_wav(f)  # WavError carries the one-line reason
        if pairs and wav.channels != 1:
            raise BatchError(f"{f}: {wav.channels} channels; --pairs takes one mono file per leg")
        if not pairs and wav.channels != 2:
            raise BatchError(
                f"{f}: mono; give stereo recordings (left agent, right customer), or --pairs with "
                "<call>.agent.wav and <call>.customer.wav"
            )
        if wav.sample_rate not in (8000, 16000):
            raise BatchError(f"{f}: sample rate {wav.sample_rate} Hz is not supported (need 8000 or 16000)")
        durations.append(wav.duration)
    sidecar = find_sidecar(files[0].parent, name)
    info: dict[str, Any] = {}
    if sidecar is not None:
        try:
            loaded = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BatchError(f"{sidecar}: not readable JSON ({exc})") from exc
        info = loaded if isinstance(loaded, dict) else {}
    if language is not None:
        lang, lang_from = language, "option"
    elif info.get("language") in SUPPORTED_LANGUAGES:
        lang, lang_from = str(info["language"]), "sidecar"
    else:
        lang, lang_from = default_language, "default"
    metadata = info.get("metadata")
    return Recording(
        name=name,
        files=files,
        language=lang,
        language_from=lang_from,
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
        start_time=_start_time(info.get("start_time"), sidecar),
        sidecar=sidecar,
        duration=max(durations),
    )


def find_sidecar(folder: Path, name: str) -> Path | None:
    """``<name>.json``, else the same with dotted suffixes dropped one at a time (see the module doc)."""
    stem = name
    while stem:
        candidate = folder / f"{stem}.json"
        if candidate.is_file():
            return candidate
        if "." not in stem:
            return None
        stem = stem.rsplit(".", 1)[0]
    return None


def _start_time(value: Any, sidecar: Path | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise BatchError(f"{sidecar}: start_time {value!r} is not ISO 8601") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def fingerprint(rec: Recording, settings: Settings, playbook_version: str) -> str:
    """What a report depends on, hashed; equal fingerprints mean the old report can be kept."""
    h = hashlib.sha256()
    for f in rec.files:
        h.update(f"file:{f.name}\0".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                h.update(chunk)
    if rec.sidecar is not None:
        h.update(b"sidecar\0" + rec.sidecar.read_bytes())
    config = {
        "format": BATCH_FORMAT,
        "language": rec.language,
        "asr": _asdict(settings.asr, skip=("final_queue", "partial_queue", "model_cache", "cpu_threads")),
        "endpoint": _asdict(settings.endpoint),
        "masking": settings.store.masking,
        "encoder": settings.guidance_encoder,
        "playbook": playbook_version,
    }
    h.update(json.dumps(config, sort_keys=True).encode())
    return h.hexdigest()


def _asdict(obj: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(obj).items() if k not in skip}
