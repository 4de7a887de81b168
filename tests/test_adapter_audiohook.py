"""Genesys AudioHook adapter: request signatures, the sans-IO core, and the endpoint with a replay client."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import aiohttp
import numpy as np
import pytest

from assist.events import TranscriptFinal
from stream.audio import codecs
from stream.ingest.audiohook import AudioHookProtocol, Handshake
from stream.ingest.events import (
    EndOfCall,
    EndUtterances,
    LegAudio,
    LegGap,
    MetadataChanged,
    Notice,
    OpenCall,
    Send,
    Violation,
)
from stream.ingest.httpsig import SignatureVerifier, SignedRequest
from stream.settings import LimitSettings
from tests.replay.audiohook import AudioHookClient, sign, stereo_offers
from tests.replay.harness import (
    DurationTranscriber,
    call_events,
    errors,
    kinds,
    running_service,
    silence,
    tone,
)

PATH = "/v1/adapters/audiohook"
API_KEY = "replay-api-key-0123456789"
SECRET_B64 = base64.b64encode(b"replay-client-secret-0123456789!").decode()
KEYS = {"adapters.audiohook_api_keys": [API_KEY], "auth.enabled": True}

# The published documentation example (Genesys AudioHook protocol, "Establishing Connection").
DOC_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
DOC_SECRET = base64.b64decode("TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
DOC_HEADERS = {
    "host": "audiohook.example.com",
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "x-api-key": DOC_KEY,
    "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
    "signature-input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" '
    '"audiohook-session-id" "audiohook-correlation-id" "x-api-key");'
    'keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";'
    'alg="hmac-sha256";created=1641013200;expires=3282026430',
}
DOC_TARGET = "/api/v1/voicebiometrics/ws"
DOC_TIME = 1641013202.0


# -- signatures ----------------------------------------------------------------------------------


def doc_request(**changes: str) -> SignedRequest:
    return SignedRequest("GET", DOC_TARGET, {**DOC_HEADERS, **changes})


def test_documentation_example_signature_verifies_once() -> None:
    verifier = SignatureVerifier(DOC_SECRET, clock=lambda: DOC_TIME)
    assert verifier.verify(doc_request(), DOC_KEY) is None
    assert verifier.verify(doc_request(), DOC_KEY) == "nonce was already used (replayed request)"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c1"}, "signature does not match"),
        ({"host": "evil.example.com"}, "signature does not match"),
        ({"signature": "sig1=:AAAA:"}, "signature does not match"),
        ({"signature-input": "sig1=(oops"}, "signature header fields do not parse"),
        ({"signature-input": DOC_HEADERS["signature-input"].replace('"x-api-key")', ")")}, "does not cover"),
        (
            {"signature-input": DOC_HEADERS["signature-input"].replace("VGhpc0lzQVVuaXF1ZU5vbmNl", "short")},
            "nonce",
        ),
        ({"signature": "", "signature-input": ""}, "request is not signed"),
    ],
)
def test_bad_signatures_are_refused(change: dict[str, str], reason: str) -> None:
    verifier = SignatureVerifier(DOC_SECRET, clock=lambda: DOC_TIME)
    problem = verifier.verify(doc_request(**change), DOC_KEY)
    assert problem is not None and reason in problem


def test_old_signatures_and_other_keys_are_refused() -> None:
    assert "older than" in (
        SignatureVerifier(DOC_SECRET, clock=lambda: DOC_TIME + 60).verify(doc_request(), DOC_KEY) or ""
    )
    other = SignatureVerifier(DOC_SECRET, clock=lambda: DOC_TIME).verify(doc_request(), "another-key")
    assert other == "no signature with keyid equal to the X-API-KEY header"
    wrong = SignatureVerifier(b"another secret, 32 bytes long!!!", clock=lambda: DOC_TIME)
    assert wrong.verify(doc_request(), DOC_KEY) == "signature does not match"


def test_replay_client_signatures_verify() -> None:
    url = "ws://127.0.0.1:8080/v1/adapters/audiohook?x=1"
    headers = {k: v for k, v in DOC_HEADERS.items() if k.startswith(("audiohook", "x-api"))}
    signed = sign(url, headers, DOC_KEY, DOC_SECRET, created=int(DOC_TIME))
    request = SignedRequest(
        "GET",
        "/v1/adapters/audiohook?x=1",
        {
            **headers,
            "host": "127.0.0.1:8080",
            "signature": signed["Signature"],
            "signature-input": signed["Signature-Input"],
        },
    )
    assert SignatureVerifier(DOC_SECRET, clock=lambda: DOC_TIME).verify(request, DOC_KEY) is None


# -- core ----------------------------------------------------------------------------------------

SESSION = str(uuid.uuid4())
ORG = str(uuid.uuid4())


class Client:
    """Builds client messages for the core, tracking seq/serverseq/position like Genesys; the
    server messages the core queued are collected in ``inbox`` (see :meth:`take`)."""

    def __init__(self, core: AudioHookProtocol) -> None:
        self.core = core
        self.seq = 0
        self.serverseq = 0
        self.seconds = 0.0
        self.inbox: list[dict[str, Any]] = []

    def take(self) -> list[dict[str, Any]]:
        """The server messages queued since the last take, in order."""
        self._receive()
        out, self.inbox = self.inbox, []
        return out

    def _receive(self) -> None:
        for item in self.core.data_to_send():
            assert isinstance(item, Send) and isinstance(item.data, str)
            message = json.loads(item.data)
            self.serverseq = message["seq"]
            self.inbox.append(message)

    def text(self, kind: str, params: dict[str, Any], **override: Any) -> list[Any]:
        self.seq += 1
        msg = {
            "version": "2",
            "id": SESSION,
            "type": kind,
            "seq": self.seq,
            "serverseq": self.serverseq,
            "position": f"PT{self.seconds:.3f}S",
            "parameters": params,
        }
        msg.update(override)
        events = self.core.receive_text(json.dumps(msg))
        self._receive()
        return events

    def audio(self, data: bytes, channels: int = 2, mulaw: bool = True) -> list[Any]:
        self.seconds += len(data) / channels / (1 if mulaw else 2) / 8000
        return self.core.receive_bytes(data)

    def open(self, media: list[dict[str, Any]] | None = None, **params: Any) -> list[Any]:
        body = {
            "organizationId": ORG,
            "conversationId": str(uuid.uuid4()),
            "participant": {"id": str(uuid.uuid4()), "ani": "", "aniName": "", "dnis": ""},
            "media": media if media is not None else stereo_offers(),
            **params,
        }
        return self.text("open", body)


def new_core(unauthorized: str | None = None) -> tuple[AudioHookProtocol, Client]:
    core = AudioHookProtocol(
        Handshake(SESSION, ORG, str(uuid.uuid4())),
        limits=LimitSettings(max_frame_bytes=16000),
        default_language="zh",
        unauthorized=unauthorized,
    )
    return core, Client(core)


def opened(media: list[dict[str, Any]] | None = None, **params: Any) -> tuple[AudioHookProtocol, Client, Any]:
    core, client = new_core()
    (session,) = client.open(media, **params)
    assert isinstance(session, OpenCall)
    core.call_opened(session.params.call_id)
    (reply,) = client.take()
    assert reply["type"] == "opened"
    return core, client, session


def test_open_picks_stereo_pcmu_and_maps_channels() -> None:
    core, client, session = opened(language="en-US", customConfig={"campaign": "autumn", "nested": {"x": 1}})
    assert core.media == {
        "type": "audio",
        "format": "PCMU",
        "channels": ["external", "internal"],
        "rate": 8000,
    }
    p = session.params
    assert (p.language, p.legs, p.encoding, p.sample_rate) == ("en", ("customer", "agent"), "mulaw", 8000)
    assert p.metadata["campaign"] == "autumn" and "nested" not in p.metadata
    assert p.metadata["genesys_organization_id"] == ORG.lower()
    (audio,) = client.audio(codecs.encode_mulaw(np.zeros(320, dtype=np.int16)))
    assert isinstance(audio, LegAudio) and set(audio.legs) == {"customer", "agent"}


@pytest.mark.parametrize(
    ("offers", "chosen"),
    [
        (  # stereo L16 beats mono PCMU; the offered channel order is kept
            [
                {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
                {"type": "audio", "format": "L16", "channels": ["internal", "external"], "rate": 8000},
            ],
            1,
        ),
        ([{"type": "audio", "format": "L16", "channels": ["internal"], "rate": 8000}], 0),
        (
            [
                {"type": "audio", "format": "OPUS", "channels": ["external", "internal"], "rate": 8000},
                {"type": "audio", "format": "PCMU", "channels": ["internal"], "rate": 8000},
            ],
            1,
        ),
    ],
)
def test_media_choice(offers: list[dict[str, Any]], chosen: int) -> None:
    core, _client, session = opened(offers)
    assert core.media == offers[chosen]
    legs = tuple({"external": "customer", "internal": "agent"}[c] for c in offers[chosen]["channels"])
    assert session.params.legs == legs


def test_l16_audio_is_little_endian_in_channel_order() -> None:
    offer = {"type": "audio", "format": "L16", "channels": ["internal", "external"], "rate": 8000}
    _core, client, _ = opened([offer])
    frame = np.stack([np.full(800, 1000, np.int16), np.full(800, -2000, np.int16)], axis=1).reshape(-1)
    (audio,) = client.audio(frame.astype("<i2").tobytes(), mulaw=False)
    assert isinstance(audio, LegAudio)
    assert audio.legs["agent"][-100:].mean() == pytest.approx(1000 / 32768, rel=0.01)
    assert audio.legs["customer"][-100:].mean() == pytest.approx(-2000 / 32768, rel=0.01)


def test_open_refusals_are_disconnects() -> None:
    _, client = new_core()
    *_, violation = client.open([{"type": "audio", "format": "OPUS", "channels": ["external"], "rate": 8000}])
    (msg,) = client.take()
    assert (msg["type"], msg["parameters"]["reason"]) == ("disconnect", "error")
    assert isinstance(violation, Violation) and violation.code == "unsupported_format"
    _, client = new_core()
    client.open(language="fr-FR")
    (reply,) = client.take()
    assert reply["parameters"]["reason"] == "error"
    _, client = new_core(unauthorized="unknown API key")
    *_, violation = client.open()
    (reply,) = client.take()
    assert reply["parameters"] == {"reason": "unauthorized", "info": "unknown API key"}
    # After a disconnect the client closes and gets closed, with its close's seq.
    client.text("close", {"reason": "disconnect"})
    (closed,) = client.take()
    assert (closed["type"], closed["clientseq"], closed["seq"]) == ("closed", 2, 2)


def test_probe_opens_no_call_and_supported_languages() -> None:
    _core, client = new_core()
    # A probe is answered at once: no call to open.
    assert client.open(conversationId="00000000-0000-0000-0000-000000000000", supportedLanguages=True) == []
    (reply,) = client.take()
    assert reply["type"] == "opened" and reply["parameters"]["supportedLanguages"] == ["en-US", "zh-CN"]


def test_ping_pause_resume_discard_update_error_close() -> None:
    _core, client, _ = opened()
    assert client.text("ping", {"rtt": "PT0.05S"}) == []
    (pong,) = client.take()
    assert (pong["type"], pong["seq"], pong["clientseq"]) == ("pong", 2, 2)
    client.audio(b"\xff" * 3200)  # 0.2 s
    # A pause ends the utterances in progress (their transcripts go out now); saying it twice is harmless.
    assert client.text("paused", {}) == [EndUtterances()] and client.text("paused", {}) == []
    [violation] = [ev for ev in client.audio(b"\xff" * 320) if isinstance(ev, Violation)]
    assert violation.code == "audio_while_paused"


def test_discarded_and_resumed_gaps_become_silence_up_to_the_position() -> None:
    core, client, _ = opened()
    client.audio(b"\xff" * 3200)  # 0.2 s
    assert client.text("paused", {}) == [EndUtterances()]
    # The protocol's position does not advance while paused: nothing to fill on resume.
    assert client.text("resumed", {"start": "PT0.2S", "discarded": "PT3S"}) == []
    assert client.text("paused", {}) == [EndUtterances()]
    client.seconds += 1.0  # this client's position did move on: call time follows it
    (fill,) = client.text("resumed", {"start": "PT0.2S", "discarded": "PT1S"})
    assert isinstance(fill, LegGap) and len(fill.legs["agent"]) == pytest.approx(16000, abs=80)
    # A 'discarded' announcing more than the position shows is only filled up to the position,
    # and one starting after the position is noted, not filled (the reference suite sends such).
    assert client.text("discarded", {"start": "PT1.2S", "discarded": "PT0.3S"}) == []
    (odd,) = client.text("discarded", {"start": "PT6.3S", "discarded": "PT0.3S"})
    assert isinstance(odd, Notice) and odd.code == "invalid_position"
    update = client.text("update", {"language": "en-US"})
    assert update[:2] == [MetadataChanged({"genesys_language": "en-US"}), EndUtterances()]
    assert isinstance(update[2], Notice) and update[2].code == "language_change_ignored"
    (note,) = client.text("error", {"code": 500, "message": "tough stuff"})
    assert isinstance(note, Notice) and "500" in note.message
    *_, close = client.text("close", {"reason": "end"})
    assert close == EndOfCall("stop")
    final = TranscriptFinal("agent", "agent-0001", "hello there", "zh", 0.25, 1.0, 10.0)
    core.receive_transcript(final, "c1")
    (event,) = client.take()
    data = event["parameters"]["entities"][0]["data"]
    assert event["type"] == "event" and data["channelId"] == 1 and data["isFinal"] is True
    assert (data["offset"], data["duration"]) == ("PT0.25S", "PT0.75S")
    tokens = data["alternatives"][0]["interpretations"][0]["tokens"]
    assert [t["value"] for t in tokens] == ["hello", "there"] and tokens[1]["offset"] > tokens[0]["offset"]
    core.call_ended()
    (closed,) = client.take()
    assert closed["type"] == "closed" and closed["clientseq"] == client.seq


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda c: c.core.receive_text("{nope"), "bad_json"),
        (lambda c: c.text("ping", {}, version="1"), "invalid_message"),
        (lambda c: c.text("ping", {}, id=str(uuid.uuid4())), "invalid_message"),
        (lambda c: c.text("ping", {}, seq=c.seq + 5), "out_of_order"),
        (lambda c: c.text("ping", {}, serverseq=99), "out_of_order"),
        (lambda c: c.text("ping", {}, position="PT0S"), "invalid_position"),
        (lambda c: c.text("ping", {}, position="1.5s"), "invalid_message"),
        (lambda c: c.text("dance", {}), "unknown_type"),
        (lambda c: c.text("open", {}), "duplicate_open"),
        (lambda c: c.text("discarded", {"start": "PT0S"}), "invalid_message"),
        (lambda c: c.core.receive_bytes(b"\xff" * 3), "misaligned_frame"),
        (lambda c: c.core.receive_bytes(b"\xff" * 16002), "message_too_big"),
        (lambda c: c.core.receive_text(" " * 70_000), "message_too_big"),
    ],
)
def test_violations_get_a_disconnect_and_keep_the_audio(mutate: Any, code: str) -> None:
    core, client, _ = opened()
    client.audio(b"\x10" * 3200)
    events = mutate(client)
    assert isinstance(events[0], LegAudio), "the resampler tails come first"
    (reply,) = client.take()
    assert (reply["type"], reply["parameters"]["reason"]) == ("disconnect", "error")
    assert isinstance(events[-1], Violation) and events[-1].code == code and events[-1].fatal
    assert core.receive_bytes(b"\xff" * 320) == []  # stragglers ignored, no second disconnect


def test_messages_before_open() -> None:
    _, client = new_core()
    *_, violation = client.text("ping", {})
    assert isinstance(violation, Violation) and violation.code == "not_opened"
    core, _ = new_core()
    *_, late = core.receive_bytes(b"\xff" * 320)
    assert isinstance(late, Violation) and late.code == "not_opened"


def test_a_conversation_with_a_call_gets_one_scoped_to_the_session_then_a_disconnect() -> None:
    core, client = new_core()
    (first,) = client.open()
    assert isinstance(first, OpenCall)
    (retry,) = core.call_refused("call_conflict", "call is ending")
    assert isinstance(retry, OpenCall) and retry.params.call_id == f"{first.params.call_id}:{SESSION}"
    assert client.take() == [], "nothing said to the client while another call id is tried"
    *_, refused = core.call_refused("call_conflict", "taken too")
    assert isinstance(refused, Violation) and refused.fatal
    (disconnect,) = client.take()
    assert disconnect["parameters"] == {"reason": "error", "info": "taken too"}


def test_timeouts_and_the_grace_after_disconnect() -> None:
    core, client = new_core()
    assert core.wait_s == core.limits.start_timeout_s
    *_, timeout = core.receive_timeout()
    assert isinstance(timeout, Violation) and timeout.code == "timeout"
    (disconnect,) = client.take()
    assert disconnect["parameters"]["reason"] == "error" and "open" in disconnect["parameters"]["info"]
    assert not core.done and core.wait_s == 5.0, "the client gets a grace to send close"
    assert core.receive_timeout() == [] and core.done, "then we stop waiting"


# -- endpoint ------------------------------------------------------------------------------------


def talk(seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(customer, agent) 8 kHz: the customer speaks, then both are silent."""
    return np.concatenate([tone(seconds), silence(1.0)]), silence(seconds + 1.0)


