"""Stream a recorded call to a running service as a softphone would, and watch the events.

Frames are sent on an absolute schedule (frame *i* at ``t0 + i * frame / speed``)
so pacing does not drift however long the call is.  Events are read on a second
websocket (the same one the overlay uses), and each is returned with its
arrival time in call-audio seconds, which is what the latency benchmark needs.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from stream.audio.wavfile import WavAudio

FRAME_MS = 20
EVENT_WAIT_AFTER_STOP_S = 120.0  # how long to wait for call.ended once all audio is sent


@dataclass
class ReceivedEvent:
    data: dict[str, Any]
    arrived_audio_s: float  # arrival time on the call's audio clock (seconds since the first frame)


@dataclass
class SimulationResult:
    call_id: str
    events: list[ReceivedEvent] = field(default_factory=list)
    ingest_messages: list[dict[str, Any]] = field(default_factory=list)
    audio_seconds: float = 0.0


class SimulateError(RuntimeError):
    pass


async def stream_call(
    base_url: str,
    wav: WavAudio,
    *,
    language: str,
    call_id: str | None = None,
    speed: float = 1.0,
    channels: tuple[str, ...] = ("agent", "customer"),
    metadata: Mapping[str, Any] | None = None,
    token: str | None = None,
    on_event: Callable[[ReceivedEvent], None] | None = None,
    frame_ms: int = FRAME_MS,
) -> SimulationResult:
    """Send ``wav`` to ``base_url`` (``ws://host:port``) and collect the call's events."""
    call_id = call_id or f"sim-{uuid.uuid4().hex[:12]}"
    if wav.channels != len(channels):
        raise SimulateError(
            f"the recording has {wav.channels} channel(s) but {len(channels)} leg(s) were named"
        )
    result = SimulationResult(call_id=call_id, audio_seconds=wav.duration)
    frame_bytes = wav.sample_rate * frame_ms // 1000 * wav.bytes_per_sample * wav.channels
    params = {"token": token} if token else {}
    start = {
        "type": "start",
        "call_id": call_id,
        "language": language,
        "sample_rate": wav.sample_rate,
        "encoding": wav.encoding,
        "channels": list(channels),
        "metadata": dict(metadata or {}),
    }
    t0 = 0.0
    async with aiohttp.ClientSession() as http:
        ingest = await http.ws_connect(f"{base_url}/v1/ingest", params=params, max_msg_size=0)
        await ingest.send_str(json.dumps(start, ensure_ascii=False))
        ack = await ingest.receive(timeout=30)
        if ack.type != aiohttp.WSMsgType.TEXT:
            raise SimulateError(f"service closed the connection: {ingest.close_code} {ack.extra or ''}")
        first = json.loads(ack.data)
        result.ingest_messages.append(first)
        if first.get("type") != "started":
            raise SimulateError(f"service refused the call: {first.get('message', first)}")
        events_ws = await http.ws_connect(
            f"{base_url}/v1/calls/{call_id}/events", params={**params, "since": "0"}
        )

        ended = asyncio.Event()

        async def read_events() -> None:
            async for msg in events_ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                item = ReceivedEvent(data=data, arrived_audio_s=(time.perf_counter() - t0) * speed)
                result.events.append(item)
                if on_event is not None:
                    on_event(item)
                if data.get("type") == "call.ended":
                    ended.set()
                    break
            ended.set()

        async def read_ingest() -> None:
            async for msg in ingest:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    result.ingest_messages.append(json.loads(msg.data))

        t0 = time.perf_counter()
        reader = asyncio.create_task(read_events())
        ingest_reader = asyncio.create_task(read_ingest())
        frame_s = frame_ms / 1000.0
        for i, pos in enumerate(range(0, len(wav.data), frame_bytes)):
            due = t0 + i * frame_s / speed
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if ingest.closed:
                break
            await ingest.send_bytes(wav.data[pos : pos + frame_bytes])
        if not ingest.closed:
            await ingest.send_str(json.dumps({"type": "stop"}))
        try:
            await asyncio.wait_for(ended.wait(), EVENT_WAIT_AFTER_STOP_S)
        finally:
            reader.cancel()
            ingest_reader.cancel()
            await events_ws.close()
            await ingest.close()
    return result


def format_event(data: Mapping[str, Any]) -> str:
    """One readable line per event for the terminal."""
    kind = data.get("type")
    seq = data.get("seq")
    if kind in ("transcript.final", "transcript.partial"):
        mark = "" if kind == "transcript.final" else " (partial)"
        lat = f"  [{data.get('latency_ms', 0):.0f} ms]" if kind == "transcript.final" else ""
        return (
            f"#{seq} {data['start']:7.2f}-{data['end']:7.2f} {data['speaker']:>8}{mark}: {data['text']}{lat}"
        )
    if kind == "compliance.warning":
        return f"#{seq} !! {data['severity'].upper()} {data['rule']}: “{data['quote']}” -> {data['rephrase']}"
    if kind == "compliance.retracted":
        return f"#{seq} !! withdrawn {data['rule']} ({data['utterance_id']}): {data['reason']}"
    if kind == "suggestion":
        lines = "; ".join(item["text"] for item in data.get("items", []))
        return f"#{seq} -> suggest: {lines}"
    if kind == "stage.changed":
        return f"#{seq} == stage {data.get('previous')} -> {data['stage']} ({data['confidence']:.2f})"
    if kind == "customer.signal":
        return f"#{seq} ** signal {data['signal']} ({data['score']:.2f})"
    return f"#{seq} {kind} " + json.dumps(
        {k: v for k, v in data.items() if k not in ("type", "call_id", "seq", "ts")}, ensure_ascii=False
    )
