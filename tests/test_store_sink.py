"""The store as the durable sink of every call's log (stream/delivery/persist.py), against a real
SQLite store: what it writes, how a call's end becomes its status, and that a failing store is
counted and logged but never stalls a live call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assist.events import CallEnded, CallStarted, Event, EventBody, TranscriptFinal, TranscriptPartial
from stream.delivery.persist import StoreSink
from stream.live.bus import CallLog
from stream.store import Store, open_store

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "calls.db"), masking=None)
    yield s
    s.close()


def event(seq: int, body: EventBody, call_id: str = "c1") -> Event:
    return Event(call_id=call_id, seq=seq, ts=T0 + seq, body=body)


def started(language: str = "en") -> CallStarted:
    return CallStarted(language, 16000, "pcm_s16le", ("agent", "customer"), {"agent_name": "Ann"})


def final(text: str) -> TranscriptFinal:
    return TranscriptFinal("agent", "u1", text, "en", 0.0, 1.0, 100.0)


async def test_call_start_creates_the_call_and_every_event_is_stored(store: Store) -> None:
    sink = StoreSink(store, tenant="acme", node="node-1")
    await sink(event(1, started()))
    await sink(event(2, final("hello")))
    record = store.get_call("c1")
    assert record is not None
    assert (record.tenant, record.node, record.language, record.status) == ("acme", "node-1", "en", "live")
    assert record.started_at == T0 + 1 and dict(record.metadata) == {"agent_name": "Ann"}
    assert [(e.seq, e.body) for e in store.events("c1")] == [(1, started()), (2, final("hello"))]
    assert sink.stats() == {"written": 2, "failures": 0}


async def test_partials_are_not_stored(store: Store) -> None:
    sink = StoreSink(store, tenant="acme", node="n")
    await sink(event(1, started()))
    await sink(event(2, TranscriptPartial("agent", "u1", "hel", "en", 0.0, 0.5)))
    await sink(event(3, final("hello")))
    assert [e.seq for e in store.events("c1")] == [1, 3]
    assert sink.stats() == {"written": 2, "failures": 0}


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("stop", "ended"),
        ("disconnected", "ended"),
        ("timeout", "ended"),
        ("shutdown", "interrupted"),
        ("error", "error"),
        ("anything else", "error"),
    ],
)
async def test_the_end_reason_becomes_the_call_status(store: Store, reason: str, status: str) -> None:
    sink = StoreSink(store, tenant="acme", node="n")
    await sink(event(1, started()))
    await sink(event(2, CallEnded(reason, 42.5)))
    record = store.get_call("c1")
    assert record is not None
    assert (record.status, record.duration, record.ended_at) == (status, 42.5, T0 + 2)


async def test_writes_run_off_the_event_loop_thread(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    append = store.append_events

    def recording(events: list[Event]) -> None:
        threads.append(threading.current_thread().name)
        append(events)

    monkeypatch.setattr(store, "append_events", recording)
    await StoreSink(store, tenant="acme", node="n")(event(1, started()))
    assert threads and threads[0] != threading.current_thread().name


async def test_a_failing_store_is_counted_and_logged_not_raised(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(events: list[Event]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "append_events", broken)
    sink = StoreSink(store, tenant="acme", node="n")
    with caplog.at_level(logging.ERROR, logger="stream.delivery.persist"):
        await sink(event(1, started()))
        await sink(event(2, final("hello")))
    assert sink.stats() == {"written": 0, "failures": 2}
    assert "call store write failed for c1 #2" in caplog.text


async def test_subscribers_still_get_events_the_store_failed_to_write(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(events: list[Event]) -> None:
        raise OSError("database restarting")

    monkeypatch.setattr(store, "append_events", broken)
    sink = StoreSink(store, tenant="acme", node="n")
    log = CallLog("c1", limit=10, durable=[sink])
    sub = log.subscribe(since=0, queue_limit=10)
    await log.publish(started())
    await log.publish(final("hello"))
    log.close()
    assert [e.seq async for e in sub] == [1, 2]
    assert sink.failures == 2


async def test_an_event_is_in_the_store_when_publish_returns(store: Store) -> None:
    """What the log has delivered, the store already has (the SIGKILL guarantee)."""
    log = CallLog("c1", limit=10, durable=[StoreSink(store, tenant="acme", node="n")])
    sub = log.subscribe(since=0, queue_limit=10)
    await log.publish(started())
    delivered = await log.publish(final("hello"))
    assert sub.queue.qsize() == 2
    assert store.events("c1")[-1].seq == delivered.seq
