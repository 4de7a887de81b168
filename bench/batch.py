"""Throughput of `callassist analyze`: real-time factor and peak memory over the shared calls.

Runs the real command in a child process, as a user would (model loading included), once over the
16 kHz stereo recordings of ../shared/calls (tests/fixtures when that folder is absent) and, with
``--8k``, once more over their 8 kHz mu-law versions.  For each run it prints

* RTF = seconds of audio / wall seconds (target: at least ``TARGET_RTF``, i.e. 5x faster than real time);
* peak memory = the child's maximum resident set size (``wait4`` rusage ``ru_maxrss``);
* each call's score and findings by severity, from the run's summary.csv.

Always ``--force``: a resumed run would skip the work being measured.  The machine's load average and
the child's CPU time are printed too: other work on the two cores slows the run down, and CPU time
per audio second is the figure that does not depend on it.

    .venv/bin/python bench/batch.py [--8k] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import calls_dir  # noqa: E402
from stream.audio.wavfile import read_wav  # noqa: E402

TARGET_RTF = 5.0


def recordings(folder: Path, *, narrowband: bool) -> list[Path]:
    files = sorted(folder.glob("*.8k.wav" if narrowband else "*.wav"))
    return files if narrowband else [f for f in files if not f.name.endswith(".8k.wav")]


def run(files: list[Path], out: Path, label: str) -> bool:
    audio = sum(read_wav(f).duration for f in files)
    cmd = [sys.executable, "-m", "stream.cli.main", "analyze", *map(str, files), "--out", str(out), "--force"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"{label}: analyze failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
        return False
    rtf = audio / wall
    peak_mib = usage.ru_maxrss / 1024  # Linux reports KiB
    verdict = "meets" if rtf >= TARGET_RTF else "BELOW"
    print(f"\n== {label}: {len(files)} calls, {audio:.1f} s of audio (load average {load:.2f} at start)")
    print(f"wall {wall:.1f} s  ->  real-time factor {rtf:.1f}x  ({verdict} the {TARGET_RTF:g}x target)")
    cpu = usage.ru_utime + usage.ru_stime
    print(f"CPU time {cpu:.1f} s (user+sys): {cpu / wall:.2f} cores busy on average")
    print(f"peak memory (max RSS of the analyze process) {peak_mib:.0f} MiB")
    with (out / "summary.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    print(f"{'call':<16} {'dur s':>6} {'score':>5} {'crit':>4} {'maj':>4} {'min':>4}")
    for r in rows:
        print(
            f"{r['call']:<16} {float(r['duration']):6.1f} {r['score']:>5} {r['critical']:>4} "
            f"{r['major']:>4} {r['minor']:>4}"
        )
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--8k", dest="narrowband", action="store_true", help="also the 8 kHz mu-law versions")
    p.add_argument("--out", help="keep the reports in this folder (default: a temp folder, deleted)")
    args = p.parse_args()
    folder = calls_dir()
    print(f"calls from {folder}; {os.cpu_count()} CPU(s)")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        base = Path(args.out) if args.out else Path(tmp)
        runs = [("16 kHz stereo PCM", False)] + ([("8 kHz stereo mu-law", True)] if args.narrowband else [])
        for label, narrowband in runs:
            files = recordings(folder, narrowband=narrowband)
            if not files:
                print(f"{label}: no recordings in {folder}")
                continue
            ok = run(files, base / ("8k" if narrowband else "16k"), label) and ok
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(this bench process itself: {self_peak:.0f} MiB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
