"""Stream a recorded call to a running service as a softphone would, and watch the events.

Frames are sent on an absolute schedule (frame *i* at ``t0 + i * frame / speed``)
so pacing does not drift however long the call is.  Events are read on a second
websocket (the same one the overlay uses), and each is returned with its
arrival time in call-audio seconds, which is what the latency benchmark needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from stream.audio.wavfile import WavAudio
from stream.cli.wsclient import EVENT_MAX_BYTES, open_ws

FRAME_MS = 20
ACK_WAIT_S = 30.0  # how long the service may take to answer ``start``
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
    async with await _connect(f"{base_url}/v1/ingest", params, max_size=None) as ingest:
        with contextlib.suppress(ConnectionClosed):  # refused before start: the answer is still queued
            await ingest.send(json.dumps(start, ensure_ascii=False))
        first = await _first_answer(ingest)
        result.ingest_messages.append(first)
        if first.get("type") != "started":
            raise SimulateError(f"service refused the call: {first.get('message', first)}")
        events_url = f"{base_url}/v1/calls/{call_id}/events"
        async with await _connect(events_url, {**params, "since": "0"}) as events_ws:
            await _stream(ingest, events_ws, wav, result, speed, frame_ms, on_event)
    return result


async def _connect(
    url: str, params: Mapping[str, str], *, max_size: int | None = EVENT_MAX_BYTES
) -> ClientConnection:
    """Open a websocket; a refused or failed handshake is a :class:`SimulateError` naming the address."""
    try:
        return await open_ws(url, params=params, max_size=max_size)
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise SimulateError(f"cannot connect to {url}: {str(exc) or type(exc).__name__}") from exc


async def _first_answer(ingest: ClientConnection) -> dict[str, Any]:
    """The service's answer to ``start`` (``started`` or ``error``)."""
    try:
        ack = await asyncio.wait_for(ingest.recv(), ACK_WAIT_S)
    except ConnectionClosed:
        raise SimulateError(
            f"service closed the connection: {ingest.close_code} {ingest.close_reason or ''}"
        ) from None
    if not isinstance(ack, str):
        raise SimulateError("service answered start with a binary frame")
    answer: dict[str, Any] = json.loads(ack)
    return answer


async def _stream(
    ingest: ClientConnection,
    events_ws: ClientConnection,
    wav: WavAudio,
    result: SimulationResult,
    speed: float,
    frame_ms: int,
    on_event: Callable[[ReceivedEvent], None] | None,
) -> None:
    """Send the audio on its schedule and ``stop``, while collecting events until ``call.ended``.

    A connection the service closes (a fatal violation, a dropped service) is not
    an error here: sending stops, and whatever events arrived are the result.
    """
    ended = asyncio.Event()
    t0 = time.perf_counter()

    async def read_events() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in events_ws:
                if not isinstance(message, str):
                    break
                data = json.loads(message)
                item = ReceivedEvent(data=data, arrived_audio_s=(time.perf_counter() - t0) * speed)
                result.events.append(item)
                if on_event is not None:
                    on_event(item)
                if data.get("type") == "call.ended":
                    break
        ended.set()

    async def read_ingest() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ingest:
                if isinstance(message, str):
                    result.ingest_messages.append(json.loads(message))

    reader = asyncio.create_task(read_events())
    ingest_reader = asyncio.create_task(read_ingest())
    frame_bytes = wav.sample_rate * frame_ms // 1000 * wav.bytes_per_sample * wav.channels
    frame_s = frame_ms / 1000.0
    try:
        with contextlib.suppress(ConnectionClosed):
            for i, pos in enumerate(range(0, len(wav.data), frame_bytes)):
                due = t0 + i * frame_s / speed
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if ingest.state is not State.OPEN:
                    break
                await ingest.send(wav.data[pos : pos + frame_bytes])
            if ingest.state is State.OPEN:
                await ingest.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(ended.wait(), EVENT_WAIT_AFTER_STOP_S)
    finally:
        reader.cancel()
        ingest_reader.cancel()


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
