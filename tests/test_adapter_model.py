"""The real service and model: a call through Twilio Media Streams equals the same call through /v1/ingest.

Both copies of dev_en_02 (8 kHz mu-law, left agent / right customer) are
streamed at the same time, at STREAM_SPEED x real time, to one running service
(Whisper, Silero VAD, the USE guidance engine).  Every utterance must come back
with the same speaker, times and text, and fire the same rules.  This service
runs without partial transcripts: which partials run depends on load, and a
critical rule raised on a partial (which the final then does not raise again)
can come from words the final hears differently, so with partials on the rules
of two identical calls legitimately differ.  Partials do not depend on the
transport; tests/test_adapter_*.py cover the adapters' framing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from stream.cli.simulate import stream_call
from tests.replay.fixture import load
from tests.replay.harness import call_events
from tests.replay.twilio import TwilioStream
from tests.service import RunningService, start_service, stop_service

pytestmark = pytest.mark.model

STREAM_SPEED = 3.0
NO_PARTIALS_S = 3600.0  # endpoint.min_partial_s longer than any utterance: no partial ever runs


@pytest.fixture(scope="module")
def finals_only_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    svc = start_service(
        tmp_path_factory.mktemp("finals-only"), settings={"endpoint.min_partial_s": NO_PARTIALS_S}
    )
    yield svc
    stop_service(svc)


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


async def test_twilio_and_native_give_the_same_transcripts_and_rules(
    finals_only_service: RunningService,
) -> None:
    svc = finals_only_service
    call = load("dev_en_02.8k")
    token = svc.token("ingest")

    async def twilio() -> list[dict[str, Any]]:
        stream = TwilioStream(f"{svc.ws}/v1/adapters/twilio")
        await stream.connect()
        await stream.connected()
        await stream.start(custom={"token": token, "language": "en"})
        tracks = {"inbound": call.mulaw("customer"), "outbound": call.mulaw("agent")}
        await stream.stream(tracks, speed=STREAM_SPEED)
        await stream.stop()
        code, reason = await stream.closed(timeout=120)
        assert code == 1000, reason
        return await call_events(svc.ws, stream.call_sid, token=token, timeout=180)

    native, via_twilio = await asyncio.gather(
        stream_call(svc.ws, call.wav, language="en", speed=STREAM_SPEED, token=token), twilio()
    )
    expected_finals, expected_rules = per_utterance([e.data for e in native.events])
    finals, rules = per_utterance(via_twilio)
    kinds = {e["type"] for e in via_twilio} | {e.data["type"] for e in native.events}
    assert "transcript.partial" not in kinds, "partials ran: the comparison of rules depends on load again"
    assert len(expected_finals) >= len(call.script["turns"]) // 2, "the native call produced too few finals"
    assert finals == expected_finals
    assert rules == expected_rules
    assert rules, "no rule fired: the comparison of guidance would be empty"
