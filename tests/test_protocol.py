"""The ingest protocol core: every bad input, and a fixture call streamed in 20 ms frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from stream.audio import codecs
from stream.ingest.events import EndOfCall, LegAudio, MetadataChanged, OpenCall, Send, SendClose, Violation
from stream.ingest.native import IngestProtocol, ProtocolEvent, State
from stream.ingest.refusal import close_reason
from stream.live.session import CallParams
from stream.settings import LimitSettings
from tests.fakes import read_pcm_wav, read_wav_chunks

FIXTURES = Path(__file__).parent / "fixtures"
LIMITS = LimitSettings()
START: dict[str, Any] = {
    "type": "start",
    "call_id": "call-1",
    "language": "zh",
    "sample_rate": 8000,
    "encoding": "mulaw",
    "channels": ["agent", "customer"],
}
FRAME_20MS_8K_STEREO_MULAW = 160 * 2


def started(limits: LimitSettings = LIMITS, **overrides: Any) -> IngestProtocol:
    proto = IngestProtocol(limits)
    events = proto.receive_text(json.dumps({**START, **overrides}))
    assert len(events) == 1 and isinstance(events[0], OpenCall), events
    return proto


def state(proto: IngestProtocol) -> State:
    """Read the state through a call so mypy does not keep an earlier narrowing across receive_*()."""
    return proto.state


def violation(events: list[ProtocolEvent]) -> Violation:
    assert events and isinstance(events[-1], Violation), events
    return events[-1]


def audio_len(events: list[ProtocolEvent], leg: str) -> int:
    return sum(len(e.legs[leg]) for e in events if isinstance(e, LegAudio))


def start_error(message: dict[str, Any]) -> Violation:
    proto = IngestProtocol(LIMITS)
    v = violation(proto.receive_text(json.dumps(message)))
    assert v.fatal and proto.state is State.CLOSED
    return v


# -- happy paths -------------------------------------------------------------


def test_fixture_call_in_20ms_mulaw_frames() -> None:
    tag, channels, rate, data = read_wav_chunks(FIXTURES / "dev_zh_02.8k.wav")
    assert (tag, channels, rate) == (7, 2, 8000)
    proto = IngestProtocol(LIMITS)
    (ev,) = proto.receive_text(json.dumps({**START, "metadata": {"agent_name": "王伟", "amount": 1840.5}}))
    assert isinstance(ev, OpenCall)
    assert ev.params == CallParams(
        "call-1", "zh", 8000, "mulaw", ("agent", "customer"), {"agent_name": "王伟", "amount": 1840.5}
    )
    assert state(proto) is State.STREAMING

    events: list[ProtocolEvent] = []
    for i in range(0, len(data), FRAME_20MS_8K_STEREO_MULAW):
        out = proto.receive_bytes(data[i : i + FRAME_20MS_8K_STEREO_MULAW])
        assert len(out) == 1 and isinstance(out[0], LegAudio)
        assert len(out[0].legs["agent"]) == len(out[0].legs["customer"])
        events += out
    tail = proto.receive_text('{"type": "stop"}')
    assert tail[-1] == EndOfCall("stop") and isinstance(tail[0], LegAudio)
    events += tail
    assert proto.state is State.CLOSED

    frames_8k = len(data) // channels
    legs = {
        leg: np.concatenate([e.legs[leg] for e in events if isinstance(e, LegAudio)])
        for leg in START["channels"]
    }
    _, original = read_pcm_wav(FIXTURES / "dev_zh_02.wav")
    for ch, leg in enumerate(START["channels"]):
        got = legs[leg]
        assert got.dtype == np.float32 and len(got) == 2 * frames_8k  # exact bookkeeping
        n = min(len(got), len(original))  # the 16 kHz original has an odd sample count
        got, want = got[:n], original[:n, ch] / 32768.0
        # Telephone band only, so compare in-band: the correlation is still high, and at lag 0.
        corr = [np.corrcoef(np.roll(got, lag), want)[0, 1] for lag in (-2, -1, 0, 1, 2)]
        assert int(np.argmax(corr)) == 2 and corr[2] > 0.95, corr


def test_mono_pcm_16k_leg_passes_through() -> None:
    proto = started(sample_rate=16000, encoding="pcm_s16le", channels=["customer"])
    pcm = (np.sin(np.arange(640) / 5) * 20000).astype(np.int16)
    (ev,) = proto.receive_bytes(pcm.tobytes())
    assert isinstance(ev, LegAudio) and list(ev.legs) == ["customer"]
    np.testing.assert_array_equal(ev.legs["customer"], (pcm / 32768.0).astype(np.float32))
    assert proto.receive_text('{"type": "stop"}') == [EndOfCall("stop")]  # nothing held back at 16 kHz


def test_channel_order_maps_legs() -> None:
    proto = started(sample_rate=16000, encoding="pcm_s16le", channels=["customer", "agent"])
    frames = np.array([[100, -7], [200, -8]], dtype=np.int16)  # channel 0 = customer
    (ev,) = proto.receive_bytes(frames.tobytes())
    assert isinstance(ev, LegAudio)
    np.testing.assert_array_equal(ev.legs["customer"] * 32768, [100, 200])
    np.testing.assert_array_equal(ev.legs["agent"] * 32768, [-7, -8])


def test_alaw_8k_stereo() -> None:
    proto = started(encoding="alaw")
    pcm = (np.sin(np.arange(800) / 3) * 8000).astype(np.int16)
    data = codecs.encode("alaw", np.repeat(pcm, 2))
    events = proto.receive_bytes(data) + proto.receive_text('{"type":"stop"}')
    assert audio_len(events, "agent") == audio_len(events, "customer") == 1600


def test_metadata_updates_merge() -> None:
    proto = started(metadata={"agent_name": "A", "amount": 10})
    (ev,) = proto.receive_text(json.dumps({"type": "metadata", "metadata": {"amount": 12, "company": "X"}}))
    assert ev == MetadataChanged({"amount": 12, "company": "X"})
    assert proto.metadata == {"agent_name": "A", "amount": 12, "company": "X"}


def test_empty_audio_frame_is_ignored() -> None:
    assert started().receive_bytes(b"") == []


def test_eof_returns_the_held_back_audio() -> None:
    proto = started()
    first = proto.receive_bytes(b"\xff" * 400)
    tail = proto.receive_eof()
    assert audio_len(first + tail, "agent") == 400  # 200 samples at 8 kHz -> 400 at 16 kHz
    assert proto.state is State.CLOSED and proto.receive_eof() == []
    assert IngestProtocol(LIMITS).receive_eof() == []  # nothing started, nothing owed


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["{", "nope", '{"type": "start",}', "", '{"a": NaN}', "[" * 5000])
def test_invalid_json(text: str) -> None:
    proto = IngestProtocol(LIMITS)
    v = violation(proto.receive_text(text))
    assert (v.code, v.close_code, v.fatal) == ("bad_json", 1007, True)
    proto = started()
    v = violation(proto.receive_text(text))
    assert (v.code, v.fatal) == ("bad_json", False)  # reported, ignored; audio keeps flowing
    assert proto.state is State.STREAMING


@pytest.mark.parametrize("text", ["[1, 2]", '"start"', "42", "null"])
def test_not_an_object(text: str) -> None:
    v = violation(IngestProtocol(LIMITS).receive_text(text))
    assert (v.code, v.close_code, v.fatal) == ("not_an_object", 1007, True)


@pytest.mark.parametrize("message", [{"call_id": "x"}, {"type": 5}, {"type": None}])
def test_missing_type(message: dict[str, Any]) -> None:
    v = violation(IngestProtocol(LIMITS).receive_text(json.dumps(message)))
    assert (v.code, v.close_code, v.fatal) == ("missing_type", 1007, True)


def test_unknown_type() -> None:
    v = violation(IngestProtocol(LIMITS).receive_text('{"type": "hello"}'))
    assert (v.code, v.close_code, v.fatal) == ("unknown_type", 1008, True)
    assert "hello" in v.message
    proto = started()
    v = violation(proto.receive_text('{"type": "pause"}'))
    assert (v.code, v.fatal) == ("unknown_type", False)
    assert proto.state is State.STREAMING


@pytest.mark.parametrize("name", ["call_id", "language", "sample_rate", "encoding", "channels"])
def test_missing_start_field_is_named(name: str) -> None:
    message = {k: v for k, v in START.items() if k != name}
    v = start_error(message)
    assert (v.code, v.close_code) == ("invalid_start", 1007)
    assert f"start.{name}" in v.message and "missing" in v.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("call_id", ""),
        ("call_id", "a b"),
        ("call_id", "x" * 129),
        ("call_id", "call/1"),
        ("call_id", 5),
        ("language", 5),
        ("sample_rate", "8000"),
        ("sample_rate", 8000.0),
        ("sample_rate", True),
        ("encoding", 7),
        ("channels", "agent"),
        ("channels", []),
        ("channels", ["agent", "agent"]),
        ("channels", ["agent", "bot"]),
        ("channels", ["agent", "customer", "agent"]),
        ("channels", [1]),
        ("metadata", ["a"]),
        ("metadata", {"nested": {"a": 1}}),
        ("metadata", {"list": [1]}),
        ("metadata", {"long": "x" * 513}),
        ("metadata", {"k" * 65: 1}),
        ("metadata", {"": 1}),
        ("metadata", {f"k{i}": i for i in range(33)}),
    ],
)
def test_invalid_start_field_is_named(name: str, value: Any) -> None:
    v = start_error({**START, name: value})
    assert (v.code, v.close_code) == ("invalid_start", 1007)
    assert f"start.{name}" in v.message


def test_unpaired_surrogate_in_metadata_is_rejected() -> None:
    text = json.dumps({**START, "metadata": {"name": "x"}}).replace('"x"', '"\\ud800"')
    v = start_error(json.loads(text))
    assert v.code == "invalid_start" and "start.metadata.name" in v.message


def test_unknown_start_field_is_named() -> None:
    v = start_error({**START, "samplerate": 8000})
    assert v.code == "invalid_start" and "samplerate" in v.message


def test_longest_call_id_and_all_allowed_characters_are_accepted() -> None:
    started(call_id="A-z_0.9:" + "x" * 120)


@pytest.mark.parametrize(
    ("name", "value"), [("sample_rate", 44100), ("sample_rate", 0), ("encoding", "opus"), ("language", "fr")]
)
def test_unsupported_format(name: str, value: Any) -> None:
    v = start_error({**START, name: value})
    assert (v.code, v.close_code) == ("unsupported_format", 1003)
    assert f"start.{name}" in v.message and str(value) in v.message


def test_duplicate_start_is_fatal_but_keeps_received_audio() -> None:
    proto = started()
    events = proto.receive_bytes(b"\x7f" * 3200)
    events += proto.receive_text(json.dumps(START))
    v = violation(events)
    assert (v.code, v.close_code, v.fatal) == ("duplicate_start", 1008, True)
    assert isinstance(events[-2], LegAudio)  # the resampler tail comes before the violation
    assert audio_len(events, "agent") == 3200  # 1600 samples/leg at 8 kHz, all delivered at 16 kHz
    assert proto.state is State.CLOSED


@pytest.mark.parametrize("send", ["audio", "metadata", "stop"])
def test_messages_before_start(send: str) -> None:
    proto = IngestProtocol(LIMITS)
    if send == "audio":
        events = proto.receive_bytes(b"\x00" * 320)
    else:
        events = proto.receive_text(
            json.dumps({"type": send, "metadata": {}} if send == "metadata" else {"type": send})
        )
    v = violation(events)
    assert (v.code, v.close_code, v.fatal) == ("not_started", 1008, True)
    assert len(events) == 1 and proto.state is State.CLOSED


def test_audio_frame_over_the_size_limit() -> None:
    limits = LimitSettings(max_frame_bytes=640)
    proto = started(limits)
    first = proto.receive_bytes(b"\x00" * 640)  # exactly at the limit is fine
    assert len(first) == 1 and isinstance(first[0], LegAudio)
    events = proto.receive_bytes(b"\x00" * 642)
    v = violation(events)
    assert (v.code, v.close_code, v.fatal) == ("message_too_big", 1009, True)
    assert audio_len(first + events, "agent") == 2 * 320  # what was accepted is delivered in full
    assert proto.state is State.CLOSED
    # Also before start: size is checked first.
    v = violation(IngestProtocol(limits).receive_bytes(b"\x00" * 700))
    assert v.code == "message_too_big"


def test_text_frame_over_the_size_limit_counts_utf8_bytes() -> None:
    limits = LimitSettings(max_control_bytes=200)
    proto = IngestProtocol(limits)
    v = violation(proto.receive_text(json.dumps({**START, "metadata": {"n": "x" * 150}})))
    assert (v.code, v.close_code, v.fatal) == ("message_too_big", 1009, True)
    # 80 characters, but 240 bytes of UTF-8: still too big.
    proto = started(limits)
    text = json.dumps({"type": "metadata", "metadata": {"n": "债" * 80}}, ensure_ascii=False)
    assert len(text) < 200 < len(text.encode())
    v = violation(proto.receive_text(text))
    assert (v.code, v.fatal) == ("message_too_big", True)


@pytest.mark.parametrize(
    ("overrides", "size"),
    [
        ({"encoding": "pcm_s16le", "channels": ["agent"]}, 3),  # half a sample
        ({"encoding": "pcm_s16le"}, 6),  # one and a half stereo frames
        ({"encoding": "mulaw"}, 321),  # stereo G.711: must be even
        ({"encoding": "alaw"}, 1),
    ],
)
def test_misaligned_audio_frame(overrides: dict[str, Any], size: int) -> None:
    proto = started(**overrides)
    v = violation(proto.receive_bytes(b"\x00" * size))
    assert (v.code, v.close_code, v.fatal) == ("misaligned_frame", 1007, True)
    assert str(size) in v.message
    assert proto.state is State.CLOSED


def test_anything_after_stop_is_ignored() -> None:
    proto = started()
    assert proto.receive_text('{"type": "stop"}')[-1] == EndOfCall("stop")
    for events in (
        proto.receive_bytes(b"\x00" * 320),
        proto.receive_text('{"type": "stop"}'),
        proto.receive_text(json.dumps(START)),
        proto.receive_text("garbage"),
    ):
        v = violation(events)
        assert (v.code, v.close_code, v.fatal) == ("closed", 1008, False)
        assert len(events) == 1


def test_anything_after_a_fatal_violation_is_ignored() -> None:
    proto = IngestProtocol(LIMITS)
    assert violation(proto.receive_bytes(b"\x00\x00")).fatal
    assert violation(proto.receive_text(json.dumps(START))).code == "closed"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "metadata"},
        {"type": "metadata", "metadata": "x"},
        {"type": "metadata", "metadata": {"a": {"b": 1}}},
        '{"type": "metadata", "metadata": {"a": 1e999}}',  # parses as inf
        {"type": "metadata", "metadata": {"a": 1}, "extra": True},
    ],
)
def test_invalid_metadata_update_is_rejected_whole_and_not_fatal(message: dict[str, Any] | str) -> None:
    proto = started(metadata={"a": 1})
    v = violation(proto.receive_text(message if isinstance(message, str) else json.dumps(message)))
    assert (v.code, v.close_code, v.fatal) == ("invalid_metadata", 1007, False)
    assert proto.metadata == {"a": 1} and proto.state is State.STREAMING


def test_metadata_key_limit_applies_after_merge() -> None:
    proto = started(metadata={f"k{i}": i for i in range(30)})
    v = violation(proto.receive_text(json.dumps({"type": "metadata", "metadata": {"x": 1, "y": 2, "z": 3}})))
    assert v.code == "invalid_metadata" and "32" in v.message
    (ev,) = proto.receive_text(
        json.dumps({"type": "metadata", "metadata": {"k0": "changed", "x": 1, "y": 2}})
    )
    assert isinstance(ev, MetadataChanged) and len(proto.metadata) == 32


def _frames(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def leg_audio(events: list[ProtocolEvent], leg: str) -> npt.NDArray[np.float32]:
    return np.concatenate([e.legs[leg] for e in events if isinstance(e, LegAudio)])


def test_frame_size_does_not_change_the_audio() -> None:
    rng = np.random.default_rng(3)
    data = codecs.encode("mulaw", (rng.standard_normal(4000) * 3000).astype(np.int16))
    outputs = []
    for size in (2, 320, 4000):
        proto = started()
        events = [ev for f in _frames(data, size) for ev in proto.receive_bytes(f)]
        events += proto.receive_text('{"type": "stop"}')
        outputs.append(leg_audio(events, "customer"))
    for out in outputs[1:]:
        np.testing.assert_allclose(out, outputs[0], atol=1e-6)


# -- what the client hears (queued by the core, sent by the driver) ---------------------------


def sent(proto: IngestProtocol) -> list[Any]:
    return [json.loads(item.data) if isinstance(item, Send) else item for item in proto.data_to_send()]


def test_replies_are_the_ack_error_frames_and_the_close() -> None:
    proto = started()
    assert proto.data_to_send() == [] and proto.wait_s == LIMITS.start_timeout_s
    proto.call_opened("call-1")
    assert sent(proto) == [{"type": "started", "call_id": "call-1", "events": "/v1/calls/call-1/events"}]
    assert proto.wait_s == LIMITS.idle_timeout_s, "the idle timeout runs once the call is open"
    proto.receive_text(json.dumps({"type": "metadata", "metadata": []}))
    (error,) = sent(proto)
    assert (error["type"], error["code"], error["fatal"]) == ("error", "invalid_metadata", False)
    v = violation(proto.receive_bytes(b"\x00"))
    error, close = sent(proto)
    assert (error["code"], error["fatal"]) == ("misaligned_frame", True)
    assert close == SendClose(1007, close_reason("misaligned_frame", v.message)) and proto.done
    proto.call_ended()
    assert proto.data_to_send() == [], "closed once"


def test_timeouts_refusals_and_oversize_are_fatal_with_their_close_codes() -> None:
    proto = IngestProtocol(LimitSettings(start_timeout_s=3.0))
    assert violation(proto.receive_timeout()).message == "no start frame within 3 s"
    assert sent(proto)[-1] == SendClose(1008, b"timeout: no start frame within 3 s")
    proto = started()
    proto.call_refused("forbidden", "token does not cover this call")
    error, close = sent(proto)
    assert error == {
        "type": "error",
        "code": "forbidden",
        "message": "token does not cover this call",
        "fatal": True,
    }
    assert close == SendClose(1008, b"forbidden: token does not cover this call")
    proto = started()
    v = violation(proto.receive_oversize("Message size 70000 exceeds limit 64000"))
    assert (v.code, v.close_code, v.fatal) == ("message_too_big", 1009, True) and proto.done
