"""MqttPublisher against real Mosquitto brokers: the machine's 127.0.0.1:1883 and, for
the outage tests, private brokers started on free ports so they can be stopped,
frozen and restarted without disturbing anything else.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from assist.events import (
    ComplianceWarning,
    Event,
    EventBody,
    Suggestion,
    SuggestionItem,
    TranscriptFinal,
    TranscriptPartial,
)
from stream.delivery.mqtt import MqttPublisher, topic_for
from tests.brokers import (
    MOSQUITTO,
    RECEIVE_TIMEOUT_S,
    SHARED_HOST,
    SHARED_PORT,
    Collector,
    PrivateBroker,
    collecting,
    free_port,
    shared_broker_up,
)

needs_shared_broker = pytest.mark.skipif(not shared_broker_up(), reason="no Mosquitto on 127.0.0.1:1883")
needs_mosquitto = pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="mosquitto binary not installed")


# -- event fixtures -----------------------------------------------------------------------------


def _body(i: int) -> EventBody:
    """A realistic mix: partials, finals, suggestions and warnings, by position."""
    utt = f"u{i // 4}"
    match i % 4:
        case 0:
            return TranscriptPartial("customer", utt, f"我最近失业了 {i}", "zh", 1.0, 2.0)
        case 1:
            return TranscriptFinal("customer", utt, f"我最近失业了，还不上 {i}", "zh", 1.0, 2.5, 120.0)
        case 2:
            return Suggestion(utt, "empathy", (SuggestionItem("听起来这几个月确实不容易。", "hardship"),))
        case _:
            return ComplianceWarning(
                utt,
                "agent",
                "overbearing",
                "minor",
                "没得商量",
                "ultimatum",
                "我们可以一起看看方案。",
                "",
                0.9,
            )


def _event(call_id: str, seq: int) -> Event:
    return Event(call_id=call_id, seq=seq, ts=time.time(), body=_body(seq))


def _is_partial(seq: int) -> bool:
    return seq % 4 == 0


# -- brokers ------------------------------------------------------------------------------------


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    if not os.path.exists(MOSQUITTO):
        pytest.skip("mosquitto binary not installed")
    broker = PrivateBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _publisher(port: int, tenant: str, **limits: Any) -> MqttPublisher:
    return MqttPublisher("127.0.0.1", port, tenant=tenant, client_id=f"pub-{tenant}", **limits)


def _tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


# -- tests --------------------------------------------------------------------------------------


def test_topic_for_names_and_refuses_wildcards() -> None:
    assert topic_for("acme", "c-1", "events") == "callassist/acme/calls/c-1/events"
    assert topic_for("acme", "c-1", "state") == "callassist/acme/calls/c-1/state"
    for bad in ("", "a/b", "a+", "#", "x\x00"):
        with pytest.raises(ValueError):
            topic_for("acme", bad, "events")
        with pytest.raises(ValueError):
            topic_for(bad, "c-1", "events")


@needs_shared_broker
async def test_every_event_arrives_in_order() -> None:
    tenant, call_id, n = _tenant(), "call-order", 300
    async with collecting(SHARED_PORT, f"callassist/{tenant}/calls/+/events") as sub:
        async with _publisher(SHARED_PORT, tenant, buffer_limit=1000) as pub:
            for seq in range(1, n + 1):
                pub.publish_event(_event(call_id, seq))
            await sub.wait_for(set(range(1, n + 1)))
            assert pub.stats()["connected"] is True
        assert sub.seqs() == list(range(1, n + 1))  # no outage: in order and no duplicates
        first = sub.received[1]
        assert first == _event(call_id, 2).to_dict() | {"ts": first["ts"]}
        stats = pub.stats()
        assert stats["published"] == n and stats["buffered"] == 0
        assert stats["dropped_partials"] == stats["dropped_other"] == 0


@needs_shared_broker
async def test_state_is_retained_newest_only() -> None:
    tenant = _tenant()
    topic = topic_for(tenant, "call-state", "state")
    async with _publisher(SHARED_PORT, tenant, buffer_limit=10) as pub:
        for stage in ("opening", "empathy", "inquiry"):
            pub.publish_state("call-state", {"call_id": "call-state", "stage": stage, "status": "live"})
    assert pub.stats()["states_published"] >= 1 and pub.stats()["states_pending"] == 0
    try:
        async with aiomqtt.Client(SHARED_HOST, SHARED_PORT, timeout=5) as late:
            await late.subscribe(topic, qos=1)
            message = await asyncio.wait_for(anext(aiter(late.messages)), 5)
            assert message.retain is True
            assert isinstance(message.payload, bytes)
            assert json.loads(message.payload)["stage"] == "inquiry"
    finally:
        async with aiomqtt.Client(SHARED_HOST, SHARED_PORT, timeout=5) as cleaner:
            await cleaner.publish(topic, b"", qos=1, retain=True)  # empty retained payload clears it


@needs_shared_broker
async def test_overflow_drops_partials_first_then_oldest() -> None:
    tenant, call_id = _tenant(), "call-overflow"
    async with collecting(SHARED_PORT, f"callassist/{tenant}/calls/+/events") as sub:
        pub = _publisher(SHARED_PORT, tenant, buffer_limit=8)
        # Held before start(): the same code path as a broker outage, but deterministic.
        for seq in range(1, 21):  # 5 partials, 15 others
            pub.publish_event(_event(call_id, seq))
        stats = pub.stats()
        assert stats["buffered"] == 8
        assert stats["dropped_partials"] == 5  # every partial went before any other event
        assert stats["dropped_other"] == 20 - 8 - 5  # then the oldest non-partials
        kept = [s for s in range(1, 21) if not _is_partial(s)][-8:]
        # A partial arriving at a full buffer with no partial held is itself dropped.
        pub.publish_event(_event(call_id, 24))
        assert pub.stats()["dropped_partials"] == 6 and pub.stats()["buffered"] == 8
        async with pub:
            await sub.wait_for(set(kept))
            await asyncio.sleep(0.2)
        assert sub.seqs() == kept


@needs_mosquitto
async def test_broker_restart_loses_no_final_warning_or_suggestion(private_broker: PrivateBroker) -> None:
    tenant, call_id = _tenant(), "call-restart"
    async with collecting(private_broker.port, f"callassist/{tenant}/calls/+/events") as sub:
        async with _publisher(
            private_broker.port, tenant, buffer_limit=500, reconnect_min_s=0.1, reconnect_max_s=0.5
        ) as pub:
            seq = 0
            slowest = 0.0

            async def stream(count: int, pace_s: float) -> None:
                nonlocal seq, slowest
                for _ in range(count):
                    seq += 1
                    t0 = time.perf_counter()
                    pub.publish_event(_event(call_id, seq))
                    slowest = max(slowest, time.perf_counter() - t0)
                    await asyncio.sleep(pace_s)

            await stream(40, 0.005)
            await sub.wait_for(set(range(1, 41)))

            # Stop the broker mid-stream: the call side keeps going without waiting.
            stopper = asyncio.create_task(asyncio.to_thread(private_broker.stop))
            await stream(40, 0.005)
            await stopper
            await stream(80, 0.002)
            await asyncio.sleep(0.3)
            during = pub.stats()
            assert during["connected"] is False
            assert during["buffered"] > 0
            # Structural (publish_event is synchronous); the bound only has to be far below
            # any broker wait (connect/ack timeouts) while tolerating a busy shared CPU.
            assert slowest < 0.05, f"publish_event blocked for {slowest * 1000:.1f} ms"

            private_broker.start()  # same port, persisted sessions
            await stream(40, 0.005)
            want = {s for s in range(1, seq + 1) if not _is_partial(s)}
            await sub.wait_for(want)
            after = pub.stats()
            assert after["reconnects"] >= 1 and after["connected"] is True
            assert after["dropped_partials"] == after["dropped_other"] == 0
        got = [s for s in sub.deduped() if not _is_partial(s)]
        assert got == sorted(want)  # every non-partial, in order once deduplicated by seq


@needs_mosquitto
async def test_what_the_broker_acknowledged_for_an_absent_subscriber_survives_a_restart(
    private_broker: PrivateBroker,
) -> None:
    """No race decides this one: every event is acknowledged by the broker while the
    subscriber is away, then the broker restarts, and only then does the subscriber come
    back.  Its persistent session (clean_session=False, QoS 1 subscription), restored
    from the broker's persistence file, must hand over every event."""
    tenant, call_id, n = _tenant(), "call-away", 30
    sub = Collector(private_broker.port, f"callassist/{tenant}/calls/+/events")
    await sub.start()
    await sub.stop()  # the session stays on the broker, subscription included
    async with _publisher(private_broker.port, tenant, buffer_limit=100) as pub:
        for seq in range(1, n + 1):
            pub.publish_event(_event(call_id, seq))
        deadline = time.monotonic() + RECEIVE_TIMEOUT_S
        while pub.stats()["published"] < n:  # counted once the broker acknowledged it
            assert time.monotonic() < deadline, f"broker acknowledged only {pub.stats()['published']}"
            await asyncio.sleep(0.02)
    assert sub.received == []
    private_broker.stop()
    private_broker.start()
    try:
        await sub.start()
        await sub.wait_for(set(range(1, n + 1)))
    finally:
        await sub.stop()
    assert sub.deduped() == list(range(1, n + 1))


