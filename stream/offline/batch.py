"""``callassist analyze``: review reports for call recordings, offline and faster than real time.

A QA team also reviews calls that never went through the live service.  Each recording goes through
the live pipeline's own steps -- :func:`stream.offline.transcribe.transcribe_legs` (decode, resample, the live
endpointer, Whisper, the hallucination guard), then the guidance engine -- and the resulting events
are reviewed exactly as a stored call is (:func:`assist.review.report.build_report`), so a recording and a
live call of the same audio get the same findings.

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

Outputs in ``--out DIR``: ``<name>.json`` (the report of :mod:`assist.review.report` plus a ``source``
object, below) and ``<name>.html`` (:func:`assist.review.html.render_html`), each written to a temp
file and renamed, HTML first: the JSON is the completion marker.  ``summary.csv`` (``SUMMARY_FIELDS``)
lists every report in DIR made by this command and is rewritten when a run ends, interrupted or not.

``source`` = {"tool": "callassist analyze", "format": BATCH_FORMAT, "files": [file names],
"fingerprint": hex, "language_from": "option" | "sidecar" | "default", "audio_seconds",
"processing_seconds", "analyzed_at": ISO 8601 UTC}.

Resuming: a recording is skipped when its JSON exists with the same ``fingerprint`` and its HTML
exists.  The fingerprint hashes the audio and sidecar bytes, the language, every setting that changes
transcripts or guidance (ASR, endpointing, masking, encoder), the playbook's content version and
``BATCH_FORMAT``; so an interrupted run continues where it stopped, and a changed playbook or model
redoes everything.  ``--force`` redoes everything anyway.

Differences from a live call, by construction: no partial transcripts, so no warning is marked
``partial``; utterances are judged in the order they ended (as the live per-call queue does);
``latency_ms`` is 0 and each event's ``ts`` is the call start plus the end of its utterance.

One Whisper model and one guidance engine serve the whole batch (:class:`Analyzer`), loaded on the
first recording that needs work, so a fully resumed run loads nothing.  Recordings are processed one
at a time (CTranslate2 already uses every core for one utterance).  Limits: a recording is held in
memory whole (WAV files are at most 2 GiB, ``stream.audio.wavfile.MAX_WAV_BYTES``; an hour of 16 kHz
stereo is 230 MB); utterances are cut at ``endpoint.max_utterance_s``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assist.events import (
    CallEnded,
    CallStarted,
    Event,
    EventBody,
    Speaker,
    TranscriptFinal,
)
from assist.masking import mask_text
from assist.review.html import render_html
from assist.review.report import REPORT_SCHEMA, SEVERITY_ORDER, CallFacts, build_report
from stream.audio.wavfile import WavAudio, WavError, read_wav
from stream.files import write_atomic
from stream.settings import SUPPORTED_LANGUAGES, Settings

if TYPE_CHECKING:
    from assist.engine import GuidanceEngine
    from stream.asr.base import Transcriber
    from stream.live.pipeline import AsrPlan
    from stream.offline.transcribe import Utterance

log = logging.getLogger(__name__)

BATCH_FORMAT = 1  # bump when this module changes what a report contains, to invalidate old reports
SOURCE_TOOL = "callassist analyze"
SUMMARY_CSV = "summary.csv"
SUMMARY_FIELDS = (
    "call",
    "duration",
    "score",
    "critical",
    "major",
    "minor",
    "language",
    "start_time",
    "report",
)
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


@dataclass(frozen=True)
class Analysis:
    """What analyzing one recording produced."""

    report: dict[str, Any]
    events: list[Event]
    utterances: list[Utterance]
    audio_seconds: float
    processing_seconds: float


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0  # of the recordings analyzed in this run (not the skipped ones)
    processing_seconds: float = 0.0  # wall time spent analyzing them, model loading included
    summary_path: Path | None = None


# ------------------------------------------------------------------------------------ planning


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


# ------------------------------------------------------------------------------------ analysis


class Analyzer:
    """The batch's one Whisper model and one guidance engine, loaded when first needed.

    Tests and the bench build one and pass it to several :func:`run_batch` calls so the models load
    once per process.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transcriber: Transcriber | None = None,
        engine: GuidanceEngine | None = None,
    ) -> None:
        self.settings = settings
        self._transcriber = transcriber
        self._engine = engine
        self._plan: AsrPlan | None = None

    def load(self) -> None:
        from stream.live.pipeline import asr_plan_for, load_engine, load_transcriber

        if self._transcriber is None:
            self._transcriber = load_transcriber(self.settings)
        if self._engine is None:
            self._engine = load_engine(self.settings)
        if self._plan is None:
            self._plan = asr_plan_for(self._engine)

    def analyze(self, rec: Recording, *, started_at: float) -> Analysis:
        from stream.offline.transcribe import leg_audio, transcribe_legs

        self.load()
        assert self._transcriber is not None and self._engine is not None and self._plan is not None
        t0 = time.perf_counter()
        wavs = [read_wav(f) for f in rec.files]
        if len(wavs) == 1:
            legs = leg_audio(wavs[0])
        else:
            legs = {**leg_audio(wavs[0], ("agent",)), **leg_audio(wavs[1], ("customer",))}
        utterances = transcribe_legs(
            legs,
            language=rec.language,
            transcriber=self._transcriber,
            settings=self.settings,
            plan=self._plan,
        )
        events = replay(
            rec.name,
            utterances,
            self._engine,
            language=rec.language,
            metadata=rec.metadata,
            started_at=started_at,
            duration=rec.duration,
            wav=wavs[0],
            legs=tuple(legs),
            masking=self.settings.store.masking,
        )
        facts = CallFacts(
            call_id=rec.name,
            started_at=started_at,
            language=rec.language,
            metadata=dict(rec.metadata),
            status="ended",
            duration=round(rec.duration, 3),
        )
        report = build_report(facts, events).as_dict()  # events were masked by replay(masking=...)
        return Analysis(report, events, utterances, rec.duration, time.perf_counter() - t0)


