"""An in-process service for adapter tests, a transcriber that reads the script, and outcome comparison.

Like tests/test_server_ingest.py: a real aiohttp server on port 0 (plus an
AudioSocket listener on port 0), the energy VAD, and a fake transcriber -- here
one that finds each utterance in the fixture's own audio and answers with the
scripted text of the turn it overlaps, so the real guidance engine (with a
cheap deterministic text encoder instead of USE: the compliance patterns still
fire) produces real rules.  Everything is deterministic and fast, so the
native endpoint and each adapter can be compared event for event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from websockets.exceptions import ConnectionClosed

from assist.engine import GuidanceEngine
from assist.playbook import load_playbook
from stream.asr.base import AsrRequest, AsrResult
from stream.audio.resample import StreamResampler
from stream.cli.wsclient import open_ws
from stream.ingest.audiosocket import AudioSocketServer
from stream.live.caches import DiskArrayCache
from stream.live.pipeline import AsrPlan, SharedModels
from stream.settings import load_settings
from stream.web.server import Service
from tests.fakes import DurationTranscriber as DurationTranscriber  # re-exported for the adapter tests
from tests.fakes import HashEncoder, engine_cache_dir
from tests.replay.fixture import FixtureCall

RATE = 16000
TEST_SECRET = b"adapter-tests-secret-0123456789ab"


@functools.cache
def test_engine() -> GuidanceEngine:
    return GuidanceEngine(load_playbook(), HashEncoder(), cache=DiskArrayCache(engine_cache_dir()))


def reference_legs(call: FixtureCall) -> dict[str, np.ndarray]:
    """Each leg at 16 kHz exactly as the ingest path decodes it."""
    out = {}
    for leg, samples in call.legs().items():
        r = StreamResampler(call.rate, RATE)
        out[leg] = np.concatenate([r.process(samples), r.flush()])
    return out


@dataclass
class ScriptTranscriber:
    """Finds the utterance in the call's legs and returns the text of the scripted turn it overlaps.

    Partial requests get no text, so partial-transcript timing (which depends on
    scheduling) cannot make two runs differ.
    """

    call: FixtureCall
    name: str = "script"
    refs: dict[str, np.ndarray] = field(init=False)
    heard: list[tuple[str, float, float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.refs = reference_legs(self.call)

    def transcribe(self, request: AsrRequest) -> AsrResult:
        text = "" if request.partial else self._text(request.audio)
        return AsrResult(text=text, no_speech_prob=0.0, avg_logprob=-0.1, compute_ms=1.0)

    def _text(self, audio: np.ndarray) -> str:
        found = self._locate(audio)
        if found is None:
            return ""
        leg, offset = found
        start, end = offset / RATE, (offset + len(audio)) / RATE
        best, best_overlap = "", 0.0
        for turn in self.call.script["turns"]:
            if turn["speaker"] != leg:
                continue
            overlap = min(end, turn["end"]) - max(start, turn["start"])
            if overlap > best_overlap:
                best, best_overlap = turn["text"], overlap
        self.heard.append((leg, start, end, best))
        return str(best)

    def _locate(self, audio: np.ndarray) -> tuple[str, int] | None:
        n = len(audio)
        if n == 0:
            return None
        peak = int(np.argmax(np.abs(audio)))
        value = float(audio[peak])
        if abs(value) < 1e-3:
            return None
        lo, hi = max(0, peak - 256), min(n, peak + 256)
        for leg, ref in self.refs.items():
            for c in np.flatnonzero(np.abs(ref - value) <= 1e-6) - peak:
                if c < 0 or c + n > len(ref):
                    continue
                if np.allclose(ref[c + lo : c + hi], audio[lo:hi], atol=1e-5):
                    return leg, int(c)
        return None


@dataclass
class Harness:
    url: str  # ws://127.0.0.1:port
    service: Service
    audiosocket: AudioSocketServer

    @property
    def audiosocket_port(self) -> int:
        return self.audiosocket.port

    @property
    def http_url(self) -> str:
        return self.url.replace("ws://", "http://")


DEFAULT_OVERRIDES: dict[str, Any] = {
    "endpoint.vad": "energy",
    "limits.max_frame_bytes": 16000,
    "limits.start_timeout_s": 2.0,
    "limits.idle_timeout_s": 20.0,  # generous: a paused "good" call waits while a bad one runs
    "auth.enabled": False,
}


@asynccontextmanager
async def running_service(
    transcriber: Any,
    *,
    overrides: Mapping[str, Any] | None = None,
    guidance: bool = True,
) -> AsyncIterator[Harness]:
    settings = load_settings(None, {**DEFAULT_OVERRIDES, **(overrides or {})})
    engine = test_engine() if guidance else None
    services = SharedModels(transcriber=transcriber, engine=engine, plan=AsrPlan())
    service = Service(settings, services, secret=TEST_SECRET if settings.auth.enabled else None)
    runner = web.AppRunner(service.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    audiosocket = AudioSocketServer(service)
    await audiosocket.start("127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        yield Harness(f"ws://127.0.0.1:{port}", service, audiosocket)
    finally:
        await audiosocket.stop()
        await runner.cleanup()


async def call_events(
    url: str, call_id: str, *, token: str | None = None, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """All events of a call (replayed from the start), up to ``call.ended``."""
    params = {"since": "0", **({"token": token} if token else {})}

    async def read() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with open_ws(f"{url}/v1/calls/{call_id}/events", params=params) as ws:
            with contextlib.suppress(ConnectionClosed):  # a refused or cut stream ends the list
                async for message in ws:
                    if not isinstance(message, str):
                        break
                    events.append(json.loads(message))
                    if events[-1]["type"] == "call.ended":
                        break
        return events

    return await asyncio.wait_for(read(), timeout)


async def wait_ended(service: Service, call_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while service.registry.live(call_id) is not None or service.registry.log(call_id) is None:
        assert time.monotonic() < deadline, f"call {call_id} did not end"
        await asyncio.sleep(0.02)


async def legs_attached(service: Service, call_id: str, legs: set[str], timeout: float = 10.0) -> None:
    """Wait until the call's connections carry ``legs`` (one-leg-per-connection platforms)."""
    deadline = time.monotonic() + timeout
    while True:
        live = service.registry.live(call_id)
        if live is not None and live.legs_attached == legs:
            return
        assert time.monotonic() < deadline, f"call {call_id} never had legs {legs}"
        await asyncio.sleep(0.01)


