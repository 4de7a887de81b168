"""The utterance step and the call session, with scripted fakes instead of models.

A scripted VAD decides which frames are speech, a scripted transcriber says what each request
"heard", and a scripted guide stands in for the call's CallGuide (same contract: a partial's
critical warning, borne out or retracted by the final).  Checked here: what one ASR result becomes
(guard, masking once, guidance, retraction of a partial's warning), that the live session publishes
exactly that, and that the offline path produces the same events from the same ASR results.  The
``model`` variants use the real guidance engine on the hash encoder (building it trains the line
models: minutes on a busy machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import stream.live.utterance as utterance_module
from assist.engine import CallGuide
from assist.events import (
    CallEnded,
    CallStarted,
    ComplianceRetracted,
    ComplianceWarning,
    ErrorEvent,
    EventBody,
    Speaker,
    Suggestion,
    TranscriptFinal,
    TranscriptPartial,
)
from assist.masking import MaskResult, mask_text
from stream.asr.base import AsrRequest, AsrResult
from stream.asr.scheduler import AsrScheduler
from stream.audio.endpointer import UtteranceEnded
from stream.live.bus import CallLog
from stream.live.legs import LegEndpoints, endpoint_recording
from stream.live.pipeline import AsrPlan
from stream.live.session import CallParams, CallSession
from stream.live.utterance import Heard, UtteranceStep
from stream.offline.transcribe import hear_legs, judge, transcripts
from stream.settings import Settings, load_settings
from tests.replay.harness import test_engine as hash_engine

RATE = 16000
FRAME = 512  # samples per VAD frame (the scripted VAD's, like Silero's)
SPEECH_FRAMES = 60  # 1.9 s of speech: long enough for a partial at MIN_PARTIAL_S
PAUSE_FRAMES = 25  # 0.8 s: more than MIN_SILENCE_MS closes the utterance
MIN_SILENCE_MS = 300
MIN_PARTIAL_S = 0.5
WAIT_S = 10.0  # for an event the session publishes from another task

THREAT = "If you don't pay we will have you arrested"  # raises a critical warning from a partial
THREAT_RULE = "false_criminal_threat"
RETRACTED = "not in the final transcript"
NOT_A_THREAT = "If you don't pay by Friday, we will have to add the late fee your contract allows."
PHONE_ZH = "我的电话是13800138000"
PHONE_ZH_MASKED = "我的电话是[电话 ****8000]"


def settings(**extra: Any) -> Settings:
    return load_settings(
        None,
        {
            "endpoint.min_silence_ms": MIN_SILENCE_MS,
            "endpoint.min_partial_s": MIN_PARTIAL_S,
            "endpoint.partial_interval_s": MIN_PARTIAL_S,
            "endpoint.speculative": False,
            **extra,
        },
    )


class ScriptedVad:
    """Speech for the frames the script says, silence after it."""

    frame_samples = FRAME

    def __init__(self, script: Sequence[bool]) -> None:
        self.script = list(script)
        self.calls = 0

    def speech_prob(self, frame: npt.NDArray[np.float32]) -> float:
        prob = 1.0 if self.calls < len(self.script) and self.script[self.calls] else 0.0
        self.calls += 1
        return prob

    def reset(self) -> None:
        pass


def vads(*scripts: Sequence[bool]) -> Callable[[], ScriptedVad]:
    """One scripted VAD per leg, in the order the call's legs are given."""
    queue: Iterator[Sequence[bool]] = iter(scripts)
    return lambda: ScriptedVad(next(queue))


def turns(*runs: tuple[bool, int]) -> list[bool]:
    out: list[bool] = []
    for speech, frames in runs:
        out += [speech] * frames
    return out


def frames(n: int) -> npt.NDArray[np.float32]:
    return np.zeros(n * FRAME, dtype=np.float32)


class ScriptedTranscriber:
    """Finals get the next scripted text; partials get ``partial`` (empty: the guard drops it)."""

    name = "scripted"

    def __init__(self, finals: Sequence[str], partial: str = "") -> None:
        self.finals = list(finals)
        self.partial = partial
        self.requests: list[AsrRequest] = []
        self._lock = threading.Lock()

    def transcribe(self, request: AsrRequest) -> AsrResult:
        with self._lock:
            self.requests.append(request)
            text = self.partial if request.partial else self.finals.pop(0)
        return AsrResult(text=text, no_speech_prob=0.0, avg_logprob=-0.1, compute_ms=1.0)


def result(text: str, *, no_speech: float = 0.0, logprob: float = -0.1) -> AsrResult:
    return AsrResult(text=text, no_speech_prob=no_speech, avg_logprob=logprob, compute_ms=1.0)


