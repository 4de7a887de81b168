"""Delivery latency: from an event's creation (its ``ts``) to its arrival at a websocket
client and at an MQTT subscriber, with many subscribers of each kind on one call.

    .venv/bin/python bench/delivery.py [--subscribers 20] [--events 400] [--rate 20]
                                        [--mqtt-host 127.0.0.1 --mqtt-port 1883]

Speech recognition is left out on purpose -- this measures delivery, not ASR.  A child
process runs the real service (``Service`` with auth on, MQTT on, every sink wired as in
``callassist serve``) and publishes synthetic events (partials, finals, suggestions,
warnings) into a live call's ``CallLog`` at ``--rate`` per second: the path from there on
(store-less durable step, MQTT buffer, supervisor feed, websocket fan-out) is the one real
events take.  This process holds the clients: ``--subscribers`` websocket clients on
``/v1/calls/{id}/events`` (supervisor token) and as many aiomqtt clients on the call's
events topic (QoS 1).  The clients run in one Python process, so their own parsing and
scheduling is in the figures: they are an upper bound.

Without ``--mqtt-port`` the machine's broker on 127.0.0.1:1883 is used if it answers,
else a private Mosquitto is started on a free port.  Target: p95 <= 50 ms for both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiomqtt
from common import pct  # also puts the repository on sys.path for the stream/assist imports

from stream.cli.wsclient import open_ws

TARGET_P95_MS = 50.0
READY_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 30.0  # after the last event, how long clients may take to receive everything


# -- the service side (child process) ------------------------------------------------------------


class _NoAsr:
    """The service needs a transcriber; no audio is sent, so it is never called."""

    name = "none"

    def transcribe(self, request: Any) -> Any:
        raise AssertionError("no audio in the delivery bench")


def _body(i: int) -> Any:
    from assist.events import (
        ComplianceWarning,
        Suggestion,
        SuggestionItem,
        TranscriptFinal,
        TranscriptPartial,
    )

    utt = f"agent-{i // 4}"
    match i % 4:
        case 0:
            return TranscriptPartial(
                "agent", utt, "you're ninety days behind on two thousand", "en", 18.6, 21.0
            )
        case 1:
            return TranscriptFinal(
                "agent",
                utt,
                "You're ninety days behind on two thousand four hundred dollars.",
                "en",
                18.6,
                23.1,
                310.0,
            )
        case 2:
            return Suggestion(
                utt,
                "inquiry",
                (
                    SuggestionItem(
                        "Could you tell me a bit about what's changed for you recently?", "hardship"
                    ),
                    SuggestionItem("What amount per month would be realistic for you?", "hardship"),
                ),
            )
        case _:
            return ComplianceWarning(
                utt,
                "agent",
                "overbearing",
                "minor",
                "That's not my problem",
                "Dismissing the customer's situation escalates the call.",
                "I understand this is hard; let's look at what is possible.",
                "pattern",
                0.91,
            )


def _child(
    conn: Connection, mqtt_host: str, mqtt_port: int, tenant: str, secret: bytes, call_id: str
) -> None:
    asyncio.run(_child_main(conn, mqtt_host, mqtt_port, tenant, secret, call_id))


async def _child_main(
    conn: Connection, mqtt_host: str, mqtt_port: int, tenant: str, secret: bytes, call_id: str
) -> None:
    from aiohttp import web

    from stream.live.pipeline import AsrPlan, SharedModels
    from stream.live.session import CallParams
    from stream.settings import load_settings
    from stream.web.server import Service

    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="callassist-delivery-") as tmp:
        settings = load_settings(
            None,
            {
                "data_dir": tmp,
                "guidance": False,
                "auth.tenant": tenant,
                "mqtt.host": mqtt_host,
                "mqtt.port": mqtt_port,
            },
        )
        service = Service(
            settings, SharedModels(transcriber=_NoAsr(), engine=None, plan=AsrPlan()), secret=secret
        )
        runner = web.AppRunner(service.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        assert service.mqtt is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not service.mqtt.stats()["connected"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        handle = await service.calls.open(
            CallParams(call_id, "en", 16000, "pcm_s16le", ("agent", "customer"), {})
        )
        conn.send("opened")
        _, count, rate = await loop.run_in_executor(None, conn.recv)
        t0 = time.perf_counter()
        for i in range(count):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await handle.session.log.publish(_body(i))
        await handle.close("stop")
        conn.send(service.mqtt.stats())
        await loop.run_in_executor(None, conn.recv)  # "stop"
        await runner.cleanup()


# -- the client side (this process) ---------------------------------------------------------------


@dataclass
class Client:
    kind: str
    latencies_ms: list[float] = field(default_factory=list)
    seqs: set[int] = field(default_factory=set)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def got(self, data: dict[str, Any]) -> None:
        if data["type"] == "call.ended":
            self.ended.set()
            return
        if data["seq"] < 2 or data["seq"] in self.seqs:  # seq 1 (call.started) predates the clock
            return
        self.seqs.add(data["seq"])
        self.latencies_ms.append((time.time() - data["ts"]) * 1000.0)


async def ws_client(client: Client, url: str, token: str, ready: asyncio.Event) -> None:
    async with open_ws(url, params={"token": token, "since": "1"}, max_size=None) as ws:
        ready.set()
        async for message in ws:
            if not isinstance(message, str):
                break
            client.got(json.loads(message))
            if client.ended.is_set():
                break


async def mqtt_client(client: Client, port: int, topic: str, ready: asyncio.Event) -> None:
    ident = f"delivery-{uuid.uuid4().hex[:10]}"
    async with aiomqtt.Client("127.0.0.1", port, identifier=ident) as mq:
        await mq.subscribe(topic, qos=1)
        ready.set()
        async for message in mq.messages:
            assert isinstance(message.payload, bytes)
            client.got(json.loads(message.payload))
            if client.ended.is_set():
                break


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def broker(port: int | None) -> Iterator[int]:
    """The broker to use: the given port, the machine's 1883, or a private Mosquitto."""
    if port is not None:
        yield port
        return
    if _port_open(1883):
        yield 1883
        return
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        sys.exit("no MQTT broker on 127.0.0.1:1883 and no mosquitto binary; pass --mqtt-port")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {free} 127.0.0.1\nallow_anonymous true\n")
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while not _port_open(free):
                if time.monotonic() > deadline:
                    sys.exit("private mosquitto did not start")
                time.sleep(0.05)
            yield free
        finally:
            proc.terminate()
            proc.wait(10)