# -- comparing outcomes --------------------------------------------------------------------------

GUIDANCE = ("stage.changed", "compliance.warning", "customer.signal", "suggestion")


@dataclass(frozen=True)
class Outcome:
    """What must be equal between the native endpoint and an adapter for the same audio."""

    finals: tuple[tuple[str, str, float, float, str], ...]  # utterance id, speaker, start, end, text
    rules: tuple[tuple[str, str], ...]  # (utterance id, rule), partial or final, sorted
    signals: tuple[tuple[str, str], ...]  # (utterance id, signal), sorted
    sequence: tuple[tuple[str, ...], ...]  # every transcript/guidance event in order (key fields)
    ended: tuple[str, float]  # call.ended reason, duration


def outcome(events: list[dict[str, Any]]) -> Outcome:
    finals = tuple(
        sorted(
            (e["utterance_id"], e["speaker"], e["start"], e["end"], e["text"])
            for e in events
            if e["type"] == "transcript.final"
        )
    )
    rules = tuple(sorted((e["utterance_id"], e["rule"]) for e in events if e["type"] == "compliance.warning"))
    signals = tuple(
        sorted((e["utterance_id"], e["signal"]) for e in events if e["type"] == "customer.signal")
    )
    sequence: list[tuple[str, ...]] = []
    for e in events:
        kind = e["type"]
        if kind == "transcript.final":
            sequence.append((kind, e["utterance_id"], e["text"]))
        elif kind == "stage.changed":
            sequence.append((kind, e["utterance_id"], e["stage"]))
        elif kind == "compliance.warning":
            sequence.append((kind, e["utterance_id"], e["rule"]))
        elif kind == "customer.signal":
            sequence.append((kind, e["utterance_id"], e["signal"]))
        elif kind == "suggestion":
            sequence.append((kind, e["utterance_id"], *(item["text"] for item in e["items"])))
    end = next(e for e in events if e["type"] == "call.ended")
    return Outcome(finals, rules, signals, tuple(sequence), (end["reason"], round(end["duration"], 2)))


# -- simple audio for the protocol tests ---------------------------------------------------------


def tone(seconds: float, rate: int = 8000, amp: float = 0.2) -> np.ndarray:
    """int16 440 Hz tone ("speech" to the energy VAD)."""
    t = np.arange(int(seconds * rate)) / rate
    return (amp * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def silence(seconds: float, rate: int = 8000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def errors(events: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(e["code"], e["fatal"]) for e in events if e["type"] == "error"]
