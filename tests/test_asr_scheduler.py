"""AsrScheduler ordering, supersession, shedding and backpressure, with a scripted transcriber.

The model is not the point here: a scripted transcriber whose worker can be
held on a gate makes the queue states deterministic.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from stream.asr.base import AsrRequest, AsrResult
from stream.asr.scheduler import AsrScheduler, SchedulerClosed
from tests.fakes import WAIT_S, ScriptedTranscriber


def req(label: str, partial: bool = False) -> AsrRequest:
    return AsrRequest(np.zeros(160, np.float32), "zh", prompt=label, partial=partial)


async def hold_worker(sched: AsrScheduler, fake: ScriptedTranscriber) -> asyncio.Task[AsrResult]:
    """Occupy the worker with a final named 'hold' that waits on the gate."""
    fake.gate.clear()
    fake.entered.clear()
    task = asyncio.create_task(sched.final(req("hold")))
    assert await asyncio.to_thread(fake.entered.wait, WAIT_S)
    return task


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_finals_are_served_before_partials_on_one_dedicated_thread() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=8, partial_queue=8) as sched:
        hold = await hold_worker(sched, fake)
        p1 = asyncio.create_task(sched.partial(req("p1", True), key="call1/agent"))
        p2 = asyncio.create_task(sched.partial(req("p2", True), key="call2/agent"))
        await settle()
        f1 = asyncio.create_task(sched.final(req("f1")))
        f2 = asyncio.create_task(sched.final(req("f2")))
        await settle()
        assert sched.stats()["final_queue"] == 2 and sched.stats()["partial_queue"] == 2
        fake.gate.set()
        results = await asyncio.gather(hold, p1, p2, f1, f2)
    assert fake.served == ["hold", "f1", "f2", "p1", "p2"]
    assert [r.text for r in results if r] == ["hold", "p1", "p2", "f1", "f2"]
    assert len(fake.threads) == 1 and threading.current_thread().name not in fake.threads
    stats = sched.stats()
    assert (stats["finals_served"], stats["partials_served"], stats["partials_dropped"]) == (3, 2, 0)


async def test_newer_partial_of_the_same_leg_supersedes_the_waiting_one() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=4, partial_queue=4) as sched:
        hold = await hold_worker(sched, fake)
        old = asyncio.create_task(sched.partial(req("old", True), key="c/customer"))
        await settle()
        new = asyncio.create_task(sched.partial(req("new", True), key="c/customer"))
        other = asyncio.create_task(sched.partial(req("other", True), key="c/agent"))
        await settle()
        assert old.done() and old.result() is None  # resolved at once, not after the worker frees up
        fake.gate.set()
        await hold
        new_result, other_result = await asyncio.gather(new, other)
    assert new_result is not None and new_result.text == "new"
    assert other_result is not None and other_result.text == "other"
    assert fake.served == ["hold", "new", "other"]
    assert sched.stats()["partials_dropped"] == 1


async def test_oldest_partial_is_shed_when_the_partial_queue_is_full() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=4, partial_queue=2) as sched:
        hold = await hold_worker(sched, fake)
        tasks = []
        for key in ("a", "b", "c"):
            tasks.append(asyncio.create_task(sched.partial(req(key, True), key=key)))
            await settle()
        assert tasks[0].done() and tasks[0].result() is None
        assert sched.stats()["partial_queue"] == 2
        fake.gate.set()
        await hold
        results = await asyncio.gather(*tasks)
    assert [r.text if r else None for r in results] == [None, "b", "c"]
    assert fake.served == ["hold", "b", "c"]
    assert sched.stats()["partials_dropped"] == 1


async def test_full_final_queue_applies_backpressure_and_loses_nothing() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=2, partial_queue=2) as sched:
        hold = await hold_worker(sched, fake)
        finals = [asyncio.create_task(sched.final(req(f"f{i}"))) for i in range(5)]
        await settle()
        stats = sched.stats()
        assert (stats["final_queue"], stats["finals_blocked"]) == (2, 3)
        assert not any(t.done() for t in finals)
        fake.gate.set()
        await hold
        results = await asyncio.gather(*finals)
    assert [r.text for r in results] == [f"f{i}" for i in range(5)]
    assert fake.served == ["hold"] + [f"f{i}" for i in range(5)]  # FIFO, blocked callers kept their turn
    assert sched.stats()["finals_served"] == 6


async def test_final_for_a_leg_drops_its_waiting_partial() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=2, partial_queue=2) as sched:
        hold = await hold_worker(sched, fake)
        partial = asyncio.create_task(sched.partial(req("p", True), key="c/agent"))
        await settle()
        final = asyncio.create_task(sched.final(req("f"), key="c/agent"))
        await settle()
        assert partial.done() and partial.result() is None
        fake.gate.set()
        await asyncio.gather(hold, final)
    assert fake.served == ["hold", "f"]


async def test_transcriber_errors_reach_the_caller_and_the_worker_survives() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=2, partial_queue=2) as sched:
        with pytest.raises(RuntimeError, match="boom-final"):
            await sched.final(req("boom-final"))
        with pytest.raises(RuntimeError, match="boom-partial"):
            await sched.partial(req("boom-partial", True), key="k")
        assert (await sched.final(req("after"))).text == "after"
    assert sched.stats()["errors"] == 2 and fake.served == ["after"]


async def test_cancelled_final_is_not_transcribed() -> None:
    fake = ScriptedTranscriber()
    async with AsrScheduler(fake, final_queue=2, partial_queue=2) as sched:
        hold = await hold_worker(sched, fake)
        gone = asyncio.create_task(sched.final(req("gone")))
        kept = asyncio.create_task(sched.final(req("kept")))
        await settle()
        gone.cancel()
        await settle()
        assert sched.stats()["final_queue"] == 1
        fake.gate.set()
        await asyncio.gather(hold, kept)
    assert fake.served == ["hold", "kept"]


async def test_close_drains_finals_and_drops_partials() -> None:
    fake = ScriptedTranscriber()
    sched = AsrScheduler(fake, final_queue=4, partial_queue=4)
    await sched.start()
    hold = await hold_worker(sched, fake)
    final = asyncio.create_task(sched.final(req("f")))
    partial = asyncio.create_task(sched.partial(req("p", True), key="k"))
    await settle()
    closing = asyncio.create_task(sched.aclose())
    await settle()
    with pytest.raises(SchedulerClosed):
        await sched.final(req("late"))
    fake.gate.set()
    await closing
    assert (await hold).text == "hold" and (await final).text == "f"
    assert await partial is None
    assert fake.served == ["hold", "f"]


async def test_close_without_drain_fails_waiting_finals() -> None:
    fake = ScriptedTranscriber()
    sched = AsrScheduler(fake, final_queue=1, partial_queue=1)
    await sched.start()
    hold = await hold_worker(sched, fake)
    queued = asyncio.create_task(sched.final(req("queued")))
    blocked = asyncio.create_task(sched.final(req("blocked")))
    await settle()
    closing = asyncio.create_task(sched.aclose(drain=False))
    await settle()
    fake.gate.set()
    await closing
    assert (await hold).text == "hold"  # the request already on the worker completes
    for task in (queued, blocked):
        with pytest.raises(SchedulerClosed):
            await task
    assert fake.served == ["hold"]


async def test_not_started_scheduler_refuses_work() -> None:
    sched = AsrScheduler(ScriptedTranscriber(), final_queue=1, partial_queue=1)
    with pytest.raises(SchedulerClosed):
        await sched.final(req("x"))
    with pytest.raises(ValueError):
        AsrScheduler(ScriptedTranscriber(), final_queue=0, partial_queue=1)


async def test_sustained_load_keeps_every_final_and_sheds_partials() -> None:
    """Three calls x two legs stream partials while finals arrive; the worker is slower than the stream."""
    fake = ScriptedTranscriber(delay_s=0.01)
    async with AsrScheduler(fake, final_queue=3, partial_queue=2) as sched:
        finals: list[asyncio.Task[AsrResult]] = []
        partials: list[asyncio.Task[AsrResult | None]] = []
        for step in range(10):
            for leg in ("c1/agent", "c1/customer", "c2/agent", "c2/customer", "c3/agent", "c3/customer"):
                partials.append(asyncio.create_task(sched.partial(req(f"{leg}#{step}", True), key=leg)))
            if step % 2:
                finals.append(asyncio.create_task(sched.final(req(f"final#{step}"))))
            await asyncio.sleep(0.005)
        final_results = await asyncio.gather(*finals)
        partial_results = await asyncio.gather(*partials)
    assert [r.text for r in final_results] == [f"final#{s}" for s in range(1, 10, 2)]
    stats = sched.stats()
    assert stats["partials_dropped"] == sum(r is None for r in partial_results) > 0
    assert stats["partials_served"] + stats["partials_dropped"] == len(partials)
    assert stats["final_queue"] == stats["partial_queue"] == 0


async def test_partials_are_shed_while_finals_keep_the_model_busy() -> None:
    """A running partial cannot be pre-empted, so under sustained final load none is started."""
    fake = ScriptedTranscriber(delay_s=0.1)
    async with AsrScheduler(fake, final_queue=8, partial_queue=2, max_partial_load=0.1) as sched:
        assert await sched.partial(req("idle-partial", partial=True), key="a") is not None  # idle: served
        for i in range(12):  # ~1.2 s of back-to-back finals: load ~0.24 of the 5 s window
            await sched.final(req(f"final-{i}"))
        assert sched.load() > 0.1
        assert await sched.partial(req("busy-partial", partial=True), key="a") is None
    assert "busy-partial" not in fake.served
    assert sched.stats()["partials_dropped"] >= 1
