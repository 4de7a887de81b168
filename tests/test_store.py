"""The call store against real servers: a SQLite file and the PostgreSQL at 127.0.0.1:5432.

Every test runs on both backends.  Each PostgreSQL test gets its own freshly created database
(dropped afterwards), so runs never see each other's rows.  Set CALLASSIST_TEST_PG_URL to point at
another server; set it to an empty string to skip the PostgreSQL half on a machine without one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from assist.events import (
    CallEnded,
    CallStarted,
    ComplianceRetracted,
    ComplianceWarning,
    CustomerSignal,
    Event,
    EventBody,
    StageChanged,
    Suggestion,
    SuggestionItem,
    TranscriptFinal,
    TranscriptPartial,
)
from assist.masking import mask
from stream.store import (
    SCHEMA_VERSION,
    PostgresStore,
    Store,
    StoreError,
    UnknownCallError,
    open_store,
)
from stream.store.sql import MIGRATIONS

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("CALLASSIST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = 1_764_331_200.0  # 2025-11-28 12:00:00 UTC
KILL_AFTER_SEQS = 40  # the SIGKILL child is killed once it has reported this many committed events


def _pg_db_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/calls.db"
    else:
        with _pg_database() as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with _pg_database() as url:
        yield url


@contextlib.contextmanager
def _pg_database() -> Iterator[str]:
    """A freshly created database of its own, dropped afterwards (even with connections still open)."""
    if not PG_ADMIN_URL:
        pytest.skip("CALLASSIST_TEST_PG_URL is empty: PostgreSQL tests disabled")
    name = f"callassist_store_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_db_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def ev(call_id: str, seq: int, body: EventBody, ts: float | None = None) -> Event:
    return Event(call_id=call_id, seq=seq, ts=T0 + seq if ts is None else ts, body=body)


def final(text: str, speaker: str = "agent", start: float = 0.0, utt: str = "u1") -> TranscriptFinal:
    return TranscriptFinal(
        speaker="agent" if speaker == "agent" else "customer",
        utterance_id=utt,
        text=text,
        language="zh",
        start=start,
        end=start + 2.0,
        latency_ms=120.0,
    )


def warning(rule: str, severity: str, utt: str = "u1") -> ComplianceWarning:
    return ComplianceWarning(
        utterance_id=utt,
        speaker="agent",
        rule=rule,
        severity=severity,
        quote="老赖",
        why="insult",
        rephrase="我们一起看看怎么解决",
        evidence="pattern 老赖",
        score=1.0,
    )


def new_call(store: Store, call_id: str, **kw: object) -> None:
    args: dict[str, object] = {
        "tenant": "acme",
        "started_at": T0,
        "language": "zh",
        "metadata": {"agent_name": "林雨桐"},
        "node": "node-a",
    }
    args.update(kw)
    store.create_call(call_id, **args)  # type: ignore[arg-type]


def all_kinds(call_id: str) -> list[Event]:
    return [
        ev(
            call_id,
            1,
            CallStarted(
                language="zh",
                sample_rate=16000,
                encoding="pcm_s16le",
                legs=("agent", "customer"),
                metadata={"borrower_timezone": "Asia/Shanghai"},
            ),
        ),
        ev(
            call_id,
            2,
            TranscriptPartial(
                speaker="agent", utterance_id="u1", text="您好", language="zh", start=0.5, end=1.5
            ),
        ),
        ev(call_id, 3, final("您好，我是林雨桐", start=0.5)),
        ev(call_id, 4, StageChanged(stage="opening", previous=None, confidence=0.9, utterance_id="u1")),
        ev(
            call_id,
            5,
            Suggestion(
                utterance_id="u1",
                stage="opening",
                items=(SuggestionItem(text="请问是周先生吗？", reason="identity", score=0.8),),
            ),
        ),
        ev(call_id, 6, warning("abusive_language", "critical")),
        ev(call_id, 7, CustomerSignal(utterance_id="u2", signal="hardship", score=0.8, quote="失业了")),
        ev(call_id, 8, CallEnded(reason="stop", duration=12.5)),
    ]


# ------------------------------------------------------------------------------------------ basics


def test_events_round_trip_through_the_wire_form_and_partials_are_skipped(store: Store) -> None:
    new_call(store, "c1")
    events = all_kinds("c1")
    store.append_events(events)
    stored = store.events("c1")
    assert [e.seq for e in stored] == [1, 3, 4, 5, 6, 7, 8]
    assert stored == [e for e in events if e.type != "transcript.partial"]
    assert [e.seq for e in store.events("c1", since=5)] == [6, 7, 8]
    assert store.events("nope") == []


def test_create_and_get_call(store: Store) -> None:
    new_call(
        store, "c1", metadata={"agent_name": "Dan", "borrower_timezone": "America/New_York"}, language="en"
    )
    rec = store.get_call("c1")
    assert rec is not None
    assert (rec.call_id, rec.tenant, rec.node, rec.language, rec.status) == (
        "c1",
        "acme",
        "node-a",
        "en",
        "live",
    )
    assert rec.started_at == T0 and rec.ended_at is None and rec.duration is None
    assert rec.metadata == {"agent_name": "Dan", "borrower_timezone": "America/New_York"}
    assert rec.agent == "Dan"
    assert store.get_call("missing") is None
    # a second registration of the same id (a retry) is ignored: the first one wins
    new_call(store, "c1", tenant="other")
    rec2 = store.get_call("c1")
    assert rec2 is not None and rec2.tenant == "acme"


def test_append_is_idempotent_on_call_and_seq(store: Store) -> None:
    new_call(store, "c1")
    store.append_events([ev("c1", 1, final("第一句")), ev("c1", 2, final("第二句"))])
    store.append_events([ev("c1", 2, final("重复的第二句")), ev("c1", 3, final("第三句"))])
    texts = [getattr(e.body, "text", None) for e in store.events("c1")]
    assert texts == ["第一句", "第二句", "第三句"]
    store.append_events([])  # nothing to do, no error


def test_unknown_calls_are_refused(store: Store) -> None:
    with pytest.raises(UnknownCallError):
        store.append_events([ev("ghost", 1, final("hi"))])
    with pytest.raises(UnknownCallError):
        store.end_call("ghost", status="ended")
    # the failed batch left nothing behind, and the store is still usable
    new_call(store, "c1")
    store.append_events([ev("c1", 1, final("好"))])
    assert len(store.events("c1")) == 1


def test_end_call(store: Store) -> None:
    new_call(store, "c1")
    new_call(store, "c2")
    store.end_call("c1", status="ended", ended_at=T0 + 95.5, duration=95.0)
    store.end_call("c2", status="error", ended_at=T0 + 10.0)
    c1, c2 = store.get_call("c1"), store.get_call("c2")
    assert c1 is not None and (c1.status, c1.ended_at, c1.duration) == ("ended", T0 + 95.5, 95.0)
    assert c2 is not None and (c2.status, c2.duration) == ("error", 10.0)
    with pytest.raises(StoreError):
        store.end_call("c1", status="live")  # type: ignore[arg-type]


def test_mark_interrupted_only_touches_live_calls_of_the_node(store: Store) -> None:
    new_call(store, "a-live", node="node-a")
    new_call(store, "a-done", node="node-a")
    new_call(store, "b-live", node="node-b")
    store.append_events([ev("a-live", 1, final("一")), ev("a-live", 2, final("二"), ts=T0 + 42.0)])
    store.end_call("a-done", status="ended", ended_at=T0 + 5)
    assert store.mark_interrupted("node-a") == ["a-live"]
    rec = store.get_call("a-live")
    assert rec is not None and rec.status == "interrupted"
    assert rec.ended_at == T0 + 42.0 and rec.duration == pytest.approx(42.0)
    done = store.get_call("a-done")
    assert done is not None and done.status == "ended"
    assert store.mark_interrupted("node-a") == []
    assert store.mark_interrupted(None) == ["b-live"]
    b = store.get_call("b-live")
    assert b is not None and b.status == "interrupted" and b.duration == 0.0


def test_list_calls_filters(store: Store) -> None:
    day = 86_400.0
    new_call(store, "zh-bad", started_at=T0, metadata={"agent_name": "林雨桐"})
    new_call(store, "zh-ok", started_at=T0 + 60, metadata={"agent_name": "林雨桐"})
    new_call(
        store, "en-major", started_at=T0 - day, tenant="other", language="en", metadata={"agent_name": "Dan"}
    )
    new_call(store, "old", started_at=T0 - 10 * day, metadata={})
    store.append_events(
        [
            ev("zh-bad", 1, warning("abusive_language", "critical")),
            ev("zh-bad", 2, warning("overbearing", "minor")),
            ev("zh-bad", 3, warning("overbearing", "minor")),
        ]
    )
    store.append_events([ev("en-major", 1, warning("harassment", "major"))])
    store.end_call("zh-ok", status="ended", ended_at=T0 + 160)

    def ids(**kw: object) -> list[str]:
        return [c.call_id for c in store.list_calls(**kw)]  # type: ignore[arg-type]

    assert ids() == ["zh-ok", "zh-bad", "en-major", "old"]  # newest first
    assert ids(limit=2) == ["zh-ok", "zh-bad"]
    assert ids(tenant="other") == ["en-major"]
    assert ids(status="ended") == ["zh-ok"]
    assert ids(rule="overbearing") == ["zh-bad"]
    assert ids(severity="major") == ["en-major"]
    assert ids(severity="minor", rule="overbearing") == ["zh-bad"]
    assert ids(severity="critical", rule="overbearing") == []  # both must hold for the same finding
    assert ids(agent="林雨桐") == ["zh-ok", "zh-bad"]
    assert ids(agent="Dan", tenant="acme") == []
    assert ids(date_from=T0) == ["zh-ok", "zh-bad"]
    assert ids(date_to=T0) == ["en-major", "old"]  # exclusive
    nov28 = dt.date(2025, 11, 28)
    assert ids(date_from=nov28, date_to=nov28) == ["zh-ok", "zh-bad"]  # a date is the whole UTC day
    assert ids(date_from=dt.datetime(2025, 11, 27, 0, 0), date_to=dt.datetime(2025, 11, 28, 12, 0, 30)) == [
        "zh-bad",
        "en-major",
    ]
    bad = store.list_calls(rule="abusive_language")[0]
    assert dict(bad.findings) == {"critical": 1, "minor": 2}
    ok = store.get_call("zh-ok")
    assert ok is not None and dict(ok.findings) == {}


def test_a_retracted_warning_stays_in_the_log_but_no_longer_counts(store: Store) -> None:
    new_call(store, "c1")
    store.append_events(
        [
            ev("c1", 1, dataclasses.replace(warning("threat_violence", "critical", utt="u1"), partial=True)),
            ev("c1", 2, warning("threat_violence", "critical", utt="u2")),
            ev("c1", 3, warning("harassment", "major", utt="u1")),
        ]
    )
    retraction = ComplianceRetracted("u1", "threat_violence", "critical", "not in the final transcript")
    store.append_events([ev("c1", 4, retraction)])
    store.append_events([ev("c1", 4, retraction)])  # replayed: idempotent
    rec = store.get_call("c1")
    assert rec is not None and dict(rec.findings) == {"critical": 1, "major": 1}  # u2's threat stands
    assert [e.body for e in store.events("c1")][3] == retraction
    assert len(store.events("c1")) == 4  # nothing is deleted from the log
    new_call(store, "c2")
    store.append_events([ev("c2", 1, warning("impersonation", "critical", utt="x"))])
    store.append_events([ev("c2", 2, ComplianceRetracted("x", "impersonation", "critical", "r"))])
    assert [c.call_id for c in store.list_calls(rule="impersonation")] == []
    assert [c.call_id for c in store.list_calls(severity="critical")] == ["c1"]


def test_personal_data_is_masked_before_it_is_written(store_url: str) -> None:
    """Metadata is masked by the store; event text arrives masked from the utterance step (masked
    once, upstream) and is stored as consumers saw it."""

    def upstream(text: str) -> str:
        return mask(text, language="zh")

    with open_store(store_url) as store:
        store.create_call(
            "c1",
            tenant="t",
            started_at=T0,
            language="zh",
            node="n",
            metadata={
                "customer_phone": "13800138000",
                "borrower_timezone": "Asia/Shanghai",
                "telephony": {"call_sid": "CA1234567890123456", "from": "+1 (415) 555-0134"},
            },
        )
        store.append_events(
            [
                ev("c1", 1, final(upstream("我的手机是幺三八零零一三八零零零，欠款八千七百元"))),
                ev(
                    "c1",
                    2,
                    CustomerSignal(
                        utterance_id="u1",
                        signal="confirm_identity",
                        score=0.9,
                        quote=upstream("身份证11010519491231002X"),
                    ),
                ),
            ]
        )
        rec = store.get_call("c1")
        assert rec is not None
        assert rec.metadata["customer_phone"] == "[电话 ****8000]"
        assert rec.metadata["borrower_timezone"] == "Asia/Shanghai"
        # ids stay linkable; the caller's number does not
        assert rec.metadata["telephony"] == {"call_sid": "CA1234567890123456", "from": "[电话 ****0134]"}
        texts = [getattr(e.body, "text", getattr(e.body, "quote", "")) for e in store.events("c1")]
        assert texts == ["我的手机是[电话 ****8000]，欠款八千七百元", "身份证[身份证号 ****002X]"]
    with open_store(store_url, masking=None) as raw:
        raw.create_call("c2", tenant="t", started_at=T0, language="en", node="n", metadata={})
        raw.append_events([ev("c2", 1, final("call me at 415 555 0134"))])
        assert getattr(raw.events("c2")[0].body, "text", "") == "call me at 415 555 0134"


# ------------------------------------------------------------------------------------------ schema


def _schema_rows(url: str) -> list[int]:
    if url.startswith("postgresql://"):
        with psycopg.connect(url) as conn:
            return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_reopening_is_idempotent(store_url: str) -> None:
    for _ in range(3):
        with open_store(store_url) as s:
            new_call(s, "c1")
            assert s.schema_version() == SCHEMA_VERSION
    assert _schema_rows(store_url) == list(range(1, SCHEMA_VERSION + 1))


def _open_racing(url: str, n: int) -> tuple[list[Store], list[BaseException]]:
    """Open ``url`` from ``n`` threads released together, like nodes starting at once."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_one() -> None:
        barrier.wait()
        try:
            stores.append(open_store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    return stores, errors


def test_nodes_opening_a_fresh_store_at_once_migrate_it_once(store_url: str) -> None:
    stores, errors = _open_racing(store_url, 4)
    assert errors == []
    assert len(stores) == 4
    assert _schema_rows(store_url) == list(range(1, SCHEMA_VERSION + 1))


def test_many_fresh_sqlite_files_opened_by_racing_nodes_never_report_locked(tmp_path: Path) -> None:
    # One round of the race above loses only a few percent of the time (SQLite skips the busy
    # handler when switching a fresh file to WAL), so repeat it until a regression would show.
    for k in range(60):
        url = f"sqlite:///{tmp_path}/round{k}.db"
        _stores, errors = _open_racing(url, 4)
        assert errors == [], f"round {k}"
        assert _schema_rows(url) == list(range(1, SCHEMA_VERSION + 1))


def _apply_v1_by_hand(url: str) -> None:
    pg = url.startswith("postgresql://")
    real, bigint = ("DOUBLE PRECISION", "BIGINT") if pg else ("REAL", "INTEGER")
    statements = [s.format(real=real, bigint=bigint) for s in MIGRATIONS[1]]
    statements.append(f"CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at {real})")
    statements.append("INSERT INTO schema_version VALUES (1, 0)")
    statements.append(
        "INSERT INTO calls (call_id, tenant, node, language, status, started_at, metadata) "
        "VALUES ('legacy', 't', 'n', 'zh', 'live', 1.0, '{}')"
    )
    if pg:
        with psycopg.connect(url) as conn:
            for s in statements:
                conn.execute(s)
    else:
        import sqlite3

        lite = sqlite3.connect(url.removeprefix("sqlite://"))
        with lite:
            for s in statements:
                lite.execute(s)
        lite.close()


def test_an_older_store_is_migrated_on_open(store_url: str) -> None:
    _apply_v1_by_hand(store_url)
    with open_store(store_url) as s:
        legacy = s.get_call("legacy")
        assert legacy is not None and legacy.status == "live"
        assert s.list_calls(status="live")[0].call_id == "legacy"
    assert _schema_rows(store_url) == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_store_is_refused(store_url: str) -> None:
    with open_store(store_url):
        pass
    if store_url.startswith("postgresql://"):
        with psycopg.connect(store_url) as conn:
            conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    else:
        import sqlite3

        lite = sqlite3.connect(store_url.removeprefix("sqlite://"))
        with lite:
            lite.execute("INSERT INTO schema_version VALUES (99, 0)")
        lite.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(store_url)


def test_store_urls(tmp_path: Path) -> None:
    plain = tmp_path / "sub" / "calls.db"
    with open_store(str(plain)) as s:
        assert s.backend == "sqlite"
    assert plain.exists()
    with open_store(f"sqlite:///{plain}") as s:
        new_call(s, "x")
    for bad in ("mysql://localhost/db", "", ":memory:", "sqlite://"):
        with pytest.raises(StoreError):
            open_store(bad)


def test_closed_store_refuses_work(store_url: str) -> None:
    s = open_store(store_url)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        s.get_call("x")


# ------------------------------------------------------------------------------------------ crashes

_CHILD = """
import sys, time
from assist.events import Event, TranscriptFinal
from stream.store import open_store

store = open_store(sys.argv[1])
store.create_call("killed", tenant="t", started_at=time.time(), language="zh", metadata={}, node="node-k")
seq = 0
while True:
    seq += 1
    body = TranscriptFinal(speaker="customer" if seq % 2 else "agent", utterance_id=f"u{seq}",
                           text=f"第{seq}句 我的电话是13800138000", language="zh",
                           start=seq * 2.0, end=seq * 2.0 + 1.5, latency_ms=100.0)
    store.append_events([Event(call_id="killed", seq=seq, ts=time.time(), body=body)])
    print(seq, flush=True)
"""


def test_sigkill_mid_write_loses_nothing_already_reported(store_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    printed: list[int] = []
    deadline = time.monotonic() + 120
    try:
        while len(printed) < KILL_AFTER_SEQS and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            printed.append(int(line))
        os.kill(child.pid, signal.SIGKILL)  # the child is in its write loop: most likely mid-commit
        rest, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    printed += [int(x) for x in rest.split()]
    assert child.returncode == -signal.SIGKILL
    assert len(printed) >= KILL_AFTER_SEQS, err
    with open_store(store_url) as s:
        stored = [e.seq for e in s.events("killed")]
        assert set(printed) <= set(stored)
        assert stored == list(range(1, len(stored) + 1))  # no holes either
        assert s.mark_interrupted("node-k") == ["killed"]
        rec = s.get_call("killed")
        assert rec is not None and rec.status == "interrupted" and (rec.duration or 0) > 0


def test_postgres_reconnects_after_losing_its_connection(pg_url: str) -> None:
    store_url = pg_url
    s = open_store(store_url)
    assert isinstance(s, PostgresStore)
    try:
        new_call(s, "c1")
        dbname = store_url.rpartition("/")[2]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'callassist'",
                (dbname,),
            ).fetchall()
        assert killed
        s.append_events([ev("c1", 1, final("重连之后"))])
        assert [e.seq for e in s.events("c1")] == [1]
    finally:
        s.close()


def test_a_stored_call_is_reviewed_from_the_store(store: Store) -> None:
    from assist.review.report import build_report

    store.create_call(
        "rv",
        tenant="t",
        started_at=T0,
        language="zh",
        node="n",
        metadata={"agent_name": "林雨桐", "borrower_timezone": "Asia/Shanghai"},
    )
    store.append_events(
        [
            ev("rv", 1, final("您好，这里是星禾消费金融，我是林雨桐，请问是周先生吗？", start=0.5, utt="u1")),
            ev("rv", 2, StageChanged(stage="opening", previous=None, confidence=0.9, utterance_id="u1")),
            ev("rv", 3, final("对，我就是。", speaker="customer", start=3.0, utt="u2")),
            ev(
                "rv",
                4,
                CustomerSignal(utterance_id="u2", signal="confirm_identity", score=0.9, quote="我就是"),
            ),
            ev("rv", 5, final("你们这种老赖我见多了，欠款今天必须还。", start=6.0, utt="u3")),
            ev("rv", 6, warning("abusive_language", "critical", utt="u3")),
        ]
    )
    store.end_call("rv", status="ended", ended_at=T0 + 9.0)
    call = store.get_call("rv")
    assert call is not None
    report = build_report(call, store.events("rv")).as_dict()
    assert report["call"]["duration"] == 9.0 and report["call"]["agent"] == "林雨桐"
    assert [(f["rule"], f["start"], f["utterance"]) for f in report["findings"]] == [
        ("abusive_language", 6.0, 2)
    ]
    statuses = {c["id"]: c["status"] for c in report["checklist"]}
    assert statuses["identity_before_debt"] == "pass" and statuses["no_violations"] == "fail"
    assert report["score"] <= 50
