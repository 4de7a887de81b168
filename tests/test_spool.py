"""Store outages lose nothing: the store sink's durable spool against real stores.

* a private PostgreSQL (Debian's 15 binaries, on a free port) stopped mid-call and started again;
* a SQLite store whose files are made immutable (``chattr +i``: writes fail with "disk I/O error"
  even for root, which ignores permission bits; the ``-shm`` file is left alone because SQLite maps
  it and an immutable mapping kills the process with SIGBUS);
* a full spool, a restart that replays the spool, a crash mid-drain, and a running service.

Events are real :class:`assist.events.Event` objects; every assertion reads the store back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from assist.events import CallEnded, CallStarted, ComplianceWarning, Event, EventBody, TranscriptFinal
from stream.delivery.persist import StoreSink
from stream.delivery.spool import Spool, SpoolFull
from stream.settings import SettingsError, load_settings
from stream.store import Store, open_store

PG_BIN = Path("/usr/lib/postgresql/15/bin")
T0 = 1_764_331_200.0
DRAIN_TIMEOUT_S = 30.0
RETRY_S = 0.05


# ------------------------------------------------------------------------------------ events


def final(text: str, speaker: str = "agent") -> TranscriptFinal:
    return TranscriptFinal(
        speaker="agent" if speaker == "agent" else "customer",
        utterance_id=f"u-{text}",
        text=text,
        language="zh",
        start=0.0,
        end=1.0,
        latency_ms=90.0,
    )


def warning(utt: str) -> ComplianceWarning:
    return ComplianceWarning(
        utterance_id=utt,
        speaker="agent",
        rule="no_threats",
        severity="critical",
        quote="再不还就上门",
        why="threat",
        rephrase="我们可以商量还款计划",
        evidence="上门",
        score=0.9,
    )


def started() -> CallStarted:
    return CallStarted(
        language="zh", sample_rate=16000, encoding="pcm_s16le", legs=("agent", "customer"), metadata={}
    )


def ev(call_id: str, seq: int, body: EventBody) -> Event:
    return Event(call_id=call_id, seq=seq, ts=T0 + seq, body=body)


def call_events(call_id: str, n_finals: int, *, ended: bool = True) -> list[Event]:
    """call.started, finals (every third one followed by a warning), call.ended."""
    out = [ev(call_id, 1, started())]
    for i in range(n_finals):
        out.append(ev(call_id, len(out) + 1, final(f"{call_id} 第{i}句")))
        if i % 3 == 2:
            out.append(ev(call_id, len(out) + 1, warning(f"u-{call_id} 第{i}句")))
    if ended:
        out.append(ev(call_id, len(out) + 1, CallEnded(reason="stop", duration=float(len(out)))))
    return out


def sink_for(store: Store, spool_path: Path, **limits: int) -> StoreSink:
    spool = Spool(
        spool_path,
        max_bytes=limits.get("max_bytes", 1 << 20),
        max_events=limits.get("max_events", 10_000),
    )
    return StoreSink(store, tenant="t", node="n", spool=spool, retry_min_s=RETRY_S, retry_max_s=0.2)


async def drained(sink: StoreSink) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while sink.stats()["spool_events"]:
        assert time.monotonic() < deadline, f"spool not drained: {sink.stats()}"
        await asyncio.sleep(0.05)


def assert_stored_once_in_order(store: Store, events: list[Event]) -> None:
    """Every event of the call, exactly once (the key is (call_id, seq)), in seq order, same type."""
    call_id = events[0].call_id
    got = store.events(call_id)
    assert [(e.seq, e.type) for e in got] == [(e.seq, e.type) for e in events]
    assert [e.body for e in got] == [e.body for e in events]


# ------------------------------------------------------------------------------------ PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """A throwaway cluster: initdb into a temp dir, pg_ctl start/stop on a free port.

    PostgreSQL refuses to run as root, so as root (CI) every command runs as the ``postgres`` user
    on a directory it owns.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str) -> None:
        argv = [str(PG_BIN / cmd[0]), *cmd[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL 15 binaries in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="callassist-pg-"))
    pg = PrivatePostgres(root)
    try:
        pg.init()
        pg.start()
    except (subprocess.CalledProcessError, LookupError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = (
            exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else exc
        )
        pytest.skip(f"cannot run a private PostgreSQL: {detail}")
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_stopped_mid_call_loses_nothing(postgres: PrivatePostgres, tmp_path: Path) -> None:
    store = open_store(postgres.url, masking=None)
    sink = sink_for(store, tmp_path / "spool.jsonl")
    await sink.start()
    a = call_events("pg-a", 12)
    b = call_events("pg-b", 4)  # starts and ends while the database is down
    try:
        for e in a[:6]:
            await sink(e)
        assert sink.stats()["spool_events"] == 0 and sink.written == 6
        await asyncio.to_thread(postgres.stop)
        try:
            for e in a[6:12] + b:
                await asyncio.wait_for(sink(e), timeout=10)  # the call is never held up
            stats = sink.stats()
            assert stats["spool_events"] == 6 + len(b) and stats["failures"] >= 1 and stats["lost"] == 0
            assert stats["spool_oldest_age_s"] is not None and stats["last_failure"]
            await asyncio.sleep(0.3)  # a few failed retries while the database stays away
        finally:
            await asyncio.to_thread(postgres.start)
        for e in a[12:]:  # behind the backlog, although the database is already back
            await sink(e)
        await drained(sink)
        assert_stored_once_in_order(store, a)
        assert_stored_once_in_order(store, b)
        for call_id in ("pg-a", "pg-b"):
            rec = store.get_call(call_id)
            assert rec is not None and rec.status == "ended"
        stats = sink.stats()
        # What the outage spooled was replayed; the events sent after the restart were spooled too
        # unless the backlog had already drained by then (timing), so count only the outage's.
        assert stats["lost"] == 0 and stats["replayed"] == stats["spooled"]
        assert len(a[6:12] + b) <= stats["spooled"] <= len(a) + len(b) - 6
        assert stats["last_failure"] is None and (tmp_path / "spool.jsonl").stat().st_size == 0
    finally:
        await sink.aclose()
        store.close()


# ------------------------------------------------------------------------------------ SQLite


@contextlib.contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    """``chattr +i``: refused even to root (unlike chmod), undone afterwards whatever happens."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    done: list[Path] = []
    try:
        for p in paths:
            r = subprocess.run(["chattr", "+i", str(p)], capture_output=True, timeout=10)
            if r.returncode != 0:
                pytest.skip(f"chattr +i refused here: {r.stderr.decode(errors='replace').strip()}")
            done.append(p)
        yield
    finally:
        for p in done:
            subprocess.run(["chattr", "-i", str(p)], check=True, timeout=10)


async def test_sqlite_store_that_cannot_write_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "store" / "calls.db"
    store = open_store(str(db), masking=None)
    sink = sink_for(store, tmp_path / "spool.jsonl")
    a = call_events("sq-a", 9)
    try:
        for e in a[:3]:
            await sink(e)
        with immutable([db, db.with_name("calls.db-wal")]):
            for e in a[3:8]:
                await sink(e)
            stats = sink.stats()
            assert stats["spool_events"] == 5 and stats["failures"] >= 1, stats
            assert "disk I/O error" in stats["last_failure"]
            lines = (tmp_path / "spool.jsonl").read_text(encoding="utf-8").splitlines()
            assert [json.loads(line)["seq"] for line in lines] == [4, 5, 6, 7, 8]  # the events' wire form
            assert json.loads(lines[0]) == a[3].to_dict()
        for e in a[8:]:
            await sink(e)
        await drained(sink)
        assert_stored_once_in_order(store, a)
        rec = store.get_call("sq-a")
        assert rec is not None and rec.status == "ended" and rec.findings == {"critical": 3}
    finally:
        await sink.aclose()
        store.close()


# ------------------------------------------------------------------------------------ limits


async def test_full_spool_is_a_clear_error_and_keeps_what_it_has(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A closed store refuses every write (StoreError), standing in for one that is away."""
    url = str(tmp_path / "calls.db")
    down = open_store(url, masking=None)
    down.close()
    sink = sink_for(down, tmp_path / "spool.jsonl", max_events=4)
    a = call_events("full", 6)
    with caplog.at_level(logging.ERROR, logger="stream.delivery.persist"):
        for e in a[:7]:
            await sink(e)  # never raises: the call goes on
    stats = sink.stats()
    assert stats["spool_events"] == 4 and stats["lost"] == 3
    assert "store.spool_max_events" in stats["error"]
    assert any("NOT stored" in r.getMessage() and "spool full" in r.getMessage() for r in caplog.records)
    store = open_store(url, masking=None)
    try:
        sink.store = store  # the store is back: the background retry drains the spool...
        await drained(sink)
        await sink(a[7])  # ...and what comes next is stored again
        assert [e.seq for e in store.events("full")] == [1, 2, 3, 4, 8]
        assert sink.stats()["error"] is None and sink.stats()["lost"] == 3
    finally:
        await sink.aclose()
        store.close()


def test_spool_byte_limit_refuses_without_touching_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool(path, max_bytes=4096, max_events=1000)
    events = call_events("bytes", 100)
    taken = 0
    with pytest.raises(SpoolFull, match=r"store\.spool_max_bytes"):
        for e in events:
            spool.append(e)
            taken += 1
    before = path.read_bytes()
    assert 0 < taken < len(events) and len(before) <= 4096
    with pytest.raises(SpoolFull):
        spool.append(events[taken])
    assert path.read_bytes() == before and len(spool) == taken
    spool.close()
    again = Spool(path, max_bytes=4096, max_events=1000)
    assert again.load() == events[:taken]
    again.close()


def test_spool_cuts_a_torn_last_line_and_is_owned_by_one_process(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    events = call_events("torn", 3)
    path.write_text(events[0].to_json() + "\n" + events[1].to_json()[:20], encoding="utf-8")
    spool = Spool(path, max_bytes=1 << 20, max_events=100)
    assert spool.load() == events[:1]
    spool.append(events[1])
    assert [json.loads(line)["seq"] for line in path.read_text(encoding="utf-8").splitlines()] == [1, 2]
    other = Spool(path, max_bytes=1 << 20, max_events=100)
    with pytest.raises(Exception, match="in use by another process"):
        other.load()
    spool.close()


def test_spool_settings_are_named_and_checked() -> None:
    s = load_settings(None, {"data_dir": "/srv/ca", "store.spool_max_events": 5})
    assert s.store.spool_max_events == 5 and s.store_spool_path() == Path("/srv/ca/store-spool.jsonl")
    for key, value in (
        ("store.spool_max_events", 0),
        ("store.spool_max_bytes", 100),
        ("store.spool_retry_min_s", 0),
        ("store.spool_retry_max_s", 0.1),
    ):
        with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
            load_settings(None, {key: value})


# ------------------------------------------------------------------------------------ restarts


async def test_restart_replays_the_spool_before_new_events(tmp_path: Path) -> None:
    url = str(tmp_path / "calls.db")
    down = open_store(url, masking=None)
    down.close()
    first = sink_for(down, tmp_path / "spool.jsonl")
    ended = call_events("r-ended", 4)
    cut = call_events("r-cut", 5, ended=False)  # the run dies before this call ends
    for e in ended[:3] + cut + ended[3:]:
        await first(e)
    await first.aclose()  # store still away: everything stays spooled
    assert first.stats()["spool_events"] == len(ended) + len(cut)

    store = open_store(url, masking=None)
    second = sink_for(store, tmp_path / "spool.jsonl")
    try:
        await second.start()  # what the service awaits before it listens
        assert second.stats()["spool_events"] == 0 and second.replayed == len(ended) + len(cut)
        assert_stored_once_in_order(store, ended)
        assert_stored_once_in_order(store, cut)
        rec = store.get_call("r-cut")
        assert rec is not None and rec.status == "interrupted" and rec.ended_at == cut[-1].ts
        rec = store.get_call("r-ended")
        assert rec is not None and rec.status == "ended"
        new = call_events("r-new", 2)
        for e in new:
            await second(e)
        assert_stored_once_in_order(store, new)
    finally:
        await second.aclose()
        store.close()


async def test_crash_mid_drain_writes_each_event_exactly_once(tmp_path: Path) -> None:
    """The previous run drained part of its spool, then died before emptying the file."""
    url = str(tmp_path / "calls.db")
    events = call_events("crash", 8)
    store = open_store(url, masking=None)
    written = StoreSink(store, tenant="t", node="n")
    for e in events[:5]:  # reached the store...
        await written(e)
    leftover = Spool(tmp_path / "spool.jsonl", max_bytes=1 << 20, max_events=100)
    for e in events:  # ...but were still in the file, with the rest
        leftover.append(e)
    leftover.close()
    sink = sink_for(store, tmp_path / "spool.jsonl")
    try:
        await sink.start()
        assert_stored_once_in_order(store, events)
        rec = store.get_call("crash")
        assert rec is not None and rec.status == "ended"
    finally:
        await sink.aclose()
        store.close()


@pytest.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[tuple[str, object, Path]]:
    from aiohttp import web

    from stream.live.pipeline import AsrPlan, SharedModels
    from stream.web.server import Service
    from tests.fakes import FakeTranscriber

    settings = load_settings(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "endpoint.vad": "energy",
            "endpoint.min_silence_ms": 300,
            "limits.start_timeout_s": 2.0,
            "limits.idle_timeout_s": 5.0,
            "guidance": False,
            "auth.enabled": False,
            "store.spool_retry_min_s": RETRY_S,
            "store.spool_retry_max_s": 0.2,
        },
    )
    db = tmp_path / "data" / "calls.db"
    store = open_store(str(db), masking=None)
    service = Service(
        settings, SharedModels(transcriber=FakeTranscriber(), engine=None, plan=AsrPlan()), store=store
    )
    runner = web.AppRunner(service.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}", service, db
    finally:
        await runner.cleanup()
        store.close()


async def test_a_live_call_through_the_service_survives_an_unwritable_store(
    sqlite_service: tuple[str, object, Path],
) -> None:
    import aiohttp

    from stream.web.server import Service
    from tests.fakes import pcm16, send_audio, silence, start_frame, stereo, tone

    addr, service, db = sqlite_service
    assert isinstance(service, Service) and service.store is not None
    speech = pcm16(stereo(tone(0.8), silence(0.8))) + pcm16(stereo(silence(0.8), tone(0.8)))
    pause = pcm16(stereo(silence(0.6), silence(0.6)))
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{addr}/v1/ingest") as ws:
            await ws.send_str(start_frame("svc"))
            await send_audio(ws, speech + pause)
            with immutable([db, db.with_name("calls.db-wal")]):
                await send_audio(ws, speech + pause)
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
                while True:
                    health = await (await http.get(f"http://{addr}/healthz")).json()
                    if health["store"]["spool_events"] >= 2:
                        break
                    assert time.monotonic() < deadline, health
                    await asyncio.sleep(0.1)
                assert health["store"]["failures"] >= 1 and health["store"]["spool_oldest_age_s"] is not None
                assert health["status"] == "degraded" and "spool" in health["problems"][0]
            await send_audio(ws, speech + pause)
            await ws.send_str(json.dumps({"type": "stop"}))
            async for _ in ws:
                pass
        sink = service.store_sink
        assert sink is not None
        await drained(sink)
        health = await (await http.get(f"http://{addr}/healthz")).json()
    stored = service.store.events("svc")
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))  # no holes, no duplicates
    assert stored[0].type == "call.started" and stored[-1].type == "call.ended"
    assert sum(e.type == "transcript.final" for e in stored) == 6
    assert health["store"]["spool_events"] == 0 and health["store"]["lost"] == 0
    assert health["status"] == "ok" and health["problems"] == []
    assert health["store"]["replayed"] >= 2