def heard(text: str, uid: str = "agent-1", leg: str = "agent", language: str = "en", **kw: Any) -> Heard:
    audio = np.zeros(2 * RATE, dtype=np.float32)
    ended = UtteranceEnded(leg, uid, 1.0, 3.0, audio, "silence")
    return Heard.of(ended, AsrRequest(audio, language), result(text, **kw))


class ScriptedGuide:
    """A CallGuide stand-in: an agent's "arrested" raises a critical warning (from a partial once per
    utterance; a final retracts a partial's warning it does not repeat); every final gets a
    suggestion naming its turn.  Records what it was shown; fails on finals when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[str, Speaker, str, str]] = []
        self.fail = fail
        self._raised: set[str] = set()
        self._turn = 0

    def on_partial(self, speaker: Speaker, text: str, utterance_id: str) -> list[EventBody]:
        self.seen.append(("partial", speaker, text, utterance_id))
        if speaker != "agent" or "arrested" not in text or utterance_id in self._raised:
            return []
        self._raised.add(utterance_id)
        return [warning(utterance_id, text, partial=True)]

    def on_final(self, speaker: Speaker, text: str, utterance_id: str) -> list[EventBody]:
        self.seen.append(("final", speaker, text, utterance_id))
        if self.fail:
            raise RuntimeError("guide exploded")
        self._turn += 1
        early = utterance_id in self._raised
        self._raised.discard(utterance_id)
        out: list[EventBody] = []
        if speaker == "agent" and "arrested" in text:
            if not early:
                out.append(warning(utterance_id, text, partial=False))
        elif early:
            out.append(ComplianceRetracted(utterance_id, THREAT_RULE, "critical", RETRACTED))
        out.append(Suggestion(utterance_id, f"turn-{self._turn}", ()))
        return out

    def state(self) -> dict[str, Any]:
        return {"turns": self._turn}


class GuideEngine:
    """What CallSession asks of a GuidanceEngine: a new call's guide."""

    def __init__(self, guide: CallGuide) -> None:
        self.guide = guide

    def new_call(self, language: str, metadata: Any = None) -> CallGuide:
        return self.guide


def warning(utterance_id: str, quote: str, *, partial: bool) -> ComplianceWarning:
    return ComplianceWarning(utterance_id, "agent", THREAT_RULE, "critical", quote, "", "", "", 1.0, partial)


def scripted_guide() -> CallGuide:
    return ScriptedGuide()  # type: ignore[return-value]


def real_guide() -> CallGuide:
    return hash_engine().new_call("en", {})


GUIDES = [
    pytest.param(scripted_guide, id="scripted"),
    pytest.param(real_guide, id="hash-engine", marks=pytest.mark.model),
]


def types(bodies: Sequence[EventBody]) -> list[str]:
    return [type(b).TYPE for b in bodies]


# -- the step on its own ------------------------------------------------------------------------


@pytest.mark.parametrize("make_guide", GUIDES)
def test_partial_then_final_then_retraction(make_guide: Callable[[], CallGuide]) -> None:
    step = UtteranceStep("en", make_guide(), masking=True)
    early = step.partial(heard(THREAT))
    assert isinstance(early[0], TranscriptPartial) and early[0].text == THREAT
    assert [(w.rule, w.partial) for w in early if isinstance(w, ComplianceWarning)] == [
        ("false_criminal_threat", True)
    ]
    final = step.final(heard(NOT_A_THREAT), latency_ms=12.34)
    assert isinstance(final[0], TranscriptFinal) and final[0].latency_ms == 12.3
    assert ComplianceRetracted("agent-1", THREAT_RULE, "critical", RETRACTED) in final
    assert step.partial(heard(THREAT)) == [], "a partial arriving after its final is ignored"
    assert step.finals == 1


def test_masking_is_applied_once_before_anything_is_shown_or_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(text: str, **kw: Any) -> MaskResult:
        calls.append(text)
        return mask_text(text, **kw)

    monkeypatch.setattr(utterance_module, "mask_text", counting)
    guide = ScriptedGuide()
    step = UtteranceStep("zh", guide, masking=True)  # type: ignore[arg-type]
    partial = step.partial(heard(PHONE_ZH, language="zh"))
    final = step.final(heard(PHONE_ZH, language="zh"), latency_ms=0.0)
    assert [b.text for b in (*partial, *final) if isinstance(b, TranscriptPartial | TranscriptFinal)] == [
        PHONE_ZH_MASKED,
        PHONE_ZH_MASKED,
    ]
    assert [text for *_, text, _ in guide.seen] == [PHONE_ZH_MASKED, PHONE_ZH_MASKED]
    assert calls == [PHONE_ZH, PHONE_ZH], "one masking pass per ASR result"

    plain = UtteranceStep("zh", None, masking=False)
    assert plain.text(heard(PHONE_ZH, language="zh")) == PHONE_ZH


