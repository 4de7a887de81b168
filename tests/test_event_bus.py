"""The per-call event log (stream/live/bus.py) on its own: numbering, the durable sink before
anyone sees an event, the cut-off of a subscriber that falls behind, and replay with since=N."""

from __future__ import annotations

import asyncio

import pytest

from assist.events import CallEnded, Event, TranscriptFinal, TranscriptPartial
from stream.live.bus import CallLog, DurableSink, FastSink, SubscriberTooSlow, Subscription

CLOCK_T = 1_700_000_000.0


def final(i: int) -> TranscriptFinal:
    return TranscriptFinal("customer", f"u{i}", f"line {i}", "en", float(i), i + 0.5, 100.0)


def make_log(
    limit: int = 100, durable: list[DurableSink] | None = None, fast: list[FastSink] | None = None
) -> CallLog:
    return CallLog("call-1", limit=limit, durable=durable, fast=fast, clock=lambda: CLOCK_T)


async def log_with(n: int, limit: int = 100) -> CallLog:
    """A log that has already published ``n`` finals (seq 1..n)."""
    log = make_log(limit)
    for i in range(n):
        await log.publish(final(i))
    return log


async def drain(sub: Subscription, n: int) -> list[Event]:
    """The next ``n`` events of a subscription that stays open."""
    out: list[Event] = []
    async for event in sub:
        out.append(event)
        if len(out) == n:
            break
    return out


async def test_events_are_numbered_from_one_in_publish_order() -> None:
    log = make_log()
    assert log.last_seq == 0
    events = [await log.publish(final(i)) for i in range(3)]
    assert [e.seq for e in events] == [1, 2, 3]
    assert all(e.call_id == "call-1" and e.ts == CLOCK_T for e in events)
    assert log.last_seq == 3
    assert [e.body for e in log.history()] == [final(0), final(1), final(2)]


async def test_concurrent_publishers_get_distinct_gapless_numbers() -> None:
    log = make_log()
    events = await asyncio.gather(*(log.publish(final(i)) for i in range(20)))
    assert sorted(e.seq for e in events) == list(range(1, 21))
    assert [e.seq for e in log.history()] == list(range(1, 21))


async def test_durable_sink_has_the_event_before_any_subscriber_or_fast_sink() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def durable(event: Event) -> None:
        order.append(f"durable {event.seq}")
        await gate.wait()  # a slow store: nothing may be delivered meanwhile

    def fast(event: Event) -> None:
        order.append(f"fast {event.seq}")

    log = make_log(durable=[durable], fast=[fast])
    sub = log.subscribe(since=0, queue_limit=10)
    publishing = asyncio.create_task(log.publish(final(1)))
    await asyncio.sleep(0.01)
    assert order == ["durable 1"]
    assert sub.queue.empty() and log.history() == []
    gate.set()
    await publishing
    assert order == ["durable 1", "fast 1"]
    assert [e.seq for e in await drain(sub, 1)] == [1]


async def test_next_event_waits_for_the_previous_durable_write() -> None:
    """One event at a time per call: seq 2 is not stored before seq 1 is."""
    stored: list[int] = []
    gate = asyncio.Event()

    async def durable(event: Event) -> None:
        if event.seq == 1:
            await gate.wait()
        stored.append(event.seq)

    log = make_log(durable=[durable])
    first = asyncio.create_task(log.publish(final(1)))
    second = asyncio.create_task(log.publish(final(2)))
    await asyncio.sleep(0.01)
    assert stored == []
    gate.set()
    await asyncio.gather(first, second)
    assert stored == [1, 2]


async def test_replay_since_n_then_live() -> None:
    log = await log_with(5)
    sub = log.subscribe(since=3, queue_limit=10)
    await log.publish(final(5))
    assert [e.seq for e in await drain(sub, 3)] == [4, 5, 6]
    assert [e.seq for e in log.history(since=4)] == [5, 6]


async def test_replay_covers_only_the_newest_limit_events() -> None:
    log = await log_with(6, limit=3)
    assert [e.seq for e in log.history()] == [4, 5, 6]
    sub = log.subscribe(since=0, queue_limit=10)
    log.close()
    assert [e.seq async for e in sub] == [4, 5, 6]


async def test_replay_does_not_count_against_the_live_queue_limit() -> None:
    log = await log_with(10)
    sub = log.subscribe(since=0, queue_limit=2)
    await log.publish(final(10))
    await log.publish(final(11))
    log.close()
    assert [e.seq async for e in sub] == list(range(1, 13))


async def test_subscriber_too_slow_is_cut_off_after_what_it_had() -> None:
    log = make_log()
    sub = log.subscribe(since=0, queue_limit=2)
    for i in range(5):
        await log.publish(TranscriptPartial("agent", f"u{i}", "…", "en", 0.0, 1.0))
    got: list[int] = []
    with pytest.raises(SubscriberTooSlow):
        async for event in sub:
            got.append(event.seq)
    assert got == [1, 2]
    assert sub.overflowed
    # It reconnects with since=<last seq it saw> and misses nothing the log still holds.
    again = log.subscribe(since=got[-1], queue_limit=10)
    log.close()
    assert [e.seq async for e in again] == [3, 4, 5]


async def test_a_slow_subscriber_does_not_hold_up_others() -> None:
    log = make_log()
    slow = log.subscribe(since=0, queue_limit=1)
    quick = log.subscribe(since=0, queue_limit=100)
    for i in range(5):
        await log.publish(final(i))
    log.close()
    assert [e.seq async for e in quick] == [1, 2, 3, 4, 5]
    with pytest.raises(SubscriberTooSlow):
        async for _ in slow:
            pass


async def test_close_ends_subscribers_and_late_subscribers_get_history_only() -> None:
    log = make_log()
    sub = log.subscribe(since=0, queue_limit=10)
    await log.publish(final(0))
    await log.publish(CallEnded("stop", 3.0))
    log.close()
    assert log.closed
    assert [type(e.body) for e in [e async for e in sub]] == [TranscriptFinal, CallEnded]
    late = log.subscribe(since=1, queue_limit=10)
    assert [e.seq async for e in late] == [2]


async def test_unsubscribed_consumer_gets_nothing_more() -> None:
    log = make_log()
    sub = log.subscribe(since=0, queue_limit=10)
    await log.publish(final(0))
    log.unsubscribe(sub)
    await log.publish(final(1))
    assert sub.queue.qsize() == 1
