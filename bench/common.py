"""Shared helpers for the benchmarks: run the real service, stream calls, measure latency.

Latency of a turn = arrival time (on the call's audio clock) of the last
``transcript.final`` covering that turn, minus the turn's scripted end.  This is
what the agent experiences: from the speaker falling silent to the text on screen.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream.audio.wavfile import WavAudio, parse_wav  # noqa: E402
from stream.cli.simulate import SimulationResult  # noqa: E402
from tests.conftest import RunningService, stop_service  # noqa: E402
from tests.conftest import start_service as _start_service  # noqa: E402
from tests.test_e2e_speech import assign_finals  # noqa: E402

SHARED_CALLS = ROOT.parent / "shared" / "calls"
FIXTURE_CALLS = ROOT / "tests" / "fixtures"
__all__ = ["RunningService", "start_service", "stop_service"]


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`--set endpoint.min_silence_ms=300` style overrides for experiments."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value: Any = raw
        for conv in (int, float):
            try:
                value = conv(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key] = value
    return out


def start_service(
    tmp: Path, *extra: str, env: dict[str, str] | None = None, settings: dict[str, Any] | None = None
) -> RunningService:
    """The real service with access control off: these benches measure speech latency and
    capacity, and their clients connect without tokens (bench/delivery.py keeps auth on)."""
    return _start_service(tmp, *extra, env=env, settings={"auth.enabled": False, **(settings or {})})


def calls_dir() -> Path:
    return SHARED_CALLS if SHARED_CALLS.is_dir() else FIXTURE_CALLS


def load_call(name: str, *, max_seconds: float | None = None) -> tuple[WavAudio, dict[str, Any]]:
    folder = calls_dir()
    wav = parse_wav((folder / f"{name}.wav").read_bytes(), name=name)
    script: dict[str, Any] = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    if max_seconds is not None and wav.duration > max_seconds:
        frame = wav.bytes_per_sample * wav.channels
        keep = int(max_seconds * wav.sample_rate) * frame
        wav = WavAudio(wav.encoding, wav.sample_rate, wav.channels, wav.data[:keep])
        script = {**script, "turns": [t for t in script["turns"] if t["end"] <= max_seconds - 0.5]}
    return wav, script


def turn_latencies(script: dict[str, Any], result: SimulationResult) -> tuple[list[float], int]:
    """Per-turn latency in seconds, and how many turns got no transcript at all."""
    finals = [e for e in result.events if e.data["type"] == "transcript.final"]
    arrival = {id(e.data): e.arrived_audio_s for e in finals}
    by_turn = assign_finals(script["turns"], [e.data for e in finals], strict=False)
    out: list[float] = []
    missing = 0
    for i, turn in enumerate(script["turns"]):
        got = by_turn.get(i, [])
        if not got:
            missing += 1
            continue
        out.append(max(arrival[id(f)] for f in got) - turn["end"])
    return out, missing


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