@needs_mosquitto
async def test_unacknowledged_events_are_resent_after_a_frozen_broker(private_broker: PrivateBroker) -> None:
    """A broker that stops answering (SIGSTOP) leaves publishes unacknowledged; they
    must be re-sent on the next connection rather than counted as delivered."""
    tenant, call_id = _tenant(), "call-freeze"
    async with collecting(private_broker.port, f"callassist/{tenant}/calls/+/events") as sub:
        async with _publisher(
            private_broker.port,
            tenant,
            buffer_limit=500,
            reconnect_min_s=0.1,
            reconnect_max_s=0.3,
            ack_timeout_s=0.5,
            connect_timeout_s=0.5,
        ) as pub:
            for seq in range(1, 11):
                pub.publish_event(_event(call_id, seq))
            await sub.wait_for(set(range(1, 11)))
            private_broker.freeze()
            try:
                for seq in range(11, 41):
                    pub.publish_event(_event(call_id, seq))
                await asyncio.sleep(1.5)  # past ack_timeout_s: the connection is given up
                assert pub.stats()["connected"] is False
                assert pub.stats()["buffered"] == 30  # nothing acknowledged, nothing lost
            finally:
                private_broker.thaw()
            await sub.wait_for(set(range(1, 41)))
            assert pub.stats()["reconnects"] >= 1
        assert sub.deduped() == list(range(1, 41))


async def test_no_broker_never_blocks_or_raises() -> None:
    port = free_port()  # nothing listens here
    pub = _publisher(port, "acme", buffer_limit=50, reconnect_min_s=0.05, reconnect_max_s=0.1)
    await pub.start()
    t0 = time.perf_counter()
    for seq in range(1, 201):
        pub.publish_event(_event("call-x", seq))
    pub.publish_event(Event("bad/id", 1, 0.0, _body(1)))  # refused, counted, not raised
    pub.publish_state("call-x", {"stage": "opening"})
    assert time.perf_counter() - t0 < 0.1
    await asyncio.sleep(0.3)
    stats = pub.stats()
    assert stats["connected"] is False and stats["buffered"] == 50
    assert stats["dropped_partials"] == 50  # all 50 partials went first
    assert stats["dropped_other"] == 200 - 50 - 50 + 1
    t0 = time.perf_counter()
    await pub.aclose()
    assert time.perf_counter() - t0 < 1.0  # closing with the broker down does not hang