async def test_handshake_without_audiohook_headers_is_400() -> None:
    service = running_service(DurationTranscriber(), guidance=False)
    async with service as h, aiohttp.ClientSession() as http:
        resp = await http.get(h.http_url + PATH, headers={"X-API-KEY": API_KEY})
        assert resp.status == 400
        resp.release()


@pytest.mark.parametrize(
    ("overrides", "client_kwargs", "refused"),
    [
        (KEYS, {"api_key": "not-the-key-0123456789"}, True),
        ({"auth.enabled": True}, {}, True),  # no keys configured: refuse all
        ({"auth.enabled": False}, {}, False),  # auth off and no keys: open
        (KEYS, {}, False),
        ({**KEYS, "adapters.audiohook_client_secret": SECRET_B64}, {}, True),  # unsigned
        (
            {**KEYS, "adapters.audiohook_client_secret": SECRET_B64},
            {"client_secret": base64.b64decode(SECRET_B64)},
            False,
        ),
        ({**KEYS, "adapters.audiohook_client_secret": SECRET_B64}, {"client_secret": b"x" * 32}, True),
        (KEYS, {"client_secret": b"x" * 32}, True),  # signed, but we have no secret to check it
    ],
)
async def test_authentication(
    overrides: dict[str, Any], client_kwargs: dict[str, Any], refused: bool
) -> None:
    service = running_service(DurationTranscriber(), overrides=overrides, guidance=False)
    async with service as h:
        client = AudioHookClient(h.url + PATH, **client_kwargs)
        await client.connect()
        answer = await client.open()
        if refused:
            assert (answer["type"], answer["parameters"]["reason"]) == ("disconnect", "unauthorized")
            assert len(h.service.registry) == 0
            closed = await client.close("disconnect")
            assert closed["clientseq"] == 2
        else:
            assert answer["type"] == "opened"
            await client.close()


