"""AudioHook stream events and utterances: ``update`` and ``paused`` end the utterance in progress
(its transcript is sent at once), ``discarded`` keeps transcript times on the client's position
clock without splitting what the speaker said.  Real endpoint, energy VAD, a transcriber that says
how long each utterance was."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from tests.replay.audiohook import AudioHookClient
from tests.replay.harness import DurationTranscriber, running_service, silence, tone

PATH = "/v1/adapters/audiohook"
TOLERANCE_S = 0.1  # the VAD frame grid, the resampler delay and the end padding
PAD_S = 0.2  # endpoint.pad_ms default: kept after the last speech


def seconds(duration: str) -> float:
    assert duration.startswith("PT") and duration.endswith("S")
    return float(duration[2:-1])


def spans(client: AudioHookClient) -> list[tuple[int, float, float]]:
    """(channelId, offset, duration) of every transcript sent back, in order."""
    return [(t["channelId"], seconds(t["offset"]), seconds(t["duration"])) for t in client.transcripts()]


async def start(url: str) -> AudioHookClient:
    client = AudioHookClient(url + PATH)
    await client.connect()
    assert (await client.open(conversation_id=str(uuid.uuid4())))["type"] == "opened"
    return client


async def speak(client: AudioHookClient, speech_s: float, then_silence_s: float = 0.0) -> None:
    """The customer (external, channel 0) speaks, then is silent; the agent stays silent."""
    customer = np.concatenate([tone(speech_s), silence(then_silence_s)])
    await client.stream_legs(customer, silence(speech_s + then_silence_s))


def near(actual: tuple[int, float, float], expected: tuple[int, float, float]) -> bool:
    return actual[0] == expected[0] and all(
        abs(a - e) <= TOLERANCE_S for a, e in zip(actual[1:], expected[1:], strict=True)
    )


@pytest.mark.parametrize("language", ["en-US", "zh-CN"])
async def test_update_mid_speech_ends_the_utterance_there(language: str) -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        client = await start(h.url)
        await speak(client, 1.0)
        await client.send("update", {"language": language})  # a changed language, or the same
        await speak(client, 1.0, then_silence_s=1.0)
        await client.close()
    first, second = spans(client)
    assert near(first, (0, 0.0, 1.0)), first
    assert near(second, (0, 1.0, 1.0 + PAD_S)), second


async def test_paused_mid_speech_sends_the_transcript_while_paused() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        client = await start(h.url)
        await speak(client, 1.0)
        await client.send("paused", {})
        event = await client.expect("event", timeout=5.0)  # no resume needed to get what was said
        assert event["parameters"]["entities"][0]["data"]["isFinal"] is True
        # The position does not advance while paused; the resumed stream goes on from 1.0 s.
        await client.send("resumed", {"start": client.position, "discarded": "PT3S"})
        await speak(client, 1.0, then_silence_s=1.0)
        await client.close()
    first, second = spans(client)
    assert near(first, (0, 0.0, 1.0)), first
    assert near(second, (0, 1.0, 1.0 + PAD_S)), second


async def test_discarded_mid_speech_keeps_one_utterance_on_the_position_clock() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        client = await start(h.url)
        await speak(client, 1.0)
        # The client dropped 0.5 s (longer than the pause that ends an utterance): its position moves on.
        client.position_extra += 0.5
        await client.send("discarded", {"start": "PT1S", "discarded": "PT0.5S"})
        await speak(client, 1.0, then_silence_s=1.0)
        # A later utterance on the other leg starts where the position says.
        agent = np.concatenate([tone(0.5), silence(1.0)])
        await client.stream_legs(silence(1.5), agent)
        await client.close()
    customer, agent_span = spans(client)
    assert near(customer, (0, 0.0, 2.5 + PAD_S)), customer  # 1.0 s + the 0.5 s gap + 1.0 s
    assert near(agent_span, (1, 3.5 - PAD_S, 0.5 + 2 * PAD_S)), agent_span


async def test_pause_and_update_in_silence_split_nothing() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        client = await start(h.url)
        await speak(client, 1.0, then_silence_s=1.0)
        await client.send("update", {"language": "en-US"})
        await client.send("paused", {})
        await client.send("resumed", {"start": client.position, "discarded": "PT0S"})
        await client.send("discarded", {"start": client.position, "discarded": "PT0S"})
        await speak(client, 1.0, then_silence_s=1.0)
        await client.close()
    got: list[Any] = spans(client)
    assert len(got) == 2
    assert near(got[0], (0, 0.0, 1.0 + PAD_S)) and near(got[1], (0, 2.0 - PAD_S, 1.0 + 2 * PAD_S)), got
