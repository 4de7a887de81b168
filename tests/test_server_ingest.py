"""The ingest protocol and event streams against a real aiohttp server on port 0.

Whisper is replaced by a scripted fake transcriber and the VAD by the energy
detector (tones are "speech"), so these tests exercise the service's own logic
-- protocol errors, close codes, nothing lost on a vanished client, replay --
in seconds.  The real model runs in test_e2e_speech.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from stream.audio.codecs import encode_mulaw
from stream.live.pipeline import AsrPlan, SharedModels
from stream.settings import load_settings
from stream.web.server import Service
from tests.fakes import FakeTranscriber, pcm16, send_audio, silence, start_frame, stereo, tone


@dataclass
class Server:
    url: str
    service: Service
    fake: FakeTranscriber


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    settings = load_settings(
        None,
        {
            "endpoint.vad": "energy",
            "endpoint.min_silence_ms": 300,
            "limits.max_frame_bytes": 16000,
            "limits.start_timeout_s": 1.0,
            "limits.idle_timeout_s": 2.0,
            "guidance": False,
            "auth.enabled": False,  # access control has its own tests (test_web_auth.py)
        },
    )
    fake = FakeTranscriber()
    service = Service(settings, SharedModels(transcriber=fake, engine=None, plan=AsrPlan()))
    runner = web.AppRunner(service.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Server(f"ws://127.0.0.1:{port}", service, fake)
    await runner.cleanup()


async def collect(
    http: aiohttp.ClientSession, url: str, call_id: str, since: int = 0
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with http.ws_connect(f"{url}/v1/calls/{call_id}/events", params={"since": str(since)}) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            events.append(json.loads(msg.data))
            if events[-1]["type"] == "call.ended":
                break
    return events


async def expect_rejection(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any], int | None]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    error = json.loads(msg.data)
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    return error, ws.close_code


async def test_full_call_events_in_order(server: Server) -> None:
    audio = stereo(
        np.concatenate([tone(1.0), silence(2.0)]), np.concatenate([silence(1.5), tone(0.8), silence(1.0)])
    )
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.url}/v1/ingest") as ws:
        await ws.send_str(start_frame("call-ok"))
        ack = json.loads((await ws.receive(timeout=5)).data)
        assert ack == {"type": "started", "call_id": "call-ok", "events": "/v1/calls/call-ok/events"}
        reader = asyncio.create_task(collect(http, server.url, "call-ok"))
        await send_audio(ws, pcm16(audio))
        await ws.send_str(json.dumps({"type": "stop"}))
        events = await asyncio.wait_for(reader, 10)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "call.started" and kinds[-1] == "call.ended"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert [f["speaker"] for f in finals] == ["agent", "customer"]
    agent, customer = finals
    assert agent["start"] == pytest.approx(0.0, abs=0.25) and agent["end"] == pytest.approx(1.0, abs=0.4)
    assert customer["start"] == pytest.approx(1.5, abs=0.3) and customer["end"] == pytest.approx(2.3, abs=0.4)
    assert events[-1]["reason"] == "stop"
    assert events[0]["metadata"] == {"agent_name": "Ann"}
    # a speculative early transcription is reused by the final, never run twice
    assert len(server.fake.seen) == 2


async def test_mulaw_8k_mono_legs_on_separate_connections_join_one_call(server: Server) -> None:
    agent_8k = np.concatenate([tone(1.2, 8000), silence(1.5, 8000)])
    customer_8k = np.concatenate([silence(1.0, 8000), tone(1.0, 8000), silence(1.0, 8000)])
    async with aiohttp.ClientSession() as http:
        a = await http.ws_connect(f"{server.url}/v1/ingest")
        await a.send_str(start_frame("call-mono", sample_rate=8000, encoding="mulaw", channels=["agent"]))
        assert json.loads((await a.receive(timeout=5)).data)["type"] == "started"
        c = await http.ws_connect(f"{server.url}/v1/ingest")
        await c.send_str(start_frame("call-mono", sample_rate=8000, encoding="mulaw", channels=["customer"]))
        assert json.loads((await c.receive(timeout=5)).data)["type"] == "started"
        reader = asyncio.create_task(collect(http, server.url, "call-mono"))
        await send_audio(a, encode_mulaw(pcm_int(agent_8k)), frame=160)
        await send_audio(c, encode_mulaw(pcm_int(customer_8k)), frame=160)
        await a.send_str(json.dumps({"type": "stop"}))
        await c.send_str(json.dumps({"type": "stop"}))
        events = await asyncio.wait_for(reader, 10)
        await a.close()
        await c.close()
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert sorted(f["speaker"] for f in finals) == ["agent", "customer"]
    assert sum(e["type"] == "call.ended" for e in events) == 1


def pcm_int(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


async def test_vanished_client_loses_nothing(server: Server) -> None:
    """Audio sent before the socket dropped is still endpointed and transcribed."""
    audio = stereo(tone(1.5), silence(1.5))  # the utterance is still open when the client vanishes
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.url}/v1/ingest")
        await ws.send_str(start_frame("call-drop"))
        await ws.receive(timeout=5)
        await send_audio(ws, pcm16(audio))
        await asyncio.sleep(0.2)
        assert ws._response is not None
        ws._response.connection.transport.abort()  # type: ignore[union-attr]  # no close handshake
        events = await asyncio.wait_for(collect(http, server.url, "call-drop"), 10)
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) == 1 and finals[0]["speaker"] == "agent"
    assert events[-1]["type"] == "call.ended" and events[-1]["reason"] == "disconnected"
    assert events[-1]["duration"] == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize(
    ("first", "code", "close"),
    [
        (b"\x00\x01", "not_started", 1008),
        ("{not json", "bad_json", 1007),
        (json.dumps({"type": "start", "call_id": "x"}), "invalid_start", 1007),
        (start_frame("x", sample_rate=44100), "unsupported_format", 1003),
        (start_frame("x", encoding="opus"), "unsupported_format", 1003),
        (json.dumps({"type": "dance"}), "unknown_type", 1008),
    ],
)
async def test_bad_first_message_gets_error_and_close_code(
    server: Server, first: str | bytes, code: str, close: int
) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.url}/v1/ingest")
        if isinstance(first, bytes):
            await ws.send_bytes(first)
        else:
            await ws.send_str(first)
        error, close_code = await expect_rejection(ws)
    assert error["type"] == "error" and error["fatal"] is True
    assert error["code"] == code, error
    assert close_code == close


async def test_bad_frames_mid_call_keep_audio_received_so_far(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        for bad, code, close in [
            (b"\x00" * 3, "misaligned_frame", 1007),
            (b"\x00" * 16004, "message_too_big", 1009),
            (start_frame("again"), "duplicate_start", 1008),
        ]:
            call_id = f"call-bad-{code}"
            ws = await http.ws_connect(f"{server.url}/v1/ingest")
            await ws.send_str(start_frame(call_id))
            await ws.receive(timeout=5)
            await send_audio(ws, pcm16(stereo(tone(1.0), silence(1.0))))
            if isinstance(bad, bytes):
                await ws.send_bytes(bad)
            else:
                await ws.send_str(bad)
            error, close_code = await expect_rejection(ws)
            assert (error["code"], close_code) == (code, close)
            events = await asyncio.wait_for(collect(http, server.url, call_id), 10)
            kinds = [e["type"] for e in events]
            assert "transcript.final" in kinds, f"{code}: audio before the bad frame was lost"
            assert any(e["type"] == "error" and e["code"] == code for e in events)
            assert kinds[-1] == "call.ended" and events[-1]["reason"] == "error"


async def test_missing_start_times_out(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.url}/v1/ingest")
        error, close_code = await expect_rejection(ws)
    assert error["code"] == "timeout" and close_code == 1008


async def test_one_bad_call_does_not_disturb_another(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        good = await http.ws_connect(f"{server.url}/v1/ingest")
        await good.send_str(start_frame("call-good"))
        await good.receive(timeout=5)
        reader = asyncio.create_task(collect(http, server.url, "call-good"))
        bad = await http.ws_connect(f"{server.url}/v1/ingest")
        await bad.send_str(start_frame("call-good"))  # same call id, same legs: refused
        error, close_code = await expect_rejection(bad)
        assert error["code"] == "call_conflict" and close_code == 1008
        await send_audio(good, pcm16(stereo(tone(1.0), silence(1.0))))
        await good.send_str(json.dumps({"type": "stop"}))
        events = await asyncio.wait_for(reader, 10)
        await good.close()
    assert [e["type"] for e in events if e["type"] == "transcript.final"] == ["transcript.final"]
    assert events[-1]["reason"] == "stop"


async def test_subscriber_catches_up_with_since(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.url}/v1/ingest")
        await ws.send_str(start_frame("call-replay"))
        await ws.receive(timeout=5)
        await send_audio(
            ws,
            pcm16(stereo(np.concatenate([tone(1.0), silence(1.0), tone(1.0), silence(1.0)]), silence(4.0))),
        )
        await ws.send_str(json.dumps({"type": "stop"}))
        everything = await asyncio.wait_for(collect(http, server.url, "call-replay"), 10)
        rest = await asyncio.wait_for(collect(http, server.url, "call-replay", since=2), 10)
        await ws.close()
        async with http.get(f"{server.url.replace('ws', 'http')}/v1/calls/call-replay/events") as resp:
            assert resp.status in (400, 426)  # a websocket endpoint; plain GET is refused
        async with http.get(f"{server.url.replace('ws', 'http')}/v1/calls/nope/events") as resp:
            assert resp.status == 404
    assert [e["seq"] for e in rest] == [e["seq"] for e in everything if e["seq"] > 2]
