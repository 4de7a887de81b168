from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from stream.auth import Role, issue_token

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"
SERVICE_START_TIMEOUT_S = 180.0


def load_script(call: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{call}.json").read_text(encoding="utf-8"))
    return data


TEST_TENANT = "test"
TOKEN_TTL_S = 3600


class RunningService:
    def __init__(
        self, proc: subprocess.Popen[str], url: str, log_path: Path, *, secret: bytes, tenant: str
    ) -> None:
        self.proc = proc
        self.http = url
        self.ws = url.replace("http://", "ws://")
        self.log_path = log_path
        self.secret = secret
        self.tenant = tenant

    def token(self, role: Role, calls: Iterable[str] = (), *, sub: str | None = None) -> str:
        """A token the service accepts (it was started with this secret)."""
        return issue_token(
            self.secret,
            role=role,
            tenant=self.tenant,
            sub=sub or f"test-{role}",
            calls=calls,
            ttl_s=TOKEN_TTL_S,
        )


def standing_warnings(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The call's compliance warnings still in force, oldest first: a ``compliance.retracted``
    withdraws the warning with its utterance and rule (what counts and last_warning follow)."""
    standing: dict[tuple[str, str], Mapping[str, Any]] = {}
    for e in events:
        key = (str(e.get("utterance_id")), str(e.get("rule")))
        if e["type"] == "compliance.warning":
            standing[key] = e
        elif e["type"] == "compliance.retracted":
            standing.pop(key, None)
    return list(standing.values())


def write_config(path: Path, settings: Mapping[str, Any]) -> None:
    """A TOML settings file from dotted keys (``{"auth.tenant": "t1"}``); scalar values only."""
    tables: dict[str, dict[str, Any]] = {}
    for dotted, value in settings.items():
        table, _, key = dotted.rpartition(".")
        tables.setdefault(table, {})[key] = value
    lines: list[str] = []
    for table, values in sorted(tables.items()):
        if table:
            lines.append(f"[{table}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_service(
    tmp: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> RunningService:
    """Run `callassist serve --port 0` as a real process and wait for its listening line.

    The service keeps its state (call store, token secret) under ``tmp``; the secret is
    written here first, so the returned service can mint tokens for it.  ``settings``
    (dotted keys) go into its settings file, e.g. ``{"auth.enabled": False}``.
    """
    secret = secrets.token_bytes(32)
    secret_path = tmp / "secret.key"
    secret_path.write_bytes(secret)
    secret_path.chmod(0o600)
    merged: dict[str, Any] = {
        "data_dir": str(tmp / "data"),
        "auth.secret_file": str(secret_path),
        "auth.tenant": TEST_TENANT,
        **(settings or {}),
    }
    config = tmp / "callassist.toml"
    write_config(config, merged)
    log_path = tmp / "service.log"
    out = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream.cli.main",
            "--config",
            str(config),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited: {log_path.read_text()[-2000:]}")
            continue
        m = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if m:
            return RunningService(
                proc, m.group(1), log_path, secret=secret, tenant=str(merged["auth.tenant"])
            )
    proc.kill()
    raise RuntimeError("service did not start in time")


def stop_service(svc: RunningService) -> None:
    svc.proc.terminate()
    try:
        svc.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        svc.proc.kill()


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    svc = start_service(tmp_path_factory.mktemp("service"))
    yield svc
    stop_service(svc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives Chromium carries the ``browser`` marker (``make unit`` skips them)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright; never Playwright's own browser download."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
            "(the Makefile's test target does); Playwright's own browser download is not used"
        )
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()