def test_the_guard_drops_hallucinations_and_the_final_still_closes_the_utterance() -> None:
    guide = ScriptedGuide()
    step = UtteranceStep("en", guide, masking=True)  # type: ignore[arg-type]
    assert step.final(heard("Thank you for watching!", no_speech=0.9, logprob=-1.5), latency_ms=0.0) == []
    assert step.partial(heard("hello there")) == [], "the utterance is closed even without a transcript"
    assert guide.seen == [] and step.finals == 0


def test_a_guidance_failure_is_an_error_event_and_the_transcript_stands() -> None:
    step = UtteranceStep("en", ScriptedGuide(fail=True), masking=True)  # type: ignore[arg-type]
    out = step.final(heard("hello there"), latency_ms=0.0)
    assert types(out) == ["transcript.final", "error"]
    assert isinstance(out[1], ErrorEvent) and out[1].code == "guidance_failed"


# -- shared endpointing ------------------------------------------------------------------------


def test_live_and_offline_endpointing_cut_the_same_utterances() -> None:
    script = turns((False, 10), (True, SPEECH_FRAMES), (False, PAUSE_FRAMES), (True, 20), (False, 40))
    audio = frames(len(script))
    offline = endpoint_recording({"agent": audio}, settings().endpoint, vad=vads(script))
    live = LegEndpoints(settings().endpoint, ["agent"], vad=vads(script))
    events = [ev for i in range(0, len(audio), 1000) for ev in live.push({"agent": audio[i : i + 1000]})]
    events += live.flush()
    got = [(e.utterance_id, e.start, e.end) for e in events if isinstance(e, UtteranceEnded)]
    assert got == [(e.utterance_id, e.start, e.end) for e in offline] and len(got) == 2
    assert live.duration == pytest.approx(len(audio) / RATE)


# -- the live session --------------------------------------------------------------------------


class Call:
    """A CallSession on an in-memory log and a real scheduler over a scripted transcriber."""

    def __init__(self, transcriber: ScriptedTranscriber, scripts: dict[str, list[bool]], **kw: Any) -> None:
        self.settings = settings()
        self.scheduler = AsrScheduler(transcriber, final_queue=8, partial_queue=2)
        self.log = CallLog("c1", limit=1000)
        params = CallParams("c1", "en", 16000, "pcm_s16le", tuple(scripts), {})
        self.session = CallSession(
            params,
            settings=self.settings,
            scheduler=self.scheduler,
            plan=AsrPlan(),
            log_=self.log,
            vad=vads(*scripts.values()),
            **kw,
        )

    def bodies(self) -> list[EventBody]:
        return [e.body for e in self.log.history()]

    async def until(self, kind: str) -> None:
        async with asyncio.timeout(WAIT_S):
            while kind not in types(self.bodies()):
                await asyncio.sleep(0.01)


