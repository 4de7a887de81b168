"""Twilio Media Streams adapter: the sans-IO core, then the websocket endpoint with a replay client."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest

from stream.audio import codecs
from stream.auth import issue_token
from stream.ingest.events import EndOfCall, LegAudio, OpenCall, SendClose, Violation
from stream.ingest.twilio import TwilioProtocol, max_text_chars
from stream.settings import LimitSettings
from tests.replay.harness import (
    TEST_SECRET,
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
from tests.replay.twilio import TwilioStream

LIMITS = LimitSettings(max_frame_bytes=16000)
PATH = "/v1/adapters/twilio"
BIG_PAYLOAD = base64.b64encode(b"\0" * 16001).decode()


def core(inbound_leg: str = "customer") -> TwilioProtocol:
    return TwilioProtocol(limits=LIMITS, inbound_leg=inbound_leg, default_language="zh")


def start_msg(**start: Any) -> str:
    body: dict[str, Any] = {
        "streamSid": "MZ1",
        "callSid": "CA1",
        "accountSid": "AC1",
        "tracks": ["inbound", "outbound"],
        "customParameters": {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    body.update(start)
    return json.dumps({"event": "start", "sequenceNumber": "1", "start": body, "streamSid": "MZ1"})


def media_msg(seq: int, track: str = "inbound", payload: bytes = b"\xff" * 160, ts: int | None = None) -> str:
    media: dict[str, Any] = {"track": track, "chunk": str(seq), "payload": base64.b64encode(payload).decode()}
    if ts is not None:
        media["timestamp"] = str(ts)
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "media": media, "streamSid": "MZ1"})


# -- core ----------------------------------------------------------------------------------------


def test_start_maps_tracks_parameters_and_token() -> None:
    c = core()
    assert c.receive_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})) == []
    (opened,) = c.receive_text(
        start_msg(
            customParameters={"token": "t0k", "language": "en-US", "agent_name": "Ann", "call_id": "crm-7"}
        )
    )
    assert isinstance(opened, OpenCall)
    p = opened.params
    assert (p.call_id, p.language, p.sample_rate, p.encoding) == ("crm-7", "en", 8000, "mulaw")
    assert p.legs == ("customer", "agent")  # inbound = the caller = customer, outbound = agent
    assert opened.token == "t0k"
    assert p.metadata["agent_name"] == "Ann" and "token" not in p.metadata
    assert p.metadata["twilio_call_sid"] == "CA1" and p.metadata["twilio_stream_sid"] == "MZ1"
    (audio,) = c.receive_text(media_msg(2, "outbound"))
    assert isinstance(audio, LegAudio) and set(audio.legs) == {"agent"}


def test_inbound_leg_is_configurable_and_language_defaults() -> None:
    (opened,) = core(inbound_leg="agent").receive_text(start_msg(tracks=["inbound"]))
    assert isinstance(opened, OpenCall)
    assert (
        opened.params.legs == ("agent",) and opened.params.language == "zh" and opened.params.call_id == "CA1"
    )


@pytest.mark.parametrize(
    ("first", "code", "close"),
    [
        (media_msg(1), "not_started", 1008),
        ("{nope", "bad_json", 1007),
        (json.dumps({"event": "dance"}), "unknown_type", 1008),
        (start_msg(callSid=None), "invalid_start", 1007),
        (start_msg(tracks=["sideways"]), "invalid_start", 1007),
        (
            start_msg(mediaFormat={"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1}),
            "unsupported_format",
            1003,
        ),
        (start_msg(customParameters={"language": "fr-FR"}), "unsupported_format", 1003),
        ("x" * (max_text_chars(LIMITS) + 1), "message_too_big", 1009),
    ],
)
def test_bad_first_messages_are_fatal(first: str, code: str, close: int) -> None:
    events = core().receive_text(first)
    assert events == [Violation(code, events[-1].message, True, close)]  # type: ignore[union-attr]


def test_mid_call_errors() -> None:
    c = core()
    c.receive_text(start_msg())
    assert c.receive_text("{nope")[0] == Violation("bad_json", "message is not valid JSON", False, 1008)
    [ok] = c.receive_text(media_msg(2))
    assert isinstance(ok, LegAudio)
    # A repeated or late sequence number: dropped; a jump ahead: reported, processed.
    [dropped] = c.receive_text(media_msg(2))
    assert isinstance(dropped, Violation) and dropped.code == "out_of_order" and not dropped.fatal
    gap, audio = c.receive_text(media_msg(5))
    assert isinstance(gap, Violation) and gap.code == "sequence_gap" and isinstance(audio, LegAudio)
    [bad] = c.receive_text(media_msg(6, track="sideways"))
    assert isinstance(bad, Violation) and bad.code == "invalid_media" and not bad.fatal
    [bad] = c.receive_text(media_msg(7).replace('"payload": "', '"payload": "!!'))
    assert isinstance(bad, Violation) and bad.code == "invalid_media"
    *_tails, dup = c.receive_text(start_msg().replace('"sequenceNumber": "1"', '"sequenceNumber": "8"'))
    assert dup == Violation("duplicate_start", "'start' was already received", True, 1008)
    assert c.receive_text(media_msg(9)) == []  # closed after a fatal violation


def test_oversized_media_payload_is_fatal_and_keeps_the_tails() -> None:
    c = core()
    c.receive_text(start_msg())
    c.receive_text(media_msg(2, payload=b"\x10" * 1600))
    *tails, violation = c.receive_text(media_msg(3, payload=b"\x00" * 16001))
    assert isinstance(violation, Violation) and (violation.code, violation.close_code) == (
        "message_too_big",
        1009,
    )
    assert tails and isinstance(tails[0], LegAudio)  # the resampler's held-back samples are not lost


def test_timestamp_gap_is_filled_with_silence() -> None:
    c = core()
    c.receive_text(start_msg(tracks=["inbound"]))
    first = c.receive_text(media_msg(2, ts=0))
    fill, audio = c.receive_text(media_msg(3, ts=1020))  # 1 s of packets never sent
    assert isinstance(fill, LegAudio) and isinstance(audio, LegAudio)
    total = sum(len(ev.legs["customer"]) for ev in [*first, fill, audio] if isinstance(ev, LegAudio))
    (stop, end) = c.receive_text(json.dumps({"event": "stop", "sequenceNumber": "4", "streamSid": "MZ1"}))
    assert isinstance(stop, LegAudio) and end == EndOfCall("stop")
    total += len(stop.legs["customer"])
    assert total == (1020 + 20) * 16  # leg time follows Twilio's timestamps


# -- endpoint ------------------------------------------------------------------------------------


def speech_then_silence_mulaw() -> bytes:
    return codecs.encode_mulaw(np.concatenate([tone(1.0), silence(1.0)]))


async def test_a_call_streams_and_ends_with_stop() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        s = TwilioStream(h.url + PATH)
        await s.connect()
        await s.connected()
        await s.start(custom={"agent_name": "Ann", "language": "en"})
        await s.stream(
            {"inbound": speech_then_silence_mulaw(), "outbound": codecs.encode_mulaw(silence(2.0))}
        )
        await s.stop()
        code, _ = await s.closed()
        events = await call_events(h.url, s.call_sid)
    assert code == 1000
    assert kinds(events)[0] == "call.started" and events[0]["metadata"]["agent_name"] == "Ann"
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert [f["speaker"] for f in finals] == ["customer"] and finals[0]["language"] == "en"
    assert events[-1]["reason"] == "stop" and events[-1]["duration"] == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(
    ("bad", "code", "close"),
    [
        ({"event": "media", "media": {"track": "inbound", "payload": BIG_PAYLOAD}}, "message_too_big", 1009),
        ({"event": "start", "start": {"streamSid": "MZ2", "callSid": "CA2", "tracks": ["inbound"]}},
         "duplicate_start", 1008),
    ],
)  # fmt: skip
async def test_fatal_error_mid_call_closes_with_code_and_keeps_the_audio(
    bad: dict[str, Any], code: str, close: int
) -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        good = TwilioStream(h.url + PATH)  # a second call, unaffected
        await good.connect()
        await good.start()
        s = TwilioStream(h.url + PATH)
        await s.connect()
        await s.start(tracks=("inbound",))
        await s.stream({"inbound": speech_then_silence_mulaw()})
        await s.send({**bad, "sequenceNumber": s.next_seq(), "streamSid": s.stream_sid})
        got_code, reason = await s.closed()
        events = await call_events(h.url, s.call_sid)
        await good.stream(
            {"inbound": speech_then_silence_mulaw(), "outbound": codecs.encode_mulaw(silence(2.0))}
        )
        await good.stop()
        await good.closed()
        good_events = await call_events(h.url, good.call_sid)
    assert (got_code, reason.split(":")[0]) == (close, code)
    assert "transcript.final" in kinds(events), "audio before the bad message was lost"
    assert (code, True) in errors(events)
    assert events[-1]["type"] == "call.ended" and events[-1]["reason"] == "error"
    assert errors(good_events) == [] and good_events[-1]["reason"] == "stop"
    assert [e["speaker"] for e in good_events if e["type"] == "transcript.final"] == ["customer"]


async def test_malformed_and_out_of_order_messages_mid_call_are_reported_not_fatal() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        s = TwilioStream(h.url + PATH)
        await s.connect()
        await s.start(tracks=("inbound",))
        assert s.ws is not None
        await s.ws.send("{not json")
        await s.send(
            {"event": "media", "sequenceNumber": "1", "streamSid": s.stream_sid, "media": {}}
        )  # stale
        await s.media("inbound", b"\xff" * 160)
        await s.ws.send(b"\x00\x01")
        await s.stream({"inbound": speech_then_silence_mulaw()})
        await s.stop()
        code, _ = await s.closed()
        events = await call_events(h.url, s.call_sid)
    assert code == 1000
    assert [c for c, fatal in errors(events)] == ["bad_json", "out_of_order", "unexpected_binary"]
    assert not any(fatal for _, fatal in errors(events))
    assert "transcript.final" in kinds(events) and events[-1]["reason"] == "stop"


async def test_no_start_times_out_and_vanished_stream_keeps_audio() -> None:
    overrides = {"limits.start_timeout_s": 0.3}
    service = running_service(DurationTranscriber(), overrides=overrides, guidance=False)
    async with service as h:
        s = TwilioStream(h.url + PATH)
        await s.connect()
        code, reason = await s.closed()
        assert (code, reason.split(":")[0]) == (1008, "timeout")
        s = TwilioStream(h.url + PATH)
        await s.connect()
        await s.start(tracks=("inbound",))
        await s.stream({"inbound": codecs.encode_mulaw(tone(1.5))})  # still speaking when it drops
        await asyncio.sleep(0.1)
        assert s.ws is not None
        s.ws.transport.abort()
        events = await call_events(h.url, s.call_sid)
    assert [e["speaker"] for e in events if e["type"] == "transcript.final"] == ["customer"]
    assert events[-1]["reason"] == "disconnected"


async def test_single_track_streams_of_one_call_join() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        inbound = TwilioStream(h.url + PATH)
        outbound = TwilioStream(h.url + PATH, call_sid=inbound.call_sid)
        await inbound.connect()
        await outbound.connect()
        await inbound.start(tracks=("inbound",))
        await outbound.start(tracks=("outbound",))
        await legs_attached(h.service, inbound.call_sid, {"agent", "customer"})
        await inbound.stream({"inbound": speech_then_silence_mulaw()})
        await outbound.stream({"outbound": speech_then_silence_mulaw()})
        await inbound.stop()
        await outbound.stop()
        await inbound.closed()
        await outbound.closed()
        await wait_ended(h.service, inbound.call_sid)
        events = await call_events(h.url, inbound.call_sid)
    assert sorted(e["speaker"] for e in events if e["type"] == "transcript.final") == ["agent", "customer"]
    assert kinds(events).count("call.ended") == 1


async def test_ingest_token_from_custom_parameter_or_query() -> None:
    overrides = {"auth.enabled": True, "auth.tenant": "t1"}
    async with running_service(DurationTranscriber(), overrides=overrides, guidance=False) as h:
        ingest = issue_token(TEST_SECRET, role="ingest", tenant="t1", sub="twilio", calls=["*"], ttl_s=600)
        agent = issue_token(TEST_SECRET, role="agent", tenant="t1", sub="ann", calls=["x"], ttl_s=600)
        refused = TwilioStream(h.url + PATH)
        await refused.connect()
        await refused.start()
        assert (await refused.closed())[0] == 1008
        wrong_role = TwilioStream(h.url + PATH)
        await wrong_role.connect()
        await wrong_role.start(custom={"token": agent})
        code, reason = await wrong_role.closed()
        assert (code, reason.split(":")[0]) == (1008, "forbidden")
        for params, custom in (({}, {"token": ingest}), ({"token": ingest}, {})):
            s = TwilioStream(h.url + PATH)
            await s.connect(params)
            await s.start(tracks=("inbound",), custom=custom)
            await s.stream({"inbound": speech_then_silence_mulaw()})
            await s.stop()
            assert (await s.closed())[0] == 1000
            events = await call_events(h.url, s.call_sid, token=ingest)
            assert "transcript.final" in kinds(events)
            assert "token" not in events[0]["metadata"]


def test_a_fatal_violation_or_timeout_closes_with_its_code_and_reason() -> None:
    c = core()
    c.receive_text(start_msg())
    assert c.data_to_send() == [], "Twilio never hears from us while streaming"
    c.receive_text(start_msg().replace('"sequenceNumber": "1"', '"sequenceNumber": "2"'))
    assert c.data_to_send() == [SendClose(1008, b"duplicate_start: 'start' was already received")] and c.done
    c = TwilioProtocol(
        limits=LimitSettings(start_timeout_s=2.0), inbound_leg="customer", default_language="zh"
    )
    (timeout,) = c.receive_timeout()
    assert isinstance(timeout, Violation) and timeout.message == "no call start within 2 s"
    assert c.data_to_send() == [SendClose(1008, b"timeout: no call start within 2 s")]
