"""A service killed with SIGKILL mid-call loses nothing a client has seen; on restart the call is
``interrupted``.

The real service runs as a subprocess (``conftest.start_service``: auth on, tokens from its secret)
with its default SQLite store under a temp data folder.  A fixture call is streamed at 3x real time;
once several final transcripts have arrived the service gets SIGKILL -- no shutdown hook, no flush.
Every non-partial event the client received must then be in the store exactly as received (the
service persists before it delivers), and a restarted service on the same store must mark the call
``interrupted``, which ``callassist calls list`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stream.audio.wavfile import read_wav
from stream.cli.simulate import ReceivedEvent, stream_call
from stream.store import open_store
from tests.fakes import FIXTURES
from tests.service import start_service, stop_service

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parent.parent
CALL = "dev_zh_02"
SPEED = 3.0
KILL_AFTER_FINALS = 5
GUIDANCE_TYPES = ("stage.changed", "compliance.warning", "customer.signal", "suggestion")


async def test_sigkill_loses_nothing_seen_and_restart_marks_interrupted(tmp_path: Path) -> None:
    svc = start_service(tmp_path)
    db = tmp_path / "data" / "calls.db"  # the default store: <data_dir>/calls.db
    config = tmp_path / "callassist.toml"  # what start_service wrote; `calls list` reads it too
    received: list[dict[str, Any]] = []
    finals = 0
    call_id = "sigkill-1"

    def on_event(item: ReceivedEvent) -> None:
        nonlocal finals
        received.append(item.data)
        if item.data["type"] == "transcript.final":
            finals += 1
            if finals == KILL_AFTER_FINALS:
                os.kill(svc.proc.pid, signal.SIGKILL)

    try:
        with contextlib.suppress(Exception):  # the connection dies with the service, as intended
            await asyncio.wait_for(
                stream_call(
                    svc.ws,
                    read_wav(FIXTURES / f"{CALL}.wav"),
                    language="zh",
                    call_id=call_id,
                    speed=SPEED,
                    metadata={"agent_name": "林雨桐"},
                    token=svc.token("ingest"),
                    on_event=on_event,
                ),
                timeout=120,
            )
        assert svc.proc.wait(timeout=10) == -signal.SIGKILL, "the service was killed, not ended"
    finally:
        if svc.proc.poll() is None:
            svc.proc.kill()

    assert finals >= KILL_AFTER_FINALS, f"only {finals} finals arrived before the call ended"
    kinds = {e["type"] for e in received}
    assert "call.ended" not in kinds, "the kill came mid-call"
    assert kinds & set(GUIDANCE_TYPES), "guidance events were delivered before the kill"

    with open_store(str(db)) as store:
        stored = {e.seq: e.to_dict() for e in store.events(call_id)}
        record = store.get_call(call_id)
    assert record is not None and record.status == "live", "nobody closed the call"
    seen = [e for e in received if e["type"] != "transcript.partial"]
    missing = [e for e in seen if e["seq"] not in stored]
    assert not missing, f"events a client saw but the store lost: {missing}"
    for e in seen:
        assert stored[e["seq"]] == e, "stored exactly as delivered"
    assert sum(1 for e in stored.values() if e["type"] == "transcript.final") >= KILL_AFTER_FINALS

    # Restart on the same store: the call of the dead run becomes interrupted.
    svc.log_path.rename(tmp_path / "first.log")
    again = start_service(tmp_path, "--no-guidance")
    try:
        with open_store(str(db)) as store:
            record = store.get_call(call_id)
        assert record is not None and record.status == "interrupted"
        assert record.duration is not None and record.duration > 0
        last_ts = max(e["ts"] for e in stored.values())
        assert record.ended_at == pytest.approx(last_ts), "ends at its last stored event"

        listed = subprocess.run(
            [sys.executable, "-m", "stream.cli.main", "--config", str(config), "calls", "list", "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        [row] = [c for c in json.loads(listed.stdout) if c["call_id"] == call_id]
        assert row["status"] == "interrupted" and row["agent"] == "林雨桐"
        # The service's review page (behind its access gate) reviews the interrupted call from the store.
        async with aiohttp.ClientSession() as http:
            url = f"{again.http}/v1/calls/{call_id}/review"
            auth = {"Authorization": f"Bearer {again.token('supervisor')}"}
            async with http.get(url, params={"format": "json"}, headers=auth) as resp:
                assert resp.status == 200, await resp.text()
                report = await resp.json()
            async with http.get(url, headers=auth) as resp:
                assert resp.status == 200 and resp.content_type == "text/html"
                assert "<svg" in await resp.text()
        assert report["call"]["status"] == "interrupted"
        stored_finals = {e["utterance_id"] for e in stored.values() if e["type"] == "transcript.final"}
        assert {u["id"] for u in report["utterances"]} == stored_finals

        table = subprocess.run(
            [sys.executable, "-m", "stream.cli.main", "--config", str(config), "calls", "list"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert re.search(rf"^{call_id}\s.*\sinterrupted\s", table.stdout, re.MULTILINE), table.stdout
    finally:
        stop_service(again)
