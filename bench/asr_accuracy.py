"""ASR accuracy of the service's Whisper path on the shared calls, by window length.

Each scripted turn is cut from its speaker's channel by the JSON turn times (an oracle endpointer:
``start``/``end`` +- ``CUT_MARGIN_S``, as the corpus baseline was cut) and transcribed the way the
service does it: the model loaded by ``stream.live.pipeline.load_transcriber`` from the default
settings, the request built by ``AsrPlan`` with the playbook's hotwords, and the text kept by
``accept_text`` (hallucination guard, Mandarin spacing, number display form).  8 kHz files are
decoded from mu-law and upsampled with the service's ``StreamResampler``.

Windows.  ``stream/asr/faster.py`` gives the encoder the utterance plus ``window_padding_s`` of
silence, capped at Whisper's 30 s field; ``--windows 1,4,8,15,30`` sweeps that padding.  ``1`` is
the service's default short window; ``30`` always fills the 30 s field, i.e. it is the standard
window (``full_window``), and is loaded that way.

Printed per window and sample rate: CER (zh) / WER (en) per call, per speaker and pooled (scored by
``stream.asr.scoring`` like the corpus baseline), the numbers-right rate (each number in the
reference -- amount, day count, instalment count, date -- counted right when the hypothesis holds the
same value; both sides through ``stream.asr.numbers``), turns the guard dropped, and the mean
decode time per utterance (the machine is shared, so times are noisy).

Measured 2026-12-02 on the shared 2-core machine (load average 13-19, so times are inflated), whisper-base
int8, all 5 calls, pooled (numbers right = reference numbers found with the right value):

    window              rate  zh CER  zh numbers    en WER  en numbers  ms/utt zh / en
    utterance + 1 s     16k   15.7%   15/24 (62%)   14.8%   10/11       1095 / 935
    (service default)    8k   16.3%   15/24 (62%)   26.6%    8/11        868 / 792
    utterance + 4 s     16k   11.9%   16/24         14.1%    9/11       1331 / 892
                         8k   17.1%   13/24         27.0%    8/11       1361 / 1091
    utterance + 8 s     16k   12.7%   16/24         12.5%    9/11       1643 / 1141
                         8k   12.6%   19/24         29.3%    9/11       1869 / 1468
    utterance + 15 s    16k   11.8%   16/24         12.0%    9/11       2651 / 2091
                         8k   12.9%   18/24         27.3%    9/11       2232 / 2014
    standard 30 s       16k   11.6%   18/24 (75%)   12.7%   10/11       3759 / 3073
                         8k   13.1%   18/24 (75%)   32.1%    9/11       3739 / 3602

Most of the service window's extra Mandarin error is one turn: dev_zh_01 t9 (48 characters, four
numbers) ends after its first word ("可以的" / "刻意登") at both rates, while every longer window
transcribes it whole.

    .venv/bin/python bench/asr_accuracy.py [--quick] [--calls dev_zh_01,dev_en_02] [--rates 16k,8k]
                                           [--windows 1,30] [--tsv out.tsv]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assist.playbook import load_playbook  # noqa: E402
from bench.common import FIXTURE_CALLS, SHARED_CALLS  # noqa: E402
from stream.asr.base import SAMPLE_RATE, Audio, Transcriber  # noqa: E402
from stream.asr.faster import MAX_WINDOW_S  # noqa: E402
from stream.asr.numbers import quantities  # noqa: E402
from stream.asr.scoring import error_counts  # noqa: E402
from stream.audio.codecs import decode  # noqa: E402
from stream.audio.resample import StreamResampler  # noqa: E402
from stream.audio.wavfile import read_wav  # noqa: E402
from stream.live.pipeline import (  # noqa: E402
    AsrPlan,
    accept_text,
    english_hotword_prompt,
    load_transcriber,
    playbook_dir,
)
from stream.settings import Settings, load_settings  # noqa: E402

CALLS = ("dev_en_01", "dev_en_02", "dev_zh_01", "dev_zh_02", "dev_zh_03")
RATES = ("16k", "8k")
WINDOWS = (1.0, 4.0, 8.0, 15.0, 30.0)  # seconds of padding after the utterance
SERVICE_PADDING_S = 1.0  # the default settings' asr.window_padding_s
QUICK_CALL = "dev_zh_01"
QUICK_WINDOWS = (SERVICE_PADDING_S, MAX_WINDOW_S)
# The shared corpus (a worktree sits one level deeper than the main checkout), else the fixtures.
CALL_FOLDERS = (SHARED_CALLS, ROOT.parent.parent / "shared" / "calls", FIXTURE_CALLS)
CUT_MARGIN_S = 0.1  # the corpus baseline's cut around each turn
CHANNEL = {"agent": 0, "customer": 1}
METRIC = {"zh": "CER", "en": "WER"}
TSV_HEADER = ("window", "rate", "call", "speaker", "errors", "units", "numbers", "numbers_right", "dropped",
              "turns", "ms_per_utt")  # fmt: skip


@dataclass
class Tally:
    """Pooled counts for one cell of a table (a call, a speaker or everything)."""

    errors: int = 0
    units: int = 0
    numbers: int = 0
    numbers_right: int = 0
    dropped: int = 0
    turns: int = 0
    decode_ms: float = 0.0
    missed: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def row(self) -> str:
        rate = f"{self.errors / self.units:6.1%}" if self.units else "     -"
        nums = f"{self.numbers_right}/{self.numbers}" if self.numbers else "-"
        ms = self.decode_ms / self.turns if self.turns else 0.0
        return f"{rate}  numbers {nums:>6}  dropped {self.dropped:2d}  {ms:6.0f} ms/utt"


def calls_dir() -> Path:
    return next((folder for folder in CALL_FOLDERS if folder.is_dir()), FIXTURE_CALLS)


def leg_audio(call: str, rate: str, channel: int) -> Audio:
    """One channel as 16 kHz float32, decoded and upsampled the way the service receives it."""
    name = f"{call}.wav" if rate == "16k" else f"{call}.8k.wav"
    wav = read_wav(calls_dir() / name)
    samples = decode(wav.encoding, wav.data).reshape(-1, wav.channels)[:, channel]
    resampler = StreamResampler(wav.sample_rate, SAMPLE_RATE)
    audio = np.concatenate([resampler.process(samples), resampler.flush()])
    return audio.astype(np.float32)


def numbers_right(reference: str, hypothesis: str, language: str) -> tuple[int, int, list[str]]:
    """(reference numbers, found with the right value in the hypothesis, the ones missed)."""
    wanted = Counter(quantities(reference, language))
    got = Counter(quantities(hypothesis, language))
    right = sum((wanted & got).values())
    missed = sorted((wanted - got).elements())
    return sum(wanted.values()), right, missed


def plan_from_playbook(settings: Settings) -> AsrPlan:
    """The service's AsrPlan (asr_plan_for) without loading the guidance encoders."""
    hot = load_playbook(playbook_dir(settings)).hotwords
    return AsrPlan(hotwords={"zh": " ".join(hot.get("zh")), "en": english_hotword_prompt(hot.get("en"))})


