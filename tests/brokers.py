"""Real Mosquitto brokers for the MQTT tests: the machine's shared one on 127.0.0.1:1883 and
private ones on free ports (which a test may stop, freeze and restart), plus a subscriber that
records what arrives.  Shared by test_mqtt.py and test_mqtt_service.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SHARED_HOST, SHARED_PORT = "127.0.0.1", 1883
RECEIVE_TIMEOUT_S = 20.0


def shared_broker_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((SHARED_HOST, SHARED_PORT)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateBroker:
    """A Mosquitto on a free port with persistence, so that a subscriber's session and
    its queued QoS 1 messages survive a stop/restart on the same port.

    Run as root, Mosquitto switches to its ``user`` (default ``mosquitto``) at start-up;
    that user cannot enter pytest's ``tmp_path`` (mode 0700, owned by root), so the
    broker could neither open its log nor save ``mosquitto.db``, and every restart
    silently wiped the subscriber's session: whatever the broker had acknowledged
    while the subscriber was away, or before it re-subscribed, was gone.  The broker
    therefore stays the user running the tests, and :meth:`stop` insists that the
    persistence file was written.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "data").mkdir(exist_ok=True)
        self.db = workdir / "data" / "mosquitto.db"
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"  # ignored unless run as root
            "persistence true\n"
            f"persistence_location {workdir / 'data'}/\n"
            "max_queued_messages 10000\n"
            f"log_dest file {self.log}\n"
        )

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("private mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(10)
            if not self.db.exists():
                log = self.log.read_text() if self.log.exists() else "(no log file)"
                raise RuntimeError(f"mosquitto did not save {self.db}; sessions are lost on restart\n{log}")
        self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


class Collector:
    """A subscriber that rides out broker restarts with a persistent session
    (clean_session=False), recording (topic, payload dict) in arrival order."""

    def __init__(self, port: int, topic: str) -> None:
        self.port = port
        self.topic = topic
        self.identifier = f"test-sub-{uuid.uuid4().hex[:8]}"
        self.received: list[dict[str, object]] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=self.identifier, clean_session=False, timeout=2
                ) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.ready.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        self.received.append(json.loads(message.payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    async def start(self) -> None:
        """Connect (again, after :meth:`stop`: the same identifier resumes the same session)."""
        self.ready.clear()
        self.task = asyncio.create_task(self._loop())
        await asyncio.wait_for(self.ready.wait(), 10)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def seqs(self) -> list[int]:
        return [int(str(m["seq"])) for m in self.received]

    def deduped(self) -> list[int]:
        seen: set[int] = set()
        out: list[int] = []
        for seq in self.seqs():
            if seq not in seen:
                seen.add(seq)
                out.append(seq)
        return out

    async def wait_for(self, want: set[int], timeout: float = RECEIVE_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not want <= set(self.seqs()):
            if time.monotonic() > deadline:
                missing = sorted(want - set(self.seqs()))
                raise AssertionError(f"missing seqs {missing[:20]} (of {len(missing)})")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def collecting(port: int, topic: str) -> AsyncIterator[Collector]:
    collector = Collector(port, topic)
    await collector.start()
    try:
        yield collector
    finally:
        await collector.stop()
