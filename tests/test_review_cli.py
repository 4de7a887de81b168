"""`callassist review`, `callassist calls list` and the service's review route, against real stores.

The store is a SQLite file, and for the listing filters also a fresh database on the PostgreSQL at
127.0.0.1:5432 (skipped when CALLASSIST_TEST_PG_URL is set empty, as in test_store.py).  Commands run
in-process through ``stream.cli.main.main`` so exit codes and the one-line error rule are what a user gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from assist.events import (
    CallEnded,
    CallStarted,
    ComplianceWarning,
    CustomerSignal,
    Event,
    EventBody,
    StageChanged,
    Suggestion,
    SuggestionItem,
    TranscriptFinal,
)
from assist.masking import mask
from stream.cli.main import main
from stream.settings import load_settings
from stream.store import Store, open_store
from stream.web.review import not_found_text, review_format, review_response

PG_ADMIN_URL = os.environ.get("CALLASSIST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = 1_764_331_200.0  # 2025-11-28 12:00:00 UTC
DAY = 86_400.0


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    if not PG_ADMIN_URL:
        pytest.skip("CALLASSIST_TEST_PG_URL is empty: PostgreSQL tests disabled")
    name = f"callassist_review_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class CallWriter:
    """Writes one call's events into a store the way the service's StoreSink does."""

    def __init__(self, store: Store, call_id: str, *, started_at: float, agent: str, language: str = "zh"):
        self.store = store
        self.call_id = call_id
        self.t0 = started_at
        self.language = language
        self.seq = 0
        self.n = 0
        meta = {"agent_name": agent, "customer_name": "赵丽萍", "borrower_timezone": "Asia/Shanghai"}
        self.store.create_call(
            call_id, tenant="default", started_at=started_at, language=language, metadata=meta, node="n1"
        )
        self.emit(CallStarted(language, 16000, "pcm_s16le", ("agent", "customer"), meta), 0.0)

    def emit(self, body: EventBody, at: float) -> None:
        self.seq += 1
        self.store.append_events([Event(self.call_id, self.seq, self.t0 + at, body)])

    def say(self, speaker: str, text: str, start: float, *, stage: str | None = None, rule: str = "") -> None:
        self.n += 1
        uid = f"u{self.n}"
        end = start + 3.0
        text = mask(text, language=self.language)  # as the utterance step does, before anything is stored
        who = "agent" if speaker == "agent" else "customer"
        self.emit(TranscriptFinal(who, uid, text, self.language, start, end, 120.0), end)  # type: ignore[arg-type]
        if stage:
            self.emit(StageChanged(stage, None, 0.8, uid), end)
        if rule:
            severity = {"abusive_language": "critical", "overbearing": "minor", "harassment": "major"}[rule]
            self.emit(
                ComplianceWarning(uid, "agent", rule, severity, text[:8], "why", "好好说", "ev", 0.9), end
            )
        if who == "customer" and "困难" in text:
            self.emit(CustomerSignal(uid, "hardship", 0.8, text[:8]), end)
        self.emit(Suggestion(uid, stage, (SuggestionItem("建议", "原因", 0.5),)), end)

    def end(self, duration: float, status: str = "ended") -> None:
        self.emit(CallEnded("stop", duration), duration)
        self.store.end_call(self.call_id, status=status, ended_at=self.t0 + duration, duration=duration)  # type: ignore[arg-type]


def fill(store: Store) -> None:
    """Three calls on two days: one abusive, one overbearing + harassing, one clean and still live."""
    a = CallWriter(store, "call-a", started_at=T0, agent="林雨桐")
    a.say("agent", "您好，我是鼎泰资产管理公司的林雨桐，请问是赵丽萍女士吗？", 1.0, stage="opening")
    a.say("customer", "是我。我最近确实有困难。", 5.0)
    a.say("agent", "你们这种老赖我见多了。", 9.0, rule="abusive_language")
    a.say("customer", "我的电话是13812345678，你别再打了。", 13.0)
    a.end(20.0)
    b = CallWriter(store, "call-b", started_at=T0 + DAY, agent="Kevin Shaw", language="en")
    b.say("agent", "No discussion, pay today.", 1.0, rule="overbearing")
    b.say("agent", "We will call you every hour.", 5.0, rule="harassment")
    b.end(65.0)
    c = CallWriter(store, "call-c", started_at=T0 + DAY + 3600, agent="林雨桐")
    c.say("agent", "您好，这里是星禾消费金融。", 1.0, stage="opening")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/calls.db"
    with open_store(url) as store:
        fill(store)
    yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/calls.db"
        with open_store(url) as store:
            fill(store)
        yield url
    else:
        with pg_database() as url:
            with open_store(url) as store:
                fill(store)
            yield url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- review -----------------------------------------------------------------------------------


def test_review_json_to_file(sqlite_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a.json"
    code, _, err = run(capsys, "review", "call-a", "--store", sqlite_store, "-o", str(target))
    assert code == 0, err
    report = json.loads(target.read_text(encoding="utf-8"))
    assert report["schema"] == "callassist.review/1"
    assert report["call"]["id"] == "call-a" and report["call"]["status"] == "ended"
    assert report["call"]["agent"] == "林雨桐"
    assert [f["rule"] for f in report["findings"]] == ["abusive_language"]
    assert report["findings"][0]["utterance"] == 2
    assert report["score"] <= 50, "a critical finding caps the score"
    texts = " ".join(u["text"] for u in report["utterances"])
    assert "13812345678" not in texts and "****5678" in texts, "personal data is masked in the report"


def test_review_html_by_extension_and_stdout(
    sqlite_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "a.html"
    code, _, _ = run(capsys, "review", "call-a", "--store", sqlite_store, "-o", str(target))
    assert code == 0
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "老赖" in page
    code, out, _ = run(capsys, "review", "call-b", "--store", sqlite_store, "--format", "json")
    assert code == 0
    assert json.loads(out)["call"]["language"] == "en"
    code, out, _ = run(capsys, "review", "call-b", "--store", sqlite_store, "--format", "html")
    assert code == 0 and out.startswith("<!DOCTYPE html>")


def test_review_unknown_call_is_one_line(sqlite_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "review", "nope", "--store", sqlite_store, "--format", "json")
    assert code == 1 and out == ""
    assert err.strip() == "callassist: no call nope in the store"


def test_missing_store_is_reported_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "calls.db"
    for argv in (
        ["review", "x", "--store", str(missing)],
        ["calls", "list", "--store", f"sqlite:///{missing}"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert err.count("\n") == 1 and "no call store at" in err
    assert not missing.exists()


def test_store_from_settings_file(
    sqlite_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "{sqlite_store}"\n', encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(config), "calls", "list", "--json")
    assert code == 0
    assert {c["call_id"] for c in json.loads(out)} == {"call-a", "call-b", "call-c"}


# -- calls list -------------------------------------------------------------------------------


def listed(capsys: pytest.CaptureFixture[str], url: str, *filters: str) -> list[str]:
    code, out, err = run(capsys, "calls", "list", "--store", url, "--json", *filters)
    assert code == 0, err
    return [c["call_id"] for c in json.loads(out)]


def test_calls_list_filters(any_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert listed(capsys, any_store) == ["call-c", "call-b", "call-a"], "newest first"
    assert listed(capsys, any_store, "--rule", "abusive_language") == ["call-a"]
    assert listed(capsys, any_store, "--severity", "minor") == ["call-b"]
    assert listed(capsys, any_store, "--severity", "critical") == ["call-a"]
    assert listed(capsys, any_store, "--agent", "林雨桐") == ["call-c", "call-a"]
    assert listed(capsys, any_store, "--from", "2025-11-29") == ["call-c", "call-b"]
    assert listed(capsys, any_store, "--to", "2025-11-28") == ["call-a"], "a --to date includes that day"
    assert listed(capsys, any_store, "--from", "2025-11-29T12:30:00") == ["call-c"]
    assert listed(capsys, any_store, "--status", "live") == ["call-c"]
    assert listed(capsys, any_store, "--limit", "1") == ["call-c"]
    assert listed(capsys, any_store, "--agent", "林雨桐", "--severity", "major") == []


def test_calls_list_json_shape(sqlite_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calls", "list", "--store", sqlite_store, "--json", "--agent", "Kevin Shaw")
    assert code == 0
    [row] = json.loads(out)
    assert row == {
        "call_id": "call-b",
        "tenant": "default",
        "node": "n1",
        "language": "en",
        "status": "ended",
        "start_time": "2025-11-29T12:00:00+00:00",
        "ended_at": "2025-11-29T12:01:05+00:00",
        "duration": 65.0,
        "agent": "Kevin Shaw",
        "findings": {"critical": 0, "major": 1, "minor": 1},
    }


def test_calls_list_table(sqlite_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calls", "list", "--store", sqlite_store)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "START", "(UTC)", "DURATION", "STATUS", "AGENT", "CRIT", "MAJ", "MIN"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["call-a"] == ["call-a", "2025-11-28", "12:00:00", "0:20", "ended", "林雨桐", "1", "0", "0"]
    assert rows["call-b"][3:] == ["1:05", "ended", "Kevin", "Shaw", "0", "1", "1"]
    assert rows["call-c"][3:5] == ["-", "live"]
    code, out, _ = run(capsys, "calls", "list", "--store", sqlite_store, "--rule", "no_such_rule")
    assert code == 0 and out == "(no calls)\n"


def test_calls_list_bad_arguments(sqlite_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "calls", "list", "--store", sqlite_store, "--from", "28/11/2025")
    assert code == 1 and "--from '28/11/2025'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "calls", "list", "--store", sqlite_store, "--limit", "0")
    assert code == 1 and "--limit" in err


# -- the service's review route ---------------------------------------------------------------


async def review_client(store: Store | None, masking: bool = True) -> TestClient[Any, Any]:
    settings = load_settings(None, {"store.masking": masking})
    service = SimpleNamespace(store=store, settings=settings)

    async def handler(request: web.Request) -> web.Response:
        return await review_response(service.store, request.match_info["call_id"], review_format(request))

    app = web.Application()
    app.router.add_get("/v1/calls/{call_id}/review", handler)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_review_route(sqlite_store: str) -> None:
    store = open_store(sqlite_store)
    client = await review_client(store)
    try:
        resp = await client.get("/v1/calls/call-a/review")
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'"), "no script runs"
        page = await resp.text()
        assert "<svg" in page and "老赖" in page

        resp = await client.get("/v1/calls/call-a/review", params={"format": "json"})
        assert resp.status == 200 and resp.content_type == "application/json"
        report = await resp.json()
        assert report["call"]["id"] == "call-a" and report["findings"][0]["rule"] == "abusive_language"

        resp = await client.get("/v1/calls/call-c/review", params={"format": "json"})
        assert (await resp.json())["call"]["status"] == "live", "a live call gets its report so far"

        resp = await client.get("/v1/calls/ghost/review")
        assert resp.status == 404 and await resp.text() == not_found_text("ghost")

        resp = await client.get("/v1/calls/call-a/review", params={"format": "pdf"})
        assert resp.status == 400
    finally:
        await client.close()
        store.close()


async def test_review_route_without_store_or_with_a_broken_one(sqlite_store: str) -> None:
    client = await review_client(None)
    try:
        resp = await client.get("/v1/calls/call-a/review")
        assert resp.status == 503 and "no call store" in await resp.text()
    finally:
        await client.close()
    store = open_store(sqlite_store)
    store.close()  # every read now fails, as a store whose database went away does
    client = await review_client(store)
    try:
        resp = await client.get("/v1/calls/call-a/review")
        assert resp.status == 503 and "unavailable" in await resp.text()
    finally:
        await client.close()


async def test_review_route_direct_call_rejects_unknown_format(sqlite_store: str) -> None:
    store = open_store(sqlite_store)
    try:
        resp = await review_response(store, "call-a", "xml")
        assert resp.status == 400
        resp = await review_response(store, "call-a", "json")
        assert resp.status == 200, "a service without settings masks by default"
    finally:
        store.close()