async def test_call_with_pause_and_transcripts_back() -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        client = AudioHookClient(h.url + PATH)
        await client.connect()
        conversation = str(uuid.uuid4())
        assert (await client.open(conversation_id=conversation, language="zh-CN"))["type"] == "opened"
        customer, agent = talk()
        await client.stream_legs(customer, agent)
        await client.send("paused", {})
        # The position does not advance while paused; 'discarded' says how long the pause was.
        await client.send("resumed", {"start": client.position, "discarded": "PT2S"})
        await client.stream_legs(silence(0.5), np.concatenate([tone(1.0), silence(1.0)])[:4000])
        await client.send("ping", {})
        await client.expect("pong")
        closed = await client.close()
        events = await call_events(h.url, conversation)
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert [f["speaker"] for f in finals] == ["customer", "agent"]
    assert finals[1]["start"] == pytest.approx(2.0, abs=0.3), "paused time is not on the position clock"
    assert events[-1]["reason"] == "stop" and events[0]["language"] == "zh"
    sent = client.transcripts()
    assert [t["channelId"] for t in sent] == [0, 1]  # external (customer), internal (agent)
    assert sent[1]["offset"] == f"PT{finals[1]['start']:g}S"
    assert closed["seq"] == client.serverseq and closed["clientseq"] == client.seq


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (b"\xff" * 3, "misaligned_frame"),
        (b"\xff" * 16002, "message_too_big"),
        ('{"version": "2", "type": "ping"}', "invalid_message"),
        ("out-of-order", "out_of_order"),
    ],
)
async def test_violation_mid_call_disconnects_keeps_audio_and_spares_other_calls(bad: Any, code: str) -> None:
    async with running_service(DurationTranscriber(), guidance=False) as h:
        good = AudioHookClient(h.url + PATH)
        await good.connect()
        good_call = str(uuid.uuid4())
        await good.open(conversation_id=good_call)
        client = AudioHookClient(h.url + PATH)
        await client.connect()
        conversation = str(uuid.uuid4())
        await client.open(conversation_id=conversation)
        await client.stream_legs(*talk())
        assert client.ws is not None
        if bad == "out-of-order":
            await client.send("ping", {}, seq=client.seq + 3)
        elif isinstance(bad, bytes):
            await client.ws.send(bad)
        else:
            await client.ws.send(bad)
        disconnect = await client.expect("disconnect")
        assert disconnect["parameters"]["reason"] == "error"
        closed = await client.close("disconnect")
        assert closed["type"] == "closed"
        events = await call_events(h.url, conversation)
        await good.stream_legs(*talk())
        await good.close()
        good_events = await call_events(h.url, good_call)
    assert "transcript.final" in kinds(events), "audio before the violation was lost"
    assert (code, True) in errors(events) and events[-1]["reason"] == "error"
    assert errors(good_events) == [] and good_events[-1]["reason"] == "stop"
    assert "transcript.final" in kinds(good_events)


async def test_probe_timeout_and_second_session_of_a_conversation() -> None:
    overrides = {"limits.start_timeout_s": 0.3}
    service = running_service(DurationTranscriber(), overrides=overrides, guidance=False)
    async with service as h:
        probe = AudioHookClient(h.url + PATH)
        await probe.connect()
        answer = await probe.open(conversation_id="00000000-0000-0000-0000-000000000000")
        assert answer["type"] == "opened" and len(h.service.registry) == 0
        await probe.close()
        silent = AudioHookClient(h.url + PATH)
        await silent.connect()
        disconnect = await silent.expect("disconnect")
        assert disconnect["parameters"]["reason"] == "error" and "open" in disconnect["parameters"]["info"]
        conversation = str(uuid.uuid4())
        first = AudioHookClient(h.url + PATH)
        await first.connect()
        await first.open(conversation_id=conversation)
        second = AudioHookClient(h.url + PATH)
        await second.connect()
        assert (await second.open(conversation_id=conversation))["type"] == "opened"
        assert h.service.registry.live(f"{conversation}:{second.session_id}") is not None
        await first.close()
        await second.close()
        await asyncio.sleep(0)