@pytest.mark.parametrize("make_guide", GUIDES)
async def test_session_partial_warning_then_final_retracts_it(make_guide: Callable[[], CallGuide]) -> None:
    transcriber = ScriptedTranscriber([NOT_A_THREAT], partial=THREAT)
    agent = turns((True, SPEECH_FRAMES), (False, PAUSE_FRAMES))
    call = Call(transcriber, {"agent": agent}, engine=GuideEngine(make_guide()))
    async with call.scheduler:
        await call.session.start()
        await call.session.feed({"agent": frames(SPEECH_FRAMES // 2)})
        await call.until("compliance.warning")  # the partial is judged before the utterance ends
        await call.session.feed({"agent": frames(SPEECH_FRAMES // 2 + PAUSE_FRAMES)})
        await call.session.finish("stop")
    got = call.bodies()
    kinds = types(got)
    assert kinds[:4] == ["call.started", "transcript.partial", "compliance.warning", "transcript.final"]
    assert kinds[4] == "compliance.retracted" and kinds[-1] == "call.ended"
    warning = got[2]
    assert isinstance(warning, ComplianceWarning) and warning.partial
    assert call.session.finals == 1
    assert call.session.duration == pytest.approx((SPEECH_FRAMES + PAUSE_FRAMES) * FRAME / RATE)


async def test_session_masks_partials_and_finals() -> None:
    transcriber = ScriptedTranscriber([PHONE_ZH], partial=PHONE_ZH)
    call = Call(transcriber, {"customer": turns((True, SPEECH_FRAMES), (False, PAUSE_FRAMES))})
    async with call.scheduler:
        await call.session.start()
        await call.session.feed({"customer": frames(SPEECH_FRAMES // 2)})
        await call.until("transcript.partial")
        await call.session.feed({"customer": frames(SPEECH_FRAMES // 2 + PAUSE_FRAMES)})
        await call.session.finish("stop")
    texts = [b.text for b in call.bodies() if isinstance(b, TranscriptPartial | TranscriptFinal)]
    assert texts == [mask_text(PHONE_ZH, language="en").text] * 2
    assert all("13800138000" not in t for t in texts)


# -- live and offline agree --------------------------------------------------------------------

TWO_LEGS = {
    "agent": turns((True, SPEECH_FRAMES), (False, 70), (True, 30), (False, PAUSE_FRAMES)),
    "customer": turns((False, 75), (True, 40), (False, PAUSE_FRAMES)),
}
SAID = {  # in the order the utterances end, which is the order they are judged in
    "agent": ["Hello, this is Dan calling about your account.", THREAT],
    "customer": ["My number is 13800138000, call me later."],
}


def comparable(bodies: Sequence[EventBody]) -> list[EventBody]:
    """Events minus what depends on the clock (latency) and what only a live call has (partials)."""
    return [
        dataclasses.replace(b, latency_ms=0.0) if isinstance(b, TranscriptFinal) else b
        for b in bodies
        if not isinstance(b, CallStarted | CallEnded | TranscriptPartial)
    ]


class PerLegTranscriber(ScriptedTranscriber):
    """Scripted finals per leg, told apart by the scripted audio (each leg's samples carry its mark)."""

    def __init__(self) -> None:
        super().__init__([])
        self.per_leg = {leg: list(texts) for leg, texts in SAID.items()}

    def transcribe(self, request: AsrRequest) -> AsrResult:
        if request.partial:
            return result("")
        leg = "agent" if float(np.max(request.audio)) < 0.5 else "customer"
        with self._lock:
            return result(self.per_leg[leg].pop(0))


def leg_audio() -> dict[str, npt.NDArray[np.float32]]:
    return {
        "agent": np.full(len(TWO_LEGS["agent"]) * FRAME, 0.1, dtype=np.float32),
        "customer": np.full(len(TWO_LEGS["customer"]) * FRAME, 0.9, dtype=np.float32),
    }


@pytest.mark.parametrize("make_guide", GUIDES)
async def test_live_and_offline_produce_the_same_events_for_the_same_asr_results(
    make_guide: Callable[[], CallGuide],
) -> None:
    audio = leg_audio()
    offline_step = UtteranceStep("en", make_guide(), masking=True)
    offline = hear_legs(
        audio,
        language="en",
        transcriber=PerLegTranscriber(),
        settings=settings(),
        plan=AsrPlan(),
        vad=vads(*TWO_LEGS.values()),
    )
    offline_bodies = [b for _, bodies in judge(offline, offline_step) for b in bodies]

    call = Call(PerLegTranscriber(), TWO_LEGS, engine=GuideEngine(make_guide()))
    async with call.scheduler:
        await call.session.start()
        n = max(len(a) for a in audio.values())
        for i in range(0, n, 1600):  # 0.1 s at a time, both legs together as a transport sends them
            await call.session.feed({leg: a[i : i + 1600] for leg, a in audio.items()})
        await call.session.finish("stop")

    live = comparable(call.bodies())
    assert [b.text for b in live if isinstance(b, TranscriptFinal)] == [
        "Hello, this is Dan calling about your account.",
        "My number is [phone ****8000], call me later.",
        THREAT,
    ]
    assert live == comparable(offline_bodies)
    assert any(isinstance(b, ComplianceWarning) and not b.partial for b in live)


def test_offline_transcripts_are_guarded_and_masked_like_live_finals() -> None:
    heard_ = hear_legs(
        leg_audio(),
        language="en",
        transcriber=PerLegTranscriber(),
        settings=settings(),
        plan=AsrPlan(),
        vad=vads(*TWO_LEGS.values()),
    )
    assert [h.leg for h in heard_] == ["agent", "customer", "agent"], "judged in the order they ended"
    got = transcripts(heard_, language="en", masking=True)
    assert [(u.speaker, u.text) for u in got] == [
        ("agent", "Hello, this is Dan calling about your account."),
        ("customer", "My number is [phone ****8000], call me later."),
        ("agent", THREAT),
    ]
    assert [u.start for u in got] == sorted(u.start for u in got)
