"""``callassist analyze``: review reports for call recordings, offline and faster than real time.

A QA team also reviews calls that never went through the live service.  Each recording goes through
the live pipeline's own steps -- :func:`stream.offline.transcribe.hear_legs` (decode, resample, the live
endpointer, Whisper), then the live :class:`stream.live.utterance.UtteranceStep` (hallucination guard,
masking, guidance) -- and the resulting events are reviewed exactly as a stored call is
(:func:`assist.review.report.build_report`), so a recording and a live call of the same audio get the
same findings.

Inputs, sidecar JSON, language and start time: :mod:`stream.offline.recordings`.

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
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assist.events import CallEnded, CallStarted, Event, EventBody
from assist.review.html import render_html
from assist.review.report import REPORT_SCHEMA, SEVERITY_ORDER, CallFacts, build_report
from stream.audio.wavfile import WavError, read_wav
from stream.files import write_atomic
from stream.offline.recordings import (  # re-exported: the command's API lives here
    BATCH_FORMAT,
    BatchError,
    Recording,
    fingerprint,
    plan_recordings,
)
from stream.settings import Settings

if TYPE_CHECKING:
    from assist.engine import GuidanceEngine
    from stream.asr.base import Transcriber
    from stream.live.pipeline import AsrPlan
    from stream.offline.transcribe import Utterance

log = logging.getLogger(__name__)

__all__ = [
    "BATCH_FORMAT",
    "Analysis",
    "Analyzer",
    "BatchError",
    "BatchResult",
    "Recording",
    "plan_recordings",
    "run_batch",
]

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
        from stream.live.utterance import UtteranceStep
        from stream.offline.transcribe import hear_legs, judge, leg_audio, utterances_of

        self.load()
        assert self._transcriber is not None and self._engine is not None and self._plan is not None
        t0 = time.perf_counter()
        wavs = [read_wav(f) for f in rec.files]
        if len(wavs) == 1:
            legs = leg_audio(wavs[0])
        else:
            legs = {**leg_audio(wavs[0], ("agent",)), **leg_audio(wavs[1], ("customer",))}
        heard = hear_legs(
            legs,
            language=rec.language,
            transcriber=self._transcriber,
            settings=self.settings,
            plan=self._plan,
        )
        guide = self._engine.new_call(rec.language, dict(rec.metadata))
        step = UtteranceStep(rec.language, guide, masking=self.settings.store.masking)
        started = CallStarted(
            language=rec.language,
            sample_rate=wavs[0].sample_rate,
            encoding=wavs[0].encoding,
            legs=tuple(legs),
            metadata=dict(rec.metadata),
        )
        timed: list[tuple[float, EventBody]] = [(0.0, started)]
        timed += [(round(h.end, 3), b) for h, bodies in judge(heard, step) for b in bodies]
        timed.append((rec.duration, CallEnded(reason="stop", duration=round(rec.duration, 3))))
        events = stamp(rec.name, started_at, timed)
        facts = CallFacts(
            call_id=rec.name,
            started_at=started_at,
            language=rec.language,
            metadata=dict(rec.metadata),
            status="ended",
            duration=round(rec.duration, 3),
        )
        report = build_report(facts, events).as_dict()  # the utterance step masked the text
        utterances = utterances_of([e.body for e in events])
        return Analysis(report, events, utterances, rec.duration, time.perf_counter() - t0)


def stamp(call_id: str, started_at: float, timed: Sequence[tuple[float, EventBody]]) -> list[Event]:
    """Events as a live call's log would have stamped them: numbered in order, each at the call's
    start plus the call time it was produced at (an utterance's events: the utterance's end)."""
    return [
        Event(call_id=call_id, seq=i, ts=round(started_at + t, 3), body=b)
        for i, (t, b) in enumerate(timed, start=1)
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
