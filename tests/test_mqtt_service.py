"""MQTT fan-out of the real service: a fixture call streams through `callassist serve`
(real Whisper, real guidance) while an aiomqtt subscriber listens on a real Mosquitto.

The websocket subscriber of the same call is the reference: MQTT must carry the same
events (same seqs, same order, same JSON), and across a broker restart mid-call every
final transcript, suggestion and warning must still arrive.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from stream.audio.wavfile import read_wav
from stream.cli.simulate import stream_call
from stream.delivery.mqtt import topic_for
from tests.brokers import (
    MOSQUITTO,
    SHARED_PORT,
    PrivateBroker,
    collecting,
    shared_broker_up,
)
from tests.fakes import FIXTURES
from tests.service import RunningService, standing_warnings, start_service, stop_service

pytestmark = pytest.mark.model

CALL = "dev_en_02"  # English, with known violations (see its .json)
STREAM_SPEED = 3.0
KEPT_TYPES = ("transcript.final", "suggestion", "compliance.warning")  # never dropped by the buffer
OUTAGE_S = 4.0  # broker down for this long: ~12 s of call audio at STREAM_SPEED
MQTT_WAIT_S = 60.0


def _need_mosquitto() -> None:
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"mosquitto binary not installed ({MOSQUITTO}); apt-get install mosquitto")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    _need_mosquitto()
    b = PrivateBroker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _service(tmp: Path, port: int, tenant: str, **settings: Any) -> RunningService:
    folder = tmp / "service"  # apart from a private broker's files in tmp
    folder.mkdir()
    return start_service(
        folder,
        "--mqtt-host",
        "127.0.0.1",
        "--mqtt-port",
        str(port),
        settings={"auth.tenant": tenant, **settings},
    )


async def _wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _retained_state(port: int, topic: str, timeout: float = 20.0) -> dict[str, Any]:
    """The retained summary once it says the call ended (it is replaced on every change)."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"state-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                state: dict[str, Any] = json.loads(message.payload)
                if state["status"] != "live":
                    return state
    raise AssertionError("no final state")


async def test_every_event_reaches_mqtt_in_order(tmp_path: Path) -> None:
    tenant, call_id = f"t{uuid.uuid4().hex[:8]}", f"mq-{uuid.uuid4().hex[:8]}"
    private: PrivateBroker | None = None
    if shared_broker_up():
        port = SHARED_PORT
    else:  # this machine has no broker on 1883: bring our own
        _need_mosquitto()
        private = PrivateBroker(tmp_path)
        private.start()
        port = private.port
    svc = _service(tmp_path, port, tenant)
    try:
        async with collecting(port, topic_for(tenant, call_id, "events")) as sub:
            result = await stream_call(
                svc.ws,
                read_wav(FIXTURES / f"{CALL}.wav"),
                language="en",
                call_id=call_id,
                speed=STREAM_SPEED,
                metadata={"agent_name": "Kevin", "customer_name": "Marcus"},
                token=svc.token("ingest"),
            )
            ws_events = [e.data for e in result.events]
            assert ws_events[-1]["type"] == "call.ended"
            await sub.wait_for({e["seq"] for e in ws_events}, timeout=MQTT_WAIT_S)
        assert [e["seq"] for e in sub.received] == [e["seq"] for e in ws_events]
        assert sub.received == ws_events  # the same wire JSON, event for event
        kinds = {e["type"] for e in ws_events}
        assert {"transcript.final", "suggestion", "compliance.warning"} <= kinds

        state = await _retained_state(port, topic_for(tenant, call_id, "state"))
        warnings = standing_warnings(ws_events)
        assert state["call_id"] == call_id and state["tenant"] == tenant
        assert state["status"] == "ended" and state["agent_name"] == "Kevin"
        assert sum(state["warnings"].values()) == len(warnings)
        assert state["last_warning"]["rule"] == warnings[-1]["rule"]
    finally:
        stop_service(svc)
        if private is not None:
            private.stop()


async def test_broker_restart_mid_call_loses_no_final_suggestion_or_warning(
    tmp_path: Path, broker: PrivateBroker
) -> None:
    tenant, call_id = f"t{uuid.uuid4().hex[:8]}", f"mq-{uuid.uuid4().hex[:8]}"
    svc = _service(
        tmp_path, broker.port, tenant, **{"mqtt.reconnect_min_s": 0.1, "mqtt.reconnect_max_s": 0.5}
    )
    try:
        async with collecting(broker.port, topic_for(tenant, call_id, "events")) as sub:
            call = asyncio.create_task(
                stream_call(
                    svc.ws,
                    read_wav(FIXTURES / f"{CALL}.wav"),
                    language="en",
                    call_id=call_id,
                    speed=STREAM_SPEED,
                    token=svc.token("ingest"),
                )
            )
            await _wait_until(
                "the first final transcript over MQTT",
                lambda: any(m["type"] == "transcript.final" for m in sub.received),
                MQTT_WAIT_S,
            )
            await asyncio.to_thread(broker.stop)
            down_at = time.time()
            await asyncio.sleep(OUTAGE_S)  # the call goes on; the service holds its events
            up_at = time.time()
            await asyncio.to_thread(broker.start)
            result = await call
            ws_events = [e.data for e in result.events]
            want = [e["seq"] for e in ws_events if e["type"] in KEPT_TYPES]
            await sub.wait_for(set(want), timeout=MQTT_WAIT_S)
        during = [e for e in ws_events if e["type"] in KEPT_TYPES and down_at <= e["ts"] <= up_at]
        assert during, "no final/suggestion/warning was produced while the broker was down"
        assert [s for s in sub.deduped() if s in set(want)] == want  # all of them, in order
        async with aiohttp.ClientSession() as http, http.get(f"{svc.http}/healthz") as resp:
            mqtt = (await resp.json())["mqtt"]
        assert mqtt["reconnects"] >= 1 and mqtt["dropped_other"] == 0
    finally:
        stop_service(svc)