async def run(args: argparse.Namespace, mqtt_port: int) -> dict[str, Any]:
    from stream.auth import issue_token
    from stream.delivery.mqtt import topic_for

    tenant, call_id, secret = f"bench{uuid.uuid4().hex[:6]}", "delivery-call", secrets.token_bytes(32)
    token = issue_token(secret, role="supervisor", tenant=tenant, sub="bench", ttl_s=3600)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(
        target=_child, args=(theirs, "127.0.0.1", mqtt_port, tenant, secret, call_id), daemon=True
    )
    child.start()
    loop = asyncio.get_running_loop()
    try:
        http_port = await asyncio.wait_for(loop.run_in_executor(None, ours.recv), READY_TIMEOUT_S)
        # MQTT subscribers first: the call's first events go out as soon as it opens.
        clients = [Client("mqtt") for _ in range(args.subscribers)]
        readies = [asyncio.Event() for _ in clients]
        topic = topic_for(tenant, call_id, "events")
        tasks = [
            asyncio.create_task(mqtt_client(c, mqtt_port, topic, r))
            for c, r in zip(clients, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), READY_TIMEOUT_S)
        assert await loop.run_in_executor(None, ours.recv) == "opened"
        url = f"ws://127.0.0.1:{http_port}/v1/calls/{call_id}/events"
        ws_clients = [Client("websocket") for _ in range(args.subscribers)]
        ws_readies = [asyncio.Event() for _ in ws_clients]
        tasks += [
            asyncio.create_task(ws_client(c, url, token, r))
            for c, r in zip(ws_clients, ws_readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ws_readies)), READY_TIMEOUT_S)
        clients += ws_clients
        ours.send(("go", args.events, args.rate))
        publisher_stats = await loop.run_in_executor(None, ours.recv)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.ended.wait() for c in clients)), DRAIN_TIMEOUT_S)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ours.send("stop")
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    result: dict[str, Any] = {
        "subscribers_per_kind": args.subscribers,
        "events": args.events,
        "rate_per_s": args.rate,
        "mqtt_publisher": publisher_stats,
    }
    for kind in ("websocket", "mqtt"):
        mine = [c for c in clients if c.kind == kind]
        lat = [v for c in mine for v in c.latencies_ms]
        result[kind] = {
            "delivered": sum(len(c.seqs) for c in mine),
            "expected": args.events * len(mine),
            "p50_ms": round(pct(lat, 50), 1),
            "p95_ms": round(pct(lat, 95), 1),
            "p99_ms": round(pct(lat, 99), 1),
            "max_ms": round(max(lat, default=float("nan")), 1),
        }
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=20, help="clients of each kind (default 20)")
    p.add_argument("--events", type=int, default=400, help="events published into the call")
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument(
        "--mqtt-port", type=int, help="broker on 127.0.0.1 (default: 1883 if up, else a private one)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    with broker(args.mqtt_port) as port:
        result = asyncio.run(run(args, port))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(
        f"delivery: {args.events} events at {args.rate:g}/s into one call, "
        f"{args.subscribers} websocket + {args.subscribers} MQTT subscribers (broker 127.0.0.1:{port})"
    )
    print(f"{'':10} {'delivered':>14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    ok = True
    for kind in ("websocket", "mqtt"):
        r = result[kind]
        ok = ok and r["p95_ms"] <= TARGET_P95_MS and r["delivered"] == r["expected"]
        print(
            f"{kind:10} {r['delivered']:>6}/{r['expected']:<7} {r['p50_ms']:>8} {r['p95_ms']:>8} "
            f"{r['p99_ms']:>8} {r['max_ms']:>8}"
        )
    print(f"target p95 <= {TARGET_P95_MS:g} ms, nothing lost: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
