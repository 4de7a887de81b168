from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"
SERVICE_START_TIMEOUT_S = 180.0


def load_script(call: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{call}.json").read_text(encoding="utf-8"))
    return data


class RunningService:
    def __init__(self, proc: subprocess.Popen[str], url: str, log_path: Path) -> None:
        self.proc = proc
        self.http = url
        self.ws = url.replace("http://", "ws://")
        self.log_path = log_path


def start_service(tmp: Path, *extra: str, env: dict[str, str] | None = None) -> RunningService:
    """Run `callassist serve --port 0` as a real process and wait for its listening line."""
    log_path = tmp / "service.log"
    out = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "serve", "--host", "127.0.0.1", "--port", "0", *extra],
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
            return RunningService(proc, m.group(1), log_path)
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
