"""The real service and model: a call through Twilio Media Streams equals the same call through /v1/ingest.

Both copies of dev_en_02 (8 kHz mu-law, left agent / right customer) are
streamed at the same time, at STREAM_SPEED x real time, to one running service
(Whisper, Silero VAD, the USE guidance engine).  Every utterance must come back
with the same speaker, times and text, and fire the same rules.  Rules are
compared per utterance as the union of those raised on partial and on final
transcripts: which partials run depends on load, but a rule raised on a
partial is not raised again on the final, so the union is what the call got.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from stream.simulate import stream_call
from tests.conftest import RunningService
from tests.replay.fixture import load
from tests.replay.harness import call_events
from tests.replay.twilio import TwilioStream

pytestmark = pytest.mark.model

STREAM_SPEED = 3.0


def per_utterance(events: list[dict[str, Any]]) -> tuple[dict[str, tuple[Any, ...]], dict[str, set[str]]]:
    finals = {
        e["utterance_id"]: (e["speaker"], e["start"], e["end"], e["text"])
        for e in events
        if e["type"] == "transcript.final"
    }
    rules: dict[str, set[str]] = {}
    for e in events:
        if e["type"] == "compliance.warning":
            rules.setdefault(e["utterance_id"], set()).add(e["rule"])
    return finals, rules


async def test_twilio_and_native_give_the_same_transcripts_and_rules(live_service: RunningService) -> None:
    call = load("dev_en_02.8k")
    token = live_service.token("ingest")

    async def twilio() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            stream = TwilioStream(http, f"{live_service.ws}/v1/adapters/twilio")
            await stream.connect()
            await stream.connected()
            await stream.start(custom={"token": token, "language": "en"})
            tracks = {"inbound": call.mulaw("customer"), "outbound": call.mulaw("agent")}
            await stream.stream(tracks, speed=STREAM_SPEED)
            await stream.stop()
            code, reason = await stream.closed(timeout=120)
            assert code == 1000, reason
            return await call_events(http, live_service.ws, stream.call_sid, token=token, timeout=180)

    native, via_twilio = await asyncio.gather(
        stream_call(live_service.ws, call.wav, language="en", speed=STREAM_SPEED, token=token), twilio()
    )
    expected_finals, expected_rules = per_utterance([e.data for e in native.events])
    finals, rules = per_utterance(via_twilio)
    assert len(expected_finals) >= len(call.script["turns"]) // 2, "the native call produced too few finals"
    assert finals == expected_finals
    assert rules == expected_rules
    assert rules, "no rule fired: the comparison of guidance would be empty"
