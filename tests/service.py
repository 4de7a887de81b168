"""A real `callassist serve` process for the end-to-end tests: started on port 0 with its own
settings file, token secret and store under a temporary folder, and read back through its events."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stream.auth import Role, issue_token

SERVICE_START_TIMEOUT_S = 180.0
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
