"""How many concurrent calls one service node carries while p95 latency stays <= 2.0 s.

    .venv/bin/python bench/capacity.py                      # N = 1, 2, 4, 6 calls at once
    .venv/bin/python bench/capacity.py --levels 2 4 --max-seconds 45

Each level streams N calls at the same time at real-time pace (starts staggered
by a second, like real traffic), mixing Mandarin and English recordings, and
reports p50/p95 end-of-turn -> transcript.final latency.  The answer is the
largest N whose p95 <= the budget.  Target on this 2-core machine: >= 4.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from common import load_call, pct, start_service, stop_service, turn_latencies

from stream.simulate import stream_call

P95_BUDGET_S = 2.0
STAGGER_S = 1.0
CALL_POOL = ["dev_zh_01", "dev_en_01", "dev_zh_02", "dev_en_02", "dev_zh_03"]


async def one(url: str, name: str, delay: float, max_seconds: float) -> tuple[list[float], int]:
    await asyncio.sleep(delay)
    wav, script = load_call(name, max_seconds=max_seconds)
    result = await stream_call(url, wav, language=script["language"])
    return turn_latencies(script, result)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", nargs="+", type=int, default=[1, 2, 4, 6])
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--guidance", action="store_true", help="also run the guidance engine")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    svc = start_service(tmp, *([] if args.guidance else ["--no-guidance"]))
    best = 0
    try:
        print(f"{'calls':>5} {'turns':>5} {'missing':>7} {'p50':>6} {'p95':>6}")
        for n in args.levels:
            jobs = [
                one(svc.ws, CALL_POOL[i % len(CALL_POOL)], i * STAGGER_S, args.max_seconds) for i in range(n)
            ]
            lat: list[float] = []
            missing = 0
            for got, miss in await asyncio.gather(*jobs):
                lat.extend(got)
                missing += miss
            p95 = pct(lat, 95)
            print(f"{n:5d} {len(lat):5d} {missing:7d} {pct(lat, 50):6.2f} {p95:6.2f}", flush=True)
            if p95 <= P95_BUDGET_S and missing == 0:
                best = max(best, n)
    finally:
        stop_service(svc)
    print(f"\nconcurrent calls with p95 <= {P95_BUDGET_S:.1f} s: {best}")


if __name__ == "__main__":
    asyncio.run(main())
