"""``callassist simulate``'s client against a real service: a call goes through, refusals are one line.

The refusals matter because the service answers some of them before the client
has sent ``start`` (a missing token): the error frame is then already queued
when the client tries to send, and must still be what the user reads.
"""

from __future__ import annotations

import socket
import wave
from pathlib import Path

import numpy as np
import pytest

from stream.audio.wavfile import WavAudio
from stream.auth import Role, issue_token
from stream.cli.main import main as cli_main
from stream.cli.simulate import SimulateError, stream_call
from stream.cli.wsclient import ws_url
from tests.replay.harness import TEST_SECRET, DurationTranscriber, running_service

RATE = 16000
AUTH = {"auth.enabled": True, "auth.tenant": "t1"}


def wav(speech_s: float = 1.0, pause_s: float = 0.6) -> WavAudio:
    """Stereo PCM: the agent speaks (a tone), then both legs are silent."""
    t = np.arange(int(speech_s * RATE)) / RATE
    agent = np.concatenate([0.2 * np.sin(2 * np.pi * 440 * t), np.zeros(int(pause_s * RATE))])
    frames = (np.stack([agent, np.zeros_like(agent)], axis=1) * 32767).astype("<i2")
    return WavAudio(data=frames.tobytes(), sample_rate=RATE, channels=2, encoding="pcm_s16le")


def token(role: Role = "ingest") -> str:
    calls = ["*"] if role == "ingest" else ["x"]
    return issue_token(TEST_SECRET, role=role, tenant="t1", sub="sim", calls=calls, ttl_s=600)


async def test_a_call_goes_through_and_its_events_come_back() -> None:
    async with running_service(DurationTranscriber(), overrides=AUTH, guidance=False) as h:
        result = await stream_call(h.url, wav(), language="en", call_id="sim-1", speed=4.0, token=token())
    kinds = [e.data["type"] for e in result.events]
    assert kinds[0] == "call.started" and kinds[-1] == "call.ended"
    assert result.events[-1].data["reason"] == "stop"
    assert [e.data["speaker"] for e in result.events if e.data["type"] == "transcript.final"] == ["agent"]
    assert result.ingest_messages[0]["type"] == "started"


@pytest.mark.parametrize(
    ("role", "message"),
    [(None, "service refused the call: missing token"), ("agent", "service refused the call: token may not")],
)
async def test_refusals_are_one_line(role: Role | None, message: str) -> None:
    async with running_service(DurationTranscriber(), overrides=AUTH, guidance=False) as h:
        with pytest.raises(SimulateError, match=f"^{message}"):
            await stream_call(h.url, wav(), language="en", token=token(role) if role else None)


async def test_a_wrong_address_names_it() -> None:
    async with running_service(DurationTranscriber(), overrides=AUTH, guidance=False) as h:
        with pytest.raises(SimulateError, match=r"^cannot connect to ws://.*/nope/v1/ingest: .*404"):
            await stream_call(f"{h.url}/nope", wav(), language="en", token=token())


def test_nothing_listening_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "call.wav"
    audio = wav()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.data)
    assert cli_main(["simulate", str(path), "--url", f"ws://127.0.0.1:{port}", "--language", "en"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"callassist: simulate: cannot connect to ws://127.0.0.1:{port}/"
    )


def test_http_addresses_become_websocket_addresses() -> None:
    assert ws_url("http://h:1/v1/ingest", {"token": "a b"}) == "ws://h:1/v1/ingest?token=a+b"
    assert ws_url("https://h/x?since=0", {"token": "t"}) == "wss://h/x?since=0&token=t"
    assert ws_url("ws://h/x") == "ws://h/x"
