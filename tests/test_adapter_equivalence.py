"""A fixture call through each telephony adapter gives the same outcome as through the native endpoint.

Same transcripts (utterance, speaker, times, text), same rules fired, same
customer signals, and -- for the adapters that carry both legs on one
connection -- the same guidance events in the same order.  The AudioSocket
legs arrive on two sockets, so the order in which the two legs' utterances
reach the transcriber may differ by scheduling; there the per-utterance
results are compared.  Fake transcriber (the script's text), energy VAD: fast
and deterministic.  The real model runs in test_adapter_model.py.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from stream.cli.simulate import stream_call
from tests.replay import audiohook, freeswitch, twilio
from tests.replay.audiosocket import stream_pair
from tests.replay.fixture import FixtureCall, load
from tests.replay.harness import (
    Harness,
    Outcome,
    ScriptTranscriber,
    call_events,
    legs_attached,
    outcome,
    running_service,
    wait_ended,
)

NATIVE_SPEED = 1000.0  # frames go out as fast as the socket takes them


async def native(h: Harness, call: FixtureCall) -> Outcome:
    result = await stream_call(h.url, call.wav, language=call.language, speed=NATIVE_SPEED)
    events = [e.data for e in result.events]
    out = outcome(events)
    assert out.rules, "the fixture should fire rules (is the playbook loaded?)"
    return out


async def via_twilio(h: Harness, call: FixtureCall) -> Outcome:
    stream = twilio.TwilioStream(f"{h.url}/v1/adapters/twilio")
    await stream.connect()
    await stream.connected()
    await stream.start(custom={"language": call.language})
    await stream.stream({"inbound": call.mulaw("customer"), "outbound": call.mulaw("agent")})
    await stream.stop()
    await stream.closed()
    await wait_ended(h.service, stream.call_sid)
    return outcome(await call_events(h.url, stream.call_sid))


async def test_twilio_equals_native() -> None:
    call = load("dev_en_02.8k")
    async with running_service(ScriptTranscriber(call)) as h:
        expected = await native(h, call)
        got = await via_twilio(h, call)
    assert got == expected


async def test_audiohook_equals_native_and_sends_the_transcripts_back() -> None:
    call = load("dev_en_02.8k")
    async with running_service(ScriptTranscriber(call)) as h:
        expected = await native(h, call)
        client = audiohook.AudioHookClient(f"{h.url}/v1/adapters/audiohook")
        await client.connect()
        conversation = str(uuid.uuid4())
        opened = await client.open(conversation_id=conversation, language="en-US")
        assert opened["type"] == "opened", opened
        assert opened["parameters"]["media"] == [audiohook.stereo_offers()[0]]
        await client.stream_legs(call.customer, call.agent)
        await client.close()
        got = outcome(await call_events(h.url, conversation))
    assert got == expected
    # Every final transcript went back to Genesys, on the right channel (external = customer).
    sent = client.transcripts()
    finals = [f for f in expected.finals]
    assert len(sent) == len(finals)
    channels = ["customer", "agent"]  # the selected media: ["external", "internal"]
    assert sorted(
        (channels[t["channelId"]], t["alternatives"][0]["interpretations"][0]["transcript"]) for t in sent
    ) == sorted((f[1], f[4]) for f in finals)


@pytest.mark.parametrize(("fixture", "rate"), [("dev_en_02.8k", 8000), ("dev_en_02", 16000)])
async def test_freeswitch_stereo_equals_native(fixture: str, rate: int) -> None:
    call = load(fixture)
    assert call.rate == rate
    async with running_service(ScriptTranscriber(call)) as h:
        expected = await native(h, call)
        call_id = f"fs-{uuid.uuid4().hex[:8]}"
        ws = await freeswitch.connect(f"{h.url}/v1/adapters/freeswitch", {"mix": "stereo"})
        await freeswitch.send_metadata(
            ws, {"call_id": call_id, "language": call.language, "rate": f"{rate // 1000}k"}
        )
        # mod_audio_fork's stereo: the caller (customer) on channel 0, the callee (agent) on channel 1.
        await freeswitch.stream(ws, [call.customer, call.agent], rate)
        await ws.close()
        await wait_ended(h.service, call_id)
        got = outcome(await call_events(h.url, call_id))
    assert got == expected


async def test_audiosocket_pair_equals_native() -> None:
    call = load("dev_en_02.8k")
    async with running_service(ScriptTranscriber(call)) as h:
        expected = await native(h, call)
        call_id = await stream_pair(
            h.audiosocket_port,
            call.agent,
            call.customer,
            joined=lambda cid: legs_attached(h.service, cid, {"agent", "customer"}),
        )
        await wait_ended(h.service, call_id)
        got = outcome(await call_events(h.url, call_id))
    assert (got.finals, got.rules, got.signals, got.ended) == (
        expected.finals,
        expected.rules,
        expected.signals,
        expected.ended,
    )


async def test_mandarin_call_through_twilio_equals_native() -> None:
    call = load("dev_zh_02.8k")
    async with running_service(ScriptTranscriber(call)) as h:
        expected = await native(h, call)
        got = await via_twilio(h, call)
    assert got == expected
    assert all(np.isfinite(f[2]) for f in got.finals)