async def test_an_event_the_store_can_never_take_is_dropped_not_retried_forever(tmp_path: Path) -> None:
    """Events of a call whose call.started is nowhere (UnknownCallError) must not block the others."""
    url = str(tmp_path / "calls.db")
    good = call_events("good", 4)
    stray = [ev("stray", 7, final("无头")), ev("stray", 8, final("之事"))]
    leftover = Spool(tmp_path / "spool.jsonl", max_bytes=1 << 20, max_events=100)
    for e in good[:3] + stray + good[3:]:
        leftover.append(e)
    leftover.close()
    store = open_store(url, masking=None)
    sink = sink_for(store, tmp_path / "spool.jsonl")
    try:
        await sink.start()
        assert_stored_once_in_order(store, good)
        assert store.get_call("stray") is None and store.events("stray") == []
        stats = sink.stats()
        assert stats["spool_events"] == 0 and stats["lost"] == 2 and stats["replayed"] == len(good)
    finally:
        await sink.aclose()
        store.close()


KILL_AFTER_SEQ = 40  # the child is SIGKILLed once it has reported this many spooled events
_SPOOLING_CHILD = """
import asyncio, sys
from pathlib import Path
from stream.store import open_store
from tests.test_spool import call_events, sink_for

async def main() -> None:
    down = open_store(sys.argv[1], masking=None)
    down.close()  # a store that refuses every write
    sink = sink_for(down, Path(sys.argv[2]))
    for e in call_events("killed", 300, ended=False):
        await sink(e)
        print(e.seq, flush=True)  # the sink returned: the event is spooled and fsynced
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_events_spooled_before_a_sigkill_are_replayed(tmp_path: Path) -> None:
    import signal
    import sys

    url = str(tmp_path / "calls.db")
    open_store(url, masking=None).close()
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", _SPOOLING_CHILD, url, str(tmp_path / "spool.jsonl")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    reported = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            reported = int(line)
            if reported >= KILL_AFTER_SEQ:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=30)
    assert reported >= KILL_AFTER_SEQ
    store = open_store(url, masking=None)
    sink = sink_for(store, tmp_path / "spool.jsonl")
    try:
        await sink.start()
        seqs = [e.seq for e in store.events("killed")]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= reported
        rec = store.get_call("killed")
        assert rec is not None and rec.status == "interrupted"
    finally:
        await sink.aclose()
        store.close()


async def test_the_service_replays_a_left_spool_before_it_listens(tmp_path: Path) -> None:
    from aiohttp import web

    from stream.live.pipeline import AsrPlan, SharedModels
    from stream.web.server import Service
    from tests.fakes import FakeTranscriber

    settings = load_settings(None, {"data_dir": str(tmp_path), "guidance": False, "auth.enabled": False})
    events = call_events("before", 3)
    left = Spool(settings.store_spool_path(), max_bytes=1 << 20, max_events=100)
    for e in events:
        left.append(e)
    left.close()
    store = open_store(settings.store_url(), masking=None)
    service = Service(
        settings, SharedModels(transcriber=FakeTranscriber(), engine=None, plan=AsrPlan()), store=store
    )
    runner = web.AppRunner(service.app())
    try:
        await runner.setup()  # start-up hooks only: nothing listens yet
        assert_stored_once_in_order(store, events)
        assert settings.store_spool_path().stat().st_size == 0
    finally:
        await runner.cleanup()
        store.close()