def replay(
    call_id: str,
    utterances: Sequence[Utterance],
    engine: GuidanceEngine,
    *,
    language: str,
    metadata: Mapping[str, Any],
    started_at: float,
    duration: float,
    wav: WavAudio,
    legs: tuple[str, ...],
    masking: bool,
) -> list[Event]:
    """The events a live call of these utterances would have logged, stamped as its CallLog would.

    Mirrors :class:`stream.live.session.CallSession`: ``call.started`` first, then per utterance (in the
    order utterances ended) the masked final transcript followed by what the call's guide made of it,
    then ``call.ended``.
    """
    guide = engine.new_call(language, dict(metadata))
    bodies: list[tuple[float, EventBody]] = [
        (
            0.0,
            CallStarted(
                language=language,
                sample_rate=wav.sample_rate,
                encoding=wav.encoding,
                legs=legs,
                metadata=dict(metadata),
            ),
        )
    ]
    for u in sorted(utterances, key=lambda u: (u.end, u.start, u.speaker)):
        text = mask_text(u.text, language=language).text if masking else u.text
        if not text:
            continue
        speaker: Speaker = "agent" if u.speaker == "agent" else "customer"
        final = TranscriptFinal(
            speaker=speaker,
            utterance_id=u.utterance_id,
            text=text,
            language=language,
            start=u.start,
            end=u.end,
            latency_ms=0.0,
        )
        bodies.append((u.end, final))
        bodies.extend((u.end, b) for b in guide.on_final(speaker, text, u.utterance_id))
    bodies.append((duration, CallEnded(reason="stop", duration=round(duration, 3))))
    return [
        Event(call_id=call_id, seq=i, ts=round(started_at + t, 3), body=b)
        for i, (t, b) in enumerate(bodies, start=1)
    ]


# ------------------------------------------------------------------------------------- outputs


