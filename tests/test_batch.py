"""`callassist analyze`: offline review reports for recordings.

The model tests run the real Whisper model and guidance engine (one instance for the module) on the
two fixture calls with labelled violations, dev_zh_02 and dev_en_02, and check the reports against
the labels: a finding belongs to the scripted agent turn its utterance overlaps most.  Every
labelled violation must be found on its turn, through whatever the ASR mishears, and no finding may
land on a compliant turn.  A miss prints what the ASR heard on that turn.

The rest (input grouping, resuming after an interruption, refusing to overwrite inputs) uses a stub
analyzer and runs in milliseconds.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assist.review.report import CallFacts, build_report
from stream.audio.wavfile import read_wav
from stream.cli.main import main
from stream.offline.batch import (
    SUMMARY_FIELDS,
    Analysis,
    Analyzer,
    BatchError,
    Recording,
    plan_recordings,
    run_batch,
)
from stream.settings import load_settings
from tests.fakes import FIXTURES, load_script

REPO = Path(__file__).resolve().parent.parent
CALLS = ("dev_zh_02", "dev_en_02")
SEVERITY = {
    "threat_violence": "critical",
    "abusive_language": "critical",
    "false_criminal_threat": "critical",
    "impersonation": "critical",
    "third_party_disclosure": "critical",
    "harassment": "major",
    "misrepresentation": "major",
    "overbearing": "minor",
}
TURN_SLACK_S = 0.5  # endpointer padding puts utterance edges up to ~0.2 s outside the scripted turn
PAIR_SECONDS = 25.0  # the pairs-mode recording: dev_en_02's first three turns, incl. the impersonation


class CountingAnalyzer(Analyzer):
    """The real analyzer, counting which recordings it was asked to analyze."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[str] = []

    def analyze(self, rec: Recording, *, started_at: float) -> Analysis:
        self.calls.append(rec.name)
        return super().analyze(rec, started_at=started_at)


@pytest.fixture(scope="module")
def analyzer() -> CountingAnalyzer:
    return CountingAnalyzer(load_settings())


@pytest.fixture(scope="module")
def batch(analyzer: CountingAnalyzer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("reports")
    result = run_batch(
        [FIXTURES / f"{c}.wav" for c in CALLS], out, settings=analyzer.settings, analyzer=analyzer
    )
    assert result.done == list(CALLS) and not result.failed and not result.skipped
    print(
        f"\nanalyze: {result.audio_seconds:.1f} s audio in {result.processing_seconds:.1f} s "
        f"({result.audio_seconds / result.processing_seconds:.1f}x real time, model loading included)"
    )
    yield out


def report_of(out: Path, call: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / f"{call}.json").read_text(encoding="utf-8"))
    return data


def turn_of(finding: dict[str, Any], turns: list[dict[str, Any]]) -> int | None:
    """The scripted turn of the finding's speaker that its utterance overlaps most."""
    best, best_overlap = None, 0.0
    for i, t in enumerate(turns):
        if t["speaker"] != finding["speaker"]:
            continue
        overlap = min(finding["end"], t["end"] + TURN_SLACK_S) - max(
            finding["start"], t["start"] - TURN_SLACK_S
        )
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    return best


