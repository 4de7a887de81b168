"""Guidance in call context: labelled calls' reference turns through one CallGuide per call.

    .venv/bin/python bench/conversation.py                       # fixtures, tune, test, fresh
    .venv/bin/python bench/conversation.py --sets test --errors  # list what went wrong

Each call's turns go through ``CallGuide.judge_final`` in order, exactly as
``callassist analyze-text`` does with a shared ``call``, so identity, signals and
shown lines build up as in a live call.  Sets: ``fixtures`` = the five scripted
calls in /work/shared/calls (or $CALLASSIST_CALLS); ``tune`` / ``test`` / ``fresh`` = the calls
of bench/data/conversation_calls.jsonl with that ``split``.  Those calls are our own material
(written for this bench, fictitious names and amounts; each says so in its ``source``).  The
context rules were written looking at ``fixtures`` and ``tune`` errors, and also at the first
run's ``test`` errors, so ``test`` is no longer fully held out; ``fresh`` was written after the
rules were set and nothing was changed for it.

Reported per language:

- **signals right**: a customer turn is right when its labelled ``intent`` is among the
  signals the engine gives for that turn and every other signal given is compatible
  with it (``COMPATIBLE``: a hardship story may also ask for a plan; a dispute never
  also accepts the debt).  ``-`` is right only when no signal is given.  Shown for all
  customer turns and for the turns labelled with a signal.
- **handled**: after a customer turn labelled with a signal, the suggestion event that
  turn produces offers at least one line that handles it: a line whose ``source`` is
  ``signal:<that signal>`` (or ``party:third_party`` for a third party on the line).
- **empty mid-call**: the share of suggestion events before the call's last turn that
  offer nothing.

Targets (issue 12): signals right >= 0.90, handled >= 0.85, empty mid-call = 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.engine import GuidanceEngine, TurnResult  # noqa: E402
from assist.playbook import load_playbook  # noqa: E402
from assist.suggest import handles  # noqa: E402
from stream.live.caches import DiskArrayCache  # noqa: E402
from stream.live.encoders import make_encoder  # noqa: E402

OWN_CALLS = ROOT / "bench" / "data" / "conversation_calls.jsonl"
NO_INTENT = "-"
# Other signals that may come with a labelled one without making the turn wrong.
COMPATIBLE: Mapping[str, frozenset[str]] = {
    "confirm_identity": frozenset({"hostile"}),
    "hardship": frozenset({"request_plan", "promise_to_pay"}),
    "request_plan": frozenset({"hardship", "promise_to_pay"}),
    "promise_to_pay": frozenset({"request_plan", "hardship", "confirm_identity"}),
    "dispute": frozenset({"cease_contact", "hostile"}),
    "cease_contact": frozenset({"hostile", "dispute", "lawyer"}),
    "third_party": frozenset(),
    "lawyer": frozenset({"cease_contact", "hostile", "dispute"}),
    "hostile": frozenset({"cease_contact", "dispute"}),
}


COUNTS = ("turns", "right", "labelled", "labelled_right", "signalled", "handled", "events", "empty")


@dataclass
class Tally:
    turns: int = 0
    right: int = 0
    labelled: int = 0
    labelled_right: int = 0
    signalled: int = 0
    handled: int = 0
    events: int = 0
    empty: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


def signal_right(intent: str, given: Iterable[str]) -> bool:
    got = set(given)
    if intent == NO_INTENT:
        return not got
    return intent in got and got - {intent} <= COMPATIBLE.get(intent, frozenset())


def load_calls(sets: Sequence[str], own: Path) -> list[tuple[str, dict[str, Any]]]:
    """(set name, call) for each call of the asked sets."""
    out: list[tuple[str, dict[str, Any]]] = []
    if "fixtures" in sets:
        folder = Path(os.environ.get("CALLASSIST_CALLS", "/work/shared/calls"))
        for path in sorted(folder.glob("*.json")):
            out.append(("fixtures", json.loads(path.read_text(encoding="utf-8"))))
    if own.exists():
        for raw in own.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                call = json.loads(raw)
                if call.get("split") in sets:
                    out.append((call["split"], call))
    return out


def _suggestion_text(result: TurnResult) -> str:
    return " | ".join(f"[{p.source}] {p.text[:40]}" for p in result.suggestions) or "(none)"


def run_call(engine: GuidanceEngine, call: Mapping[str, Any]) -> Tally:
    tally = Tally()
    guide = engine.new_call(call["language"], call.get("metadata") or {})
    turns = call["turns"]
    for i, turn in enumerate(turns):
        speaker = "agent" if turn["speaker"] == "agent" else "customer"
        result = guide.judge_final(speaker, turn["text"], f"{call['id']}-{i}")
        where = f"{call['id']} t{i}"
        if i < len(turns) - 1:
            tally.events += 1
            if not result.suggestions:
                tally.empty += 1
                tally.errors.append(f"{where} empty panel after: {turn['text'][:50]}")
        if speaker != "customer":
            continue
        intent = turn.get("intent", NO_INTENT) or NO_INTENT
        given = [h.signal for h in result.signals]
        ok = signal_right(intent, given)
        tally.turns += 1
        tally.right += ok
        if not ok:
            tally.errors.append(f"{where} signal {intent} got {given or '-'}: {turn['text'][:60]}")
        if intent == NO_INTENT:
            continue
        tally.labelled += 1
        tally.labelled_right += ok
        tally.signalled += 1
        if any(handles(p.source, intent) for p in result.suggestions):
            tally.handled += 1
        else:
            tally.errors.append(f"{where} {intent} not handled: {_suggestion_text(result)}")
    return tally


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f} ({a}/{b})" if b else "n/a"


def report(name: str, tally: Tally, *, errors: bool) -> None:
    print(
        f"{name:<16} signals right {ratio(tally.right, tally.turns):<18}"
        f" labelled {ratio(tally.labelled_right, tally.labelled):<18}"
        f" handled {ratio(tally.handled, tally.signalled):<18}"
        f" empty mid-call {ratio(tally.empty, tally.events)}"
    )
    if errors:
        for e in tally.errors:
            print(f"    {e}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--sets", default="fixtures,tune,test,fresh", help="fixtures, tune, test, fresh (comma-separated)"
    )
    ap.add_argument("--data", type=Path, default=OWN_CALLS, help="own labelled calls (JSON lines)")
    ap.add_argument("--encoder", default="use")
    ap.add_argument("--playbook", default=None, help="playbook folder (default: prompts/)")
    ap.add_argument("--cache-dir", default=None, help="exemplar-embedding cache")
    ap.add_argument("--errors", action="store_true", help="list misjudged turns and unhandled signals")
    args = ap.parse_args(argv)

    sets = [s for s in args.sets.split(",") if s]
    calls = load_calls(sets, args.data)
    t0 = time.perf_counter()
    engine = GuidanceEngine(
        load_playbook(args.playbook), make_encoder(args.encoder), cache=DiskArrayCache(args.cache_dir)
    )
    print(f"engine ready in {time.perf_counter() - t0:.1f} s; {len(calls)} calls")
    for set_name in sets:
        chosen = [c for s, c in calls if s == set_name]
        if not chosen:
            continue
        print(f"\n[{set_name}] {len(chosen)} calls")
        total = Tally()
        for lang in sorted({c["language"] for c in chosen}):
            tally = Tally()
            for call in chosen:
                if call["language"] == lang:
                    tally.add(run_call(engine, call))
            report(lang, tally, errors=args.errors)
            total.add(tally)
        report("all", total, errors=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
