"""One ASR model per process, shared by every call, fed from two bounded queues.

Whisper already spreads one transcription over all cores, so running two at
once only makes both late; the scheduler therefore runs requests one at a
time on a single dedicated thread and decides *which* runs next:

* finals (finished utterances) always go first and are never dropped: when
  their queue is full the submitting call waits for room (backpressure);
* partials (provisional text of an utterance still being spoken) are a
  luxury: a newer partial of the same utterance leg replaces the waiting one,
  and when their queue is full the oldest waiting partial is dropped.  A
  dropped partial resolves to None.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from stream.asr.base import AsrRequest, AsrResult, Transcriber

WORKER_THREAD_NAME = "asr-worker"
LOAD_WINDOW_S = 5.0  # how far back the model's busy fraction is measured for partial shedding


class SchedulerClosed(RuntimeError):
    """The scheduler is closed (or was closed without draining) and will not transcribe this request."""


@dataclass(eq=False)
class _Job:
    request: AsrRequest
    future: asyncio.Future[AsrResult | None]
    key: str | None = None
    final: bool = False


class AsrScheduler:
    """Serialises transcription requests onto one worker thread, finals before partials."""

    def __init__(
        self,
        transcriber: Transcriber,
        *,
        final_queue: int,
        partial_queue: int,
        max_partial_load: float = 1.0,
    ) -> None:
        if final_queue < 1 or partial_queue < 1:
            raise ValueError("final_queue and partial_queue must be >= 1")
        self._transcriber = transcriber
        self._final_limit = final_queue
        self._partial_limit = partial_queue
        self._finals: collections.deque[_Job] = collections.deque()
        self._partials: collections.OrderedDict[str, _Job] = collections.OrderedDict()  # oldest first
        self._blocked: collections.deque[_Job] = collections.deque()  # finals waiting for queue room, FIFO
        self._wake: asyncio.Event | None = None  # work arrived for the dispatcher
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._closing = False
        self._running: _Job | None = None
        self._finals_served = 0
        self._partials_served = 0
        self._partials_dropped = 0
        self._max_partial_load = max_partial_load
        self._busy: collections.deque[tuple[float, float]] = collections.deque()  # recent runs (start, end)
        self._running_since: float | None = None
        self._errors = 0
        self._busy_total_s = 0.0  # model time spent since start, for throughput figures

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._dispatcher is not None:
            return
        if self._closing:
            raise SchedulerClosed("scheduler was closed; create a new one")
        self._wake = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=WORKER_THREAD_NAME
        )
        self._dispatcher = asyncio.create_task(self._dispatch(), name="asr-dispatcher")

    async def aclose(self, *, drain: bool = True) -> None:
        """Stop accepting work; finish queued finals (``drain``) or fail them with SchedulerClosed.

        Waiting partials resolve to None either way: nobody needs a provisional
        transcript once the service is stopping.  The request already on the
        worker thread always completes, since a model call cannot be interrupted.
        """
        if self._closing and self._dispatcher is None:
            return
        self._closing = True
        for job in list(self._partials.values()):
            self._drop_partial(job)
        if not drain:
            for queue in (self._finals, self._blocked):
                while queue:
                    job = queue.popleft()
                    if not job.future.done():
                        job.future.set_exception(SchedulerClosed("closed before this final was served"))
        if self._wake is not None:
            self._wake.set()
        if self._dispatcher is not None:
            try:
                await self._dispatcher
            finally:
                self._dispatcher = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose(drain=exc_type is None)

    # ------------------------------------------------------------------ submitting

    def _check_open(self) -> None:
        if self._dispatcher is None or self._closing:
            raise SchedulerClosed("scheduler is not running")

    async def final(self, req: AsrRequest, *, key: str | None = None) -> AsrResult:
        """Transcribe a finished utterance; waits for queue room rather than dropping it.

        ``key`` (the utterance leg) lets a waiting partial of the same leg be
        dropped: once the final is queued, its provisional text is moot.
        """
        self._check_open()
        assert self._wake is not None
        job = _Job(req, asyncio.get_running_loop().create_future(), key=key, final=True)
        if len(self._finals) < self._final_limit and not self._blocked:
            self._finals.append(job)
        else:
            self._blocked.append(job)  # backpressure: this caller waits its turn for room, nothing is lost
        if key is not None and key in self._partials:
            self._drop_partial(self._partials[key])
        self._wake.set()
        try:
            result = await job.future
        except asyncio.CancelledError:
            self._forget(job)
            raise
        assert result is not None
        return result

    async def partial(self, req: AsrRequest, key: str) -> AsrResult | None:
        """Transcribe a still-open utterance if there is time; None when superseded or shed under load."""
        self._check_open()
        assert self._wake is not None
        older = self._partials.get(key)
        if older is not None:
            self._drop_partial(older)  # the newer audio of the same leg supersedes it
        while len(self._partials) >= self._partial_limit:
            self._drop_partial(next(iter(self._partials.values())))  # shed the oldest first
        job = _Job(req, asyncio.get_running_loop().create_future(), key=key)
        self._partials[key] = job
        self._wake.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._forget(job)
            raise

    def _drop_partial(self, job: _Job) -> None:
        if job.key is not None and self._partials.get(job.key) is job:
            del self._partials[job.key]
        if not job.future.done():
            job.future.set_result(None)
            self._partials_dropped += 1

    def _forget(self, job: _Job) -> None:
        """A caller gave up (cancelled): do not spend the model on a result nobody awaits."""
        if job.final:
            for queue in (self._finals, self._blocked):
                if job in queue:
                    queue.remove(job)
            self._admit_blocked()
        elif job.key is not None and self._partials.get(job.key) is job:
            del self._partials[job.key]

    def _admit_blocked(self) -> None:
        while self._blocked and len(self._finals) < self._final_limit:
            self._finals.append(self._blocked.popleft())

    # ------------------------------------------------------------------ worker

    def _next_job(self) -> _Job | None:
        if self._finals:
            job = self._finals.popleft()
            self._admit_blocked()
            return job
        while self._partials:
            _, job = self._partials.popitem(last=False)
            if self.load() > self._max_partial_load:
                # Finals are arriving fast enough to keep the model busy: a partial now would
                # sit in front of the next final (a running job cannot be pre-empted).
                if not job.future.done():
                    job.future.set_result(None)
                    self._partials_dropped += 1
                continue
            return job
        return None

    def load(self, now: float | None = None) -> float:
        """Fraction of the last LOAD_WINDOW_S the model spent transcribing (0..1)."""
        now = time.monotonic() if now is None else now
        horizon = now - LOAD_WINDOW_S
        while self._busy and self._busy[0][1] < horizon:
            self._busy.popleft()
        busy = sum(min(end, now) - max(start, horizon) for start, end in self._busy)
        if self._running is not None and self._running_since is not None:
            busy += now - max(self._running_since, horizon)
        return min(1.0, busy / LOAD_WINDOW_S)

    async def _dispatch(self) -> None:
        assert self._wake is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        while True:
            job = self._next_job()
            if job is None:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if job.future.done():  # cancelled by its caller while queued
                continue
            self._running = job
            self._running_since = time.monotonic()
            try:
                result = await loop.run_in_executor(self._executor, self._transcriber.transcribe, job.request)
            except Exception as exc:  # the caller gets the model's error; the worker lives on
                self._errors += 1
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if job.final:
                    self._finals_served += 1
                else:
                    self._partials_served += 1
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                if self._running_since is not None:
                    ended = time.monotonic()
                    self._busy.append((self._running_since, ended))
                    self._busy_total_s += ended - self._running_since
                self._running = None
                self._running_since = None

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, int]:
        return {
            "finals_served": self._finals_served,
            "partials_served": self._partials_served,
            "partials_dropped": self._partials_dropped,
            "errors": self._errors,
            "final_queue": len(self._finals),
            "finals_blocked": len(self._blocked),
            "partial_queue": len(self._partials),
            "busy": int(self._running is not None),
            "load_pct": round(100 * self.load()),
            "busy_ms": round(1000 * self._busy_total_s),
        }
