"""Per-call event logs: sequence numbering, durable hand-off, fan-out to subscribers.

Each call owns one :class:`CallLog`.  Publishing a body stamps it with the call's
next sequence number, hands it to the durable sinks (the call store) *before*
anyone sees it -- so an event a client has seen is never lost to a crash -- then
to the fire-and-forget sinks (MQTT) and to every websocket subscriber.

Subscribers have bounded queues.  A subscriber that falls behind by more than
its limit is cut off rather than allowed to grow memory without bound; it
reconnects with ``since=<last seq>`` and the log replays what it missed.  The
log itself keeps the newest ``limit`` events of the call for that replay.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from assist.events import Event, EventBody

DurableSink = Callable[[Event], Awaitable[None]]
"""Awaited before delivery; for the store.  Must not raise for transient trouble."""

FastSink = Callable[[Event], None]
"""Called without awaiting; must return immediately (MQTT buffer, metrics)."""


class SubscriberTooSlow(Exception):
    """The subscriber's queue overflowed; it should reconnect with ``since``."""


@dataclass(eq=False)
class Subscription:
    """One consumer of a call's events: replayed history, then live events."""

    queue_limit: int
    queue: asyncio.Queue[Event | None] = field(init=False)
    overflowed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue()

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.queue_limit:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            item = await self.queue.get()
            if item is None:
                if self.overflowed:
                    raise SubscriberTooSlow("subscriber fell behind; reconnect with since=<last seq>")
                return
            yield item


class CallLog:
    def __init__(
        self,
        call_id: str,
        *,
        limit: int,
        durable: list[DurableSink] | None = None,
        fast: list[FastSink] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.call_id = call_id
        self._history: deque[Event] = deque(maxlen=limit)
        self._next_seq = 1
        self._durable = list(durable or [])
        self._fast = list(fast or [])
        self._subscribers: set[Subscription] = set()
        self._lock = asyncio.Lock()
        self._clock = clock
        self.closed = False

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    async def publish(self, body: EventBody) -> Event:
        """Stamp, persist, deliver -- in that order, one event at a time per call.

        The lock keeps delivery order equal to sequence order even when the two
        legs' pipelines publish concurrently.
        """
        async with self._lock:
            event = Event(call_id=self.call_id, seq=self._next_seq, ts=self._clock(), body=body)
            self._next_seq += 1
            for sink in self._durable:
                await sink(event)
            self._history.append(event)
            for fast in self._fast:
                fast(event)
            for sub in list(self._subscribers):
                sub.offer(event)
            return event

    def subscribe(self, since: int, queue_limit: int) -> Subscription:
        """Replay events with ``seq > since`` still in memory, then follow live.

        Done synchronously (no await between replay and registration) so no
        event can fall between the two.
        """
        sub = Subscription(queue_limit=max(queue_limit, len(self._history) + 1))
        for event in self._history:
            if event.seq > since:
                sub.queue.put_nowait(event)
        sub.queue_limit = queue_limit + sub.queue.qsize()
        if self.closed:
            sub.close()
        else:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def history(self, since: int = 0) -> list[Event]:
        return [e for e in self._history if e.seq > since]

    def close(self) -> None:
        """No more events: end every subscriber's iteration after what it has queued."""
        self.closed = True
        for sub in self._subscribers:
            sub.close()
        self._subscribers.clear()
