"""Asterisk AudioSocket adapter: frame parsing and pairing (sans-IO), then the TCP listener."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from stream.ingest.audiosocket import AudioSocketProtocol, error_reply, frame, pair
from stream.ingest.events import EndOfCall, LegAudio, Notice, OpenCall, Send, Violation
from stream.settings import LimitSettings
from tests.replay.audiosocket import AUDIO, ERROR, HANGUP, UUID, Leg, leg_uuids
from tests.replay.harness import (
    DurationTranscriber,
    call_events,
    errors,
    kinds,
    legs_attached,
    running_service,
    silence,
    tone,
    wait_ended,
)

LIMITS = LimitSettings(max_frame_bytes=16000)
STREAM = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d1a")


def core(pairing: str = "suffix") -> AudioSocketProtocol:
    return AudioSocketProtocol(limits=LIMITS, pairing=pairing, unpaired_leg="customer", language="zh")


def test_pairing_convention() -> None:
    assert pair(STREAM, "suffix", "customer") == ("40325ec2-5efd-4bd3-805f-53576e581d10", "agent")
    customer = uuid.UUID(str(STREAM)[:-1] + "c")
    assert pair(customer, "suffix", "customer") == ("40325ec2-5efd-4bd3-805f-53576e581d10", "customer")
    other = uuid.UUID(str(STREAM)[:-1] + "7")
    assert pair(other, "suffix", "agent") == (str(other), "agent")
    assert pair(STREAM, "none", "customer") == (str(STREAM), "customer")


def test_frames_split_anywhere_parse_the_same() -> None:
    stream = (
        frame(UUID, STREAM.bytes) + frame(AUDIO, b"\x10\x00" * 160) * 3 + frame(0x03, b"5") + frame(HANGUP)
    )
    whole = core().receive_bytes(stream)
    c = core()
    pieces = [c.receive_bytes(stream[i : i + 1]) for i in range(len(stream))]
    split = [ev for piece in pieces for ev in piece]
    assert (
        [type(e) for e in whole]
        == [type(e) for e in split]
        == [OpenCall, LegAudio, LegAudio, LegAudio, LegAudio, EndOfCall]
    )
    opened = whole[0]
    assert isinstance(opened, OpenCall) and opened.params.legs == ("agent",)
    assert (
        opened.params.call_id == "40325ec2-5efd-4bd3-805f-53576e581d10" and opened.params.sample_rate == 8000
    )
    total = sum(len(e.legs["agent"]) for e in split if isinstance(e, LegAudio))
    assert total == 3 * 320  # every sample arrives, resampler tail included
    assert whole[-1] == EndOfCall("stop")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(AUDIO, b"\x00\x00"), "not_started"),
        (frame(UUID, b"\x01" * 15), "invalid_start"),
        (frame(UUID, STREAM.bytes) * 2, "duplicate_start"),
        (frame(UUID, STREAM.bytes) + frame(AUDIO, b"\x00" * 3), "misaligned_frame"),
        (frame(UUID, STREAM.bytes) + bytes([AUDIO]) + (20000).to_bytes(2, "big"), "message_too_big"),
        (frame(UUID, STREAM.bytes) + frame(0x12, b"\x00" * 640), "unsupported_format"),
    ],
)
def test_violations(data: bytes, code: str) -> None:
    events = core().receive_bytes(data)
    assert isinstance(events[-1], Violation) and (events[-1].code, events[-1].fatal) == (code, True)


def test_unknown_types_are_skipped_and_errors_end_the_stream() -> None:
    c = core()
    events = c.receive_bytes(frame(UUID, STREAM.bytes) + frame(0x42, b"??") + frame(AUDIO, b"\x00\x00" * 80))
    assert [type(e) for e in events] == [OpenCall, Violation, LegAudio]
    assert isinstance(events[1], Violation) and not events[1].fatal
    assert c.receive_bytes(frame(ERROR, b"\x01"))[-1] == EndOfCall(
        "stop"
    )  # Asterisk: hangup of calling party
    c = core()
    *_, note, end = c.receive_bytes(frame(UUID, STREAM.bytes) + frame(ERROR, b"\x02"))
    assert isinstance(note, Notice) and "0x02" in note.message and end == EndOfCall("error")
    c = core()
    c.receive_bytes(frame(UUID, STREAM.bytes))
    assert c.receive_eof() == [EndOfCall("stop")]  # socket closure is a normal end


def test_error_reply_bytes() -> None:
    assert error_reply("misaligned_frame") == b"\xff\x00\x01\x13\x00\x00\x00"


# -- listener ------------------------------------------------------------------------------------


def talk() -> np.ndarray:
    return np.concatenate([tone(1.0), silence(1.0)])


async def stream_leg(leg: Leg, samples: np.ndarray) -> None:
    for i in range(0, len(samples), 160):
        await leg.audio(samples[i : i + 160])


async def test_two_legs_pair_into_one_call() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        a_id, c_id, call_id = leg_uuids()
        agent = await Leg.connect(h.audiosocket_port, a_id)
        customer = await Leg.connect(h.audiosocket_port, c_id)
        await legs_attached(h.service, call_id, {"agent", "customer"})
        await stream_leg(agent, talk())
        await stream_leg(customer, np.concatenate([silence(0.5), talk()]))
        await agent.hangup()
        assert await agent.replies() == []  # the server just closes
        await customer.close()  # socket closure ends a leg too
        await wait_ended(h.service, call_id)
        events = await call_events(h.url, call_id)
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert sorted(f["speaker"] for f in finals) == ["agent", "customer"]
    assert next(f for f in finals if f["speaker"] == "customer")["start"] == pytest.approx(0.5, abs=0.25)
    assert kinds(events).count("call.ended") == 1 and events[-1]["reason"] == "stop"


@pytest.mark.parametrize(
    ("bad", "code", "reply"),
    [
        (frame(AUDIO, b"\x00" * 3), "misaligned_frame", 0x13),
        (bytes([AUDIO]) + (20000).to_bytes(2, "big"), "message_too_big", 0x14),
        (frame(UUID, uuid.uuid4().bytes), "duplicate_start", 0x11),
    ],
)
async def test_violation_answers_error_and_hangup_keeps_audio_spares_others(
    bad: bytes, code: str, reply: int
) -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        _, other_c, other_call = leg_uuids()
        other = await Leg.connect(h.audiosocket_port, other_c)
        a_id, _, call_id = leg_uuids()
        leg = await Leg.connect(h.audiosocket_port, a_id)
        await stream_leg(leg, talk())
        await leg.send(bad)
        assert await leg.replies() == [(ERROR, bytes([reply])), (HANGUP, b"")]
        await wait_ended(h.service, call_id)
        events = await call_events(h.url, call_id)
        await stream_leg(other, talk())
        await other.hangup()
        await other.replies()
        await wait_ended(h.service, other_call)
        other_events = await call_events(h.url, other_call)
    assert "transcript.final" in kinds(events), "audio before the bad message was lost"
    assert (code, True) in errors(events) and events[-1]["reason"] == "error"
    assert errors(other_events) == [] and "transcript.final" in kinds(other_events)


async def test_same_leg_twice_and_late_uuid_are_refused() -> None:
    overrides = {"limits.start_timeout_s": 0.3}
    async with running_service(DurationTranscriber(), overrides=overrides, guidance=False) as h:
        a_id, _, call_id = leg_uuids()
        first = await Leg.connect(h.audiosocket_port, a_id)
        await legs_attached(h.service, call_id, {"agent"})
        again = await Leg.connect(h.audiosocket_port, a_id)
        assert await again.replies() == [(ERROR, b"\x16"), (HANGUP, b"")]
        silent = await Leg.connect(h.audiosocket_port)
        assert await silent.replies() == [(ERROR, b"\x17"), (HANGUP, b"")]
        await first.hangup()
        await first.replies()
        await wait_ended(h.service, call_id)


async def test_listener_stop_finishes_open_calls() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        stream = uuid.UUID(str(uuid.uuid4())[:-1] + "c")
        call_id = str(stream)[:-1] + "0"
        leg = await Leg.connect(h.audiosocket_port, stream)
        await stream_leg(leg, tone(1.5))  # still speaking when the service stops
        await legs_attached(h.service, call_id, {"customer"})
        await asyncio.sleep(0.2)
        await h.audiosocket.stop()
        events = await call_events(h.url, call_id)
        await leg.close()
    assert [f["speaker"] for f in events if f["type"] == "transcript.final"] == ["customer"]
    assert events[-1]["reason"] == "shutdown"


def test_violations_refusals_and_timeouts_are_answered_with_an_error_then_a_hangup() -> None:
    c = core()
    c.receive_bytes(frame(UUID, STREAM.bytes) + frame(AUDIO, b"\x00" * 3))
    assert c.data_to_send() == [Send(error_reply("misaligned_frame"))]
    c = core()
    c.receive_bytes(frame(UUID, STREAM.bytes))
    (refusal,) = c.call_refused("call_conflict", "call is ending")
    assert isinstance(refusal, Violation) and refusal.code == "call_conflict"
    assert c.data_to_send() == [Send(b"\xff\x00\x01\x16\x00\x00\x00")]  # 0x16: refused
    c = core()
    assert c.wait_s == LIMITS.start_timeout_s
    (timeout,) = c.receive_timeout()
    assert isinstance(timeout, Violation) and timeout.message.startswith("no UUID within")
    assert c.data_to_send() == [Send(error_reply("timeout"))]
    c = core()
    c.receive_bytes(frame(UUID, STREAM.bytes))
    assert c.receive_eof(None) == [EndOfCall("disconnected")], "a dropped socket is not a hangup"
