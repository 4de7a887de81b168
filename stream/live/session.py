"""One live call: legs' audio in, events out through the call's log.

A session is transport-agnostic: the native websocket ingest and (later) every
telephony adapter translate their wire format into :meth:`CallSession.feed`
calls with per-leg 16 kHz float32 audio, so there is exactly one pipeline.

Per leg, an :class:`~stream.audio.endpointer.Endpointer` cuts utterances
(:class:`~stream.live.legs.LegEndpoints`, shared with the offline commands).  Finished
utterances go through one per-call queue, in the order they ended, to the
process-wide ASR scheduler (finals first); each result then goes through the
call's :class:`~stream.live.utterance.UtteranceStep` (hallucination guard,
masking, guidance, retraction -- the same step the offline commands use) and the
events it returns are published on the call's log.
Partial transcripts are best-effort: at most one in flight per leg, dropped by
the scheduler under load, ignored once the utterance's final exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from assist.events import CallEnded, CallStarted, ErrorEvent, EventBody
from stream.asr.base import AsrResult
from stream.asr.scheduler import AsrScheduler
from stream.audio.endpointer import EndpointEvent, PartialAudio, SpeculativeEnd, UtteranceEnded
from stream.live.bus import CallLog
from stream.live.legs import LegEndpoints, VadFactory
from stream.live.pipeline import AsrPlan
from stream.live.utterance import Heard, UtteranceStep
from stream.settings import Settings

if TYPE_CHECKING:
    from assist.engine import CallGuide, GuidanceEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallParams:
    """What a transport knows about a call when it starts (native `start` frame or adapter)."""

    call_id: str
    language: str
    sample_rate: int
    encoding: str
    legs: tuple[str, ...]
    metadata: Mapping[str, Any]


@dataclass
class _Speculation:
    end: float
    samples: int
    task: asyncio.Task[AsrResult]


@dataclass
class _Pending:
    ended: UtteranceEnded
    closed_at: float  # perf_counter when the endpointer closed it


class CallSession:
    def __init__(
        self,
        params: CallParams,
        *,
        settings: Settings,
        scheduler: AsrScheduler,
        plan: AsrPlan,
        log_: CallLog,
        engine: GuidanceEngine | None = None,
        vad: VadFactory | None = None,
    ) -> None:
        """``vad``: builds each leg's VAD (default: ``settings.endpoint.vad``); tests script one."""
        self.params = params
        self.settings = settings
        self.log = log_
        self._scheduler = scheduler
        self._plan = plan
        self._metadata: dict[str, Any] = dict(params.metadata)
        self._guide: CallGuide | None = (
            engine.new_call(params.language, self._metadata) if engine is not None else None
        )
        self._step = UtteranceStep(params.language, self._guide, masking=settings.store.masking)
        self._legs = LegEndpoints(settings.endpoint, params.legs, vad=vad)
        # A step's events are computed and published under this lock, so a partial's warning is
        # never published after the retraction its final computed meanwhile.
        self._publishing = asyncio.Lock()
        self._pending: asyncio.Queue[_Pending | None] = asyncio.Queue(
            maxsize=settings.limits.pending_utterances
        )
        self._final_task: asyncio.Task[None] | None = None
        self._partial_tasks: dict[str, asyncio.Task[None]] = {}
        self._speculative: dict[str, _Speculation] = {}
        self.speculative_hits = 0
        self.started_at = time.time()
        self.ended = False

    @property
    def call_id(self) -> str:
        return self.params.call_id

    @property
    def language(self) -> str:
        return self.params.language

    @property
    def duration(self) -> float:
        return self._legs.duration

    @property
    def finals(self) -> int:
        """Final transcripts published so far."""
        return self._step.finals

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    def guide_state(self) -> dict[str, Any]:
        return self._guide.state() if self._guide is not None else {}

    async def start(self) -> None:
        p = self.params
        await self.log.publish(
            CallStarted(
                language=p.language,
                sample_rate=p.sample_rate,
                encoding=p.encoding,
                legs=p.legs,
                metadata=dict(self._metadata),
            )
        )
        self._final_task = asyncio.create_task(self._final_worker(), name=f"finals-{p.call_id}")

    def attach_legs(self, legs: tuple[str, ...]) -> None:
        """A leg arriving on its own (mono) connection joins the call."""
        for leg in legs:
            self._legs.add(leg)

    def has_leg(self, leg: str) -> bool:
        return leg in self._legs

    def update_metadata(self, extra: Mapping[str, Any]) -> None:
        self._metadata.update(extra)

    async def feed(self, legs: Mapping[str, np.ndarray]) -> None:
        """Push decoded 16 kHz audio per leg; waits only when transcription is far behind."""
        await self._on_endpoints(self._legs.push(legs))

    async def feed_gap(self, legs: Mapping[str, np.ndarray]) -> None:
        """Audio standing for a gap the platform announced (it discarded that audio): call time
        stays on the platform's clock, but the gap neither ends nor starts an utterance."""
        await self._on_endpoints(self._legs.bridge(legs))

    async def end_utterances(self, legs: Iterable[str] | None = None) -> None:
        """End the utterance in progress on these legs (default: all) now, so its transcript comes
        without waiting for a pause: the platform paused the stream or changed its language."""
        await self._on_endpoints(self._legs.cut(legs))

    async def _on_endpoints(self, events: Iterable[EndpointEvent]) -> None:
        for ev in events:
            if isinstance(ev, UtteranceEnded):
                await self._pending.put(_Pending(ev, time.perf_counter()))
            elif isinstance(ev, SpeculativeEnd):
                self._speculate(ev)
            elif isinstance(ev, PartialAudio):
                running = self._partial_tasks.get(ev.leg)
                if running is None or running.done():
                    self._partial_tasks[ev.leg] = asyncio.create_task(self._partial(ev))

    async def _emit(self, make: Callable[[], list[EventBody]]) -> None:
        async with self._publishing:
            for body in make():
                await self.log.publish(body)

    def _speculate(self, ev: SpeculativeEnd) -> None:
        """Start the final transcription early when the ASR worker has nothing else to do.

        Under load (finals already waiting) speculation is skipped, so a wasted
        guess never delays another utterance's final.
        """
        old = self._speculative.pop(ev.utterance_id, None)
        if old is not None:
            old.task.cancel()  # speech resumed: if still queued, the scheduler forgets it
        stats = self._scheduler.stats()
        if stats.get("busy", 0) or stats.get("final_queue", 0) or stats.get("finals_blocked", 0):
            return
        req = self._plan.request(ev.audio, self.language)
        task = asyncio.create_task(self._scheduler.final(req, key=f"{self.call_id}/{ev.leg}"))
        task.add_done_callback(_consume_exception)
        self._speculative[ev.utterance_id] = _Speculation(end=ev.end, samples=len(ev.audio), task=task)

    async def _partial(self, ev: PartialAudio) -> None:
        req = self._plan.request(ev.audio, self.language, partial=True)
        try:
            result = await self._scheduler.partial(req, key=f"{self.call_id}/{ev.leg}")
        except Exception:  # a failed partial is not worth an error event
            log.exception("partial transcription failed")
            return
        if result is None:
            return
        heard = Heard.of(ev, req, result)
        await self._emit(lambda: self._step.partial(heard))

    async def _final_worker(self) -> None:
        while True:
            item = await self._pending.get()
            if item is None:
                return
            try:
                await self._finalize(item)
            except Exception as exc:  # keep the call going; say what happened
                log.exception("final transcription failed for %s", item.ended.utterance_id)
                await self.log.publish(ErrorEvent(code="asr_failed", message=str(exc) or type(exc).__name__))

    async def _finalize(self, item: _Pending) -> None:
        ev = item.ended
        req = self._plan.request(ev.audio, self.language)
        spec = self._speculative.pop(ev.utterance_id, None)
        if (
            spec is not None
            and spec.end == ev.end
            and spec.samples == len(ev.audio)
            and not spec.task.cancelled()
        ):
            result = await spec.task  # same audio: the early transcription is the final one
            self.speculative_hits += 1
        else:
            if spec is not None:
                spec.task.cancel()
            result = await self._scheduler.final(req, key=f"{self.call_id}/{ev.leg}")
        heard = Heard.of(ev, req, result)
        latency_ms = (time.perf_counter() - item.closed_at) * 1000.0
        await self._emit(lambda: self._step.final(heard, latency_ms=latency_ms))

    async def finish(self, reason: str) -> None:
        """Close every open utterance, transcribe what is left, then end the call.

        Runs on every exit path (stop, protocol error, vanished client) so audio
        already received is never lost.
        """
        if self.ended:
            return
        self.ended = True
        await self._on_endpoints(self._legs.flush())
        await self._pending.put(None)
        if self._final_task is not None:
            await self._final_task
        for task in self._partial_tasks.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.log.publish(CallEnded(reason=reason, duration=round(self.duration, 3)))
        self.log.close()

    async def error(self, code: str, message: str, *, fatal: bool) -> None:
        await self.log.publish(ErrorEvent(code=code, message=message, fatal=fatal))


def _consume_exception(task: asyncio.Task[AsrResult]) -> None:
    """A void speculation is never awaited; its failure must not be reported as unretrieved."""
    if not task.cancelled():
        task.exception()
