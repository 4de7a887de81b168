"""The one ingest path every transport uses.

The native websocket protocol and each telephony adapter (Genesys AudioHook,
Twilio Media Streams, FreeSWITCH audio fork, Asterisk AudioSocket) only
translate their wire format; they all open calls here and feed per-leg 16 kHz
audio into a :class:`CallHandle`.  A leg may arrive on its own connection: a
second ``open`` for the same call id with other legs joins the live call, and
the call ends when its last connection closes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from assist.events import Event
from stream.asr.scheduler import AsrScheduler
from stream.live.bus import CallLog, DurableSink, FastSink
from stream.live.pipeline import SharedModels
from stream.live.registry import CallRegistry, LiveCall
from stream.live.session import CallParams, CallSession
from stream.settings import Settings


class CallRejected(Exception):
    """The call cannot be opened; ``code`` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CallHandle:
    """One transport connection's view of a call (it may carry one leg or both)."""

    def __init__(self, manager: CallManager, entry: LiveCall, legs: tuple[str, ...]) -> None:
        self._manager = manager
        self._entry = entry
        self.legs = legs
        self.closed = False

    @property
    def session(self) -> CallSession:
        return self._entry.session

    @property
    def call_id(self) -> str:
        return self._entry.session.call_id

    async def feed(self, legs: Mapping[str, np.ndarray]) -> None:
        await self._entry.session.feed({leg: a for leg, a in legs.items() if leg in self.legs})

    async def feed_gap(self, legs: Mapping[str, np.ndarray]) -> None:
        """Silence standing for audio the platform discarded (see :meth:`CallSession.feed_gap`)."""
        await self._entry.session.feed_gap({leg: a for leg, a in legs.items() if leg in self.legs})

    async def end_utterances(self) -> None:
        """End this connection's legs' utterances in progress now (see :meth:`CallSession.end_utterances`)."""
        await self._entry.session.end_utterances(self.legs)

    def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._entry.session.update_metadata(metadata)

    async def error(self, code: str, message: str, *, fatal: bool) -> None:
        await self._entry.session.error(code, message, fatal=fatal)

    async def close(self, reason: str) -> None:
        """Detach this connection; the last one to leave finishes the call (nothing is dropped)."""
        if self.closed:
            return
        self.closed = True
        await self._manager.detach(self._entry, self.legs, reason)


class CallManager:
    def __init__(
        self,
        settings: Settings,
        models: SharedModels,
        scheduler: AsrScheduler,
        *,
        durable_sinks: list[DurableSink] | None = None,
        fast_sinks: list[FastSink] | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.scheduler = scheduler
        self.registry = CallRegistry(ended_kept=settings.limits.ended_calls_kept)
        self.durable_sinks = list(durable_sinks or [])
        self.fast_sinks = list(fast_sinks or [])
        self.on_change: list[Callable[[CallSession, Event | None], None]] = []

    async def open(self, params: CallParams) -> CallHandle:
        legs = tuple(params.legs)
        existing = self.registry.live(params.call_id)
        if existing is not None:
            if existing.session.ended:  # its last connection left and it is finishing: too late to join
                raise CallRejected(
                    "call_conflict", f"call {params.call_id} has already ended; use a new call id"
                )
            clash = [leg for leg in legs if leg in existing.legs_attached]
            if clash:
                raise CallRejected(
                    "call_conflict", f"call {params.call_id} already has leg(s) {', '.join(clash)} connected"
                )
            if existing.session.language != params.language:
                raise CallRejected(
                    "call_conflict",
                    f"call {params.call_id} is {existing.session.language}, not {params.language}",
                )
            existing.session.attach_legs(legs)
            existing.session.update_metadata(params.metadata)
            existing.connections += 1
            existing.legs_attached.update(legs)
            return CallHandle(self, existing, legs)
        if self.registry.log(params.call_id) is not None:
            raise CallRejected("call_conflict", f"call {params.call_id} has already ended; use a new call id")
        limit = self.settings.limits.max_concurrent_calls
        if len(self.registry) >= limit:
            raise CallRejected("too_many_calls", f"too many concurrent calls (limit {limit})")
        session = self._new_session(params)
        entry = self.registry.add(session)
        entry.connections = 1
        entry.legs_attached.update(legs)
        await session.start()
        return CallHandle(self, entry, legs)

    def _new_session(self, params: CallParams) -> CallSession:
        holder: list[CallSession] = []

        def notify(event: Event) -> None:
            for cb in self.on_change:
                cb(holder[0], event)

        log_ = CallLog(
            params.call_id,
            limit=self.settings.limits.call_event_log,
            durable=self.durable_sinks,
            fast=[*self.fast_sinks, notify],
        )
        session = CallSession(
            params,
            settings=self.settings,
            scheduler=self.scheduler,
            plan=self.models.plan,
            log_=log_,
            engine=self.models.engine,
        )
        holder.append(session)
        return session

    async def detach(self, entry: LiveCall, legs: tuple[str, ...], reason: str) -> None:
        entry.connections -= 1
        entry.legs_attached.difference_update(legs)
        if entry.connections > 0:
            return
        await entry.session.finish(reason)
        self.registry.ended(entry.session.call_id)

    async def shutdown(self) -> None:
        for entry in self.registry.live_calls():
            entry.connections = 1
            await self.detach(entry, tuple(entry.legs_attached), "shutdown")