def read_report(path: Path) -> dict[str, Any] | None:
    """A report this command wrote, or None (missing, half-written by another tool, not ours)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        return None
    source = data.get("source")
    if not isinstance(source, dict) or source.get("tool") != SOURCE_TOOL:
        return None
    return data


def is_complete(out_dir: Path, rec: Recording) -> bool:
    report = read_report(out_dir / f"{rec.name}.json")
    return (
        report is not None
        and report["source"].get("fingerprint") == rec.fingerprint
        and (out_dir / f"{rec.name}.html").is_file()
    )


def write_summary(out_dir: Path) -> Path:
    """``summary.csv``: one row per report of this command in ``out_dir``, by call name."""
    rows = []
    for path in sorted(out_dir.glob("*.json")):
        report = read_report(path)
        if report is None:
            continue
        call = report.get("call", {})
        counts = report.get("summary", {}).get("findings", {})
        rows.append(
            {
                "call": path.stem,
                "duration": call.get("duration"),
                "score": report.get("score"),
                **{sev: int(counts.get(sev, 0)) for sev in SEVERITY_ORDER},
                "language": call.get("language"),
                "start_time": call.get("start_time"),
                "report": path.name,
            }
        )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target = out_dir / SUMMARY_CSV
    write_atomic(target, buf.getvalue())
    return target


def _check_no_clobber(out_dir: Path, recordings: Sequence[Recording]) -> None:
    """Refuse to write a report over an input (``--out`` = the recordings' folder with label files)."""
    inputs: set[Path] = set()
    for rec in recordings:
        inputs.update(f.resolve() for f in rec.files)
        if rec.sidecar is not None:
            inputs.add(rec.sidecar.resolve())
    for rec in recordings:
        for ext in (".json", ".html"):
            target = (out_dir / f"{rec.name}{ext}").resolve()
            if target in inputs:
                raise BatchError(f"the report {target} would overwrite an input; choose another --out")


# ----------------------------------------------------------------------------------------- run


@contextlib.contextmanager
def _progress(total: float, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(
        total=round(total, 1),
        unit="s",
        unit_scale=False,
        desc="analyze",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
        "[{elapsed}<{remaining}{postfix}]",
    )
    try:
        yield bar
    finally:
        bar.close()


def run_batch(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    settings: Settings,
    language: str | None = None,
    pairs: bool = False,
    force: bool = False,
    progress: bool = True,
    analyzer: Analyzer | None = None,
    say: Callable[[str], None] | None = None,
) -> BatchResult:
    """Analyze every recording in ``paths`` into ``out_dir`` (see the module docstring).

    A recording that fails (a damaged file found only while decoding, a model error) is reported
    through ``say`` and in ``BatchResult.failed``; the others go on.
    """
    from assist.playbook import playbook_version
    from stream.live.pipeline import playbook_dir

    if not paths:
        raise BatchError("no recordings given")
    out = Path(out_dir)
    try:
        recordings = plan_recordings(
            paths, pairs=pairs, language=language, default_language=settings.default_language
        )
    except WavError as exc:
        raise BatchError(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)
    _check_no_clobber(out, recordings)
    version = playbook_version(playbook_dir(settings))
    recordings = [
        dataclasses.replace(rec, fingerprint=fingerprint(rec, settings, version)) for rec in recordings
    ]
    result = BatchResult()
    todo = []
    for rec in recordings:
        if not force and is_complete(out, rec):
            result.skipped.append(rec.name)
        else:
            todo.append(rec)
    emit = say or (lambda line: None)
    if result.skipped:
        emit(f"{len(result.skipped)} recording(s) already analyzed, skipped")
    analyzer = analyzer or Analyzer(settings)
    t0 = time.perf_counter()
    try:
        with _progress(sum(r.duration for r in todo), progress and bool(todo)) as bar:
            for rec in todo:
                bar.set_postfix_str(rec.name, refresh=True)
                try:
                    _analyze_one(analyzer, rec, out)
                except (WavError, ValueError, RuntimeError, OSError) as exc:
                    msg = str(exc) or type(exc).__name__
                    log.debug("analysis of %s failed", rec.name, exc_info=True)
                    result.failed.append((rec.name, msg))
                    bar.write(f"{rec.name}: failed: {msg}", file=sys.stderr)
                else:
                    result.done.append(rec.name)
                    result.audio_seconds += rec.duration
                bar.update(round(rec.duration, 1))
    finally:
        result.processing_seconds = time.perf_counter() - t0
        result.summary_path = write_summary(out)
    return result


def _analyze_one(analyzer: Analyzer, rec: Recording, out: Path) -> None:
    started_at = rec.start_time
    if started_at is None:
        started_at = rec.files[0].stat().st_mtime - rec.duration
    analysis = analyzer.analyze(rec, started_at=started_at)
    report = dict(analysis.report)
    report["source"] = {
        "tool": SOURCE_TOOL,
        "format": BATCH_FORMAT,
        "files": [f.name for f in rec.files],
        "fingerprint": rec.fingerprint,
        "language_from": rec.language_from,
        "audio_seconds": round(analysis.audio_seconds, 3),
        "processing_seconds": round(analysis.processing_seconds, 3),
        "analyzed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_atomic(out / f"{rec.name}.html", render_html(report))
    write_atomic(out / f"{rec.name}.json", json.dumps(report, ensure_ascii=False, indent=1) + "\n")
