"""Cross-validate the learned line models over the playbook's labelled lines, by batch.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/guidance_cv.py            # 3 folds of whole batches

The labelled lines (prompts/labelled.jsonl) come in batches, each written in one go (the
``split`` field: dev, dev2 .. dev17).  Each fold holds out whole batches; the models train on
the playbook's examples plus the other batches, exactly as the engine trains them, and the
held-out agent lines are judged by the models alone (no patterns, no nearest examples) with
the engine's thresholds.  This measures how the models generalise to lines written later, in
another sitting; the engine as a whole is measured by bench/guidance_eval.py.

Printed per fold and on average: violation P/R (the line is flagged at all), rule macro-F1,
stage accuracy, and the training time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.exemplars import embed_exemplars, labelled_agent_lines  # noqa: E402
from assist.linemodel import train_line_models  # noqa: E402
from assist.playbook import load_playbook  # noqa: E402
from assist.stages import NO_STAGE  # noqa: E402
from assist.thresholds import Thresholds  # noqa: E402
from stream.live.caches import DiskArrayCache  # noqa: E402
from stream.live.encoders import make_encoder  # noqa: E402

DEFAULT_FOLDS = 3


def batch_order(name: str) -> int:
    digits = name.removeprefix("dev")
    return int(digits) if digits.isdigit() else 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--playbook", default=None, help="playbook folder (default: prompts/)")
    ap.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default ~/.cache/callassist)")
    args = ap.parse_args(argv)

    pb = load_playbook(args.playbook)
    exemplars = embed_exemplars(pb, make_encoder("use"), DiskArrayCache(args.cache_dir))
    agent = labelled_agent_lines(pb)  # aligned with exemplars.labelled
    lines = exemplars.labelled
    split_of = [x.batch for x in agent]
    batches = sorted({s for s in split_of if s}, key=batch_order)
    if not batches:
        raise SystemExit("the labelled lines carry no batch names (`split`): nothing to hold out")
    rules = tuple(r.id for r in pb.rules)
    stages = (*(s.id for s in pb.stages), NO_STAGE)
    limits = Thresholds()

    size = -(-len(batches) // args.folds)
    rows = []
    for k in range(args.folds):
        held = set(batches[k * size : (k + 1) * size])
        if not held:
            continue
        train = exemplars.examples + [lines[i] for i, s in enumerate(split_of) if s not in held]
        test = [i for i, s in enumerate(split_of) if s in held]
        t0 = time.perf_counter()
        models = train_line_models(rules, stages, train)
        seconds = time.perf_counter() - t0
        gold: list[set[str]] = []
        pred: list[set[str]] = []
        hits = 0
        for i in test:
            j = models.judge(lines[i].text, lines[i].language, lines[i].vector)
            flagged = {r for r, p in j.rules.items() if p >= limits.line_rule_alone}
            pred.append(flagged if j.violation >= limits.line_violation_min else set())
            gold.append(set(lines[i].rules))
            hits += j.stage == lines[i].stage
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g and p)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if not g and p)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g and not p)
        f1s = []
        for r in rules:
            a = sum(1 for g, p in zip(gold, pred, strict=True) if r in g and r in p)
            b = sum(1 for g, p in zip(gold, pred, strict=True) if r not in g and r in p)
            c = sum(1 for g, p in zip(gold, pred, strict=True) if r in g and r not in p)
            f1s.append(2 * a / (2 * a + b + c) if a + b + c else 1.0)
        row = (
            tp / max(tp + fp, 1),
            tp / max(tp + fn, 1),
            statistics.fmean(f1s),
            hits / max(len(test), 1),
            seconds,
        )
        rows.append(row)
        names = sorted(held, key=batch_order)
        print(
            f"held out {names[0]}..{names[-1]} ({len(test)} lines): violation P {row[0]:.3f} R {row[1]:.3f}"
            f" | rule macro-F1 {row[2]:.3f} | stage acc {row[3]:.3f} | trained in {row[4]:.1f} s",
            flush=True,
        )
    mean = np.mean(np.array(rows), axis=0)
    print(
        f"mean of {len(rows)} folds: violation P {mean[0]:.3f} R {mean[1]:.3f} | rule macro-F1 {mean[2]:.3f}"
        f" | stage acc {mean[3]:.3f} | trained in {mean[4]:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