def transcribe_call(
    transcriber: Transcriber, plan: AsrPlan, call: str, rate: str, verbose: bool
) -> Iterator[tuple[str, Tally]]:
    script: dict[str, Any] = json.loads((calls_dir() / f"{call}.json").read_text(encoding="utf-8"))
    language = script["language"]
    legs = {speaker: leg_audio(call, rate, ch) for speaker, ch in CHANNEL.items()}
    for index, turn in enumerate(script["turns"]):
        audio = legs[turn["speaker"]]
        start = max(0, int((turn["start"] - CUT_MARGIN_S) * SAMPLE_RATE))
        end = int((turn["end"] + CUT_MARGIN_S) * SAMPLE_RATE)
        request = plan.request(audio[start:end], language)
        t0 = time.perf_counter()
        result = transcriber.transcribe(request)
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        text = accept_text(result, request)
        errors, units = error_counts(turn["text"], text or "", language)
        wanted, right, missed = numbers_right(turn["text"], text or "", language)
        tally = Tally(errors, units, wanted, right, int(text is None), 1, elapsed_ms)
        tally.missed = [f"{call}/{rate}/t{index}: {m}" for m in missed]
        if verbose:
            print(f"    t{index:<2} {turn['speaker']:<8} {errors:2d}/{units:<3d} {text!r}")
        yield turn["speaker"], tally


