"""The one ingest driver, with a scripted core, a scripted connection and a fake call manager.

What the driver owes every transport: frames go to the core, the core's events reach the call in
order, the core's replies leave in the order it queued them, the core answers every open,
refusal, timeout and end, and the call is finished exactly once however the connection ends.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from assist.events import TranscriptFinal
from stream.auth import AuthError, Claims
from stream.ingest.context import IngestContext
from stream.ingest.core import CoreBase
from stream.ingest.driver import Ended, Frame, Oversize, run_connection
from stream.ingest.events import (
    EndOfCall,
    IngestEvent,
    LegAudio,
    MetadataChanged,
    Notice,
    OpenCall,
    Outgoing,
    Send,
    SendClose,
    Violation,
)
from stream.live.calls import CallRejected
from stream.live.session import CallParams
from stream.settings import load_settings


def params(call_id: str = "c-1") -> CallParams:
    return CallParams(call_id, "zh", 8000, "mulaw", ("agent",), {})


AUDIO = LegAudio({"agent": np.ones(160, np.float32)})


# -- fakes -------------------------------------------------------------------------------------------


class ScriptedCore(CoreBase):
    """Answers each frame from ``script`` (frame -> events) and acknowledges it with a reply, so the
    order of replies on the wire shows the order the core produced them in; records every call."""

    def __init__(
        self,
        script: Mapping[Any, Sequence[IngestEvent]],
        *,
        refusals: Sequence[Sequence[IngestEvent]] = (),
        answers_transcripts: bool = False,
    ) -> None:
        super().__init__()
        self.script = script
        self.refusals = list(refusals)
        self.answers_transcripts = answers_transcripts
        self.seen: list[tuple[Any, ...]] = []
        self.done = False
        self.wait_s = 7.0

    def _answer(self, what: str, frame: Any) -> list[IngestEvent]:
        self.seen.append((what, frame))
        if frame == "boom":
            raise RuntimeError("core failure")
        events = list(self.script.get(frame, []))
        self._send(Send(f"re:{frame}"))
        if any(isinstance(e, EndOfCall) or (isinstance(e, Violation) and e.fatal) for e in events):
            self.done = True
        return events

    def receive_text(self, text: str) -> list[IngestEvent]:
        return self._answer("text", text)

    def receive_bytes(self, data: bytes) -> list[IngestEvent]:
        return self._answer("bytes", data)

    def receive_eof(self, close_code: int | None) -> list[IngestEvent]:
        self.done = True
        return self._answer("eof", close_code)

    def receive_oversize(self, detail: str) -> list[IngestEvent]:
        return self._answer("oversize", detail)

    def receive_timeout(self) -> list[IngestEvent]:
        return self._answer("timeout", None)

    def receive_transcript(self, final: TranscriptFinal, call_id: str) -> None:
        self.seen.append(("transcript", final.text))
        self._send(Send(f"transcript:{final.text}"))

    def call_opened(self, call_id: str) -> None:
        self.seen.append(("opened", call_id))
        self._send(Send(f"opened:{call_id}"))

    def call_refused(self, code: str, message: str) -> list[IngestEvent]:
        self.seen.append(("refused", code))
        events = list(self.refusals.pop(0)) if self.refusals else []
        self.done = self.done or any(isinstance(e, Violation) and e.fatal for e in events)
        return events

    def call_ended(self) -> None:
        self.seen.append(("ended", None))
        super().call_ended()


class ScriptedConnection:
    """Frames to hand out (``TimeoutError`` stands for a wait that ran out); records what is sent."""

    def __init__(self, frames: Sequence[Frame | type[TimeoutError]]) -> None:
        self.frames = list(frames)
        self.waits: list[float] = []
        self.sent: list[Outgoing] = []
        self.closed = False

    async def receive(self, timeout: float) -> Frame:
        self.waits.append(timeout)
        await asyncio.sleep(0)
        frame = self.frames.pop(0) if self.frames else Ended(None)
        if frame is TimeoutError:
            raise TimeoutError
        assert not isinstance(frame, type)
        return frame

    async def send(self, item: Outgoing) -> None:
        self.sent.append(item)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeLog:
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def subscribe(self, since: int, limit: int) -> AsyncIterator[Any]:
        async def events() -> AsyncIterator[Any]:
            while (event := await self.queue.get()) is not None:
                yield event

        return events()

    def unsubscribe(self, sub: Any) -> None:
        pass


@dataclass
class FakeHandle:
    call_id: str
    trace: list[tuple[Any, ...]]
    log: FakeLog = field(default_factory=FakeLog)
    closed: bool = False

    @property
    def session(self) -> FakeHandle:
        return self

    async def feed(self, legs: Mapping[str, Any]) -> None:
        self.trace.append(("feed", self.call_id, len(legs["agent"])))

    async def feed_gap(self, legs: Mapping[str, Any]) -> None:
        self.trace.append(("gap", self.call_id))

    async def end_utterances(self) -> None:
        self.trace.append(("end_utterances", self.call_id))

    def update_metadata(self, changes: Mapping[str, Any]) -> None:
        self.trace.append(("metadata", dict(changes)))

    async def error(self, code: str, message: str, *, fatal: bool) -> None:
        self.trace.append(("error", code, fatal))

    async def close(self, reason: str) -> None:
        self.trace.append(("close", reason))
        self.closed = True
        self.log.queue.put_nowait(None)


class FakeGate:
    enabled = False
    secret = b""

    def may_ingest_call(self, claims: Claims | None, call_id: str) -> None:
        pass

    def note_ingest(self, claims: Claims | None, call_id: str, *, new_call: bool) -> None:
        pass


class FakeCalls:
    """Opens calls into ``trace``; ``reject`` lists call ids refused once each (as a conflict)."""

    def __init__(self, trace: list[tuple[Any, ...]], reject: Sequence[str] = ()) -> None:
        self.trace = trace
        self.reject = list(reject)
        self.handles: list[FakeHandle] = []
        self.registry = self

    def live(self, call_id: str) -> None:
        return None

    async def open(self, p: CallParams) -> FakeHandle:
        if p.call_id in self.reject:
            self.reject.remove(p.call_id)
            raise CallRejected("call_conflict", f"call {p.call_id} is taken")
        self.trace.append(("open", p.call_id))
        handle = FakeHandle(p.call_id, self.trace)
        self.handles.append(handle)
        return handle


@dataclass
class FakeContext:
    calls: FakeCalls
    gate: FakeGate = field(default_factory=FakeGate)
    settings: Any = field(default_factory=lambda: load_settings(None, {}))


async def drive(
    core: ScriptedCore, frames: Sequence[Frame | type[TimeoutError]], **kwargs: Any
) -> tuple[ScriptedConnection, list[tuple[Any, ...]], FakeCalls]:
    trace: list[tuple[Any, ...]] = []
    calls = FakeCalls(trace, kwargs.pop("reject", ()))
    conn = ScriptedConnection(frames)
    ctx = cast(IngestContext, FakeContext(calls))
    await asyncio.wait_for(run_connection(conn, core, ctx, "test", **kwargs), 5)
    return conn, trace, calls


def texts(conn: ScriptedConnection) -> list[str | bytes]:
    return [item.data for item in conn.sent if isinstance(item, Send)]


# -- tests -------------------------------------------------------------------------------------------


async def test_events_reach_the_call_in_order_and_replies_leave_in_order() -> None:
    core = ScriptedCore(
        {
            "start": [OpenCall(params())],
            b"audio": [AUDIO],
            "meta": [MetadataChanged({"agent_name": "Ann"})],
            "note": [Notice("client_error", "hm")],
            "stop": [EndOfCall("stop")],
        }
    )
    conn, trace, _ = await drive(core, ["start", b"audio", "meta", "note", "stop"])
    assert trace == [
        ("open", "c-1"),
        ("feed", "c-1", 160),
        ("metadata", {"agent_name": "Ann"}),
        ("error", "client_error", False),
        ("close", "stop"),
    ]
    assert texts(conn) == ["re:start", "opened:c-1", "re:b'audio'", "re:meta", "re:note", "re:stop"]
    assert conn.sent[-1] == SendClose(1000, b"call ended"), "the core's close comes last"
    assert core.seen[-1] == ("ended", None) and conn.closed
    assert conn.waits == [7.0] * 5, "the core says how long to wait"


async def test_a_timeout_asks_the_core_and_a_fatal_timeout_ends_the_call_as_timeout() -> None:
    core = ScriptedCore({"start": [OpenCall(params())], None: [Violation("timeout", "no audio", True)]})
    conn, trace, _ = await drive(core, ["start", TimeoutError])
    assert ("timeout", None) in core.seen
    assert trace[-2:] == [("error", "timeout", True), ("close", "timeout")]
    assert conn.closed


async def test_a_fatal_violation_ends_the_call_once_as_error() -> None:
    core = ScriptedCore(
        {"start": [OpenCall(params())], b"bad": [AUDIO, Violation("misaligned", "odd", True), AUDIO]}
    )
    _, trace, _ = await drive(core, ["start", b"bad", b"more"])
    assert trace == [("open", "c-1"), ("feed", "c-1", 160), ("error", "misaligned", True), ("close", "error")]
    assert ("bytes", b"more") not in core.seen, "nothing is read after the core is done"


async def test_a_refused_open_goes_back_to_the_core_which_may_try_another_call() -> None:
    core = ScriptedCore({"start": [OpenCall(params("conv"))]}, refusals=[[OpenCall(params("conv:s1"))]])
    conn, trace, _ = await drive(core, ["start", "x"], reject=["conv"])
    assert ("refused", "call_conflict") in core.seen and ("opened", "conv:s1") in core.seen
    assert trace[0] == ("open", "conv:s1") and "opened:conv:s1" in texts(conn)


async def test_credentials_are_checked_before_the_call_is_opened() -> None:
    def refuse(token: str | None) -> Claims | None:
        assert token == "t0k"
        raise AuthError(403, "token does not cover this call")

    core = ScriptedCore(
        {"start": [OpenCall(params(), token="t0k"), AUDIO]},
        refusals=[[Violation("forbidden", "token does not cover this call", True)]],
    )
    _, trace, calls = await drive(core, ["start"], credentials=refuse)
    assert ("refused", "forbidden") in core.seen
    assert calls.handles == [] and trace == [], "no call, and the audio after the refusal goes nowhere"


async def test_transport_ends_and_oversize_frames_go_to_the_core() -> None:
    core = ScriptedCore({"start": [OpenCall(params())]})
    conn, trace, _ = await drive(core, ["start", Oversize("message too big"), Ended(1006)])
    assert core.seen[2:4] == [("oversize", "message too big"), ("eof", 1006)]
    assert trace[-1] == ("close", "disconnected") and conn.closed


async def test_a_failing_core_still_finishes_the_call_and_releases_the_connection() -> None:
    core = ScriptedCore({"start": [OpenCall(params())]})
    conn, trace, _ = await drive(core, ["start", "boom"])
    assert trace[-1] == ("close", "error") and conn.closed


async def test_transcripts_reach_the_core_before_it_hears_the_call_ended() -> None:
    core = ScriptedCore(
        {"start": [OpenCall(params())], "stop": [EndOfCall("stop")]}, answers_transcripts=True
    )
    trace: list[tuple[Any, ...]] = []
    calls = FakeCalls(trace)
    conn = ScriptedConnection(["start", "stop"])
    final = TranscriptFinal("agent", "agent-0001", "hello", "zh", 0.0, 1.0, 10.0)

    async def speak() -> None:
        while not calls.handles:
            await asyncio.sleep(0)
        calls.handles[0].log.queue.put_nowait(type("Logged", (), {"body": final})())

    speaker = asyncio.create_task(speak())
    await asyncio.wait_for(run_connection(conn, core, cast(IngestContext, FakeContext(calls)), "test"), 5)
    await speaker
    assert core.seen.index(("transcript", "hello")) < core.seen.index(("ended", None))
    assert conn.sent.index(Send("transcript:hello")) < conn.sent.index(SendClose(1000, b"call ended"))


def test_ingest_does_not_import_the_web_layer() -> None:
    """Web may import ingest, never the reverse (not even for type checking)."""
    root = Path(__file__).parent.parent / "stream" / "ingest"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "stream.web" or n.startswith("stream.web.") for n in names), path
