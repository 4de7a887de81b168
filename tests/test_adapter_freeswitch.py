"""FreeSWITCH mod_audio_fork adapter: the sans-IO core, then the websocket endpoint with a replay client."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from stream.auth import issue_token
from stream.ingest.events import EndOfCall, LegAudio, MetadataChanged, OpenCall, SendClose, Violation
from stream.ingest.freeswitch import FreeSwitchProtocol
from stream.settings import LimitSettings
from tests.replay import freeswitch as fs
from tests.replay.harness import (
    TEST_SECRET,
    DurationTranscriber,
    call_events,
    errors,
    kinds,
    running_service,
    silence,
    tone,
    wait_ended,
)

PATH = "/v1/adapters/freeswitch"
LIMITS = LimitSettings(max_frame_bytes=16000, max_control_bytes=2000)


def core(query: dict[str, str] | None = None) -> FreeSwitchProtocol:
    return FreeSwitchProtocol(limits=LIMITS, channel0_leg="customer", default_language="zh", query=query)


def opened(c: FreeSwitchProtocol, meta: dict[str, Any]) -> OpenCall:
    ev, *notes = c.receive_text(json.dumps(meta))
    assert isinstance(ev, OpenCall)
    assert all(isinstance(n, Violation) and not n.fatal for n in notes)
    return ev


@pytest.mark.parametrize(
    ("meta", "query", "legs", "rate"),
    [
        ({}, {}, ("customer", "agent"), 8000),  # defaults: stereo, 8 kHz
        ({"mix": "mono"}, {"rate": "16k"}, ("customer",), 16000),
        ({"mix": "mixed", "sample_rate": 16000}, {"mix": "stereo"}, ("customer",), 16000),  # metadata wins
        ({}, {"mix": "stereo", "rate": "8000"}, ("customer", "agent"), 8000),
    ],
)
def test_mix_and_rate_from_metadata_or_query(
    meta: dict[str, Any], query: dict[str, str], legs: tuple[str, ...], rate: int
) -> None:
    ev = opened(core(query), meta)
    assert (ev.params.legs, ev.params.sample_rate, ev.params.encoding) == (legs, rate, "pcm_s16le")


def test_metadata_call_id_language_token_and_extra_keys() -> None:
    ev = opened(core(), {"call_id": "fs-1", "language": "en", "token": "tok", "agent_name": "Ann", "x": [1]})
    assert (ev.params.call_id, ev.params.language, ev.token) == ("fs-1", "en", "tok")
    assert ev.params.metadata["agent_name"] == "Ann" and "token" not in ev.params.metadata
    assert "x" not in ev.params.metadata
    assert opened(core(), {"uuid": "2f1e-abc"}).params.call_id == "2f1e-abc"
    assert opened(core(), {}).params.call_id.startswith("fs-")


def test_stereo_channel0_is_the_caller() -> None:
    c = core()
    opened(c, {"mix": "stereo"})
    frame = np.stack([np.full(800, 3000, np.int16), np.zeros(800, np.int16)], axis=1).reshape(-1)
    (audio,) = c.receive_bytes(frame.astype("<i2").tobytes())
    assert isinstance(audio, LegAudio)
    assert audio.legs["customer"][-100:].mean() == pytest.approx(3000 / 32768, rel=0.01)
    assert not audio.legs["agent"].any()


@pytest.mark.parametrize(
    ("first", "code", "close"),
    [
        (b"\x00\x00", "not_started", 1008),
        ("not json", "bad_json", 1007),
        ('["a list"]', "bad_json", 1007),
        ('{"mix": "quad"}', "unsupported_format", 1003),
        ('{"rate": "44k"}', "unsupported_format", 1003),
        ('{"language": "fr"}', "unsupported_format", 1003),
        ('{"call_id": "has spaces"}', "invalid_start", 1007),
        ("{" + " " * 2001 + "}", "message_too_big", 1009),
    ],
)
def test_bad_first_frames(first: str | bytes, code: str, close: int) -> None:
    c = core()
    events = c.receive_bytes(first) if isinstance(first, bytes) else c.receive_text(first)
    assert len(events) == 1 and isinstance(events[0], Violation)
    assert (events[0].code, events[0].fatal, events[0].close_code) == (code, True, close)


def test_mid_stream_frames() -> None:
    c = core()
    opened(c, {"mix": "stereo"})
    c.receive_bytes(b"\x01\x00" * 400)
    assert c.receive_text('{"customer_name": "Bo"}') == [MetadataChanged({"customer_name": "Bo"})]
    (note,) = c.receive_text("hello")
    assert isinstance(note, Violation) and (note.code, note.fatal) == ("invalid_metadata", False)
    *tails, bad = c.receive_bytes(b"\x00" * 6)  # 1.5 stereo sample frames
    assert isinstance(tails[0], LegAudio) and isinstance(bad, Violation)
    assert (bad.code, bad.close_code) == ("misaligned_frame", 1007)
    c = core()
    opened(c, {})
    *_, big = c.receive_bytes(b"\x00" * 16004)
    assert isinstance(big, Violation) and (big.code, big.close_code) == ("message_too_big", 1009)
    c = core()
    opened(c, {})
    assert c.receive_eof(1000)[-1] == EndOfCall("stop")
    c = core()
    opened(c, {})
    assert c.receive_eof(1006)[-1] == EndOfCall("disconnected")


# -- endpoint ------------------------------------------------------------------------------------


def stereo_talk(rate: int = 8000) -> list[np.ndarray]:
    """[caller, callee]: the caller speaks 1 s, then 1 s of silence on both."""
    return [np.concatenate([tone(1.0, rate), silence(1.0, rate)]), silence(2.0, rate)]


@pytest.mark.parametrize(("mix", "rate"), [("stereo", 8000), ("mono", 16000), ("mixed", 8000)])
async def test_fork_streams_a_call(mix: str, rate: int) -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        ws = await fs.connect(h.url + PATH, {"mix": mix, "rate": str(rate)})
        await fs.send_metadata(ws, {"call_id": f"fs-{mix}", "language": "en", "agent_name": "Ann"})
        channels = stereo_talk(rate) if mix == "stereo" else stereo_talk(rate)[:1]
        await fs.stream(ws, channels, rate)
        await ws.send(json.dumps({"customer_name": "Bo"}))
        await ws.close()  # the fork stops: close code 1000
        await wait_ended(h.service, f"fs-{mix}")
        events = await call_events(h.url, f"fs-{mix}")
    assert [f["speaker"] for f in events if f["type"] == "transcript.final"] == ["customer"]
    assert events[0]["metadata"]["audio_mix"] == mix and events[0]["sample_rate"] == rate
    assert events[-1]["reason"] == "stop" and events[-1]["duration"] == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(
    ("bad", "code", "close"),
    [(b"\x00" * 6, "misaligned_frame", 1007), (b"\x00" * 16004, "message_too_big", 1009)],
)
async def test_bad_audio_mid_call_closes_keeps_audio_spares_others(bad: bytes, code: str, close: int) -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        good = await fs.connect(h.url + PATH)
        await fs.send_metadata(good, {"call_id": "fs-good"})
        ws = await fs.connect(h.url + PATH)
        await fs.send_metadata(ws, {"call_id": "fs-bad"})
        await fs.stream(ws, stereo_talk(), 8000)
        await ws.send(bad)
        got, reason = await fs.closed(ws)
        events = await call_events(h.url, "fs-bad")
        await fs.stream(good, stereo_talk(), 8000)
        await good.close()
        await wait_ended(h.service, "fs-good")
        good_events = await call_events(h.url, "fs-good")
    assert (got, reason.split(":")[0]) == (close, code)
    assert "transcript.final" in kinds(events), "audio before the bad frame was lost"
    assert (code, True) in errors(events) and events[-1]["reason"] == "error"
    assert errors(good_events) == [] and good_events[-1]["reason"] == "stop"


async def test_audio_first_is_refused_and_token_is_required_with_auth() -> None:
    overrides = {"auth.enabled": True, "auth.tenant": "t1"}
    service = running_service(DurationTranscriber(), overrides=overrides, guidance=False)
    async with service as h:
        ws = await fs.connect(h.url + PATH)
        await ws.send(b"\x00" * 640)
        assert (await fs.closed(ws))[0] == 1008
        ws = await fs.connect(h.url + PATH)
        await fs.send_metadata(ws, {"call_id": "fs-no-token"})
        code, reason = await fs.closed(ws)
        assert (code, reason.split(":")[0]) == (1008, "unauthorized")
        token = issue_token(TEST_SECRET, role="ingest", tenant="t1", sub="fs", calls=["fs-ok"], ttl_s=600)
        ws = await fs.connect(h.url + PATH, {"token": token})
        await fs.send_metadata(ws, {"call_id": "fs-other"})
        code, reason = await fs.closed(ws)
        assert (code, reason.split(":")[0]) == (1008, "forbidden")
        ws = await fs.connect(h.url + PATH)
        await fs.send_metadata(ws, {"call_id": "fs-ok", "token": token})
        await fs.stream(ws, stereo_talk(), 8000)
        await ws.close()
        await wait_ended(h.service, "fs-ok")
        events = await call_events(h.url, "fs-ok", token=token)
    assert "transcript.final" in kinds(events)


def test_refusal_and_the_end_of_the_call_close_the_fork() -> None:
    c = core()
    opened(c, {})
    (refusal,) = c.call_refused("too_many_calls", "too many concurrent calls (limit 1)")
    assert isinstance(refusal, Violation) and refusal.fatal and c.done
    assert c.data_to_send() == [SendClose(1008, b"too_many_calls: too many concurrent calls (limit 1)")]
    c = core()
    opened(c, {})
    c.receive_eof(1000)
    c.call_ended()
    assert c.data_to_send() == [SendClose(1000, b"call ended")]