def settings_for(padding_s: float) -> Settings:
    """Default service settings with this window: 30 s of padding is the standard full window."""
    if padding_s >= MAX_WINDOW_S:
        return load_settings(overrides={"asr.full_window": True})
    return load_settings(overrides={"asr.window_padding_s": padding_s, "asr.full_window": False})


def window_label(padding_s: float) -> str:
    if padding_s >= MAX_WINDOW_S:
        return "standard 30 s window"
    service = " (service default)" if padding_s == SERVICE_PADDING_S else ""
    return f"utterance + {padding_s:g} s{service}"


def run(calls: list[str], rates: list[str], windows: list[float], verbose: bool, tsv: Path | None) -> None:
    rows: list[str] = []
    print(f"calls from {calls_dir()}  load average {os.getloadavg()[0]:.1f}")
    for padding in windows:
        settings = settings_for(padding)
        t0 = time.perf_counter()
        transcriber = load_transcriber(settings)
        plan = plan_from_playbook(settings)
        print(f"\n=== {window_label(padding)}  (model loaded in {time.perf_counter() - t0:.1f} s)")
        for rate in rates:
            by_lang: dict[str, Tally] = {}
            print(f"  -- {rate}")
            for call in calls:
                language = json.loads((calls_dir() / f"{call}.json").read_text(encoding="utf-8"))["language"]
                per_speaker: dict[str, Tally] = {}
                for speaker, tally in transcribe_call(transcriber, plan, call, rate, verbose):
                    per_speaker.setdefault(speaker, Tally()).add(tally)
                whole = Tally()
                for tally in per_speaker.values():
                    whole.add(tally)
                by_lang.setdefault(language, Tally()).add(whole)
                print(f"  {call:<10} {METRIC[language]} {whole.row()}")
                rows.append("\t".join([window_label(padding), rate, call, "all", *_cells(whole)]))
                for speaker, tally in sorted(per_speaker.items()):
                    print(f"    {speaker:<8} {METRIC[language]} {tally.row()}")
                    rows.append("\t".join([window_label(padding), rate, call, speaker, *_cells(tally)]))
            for language, tally in sorted(by_lang.items()):
                print(f"  ALL_{language:<6} {METRIC[language]} {tally.row()}")
                rows.append(
                    "\t".join([window_label(padding), rate, f"ALL_{language}", "all", *_cells(tally)])
                )
                for missed in tally.missed:
                    print(f"      number missed {missed}")
    if tsv is not None:
        header = (
            "window\trate\tcall\tspeaker\terrors\tunits\tnumbers\tnumbers_right\tdropped\tturns\tms_per_utt"
        )
        tsv.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        print(f"\nwrote {tsv}")


def _cells(t: Tally) -> list[str]:
    ms = t.decode_ms / t.turns if t.turns else 0.0
    return [str(v) for v in (t.errors, t.units, t.numbers, t.numbers_right, t.dropped, t.turns)] + [
        f"{ms:.0f}"
    ]


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=_list, default=list(CALLS), help="comma-separated call ids")
    parser.add_argument("--rates", type=_list, default=list(RATES), help="16k and/or 8k")
    parser.add_argument(
        "--windows",
        type=lambda raw: [float(w) for w in _list(raw)],
        default=list(WINDOWS),
        help="seconds of padding after each utterance; 30 = the standard 30 s window",
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CALL} only, windows 1 and 30")
    parser.add_argument("--verbose", action="store_true", help="print every turn's hypothesis")
    parser.add_argument("--tsv", type=Path, help="also write the figures as a TSV table")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.windows = [QUICK_CALL], list(QUICK_WINDOWS)
    unknown = [r for r in args.rates if r not in RATES]
    if unknown:
        parser.error(f"unknown rate(s) {unknown}; use {', '.join(RATES)}")
    run(args.calls, args.rates, args.windows, args.verbose, args.tsv)


if __name__ == "__main__":
    main()
