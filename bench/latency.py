"""End-of-turn -> transcript.final latency, per ASR backend, streaming calls at real-time pace.

    .venv/bin/python bench/latency.py                       # both backends, default calls
    .venv/bin/python bench/latency.py --backends faster-whisper --calls dev_zh_01 --max-seconds 40

Prints p50/p95 per backend and the ratio openai-whisper / faster-whisper measured
in the same run.  Targets (faster-whisper base int8, this 2-core machine):
p50 <= 1.0 s, p95 <= 1.6 s.  No assertion: figures are for people to read.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from common import load_call, parse_sets, pct, start_service, stop_service, turn_latencies

from stream.cli.simulate import stream_call

DEFAULT_CALLS = ["dev_zh_01", "dev_en_02"]


async def run_backend(
    backend: str, calls: list[str], max_seconds: float | None, speed: float, settings: dict[str, object]
) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    svc = start_service(tmp, "--backend", backend, "--no-guidance", settings=settings)
    latencies: list[float] = []
    try:
        for call in calls:
            wav, script = load_call(call, max_seconds=max_seconds)
            language = script["language"]
            result = await stream_call(svc.ws, wav, language=language, speed=speed)
            lat, missing = turn_latencies(script, result)
            latencies.extend(lat)
            print(
                f"  {backend:15} {call}: turns={len(script['turns'])} missing={missing} "
                f"p50={pct(lat, 50):.2f}s p95={pct(lat, 95):.2f}s max={max(lat, default=float('nan')):.2f}s",
                flush=True,
            )
    finally:
        stop_service(svc)
    return latencies


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["faster-whisper", "openai-whisper"])
    ap.add_argument("--calls", nargs="+", default=DEFAULT_CALLS)
    ap.add_argument("--max-seconds", type=float, default=None, help="only the first N seconds of each call")
    ap.add_argument("--speed", type=float, default=1.0, help="1.0 = real time (the figure that matters)")
    ap.add_argument("--set", action="append", default=[], help="setting override, e.g. asr.full_window=true")
    args = ap.parse_args()
    results: dict[str, list[float]] = {}
    for backend in args.backends:
        print(f"backend {backend}:", flush=True)
        results[backend] = await run_backend(
            backend, args.calls, args.max_seconds, args.speed, parse_sets(args.set)
        )
    print("\nturn-end -> transcript.final latency (s)")
    print(f"{'backend':16} {'turns':>5} {'p50':>6} {'p95':>6}")
    for backend, lat in results.items():
        print(f"{backend:16} {len(lat):5d} {pct(lat, 50):6.2f} {pct(lat, 95):6.2f}")
    if "faster-whisper" in results and "openai-whisper" in results:
        fw, ow = results["faster-whisper"], results["openai-whisper"]
        print(
            f"ratio openai-whisper / faster-whisper: p50 {pct(ow, 50) / pct(fw, 50):.2f}x, "
            f"p95 {pct(ow, 95) / pct(fw, 95):.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
