"""Access control on every endpoint, against a real aiohttp server on port 0.

Each token case (missing, malformed, forged, expired, another tenant, wrong role, an
agent token for another call, valid) is tried on each endpoint, and the outcome table
is compared as a whole so a failure shows every cell that differs.  Whisper is the
scripted fake of test_server_ingest.py: auth does not depend on what was said.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from stream.auth import Role, issue_token, verify_token
from stream.cli.main import main as cli_main
from stream.live.pipeline import AsrPlan, SharedModels
from stream.settings import load_settings
from stream.store import open_store
from stream.web.pages import MAX_SUMMARY_RATE_HZ, startup_lines
from stream.web.server import Service
from tests.fakes import FakeTranscriber, pcm16, send_audio, silence, start_frame, stereo, tone

TENANT = "acme"
CALL = "call-a"  # exists (ended), sent by connector-a
OTHER = "call-b"  # exists (ended), sent by connector-b
UNKNOWN = "call-nope"  # never existed
SECRET = secrets.token_bytes(32)


def mint(role: Role, calls: tuple[str, ...] = (), *, sub: str = "someone", tenant: str = TENANT) -> str:
    return issue_token(SECRET, role=role, tenant=tenant, sub=sub, calls=calls, ttl_s=600)


TOKENS: dict[str, str | None] = {
    "missing": None,
    "malformed": "not.a.token",
    "forged": issue_token(secrets.token_bytes(32), role="supervisor", tenant=TENANT, sub="x", ttl_s=600),
    "expired": issue_token(
        SECRET, role="supervisor", tenant=TENANT, sub="x", ttl_s=60, now=time.time() - 3600
    ),
    "other tenant": mint("supervisor", tenant="other"),
    "agent of call": mint("agent", (CALL,)),
    "agent of other": mint("agent", (OTHER,)),
    "ingest": mint("ingest", sub="other-connector"),
    "supervisor": mint("supervisor"),
}

U, F, OK = "1008 unauthorized", "1008 forbidden", "ok"
# endpoint -> outcome per token case, in the order of TOKENS.
EXPECTED: dict[str, list[str]] = {
    "GET /v1/calls": ["401", "401", "401", "401", "403", "403", "403", "403", OK],
    "GET /supervisor": ["401", "401", "401", "401", "403", "403", "403", "403", OK],
    f"GET /overlay/{CALL}": ["401", "401", "401", "401", "403", OK, "403", "403", OK],
    f"GET /v1/calls/{CALL}/review": ["401", "401", "401", "401", "403", OK, "403", "403", OK],
    f"GET /v1/calls/{CALL}/events": ["401", "401", "401", "401", "403", "400", "403", "403", "400"],
    "GET /healthz": [OK] * 9,
    "GET /static/overlay.js": [OK] * 9,
    f"WS /v1/calls/{CALL}/events": [U, U, U, U, F, OK, F, F, OK],
    "WS /v1/live": [U, U, U, U, F, F, F, F, OK],
    "WS /v1/ingest": [U, U, U, U, F, F, F, OK, F],
}


@dataclass
class Server:
    http: str
    ws: str
    service: Service


async def run_call(http: aiohttp.ClientSession, ws_base: str, call_id: str, token: str) -> None:
    """A short call through the real ingest path; returns once the service ended it."""
    async with http.ws_connect(f"{ws_base}/v1/ingest", params={"token": token}) as ws:
        await ws.send_str(start_frame(call_id))
        ack = json.loads((await ws.receive(timeout=5)).data)
        assert ack["type"] == "started", ack
        await send_audio(ws, pcm16(stereo(np.concatenate([tone(0.6), silence(0.6)]), silence(1.2))))
        await ws.send_str(json.dumps({"type": "stop"}))
        async for _ in ws:  # the service closes the socket once the call has ended
            pass


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = load_settings(
        None,
        {
            "data_dir": str(tmp_path),
            "endpoint.vad": "energy",
            "endpoint.min_silence_ms": 300,
            "limits.start_timeout_s": 2.0,
            "limits.idle_timeout_s": 5.0,
            "guidance": False,
            "auth.tenant": TENANT,
        },
    )
    store = open_store(str(tmp_path / "calls.db"), masking=None)  # the review route reads it
    services = SharedModels(transcriber=FakeTranscriber(), engine=None, plan=AsrPlan())
    service = Service(settings, services, store=store, secret=SECRET)
    runner = web.AppRunner(service.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv = Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", service)
    async with aiohttp.ClientSession() as http:
        await run_call(http, srv.ws, CALL, mint("ingest", sub="connector-a"))
        await run_call(http, srv.ws, OTHER, mint("ingest", sub="connector-b"))
    yield srv
    await runner.cleanup()
    store.close()


def params(token: str | None, **extra: str) -> dict[str, str]:
    return {**({"token": token} if token is not None else {}), **extra}


async def ws_outcome(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, str]:
    """('ok', first frame) when data flows, else ('1008 <code>', close reason)."""
    msg = await ws.receive(timeout=5)
    if msg.type == aiohttp.WSMsgType.TEXT:
        return OK, msg.data
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
    reason = str(msg.extra or "")
    return f"{ws.close_code} {reason.split(':')[0]}", reason


async def probe(
    http: aiohttp.ClientSession, srv: Server, endpoint: str, token: str | None
) -> tuple[str, str]:
    """The outcome of one request and the detail a client sees (body or close reason)."""
    kind, path = endpoint.split(" ", 1)
    if kind == "GET":
        async with http.get(f"{srv.http}{path}", params=params(token)) as resp:
            body = await resp.text()
            return (OK if resp.status == 200 else str(resp.status)), body
    if path == "/v1/ingest":
        async with http.ws_connect(f"{srv.ws}{path}", params=params(token)) as ws:
            await ws.send_str(start_frame(f"new-{secrets.token_hex(4)}"))
            first = json.loads((await ws.receive(timeout=5)).data)
            if first["type"] == "started":
                await ws.send_str(json.dumps({"type": "stop"}))
                return OK, ""
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert first["type"] == "error" and first["fatal"] is True
            return f"{ws.close_code} {first['code']}", first["message"]
    async with http.ws_connect(f"{srv.ws}{path}", params=params(token, since="0")) as ws:
        return await ws_outcome(ws)


async def test_every_token_case_on_every_endpoint(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        got: dict[str, list[str]] = {}
        for endpoint in EXPECTED:
            got[endpoint] = [(await probe(http, server, endpoint, token))[0] for token in TOKENS.values()]
    cases = list(TOKENS)
    diff = [
        f"{endpoint} with {cases[i]} token: expected {want}, got {got[endpoint][i]}"
        for endpoint, row in EXPECTED.items()
        for i, want in enumerate(row)
        if got[endpoint][i] != want
    ]
    assert not diff, "\n".join(diff)


async def test_refusal_reasons_say_why(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        status, body = await probe(http, server, "GET /v1/calls", TOKENS["expired"])
        assert (status, json.loads(body)) == ("401", {"error": "unauthorized", "message": "token expired"})
        _, body = await probe(http, server, "GET /v1/calls", TOKENS["forged"])
        assert json.loads(body)["message"] == "invalid token signature"
        async with http.get(f"{server.http}/v1/calls") as resp:
            assert resp.headers["WWW-Authenticate"] == 'Bearer realm="callassist"'
        async with http.get(f"{server.http}/v1/calls", params={"token": "x.y.z"}) as resp:
            assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        # A bad overlay link explains itself in the page, in both UI languages.
        async with http.get(f"{server.http}/overlay/{CALL}", params=params(TOKENS["expired"])) as resp:
            page = await resp.text()
            assert resp.status == 401 and resp.content_type == "text/html"
            assert "token expired" in page and "链接无效或已过期" in page
        _, reason = await probe(http, server, "WS /v1/live", TOKENS["agent of call"])
        assert reason == "forbidden: token may not list calls"
        _, reason = await probe(http, server, f"WS /v1/calls/{CALL}/events", TOKENS["missing"])
        assert reason == "unauthorized: missing token"


@pytest.mark.parametrize("case", ["agent of other", "other tenant", "ingest"])
async def test_out_of_scope_token_cannot_tell_whether_a_call_exists(server: Server, case: str) -> None:
    """Asking for an existing call it may not see and for a call that never existed: same answer."""
    token = TOKENS[case]
    async with aiohttp.ClientSession() as http:
        for template in (
            "WS /v1/calls/{}/events",
            "GET /v1/calls/{}/events",
            "GET /overlay/{}",
            "GET /v1/calls/{}/review",
        ):
            existing = await probe(http, server, template.format(CALL), token)
            unknown = await probe(http, server, template.format(UNKNOWN), token)
            assert existing[0] in ("403", F), (template, existing)
            assert existing == unknown, template


async def test_bearer_header_works_like_the_query_parameter(server: Server) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['supervisor']}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{server.http}/v1/calls") as resp:
            assert resp.status == 200
            calls = {c["call_id"]: c for c in (await resp.json())["calls"]}
        assert calls[CALL]["status"] == "ended" and calls[CALL]["tenant"] == TENANT
        async with http.ws_connect(f"{server.ws}/v1/calls/{CALL}/events") as ws:
            assert (await ws_outcome(ws))[0] == OK


async def test_ingest_token_scoped_to_calls_and_follows_only_its_own(server: Server) -> None:
    scoped = mint("ingest", ("call-x",), sub="softphone-7")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server.ws}/v1/ingest", params={"token": scoped}) as ws:
            await ws.send_str(start_frame("call-y"))
            error = json.loads((await ws.receive(timeout=5)).data)
            await ws.receive(timeout=5)
            assert (error["code"], error["message"], ws.close_code) == (
                "forbidden",
                "token does not cover this call",
                1008,
            )
        assert server.service.registry.log("call-y") is None  # refused before the call was opened
        await run_call(http, server.ws, "call-x", scoped)
        # The token that sent a call follows it (what `callassist simulate --token` does) ...
        assert (await probe(http, server, "WS /v1/calls/call-x/events", scoped))[0] == OK
        connector_a = mint("ingest", sub="connector-a")
        assert (await probe(http, server, f"WS /v1/calls/{CALL}/events", connector_a))[0] == OK
        # ... but no other call, and no page: those are for people (agent/supervisor tokens).
        assert (await probe(http, server, f"WS /v1/calls/{OTHER}/events", connector_a))[0] == F
        assert (await probe(http, server, f"GET /overlay/{CALL}", connector_a))[0] == "403"


async def test_live_feed_snapshot_then_throttled_summaries(server: Server) -> None:
    sup = mint("supervisor")
    frames: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{server.ws}/v1/live", params={"token": sup}) as live,
    ):
        snapshot = json.loads((await live.receive(timeout=5)).data)
        assert snapshot["type"] == "calls.snapshot"
        assert {c["call_id"] for c in snapshot["calls"]} == {CALL, OTHER}
        t0 = time.monotonic()
        await run_call(http, server.ws, "call-live", mint("ingest"))
        elapsed = time.monotonic() - t0
        while True:
            frame = json.loads((await live.receive(timeout=5)).data)
            frames.append(frame)
            if frame["call"]["call_id"] == "call-live" and frame["call"]["status"] != "live":
                break
    assert all(f["type"] == "call.summary" for f in frames)
    mine = [f["call"] for f in frames if f["call"]["call_id"] == "call-live"]
    assert mine[0]["status"] == "live" and mine[0]["agent_name"] == "Ann"
    final = mine[-1]
    assert final["status"] == "ended" and final["ended_reason"] == "stop"
    assert set(final) >= {
        "call_id", "tenant", "agent_name", "customer_name", "language", "started_at",
        "status", "duration", "stage", "warnings", "last_warning",
    }  # fmt: skip
    assert final["warnings"] == {"critical": 0, "major": 0, "minor": 0}
    assert len(mine) <= elapsed * MAX_SUMMARY_RATE_HZ + 2, "summaries were not throttled"


def test_token_issue_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[auth]\ntenant = "{TENANT}"\n')
    argv = ["--config", str(config), "token", "issue", "--role", "agent", "--calls", "c1", "c2"]
    assert cli_main([*argv, "--ttl", "120", "--sub", "lin"]) == 0
    token = capsys.readouterr().out.strip()
    secret = (tmp_path / "secret.key").read_bytes()  # created by the command, where serve looks
    claims = verify_token(secret, token)
    assert (claims.role, claims.tenant, claims.calls, claims.sub) == ("agent", TENANT, ("c1", "c2"), "lin")
    assert claims.exp - claims.iat == 120

    assert cli_main([*argv[:-1], "--link", "--url", "http://h:9/"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://h:9/overlay/c1?token=")
    assert verify_token(secret, link.split("token=")[1]).calls == ("c1",)

    assert cli_main(["--config", str(config), "token", "issue", "--role", "supervisor", "--calls", "c1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "supervisor token covers all calls" in err[0]


def test_startup_lines_carry_working_links() -> None:
    settings = load_settings(None, {"auth.tenant": TENANT})
    lines = startup_lines(settings, SECRET, "http://127.0.0.1:8080")
    text = "\n".join(lines)
    sup = text.split("/supervisor?token=")[1].split()[0]
    agent = text.split("/overlay/demo?token=")[1].split()[0]
    ingest = text.split("--token ")[1].split()[0]
    assert verify_token(SECRET, sup).role == "supervisor"
    assert verify_token(SECRET, agent).calls == ("demo",)
    assert verify_token(SECRET, ingest).role == "ingest"
    assert "token issue --role agent --calls CALL_ID" in text
    off = startup_lines(load_settings(None, {"auth.enabled": False}), None, "http://h:1")
    assert "auth is OFF" in off[0]


async def test_plain_get_on_websocket_endpoints_is_refused_with_http_status(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/ingest", "/v1/live", f"/v1/calls/{CALL}/events"):
            async with http.get(f"{server.http}{path}") as resp:
                assert resp.status == 401, path
            async with http.get(f"{server.http}{path}", params=params(TOKENS["agent of other"])) as resp:
                assert resp.status == 403, path


async def test_auth_off_lets_everything_through(tmp_path: Path) -> None:
    settings = load_settings(None, {"data_dir": str(tmp_path), "guidance": False, "auth.enabled": False})
    service = Service(settings, SharedModels(transcriber=FakeTranscriber(), engine=None, plan=AsrPlan()))
    runner = web.AppRunner(service.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/v1/calls", "/supervisor", "/overlay/x"):
                async with http.get(f"{base}{path}") as resp:
                    assert resp.status == 200, path
        assert not (tmp_path / "secret.key").exists()  # no secret is created when auth is off
    finally:
        await runner.cleanup()