# -- model tests ------------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("call", CALLS)
def test_labelled_violations_at_their_turns(
    batch: Path, call: str, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_of(batch, call)
    turns = load_script(call)["turns"]
    found: set[tuple[int, str]] = set()
    on_compliant: list[str] = []
    for f in report["findings"]:
        i = turn_of(f, turns)
        assert i is not None, f"finding on no scripted turn: {f}"
        found.add((i, f["rule"]))
        if not turns[i]["rules"]:
            on_compliant.append(f"turn {i} {f['rule']}: {f['quote']!r}")
    labelled = {(i, r) for i, t in enumerate(turns) for r in t["rules"]}
    hit = labelled & found
    missed = sorted(labelled - found)
    wrong_rule = sorted(found - labelled)
    record_property("labelled", len(labelled))
    record_property("found", len(hit))
    with capsys.disabled():
        print(
            f"\n{call}: {len(hit)}/{len(labelled)} labelled violations found at their turn; "
            f"missed {missed}; other rules on violating turns {wrong_rule}; score {report['score']}"
        )
    assert not on_compliant, f"findings on compliant turns: {on_compliant}"
    heard = {i: [u["text"] for u in report["utterances"] if turn_of(u, turns) == i] for i, _ in missed}
    assert not missed, f"labelled violations missed: {missed}; ASR heard {heard}"
    assert report["score"] <= 50, "a call with critical findings is capped"
    assert report["call"]["language"] == call.split("_")[1]
    assert report["source"]["language_from"] == "sidecar"


@pytest.mark.model
def test_report_files_and_summary_csv(batch: Path) -> None:
    for call in CALLS:
        report = report_of(batch, call)
        page = (batch / f"{call}.html").read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page
        assert report["source"]["files"] == [f"{call}.wav"]
        assert len(report["source"]["fingerprint"]) == 64
        assert report["call"]["duration"] == pytest.approx(
            read_wav(FIXTURES / f"{call}.wav").duration, abs=0.01
        )
        speakers = {u["speaker"] for u in report["utterances"]}
        assert speakers == {"agent", "customer"}
    assert not list(batch.glob(".*.tmp")), "no temp files left behind"
    with (batch / "summary.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == SUMMARY_FIELDS
    assert [r["call"] for r in rows] == sorted(CALLS)
    for r in rows:
        report = report_of(batch, r["call"])
        assert int(r["score"]) == report["score"]
        assert float(r["duration"]) == report["call"]["duration"]
        for sev in ("critical", "major", "minor"):
            assert int(r[sev]) == sum(1 for f in report["findings"] if f["severity"] == sev)
        assert r["report"] == f"{r['call']}.json"


@pytest.mark.model
def test_resume_skips_done_and_redoes_a_deleted_output(batch: Path, analyzer: CountingAnalyzer) -> None:
    inputs = [FIXTURES / f"{c}.wav" for c in CALLS]
    analyzer.calls.clear()
    again = run_batch(inputs, batch, settings=analyzer.settings, analyzer=analyzer, progress=False)
    assert again.skipped == list(CALLS) and not again.done and analyzer.calls == []

    # The command line, in a fresh process, agrees that nothing is left to do (and loads no model).
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream.cli.main",
            "analyze",
            *map(str, inputs),
            "--out",
            str(batch),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "analyzed 0, skipped 2, failed 0" in proc.stderr

    before = report_of(batch, "dev_en_02")
    (batch / "dev_en_02.html").unlink()
    redo = run_batch(inputs, batch, settings=analyzer.settings, analyzer=analyzer, progress=False)
    assert redo.done == ["dev_en_02"] and redo.skipped == ["dev_zh_02"]
    assert analyzer.calls == ["dev_en_02"]
    after = report_of(batch, "dev_en_02")
    assert after["utterances"] == before["utterances"], "the analysis is deterministic"
    assert after["findings"] == before["findings"]
    assert (batch / "dev_en_02.html").is_file()


def write_mono(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.astype("<i2").tobytes())


@pytest.mark.model
def test_pairs_of_mono_files(batch: Path, analyzer: CountingAnalyzer, tmp_path: Path) -> None:
    wav = read_wav(FIXTURES / "dev_en_02.wav")
    assert wav.encoding == "pcm_s16le" and wav.sample_rate == 16000
    as_int = np.frombuffer(wav.data, dtype="<i2").reshape(-1, 2)[: int(PAIR_SECONDS * 16000)]
    src = tmp_path / "in"
    src.mkdir()
    write_mono(src / "call7.agent.wav", as_int[:, 0])
    write_mono(src / "call7.customer.wav", as_int[:, 1])
    sidecar = {
        "language": "en",
        "metadata": {"agent_name": "Kevin Shaw", "borrower_timezone": "America/Chicago"},
        "start_time": "2025-11-28T15:00:00Z",
    }
    (src / "call7.json").write_text(json.dumps(sidecar), encoding="utf-8")
    out = tmp_path / "out"
    # Customer first: legs are told apart by name, not by position.
    result = run_batch(
        [src / "call7.customer.wav", src / "call7.agent.wav"],
        out,
        settings=analyzer.settings,
        pairs=True,
        analyzer=analyzer,
        progress=False,
    )
    assert result.done == ["call7"], result.failed
    report = report_of(out, "call7")
    assert report["source"]["files"] == ["call7.agent.wav", "call7.customer.wav"]
    assert report["call"]["agent"] == "Kevin Shaw"
    assert report["call"]["local_start_time"].startswith("2025-11-28T09:00:00-06:00")
    hours = next(c for c in report["checklist"] if c["id"] == "allowed_hours")
    assert hours["status"] == "pass"
    stereo = report_of(batch, "dev_en_02")

    def early(r: dict[str, Any]) -> list[tuple[Any, ...]]:
        cut = PAIR_SECONDS - 1.0
        return [(u["speaker"], u["start"], u["end"], u["text"]) for u in r["utterances"] if u["end"] < cut]

    assert early(report) == early(stereo), "two mono legs transcribe exactly as the stereo channels do"
    assert any(f["rule"] == "impersonation" for f in report["findings"])


# -- no models --------------------------------------------------------------------------------


class StubAnalyzer(Analyzer):
    """Reports without models: an empty call of the recording's length; can fail on a named recording."""

    def __init__(self, fail_on: str = "", exc: BaseException | None = None) -> None:
        super().__init__(load_settings())
        self.fail_on = fail_on
        self.exc = exc or KeyboardInterrupt()
        self.calls: list[str] = []

    def analyze(self, rec: Recording, *, started_at: float) -> Analysis:
        self.calls.append(rec.name)
        if rec.name == self.fail_on:
            raise self.exc
        facts = CallFacts(rec.name, started_at, rec.language, rec.metadata, duration=rec.duration)
        return Analysis(build_report(facts, []).as_dict(), [], [], rec.duration, 0.01)


@pytest.fixture
def three_calls(tmp_path: Path) -> list[Path]:
    src = tmp_path / "in"
    src.mkdir()
    out = []
    for name in ("a", "b", "c"):
        shutil.copy(FIXTURES / "dev_en_02.8k.wav", src / f"{name}.wav")
        out.append(src / f"{name}.wav")
    return out


def test_interrupted_run_continues(three_calls: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    settings = load_settings()
    with pytest.raises(KeyboardInterrupt):
        run_batch(three_calls, out, settings=settings, analyzer=StubAnalyzer(fail_on="b"), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "a.json", "summary.csv"]
    assert (out / "summary.csv").read_text().splitlines()[1].startswith("a,"), "summary of what is done"
    stub = StubAnalyzer()
    result = run_batch(three_calls, out, settings=settings, analyzer=stub, progress=False)
    assert stub.calls == ["b", "c"] and result.skipped == ["a"]
    assert len((out / "summary.csv").read_text().splitlines()) == 4

    # A report whose inputs changed is not "done": here its fingerprint no longer matches.
    report = json.loads((out / "b.json").read_text())
    report["source"]["fingerprint"] = "0" * 64
    (out / "b.json").write_text(json.dumps(report))
    (out / "c.json").write_text('{"schema": "callassist.review/1", "trunc')  # half a file from another tool
    stub = StubAnalyzer()
    run_batch(three_calls, out, settings=settings, analyzer=stub, progress=False)
    assert stub.calls == ["b", "c"]


def test_a_failing_recording_does_not_stop_the_batch(three_calls: list[Path], tmp_path: Path) -> None:
    stub = StubAnalyzer(fail_on="b", exc=RuntimeError("decoder exploded"))
    result = run_batch(three_calls, tmp_path / "out", settings=load_settings(), analyzer=stub, progress=False)
    assert result.done == ["a", "c"] and result.failed == [("b", "decoder exploded")]


def test_language_from_option_sidecar_or_default(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "dev_en_02.8k.wav", tmp_path / "dev_en_02.8k.wav")
    shutil.copy(FIXTURES / "dev_en_02.json", tmp_path / "dev_en_02.json")
    shutil.copy(FIXTURES / "dev_en_02.8k.wav", tmp_path / "plain.wav")
    files = [tmp_path / "dev_en_02.8k.wav", tmp_path / "plain.wav"]
    recs = plan_recordings(files, pairs=False, language=None, default_language="zh")
    assert [(r.name, r.language, r.language_from) for r in recs] == [
        ("dev_en_02.8k", "en", "sidecar"),  # dev_en_02.json: the ".8k" suffix is dropped to find it
        ("plain", "zh", "default"),
    ]
    recs = plan_recordings(files, pairs=False, language="en", default_language="zh")
    assert {(r.language, r.language_from) for r in recs} == {("en", "option")}
    assert recs[0].duration == pytest.approx(72.0, abs=0.1)


def test_bad_inputs_fail_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mono = tmp_path / "m.wav"
    write_mono(mono, np.zeros(16000))
    stereo = FIXTURES / "dev_en_02.8k.wav"
    settings = load_settings()
    (tmp_path / "other").mkdir()
    shutil.copy(stereo, tmp_path / "other" / "dev_en_02.8k.wav")
    shutil.copy(mono, tmp_path / "x.agent.wav")
    cases: list[tuple[list[Path], bool, str]] = [
        ([mono], False, "mono"),
        ([stereo], True, "<call>.agent.wav"),
        ([tmp_path / "x.agent.wav"], True, "no customer file"),
        ([stereo, tmp_path / "other" / "dev_en_02.8k.wav"], False, "two recordings are named"),
        ([tmp_path / "missing.wav"], False, "cannot read"),
    ]
    for files, pairs, why in cases:
        with pytest.raises(BatchError, match=why.replace(".", r"\.")):
            run_batch(files, tmp_path / "out", settings=settings, pairs=pairs, analyzer=StubAnalyzer())

    # Writing reports into the recordings' own folder would replace the label file dev_en_02.json.
    shutil.copy(FIXTURES / "dev_en_02.wav", tmp_path / "other" / "dev_en_02.wav")
    shutil.copy(FIXTURES / "dev_en_02.json", tmp_path / "other" / "dev_en_02.json")
    with pytest.raises(BatchError, match="would overwrite an input"):
        run_batch(
            [tmp_path / "other" / "dev_en_02.wav"],
            tmp_path / "other",
            settings=settings,
            analyzer=StubAnalyzer(),
        )

    code = main(["analyze", str(mono), "--out", str(tmp_path / "out2"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "mono" in err
