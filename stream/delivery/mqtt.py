"""MQTT fan-out of call events, built so that the broker can never hurt a call.

Calls produce events on the hot path (transcription, guidance); the broker is an
optional, possibly remote and possibly absent dependency.  So the call side only
ever *appends to a bounded in-memory buffer* (:meth:`MqttPublisher.publish_event`
is synchronous, never raises and never waits), and one background task owns the
connection: it publishes in order, reconnects with exponential backoff when the
broker goes away, and resumes from the first event the broker had not
acknowledged.

Delivery contract (what a subscriber may rely on):

* Topics: ``callassist/<tenant>/calls/<call_id>/events`` carries every event as
  its wire JSON (``Event.to_json()``, QoS 1); ``callassist/<tenant>/calls/<call_id>/state``
  carries the call's newest summary (QoS 1, retained, so a late subscriber reads
  the current state at once).
* Order: events reach the broker in the order they were handed to
  :meth:`publish_event`.  Across a reconnect an event that was sent but not yet
  acknowledged is sent again, so a subscriber can see a *duplicate* (dedupe on
  ``(call_id, seq)``) but never a gap caused by the outage.
* Losses happen only when the buffer overflows (``buffer_limit`` events held,
  counting the ones awaiting an acknowledgement): partial transcripts go first
  because the final of the same utterance supersedes them; only when no partial
  is left is the oldest held event dropped.  Both are counted in :meth:`stats`.
* Delivered means acknowledged by the broker (PUBACK), so across a *broker*
  restart the broker must keep what it acknowledged: persistence on and writable
  by the broker's run-time user, stopped cleanly (Mosquitto saves on exit and
  otherwise only every ``autosave_interval``), and consumers holding persistent
  sessions (fixed client id, ``clean_session=False``) with QoS 1 subscriptions.
  The publisher itself needs no session (``clean_session=True``): it re-sends
  whatever was unacknowledged from its own buffer.
* Only the newest summary per call is held while disconnected: an older summary
  is worthless once a newer one exists.  Held summaries are at most one per call
  and are additionally capped at ``buffer_limit`` calls (oldest call dropped).

Limits are constructor arguments so the service settings and the tests can name
and shrink them.  All methods must be called from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import aiomqtt

from assist.events import Event, TranscriptPartial

log = logging.getLogger(__name__)

TopicKind = Literal["events", "state"]
TOPIC_ROOT = "callassist"
EVENTS_QOS = 1
STATE_QOS = 1
# MQTT wildcards and the level separator would let a crafted id publish into
# another call's (or tenant's) topic, so they are refused outright.
_FORBIDDEN_IN_LEVEL = frozenset("/+#\x00")


def topic_for(tenant: str, call_id: str, kind: TopicKind) -> str:
    """The one place topic names are spelled, shared by publisher, tests and docs.

    Raises ``ValueError`` for an empty id or one containing ``/``, ``+``, ``#`` or NUL,
    since such an id would address (or subscribe to) topics other than its own.
    """
    for name, value in (("tenant", tenant), ("call_id", call_id)):
        if not value or any(ch in _FORBIDDEN_IN_LEVEL for ch in value):
            raise ValueError(f"{name} {value!r} cannot be used as an MQTT topic level")
    if kind not in ("events", "state"):
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{TOPIC_ROOT}/{tenant}/calls/{call_id}/{kind}"


@dataclass(eq=False)
class _HeldEvent:
    """An event waiting for (or awaiting acknowledgement of) its publish.

    ``dropped`` marks a tombstone: overflow drops partials from the middle of the
    queue in O(1) by flagging them, and the sender skips flagged entries.
    """

    topic: str
    event: Event
    partial: bool
    dropped: bool = False


@dataclass(eq=False)
class _HeldState:
    call_id: str
    topic: str
    payload: bytes


_Held = _HeldEvent | _HeldState


class MqttPublisher:
    """Publishes call events and retained call summaries to one MQTT broker.

    ``buffer_limit`` bounds the events held in memory (waiting plus awaiting an
    acknowledgement); ``max_inflight`` bounds how many publishes are outstanding at
    once, which hides the broker round trip without unbounded pipelining.  The
    backoff between connection attempts doubles from ``reconnect_min_s`` to
    ``reconnect_max_s`` (with up to ``backoff_jitter`` of it randomly shaved off so
    a fleet does not reconnect in lockstep) and resets after a successful
    connection.  A publish not acknowledged within ``ack_timeout_s`` is treated as
    a dead connection.  :meth:`aclose` spends at most ``drain_timeout_s`` flushing
    what is still held.  ``client_id`` must be unique per running instance: the
    broker disconnects the older of two clients with the same id.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tenant: str,
        client_id: str,
        buffer_limit: int,
        username: str | None = None,
        password: str | None = None,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 10.0,
        max_inflight: int = 20,
        ack_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        keepalive_s: int = 15,
        drain_timeout_s: float = 5.0,
        backoff_jitter: float = 0.2,
    ) -> None:
        if buffer_limit < 1:
            raise ValueError("buffer_limit must be >= 1")
        if not 0 < reconnect_min_s <= reconnect_max_s:
            raise ValueError("need 0 < reconnect_min_s <= reconnect_max_s")
        if max_inflight < 1:
            raise ValueError("max_inflight must be >= 1")
        topic_for(tenant, "x", "events")  # validates the tenant once, up front
        self.host = host
        self.port = port
        self.tenant = tenant
        self.client_id = client_id
        self.buffer_limit = buffer_limit
        self._username = username
        self._password = password
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._window = min(max_inflight, buffer_limit)
        self._ack_timeout_s = ack_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_s = keepalive_s
        self._drain_timeout_s = drain_timeout_s
        self._backoff_jitter = backoff_jitter

        self._queue: deque[_HeldEvent] = deque()  # waiting events, oldest first, may hold tombstones
        self._partials: deque[_HeldEvent] = deque()  # the live partials of _queue, same order
        self._queued_live = 0
        self._states: dict[str, _HeldState] = {}  # newest waiting summary per call
        self._inflight: deque[tuple[_Held, asyncio.Task[None]]] = deque()
        self._progress = asyncio.Event()  # "something to do": new item, an ack, closing
        self._stop = asyncio.Event()
        self._closing = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._reapers: set[asyncio.Task[None]] = set()
        self._outage_logged = False

        self._connected = False
        self._published = 0
        self._states_published = 0
        self._dropped_partials = 0
        self._dropped_other = 0
        self._dropped_states = 0
        self._reconnects = 0
        self._connections = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the background publisher; returns at once, without waiting for the broker.

        The service must come up (and calls must flow) with the broker down, so the
        first connection is made in the background like every later one.  Events
        handed over before ``start`` are held and published once connected.
        """
        if self._task is not None or self._closed:
            raise RuntimeError("MqttPublisher can be started once")
        self._task = asyncio.create_task(self._run(), name=f"mqtt-publisher-{self.client_id}")

    async def aclose(self) -> None:
        """Flush what is held for up to ``drain_timeout_s`` (if connected), then disconnect.

        Whatever could not be flushed is reported in the log with its count; later
        ``publish_*`` calls are counted as dropped.
        """
        if self._closed:
            return
        self._closing = True
        self._stop.set()
        self._progress.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self._drain_timeout_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for reaper in self._reapers:
            reaper.cancel()
        await asyncio.gather(*self._reapers, return_exceptions=True)
        self._reapers.clear()
        self._closed = True
        left = self._held_events() + len(self._states)
        if left:
            log.warning("mqtt: closed with %d events/summaries not published", left)

    # -- the caller's side: never blocks, never raises -------------------------------------

    def publish_event(self, event: Event) -> None:
        """Hold ``event`` for publishing to its call's events topic.

        Synchronous and O(1) amortised: the call path must not wait for, or fail
        because of, the broker.  On overflow this drops a partial transcript (the
        oldest held one, else this one if it is a partial), otherwise the oldest
        held event.
        """
        try:
            if self._closed or self._closing:
                self._dropped_other += 1
                return
            try:
                topic = topic_for(self.tenant, event.call_id, "events")
            except ValueError as exc:
                self._dropped_other += 1
                log.warning("mqtt: event not published: %s", exc)
                return
            item = _HeldEvent(topic, event, isinstance(event.body, TranscriptPartial))
            if self._held_events() >= self.buffer_limit and not self._make_room(item):
                return
            self._queue.append(item)
            self._queued_live += 1
            if item.partial:
                self._partials.append(item)
            self._progress.set()
        except Exception:  # a bug here must not take a call down with it
            self._dropped_other += 1
            log.exception("mqtt: publish_event failed")

    def publish_state(self, call_id: str, summary: Mapping[str, Any]) -> None:
        """Hold ``summary`` as the call's newest retained state, replacing an older waiting one."""
        try:
            if self._closed or self._closing:
                self._dropped_states += 1
                return
            try:
                topic = topic_for(self.tenant, call_id, "state")
            except ValueError as exc:
                self._dropped_states += 1
                log.warning("mqtt: summary not published: %s", exc)
                return
            payload = json.dumps(summary, ensure_ascii=False, separators=(",", ":")).encode()
            self._states.pop(call_id, None)  # re-insert so the dict stays oldest-updated first
            if len(self._states) >= self.buffer_limit:
                oldest = next(iter(self._states))
                del self._states[oldest]
                self._dropped_states += 1
            self._states[call_id] = _HeldState(call_id, topic, payload)
            self._progress.set()
        except Exception:
            self._dropped_states += 1
            log.exception("mqtt: publish_state failed")

    def stats(self) -> dict[str, Any]:
        """Counters for health checks and the bench; ``buffered`` counts held events."""
        return {
            "connected": self._connected,
            "published": self._published,
            "buffered": self._held_events(),
            "dropped_partials": self._dropped_partials,
            "dropped_other": self._dropped_other,
            "reconnects": self._reconnects,
            "states_published": self._states_published,
            "states_pending": len(self._states),
            "dropped_states": self._dropped_states,
        }

    # -- buffer bookkeeping -------------------------------------------------------------------

    def _held_events(self) -> int:
        return self._queued_live + sum(1 for item, _ in self._inflight if isinstance(item, _HeldEvent))

    def _make_room(self, incoming: _HeldEvent) -> bool:
        """Drop one held event so ``incoming`` fits; False when ``incoming`` itself is dropped."""
        if self._partials:
            victim = self._partials.popleft()
            victim.dropped = True
            self._queued_live -= 1
            self._dropped_partials += 1
            self._compact()
            return True
        if incoming.partial:
            self._dropped_partials += 1
            return False
        while self._queue:
            victim = self._queue.popleft()
            if not victim.dropped:
                self._queued_live -= 1
                self._dropped_other += 1
                return True
        # Everything held is awaiting an acknowledgement; nothing older can go.
        self._dropped_other += 1
        return False

    def _compact(self) -> None:
        """Forget tombstones once they outnumber live entries, keeping memory O(buffer_limit)."""
        if len(self._queue) > 2 * self._queued_live + 64:
            self._queue = deque(item for item in self._queue if not item.dropped)

    def _take(self) -> _Held | None:
        """The next item to send: newest summaries first (few, small), then events in order."""
        if self._states:
            call_id = next(iter(self._states))
            return self._states.pop(call_id)
        while self._queue:
            item = self._queue.popleft()
            if item.dropped:
                continue
            self._queued_live -= 1
            if item.partial:
                self._partials.popleft()  # it is the oldest live partial by construction
            return item
        return None

    def _requeue(self, items: list[_Held]) -> None:
        """Put unacknowledged items back in front, in their original order."""
        events = [item for item in items if isinstance(item, _HeldEvent)]
        self._queue.extendleft(reversed(events))
        self._partials.extendleft(reversed([item for item in events if item.partial]))
        self._queued_live += len(events)
        for item in items:
            if isinstance(item, _HeldState) and item.call_id not in self._states:
                self._states[item.call_id] = item  # a newer waiting summary wins

    # -- the connection side ------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._reconnect_min_s
        while True:
            client = aiomqtt.Client(
                self.host,
                self.port,
                identifier=self.client_id,
                username=self._username,
                password=self._password,
                timeout=self._connect_timeout_s,
                keepalive=self._keepalive_s,
                max_inflight_messages=self._window,
                clean_session=True,
            )
            try:
                async with client:
                    self._connected = True
                    self._connections += 1
                    if self._connections > 1:
                        self._reconnects += 1
                        log.info("mqtt: reconnected to %s:%d", self.host, self.port)
                    self._outage_logged = False
                    delay = self._reconnect_min_s
                    await self._pump(client)
                    return  # drained after aclose()
            except* aiomqtt.MqttError as group:
                self._reap(client)
                if not self._closing:
                    level = logging.DEBUG if self._outage_logged else logging.WARNING
                    log.log(
                        level, "mqtt: broker %s:%d unavailable: %s", self.host, self.port, group.exceptions[0]
                    )
                    self._outage_logged = True
            except* Exception:
                self._reap(client)
                log.exception("mqtt: publisher error")
            finally:
                self._connected = False
                self._settle_inflight()
            if self._closing:
                return
            wait = delay * (1.0 - self._backoff_jitter * random.random())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)
            if self._closing:
                return
            delay = min(delay * 2, self._reconnect_max_s)

    def _reap(self, client: aiomqtt.Client) -> None:
        """Wait out a failed client's late disconnection so it is consumed, not leaked.

        aiomqtt leaves the socket of a connection attempt whose CONNACK timed out
        open until paho's keepalive closes it; if a frozen broker answers late, that
        orphan even completes its connection and is then dropped, and the resulting
        disconnection error would otherwise surface as "Future exception was never
        retrieved".  Each reaper lives at most keepalive plus connect timeout.
        """
        self._reapers = {task for task in self._reapers if not task.done()}
        self._reapers.add(asyncio.create_task(self._drain_late_disconnect(client)))

    async def _drain_late_disconnect(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(self._keepalive_s + self._connect_timeout_s + 2.0):
                await self._watch(client)

    def _settle_inflight(self) -> None:
        """After a connection ends: count what was acknowledged, hold the rest for re-sending."""
        unacked: list[_Held] = []
        for item, task in self._inflight:
            if task.done() and not task.cancelled() and task.exception() is None:
                self._count_published(item)
            else:
                task.cancel()
                unacked.append(item)
        self._inflight.clear()
        self._requeue(unacked)

    def _count_published(self, item: _Held) -> None:
        if isinstance(item, _HeldEvent):
            self._published += 1
        else:
            self._states_published += 1

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Keep up to ``max_inflight`` publishes outstanding, retiring them in order.

        Returns once closing and everything is acknowledged.  A failed publish or a
        lost connection raises out of the task group, which cancels the rest; what
        was outstanding is then settled by :meth:`_settle_inflight`.
        """
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(self._watch(client))
            while True:
                self._progress.clear()
                while self._inflight and self._inflight[0][1].done():
                    item, task = self._inflight[0]
                    if task.cancelled() or task.exception() is not None:
                        break  # the task group is about to raise; settle decides
                    self._inflight.popleft()
                    self._count_published(item)
                while len(self._inflight) < self._window:
                    next_item = self._take()
                    if next_item is None:
                        break
                    # Tasks start in creation order and hand their message to the
                    # client before their first await, so the wire order is ours.
                    self._inflight.append((next_item, tg.create_task(self._send(client, next_item))))
                if self._closing and not self._inflight:
                    watcher.cancel()
                    return
                await self._progress.wait()

    async def _send(self, client: aiomqtt.Client, item: _Held) -> None:
        if isinstance(item, _HeldEvent):
            await client.publish(
                item.topic, item.event.to_json(), qos=EVENTS_QOS, timeout=self._ack_timeout_s
            )
        else:
            await client.publish(
                item.topic, item.payload, qos=STATE_QOS, retain=True, timeout=self._ack_timeout_s
            )
        self._progress.set()

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Turn a lost connection into an exception while no publish is outstanding.

        We subscribe to nothing, so the message iterator only ever ends by raising
        ``MqttError`` when the connection drops.
        """
        async for _ in client.messages:
            pass
