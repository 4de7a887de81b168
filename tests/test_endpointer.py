"""Endpointer behaviour, driven by a scripted VAD; plus Silero on a fixture call leg.

The scripted tests push ``arange`` audio (sample value == leg sample index), so
an utterance's audio proves exactly which samples it covers.
"""

from __future__ import annotations

import itertools
import json
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stream.audio.endpointer import (
    MAX_BRIDGED_GAP_S,
    Endpointer,
    EndpointEvent,
    PartialAudio,
    SpeculativeEnd,
    UtteranceEnded,
    UtteranceStarted,
)
from stream.audio.vad import SileroVad
from stream.settings import EndpointSettings

FIXTURES = Path(__file__).parent / "fixtures"
RATE = 16_000
F = 160  # scripted frames are 10 ms so boundaries are easy to reason about
SETTINGS = EndpointSettings(
    threshold=0.5,
    min_speech_ms=100,  # 10 frames
    min_silence_ms=200,  # 20 frames
    pad_ms=50,  # 5 frames
    max_utterance_s=20.0,
    partial_interval_s=0.5,
    min_partial_s=0.5,
    speculative=False,  # its own tests below
)


class ScriptedVad:
    """Answers from a script (bools or probabilities), one entry per frame; silence after it."""

    def __init__(self, script: Sequence[bool | float], frame_samples: int = F) -> None:
        self.frame_samples = frame_samples
        self.script = [float(s) for s in script]
        self.calls = 0
        self.resets = 0

    def speech_prob(self, frame: npt.NDArray[np.float32]) -> float:
        assert len(frame) == self.frame_samples
        prob = self.script[self.calls] if self.calls < len(self.script) else 0.0
        self.calls += 1
        return prob

    def reset(self) -> None:
        self.resets += 1


def script(*runs: tuple[bool | float, int]) -> list[bool | float]:
    out: list[bool | float] = []
    for value, frames in runs:
        out += [value] * frames
    return out


def ramp(n: int, offset: int = 0) -> npt.NDArray[np.float32]:
    return np.arange(offset, offset + n, dtype=np.float32)


def run(
    frames: Sequence[bool | float],
    settings: EndpointSettings = SETTINGS,
    *,
    chunk: int = 333,
    audio: npt.NDArray[np.float32] | None = None,
    flush: bool = True,
) -> list[EndpointEvent]:
    ep = Endpointer(ScriptedVad(frames), settings, leg="agent")
    audio = ramp(len(frames) * F) if audio is None else audio
    events: list[EndpointEvent] = []
    for i in range(0, len(audio), chunk):
        events += ep.push(audio[i : i + chunk])
    if flush:
        events += ep.flush()
    return events


def ended(events: list[EndpointEvent]) -> list[UtteranceEnded]:
    return [e for e in events if isinstance(e, UtteranceEnded)]


def samples(t: float) -> int:
    return round(t * RATE)


def assert_covers(e: UtteranceEnded, start: int, end: int) -> None:
    assert (samples(e.start), samples(e.end)) == (start, end)
    np.testing.assert_array_equal(e.audio, ramp(end - start, start))


def test_padding_kept_at_both_ends() -> None:
    events = run(script((False, 50), (True, 30), (False, 50)))
    assert [type(e) for e in events] == [UtteranceStarted, UtteranceEnded]
    start, end = events
    assert isinstance(start, UtteranceStarted) and isinstance(end, UtteranceEnded)
    assert start.utterance_id == end.utterance_id == "agent-0001"
    assert start.leg == end.leg == "agent"
    # Speech frames 50..79 -> samples 8000..12800, plus 5 frames (800 samples) either side.
    assert samples(start.start) == 7200
    assert_covers(end, 7200, 13600)
    assert end.reason == "silence"
    assert not end.audio.flags.writeable


def test_preroll_is_clipped_at_the_start_of_the_leg() -> None:
    (e,) = ended(run(script((False, 2), (True, 20), (False, 40))))
    assert_covers(e, 0, 22 * F + 5 * F)


def test_bursts_shorter_than_min_speech_are_dropped() -> None:
    events = run(script((False, 20), (True, 9), (False, 40), (True, 10), (False, 40)))
    (e,) = ended(events)
    assert e.utterance_id == "agent-0001"  # the dropped burst consumed no id
    assert_covers(e, (69 - 5) * F, (79 + 5) * F)
    assert sum(isinstance(x, UtteranceStarted) for x in events) == 1


def test_short_pauses_are_bridged() -> None:
    (e,) = ended(run(script((False, 20), (True, 30), (False, 19), (True, 30), (False, 40))))
    assert_covers(e, 15 * F, (99 + 5) * F)


def test_pause_of_min_silence_splits_and_preroll_never_overlaps() -> None:
    wide_pad = EndpointSettings(**{**SETTINGS.__dict__, "pad_ms": 150})  # 15 frames each side
    first, second = ended(
        run(script((False, 20), (True, 30), (False, 25), (True, 30), (False, 40)), wide_pad)
    )
    assert_covers(first, 5 * F, (50 + 15) * F)
    # Second speech starts at frame 75; its 15-frame pre-roll would reach frame 60, inside `first`.
    assert_covers(second, 65 * F, (105 + 15) * F)
    assert (first.utterance_id, second.utterance_id) == ("agent-0001", "agent-0002")


def test_hysteresis_keeps_a_wavering_probability_in_speech() -> None:
    # 0.4 is below the 0.5 threshold but above 0.35 (= threshold - 0.15): still speech once started.
    (e,) = ended(run(script((0.1, 20), (0.9, 5), (0.4, 40), (0.2, 40), (0.4, 30))))
    assert_covers(e, 15 * F, (65 + 5) * F)  # the trailing 0.4 run never opens an utterance


def test_max_length_splits_at_the_quietest_recent_frame() -> None:
    settings = EndpointSettings(**{**SETTINGS.__dict__, "max_utterance_s": 2.0})  # 200 frames
    n = 600
    audio = np.full(n * F, 0.5, dtype=np.float32)
    audio[(10 + 180) * F : (10 + 181) * F] = 0.01  # a breath 1.85 s into the first utterance
    events = run(script((False, 15), (True, n - 65), (False, 50)), settings, audio=audio)
    parts = ended(events)
    assert [p.reason for p in parts] == ["max_length", "max_length", "max_length", "silence"]
    assert samples(parts[0].start) == 10 * F
    assert samples(parts[0].end) == 190 * F + F // 2  # the middle of the quiet frame
    for a, b in itertools.pairwise(parts):
        assert b.start == a.end  # contiguous: no audio lost or duplicated
    for p in parts:
        assert len(p.audio) == samples(p.end) - samples(p.start) <= 2 * RATE
    assert sum(len(p.audio) for p in parts) == samples(parts[-1].end) - 10 * F
    # Every piece is announced when it begins; ids run on.
    starts = [e for e in events if isinstance(e, UtteranceStarted)]
    assert [s.utterance_id for s in starts] == [p.utterance_id for p in parts]
    assert [p.utterance_id for p in parts] == [f"agent-{i:04d}" for i in range(1, 5)]
    assert [s.start for s in starts] == [p.start for p in parts]


def test_max_length_pieces_are_contiguous_and_bounded() -> None:
    settings = EndpointSettings(**{**SETTINGS.__dict__, "max_utterance_s": 2.0})
    parts = ended(run(script((True, 700), (False, 40)), settings))
    assert len(parts) >= 4
    assert samples(parts[0].start) == 0
    for a, b in itertools.pairwise(parts):
        assert b.start == a.end
    for p in parts:
        assert 0 < len(p.audio) <= 2 * RATE
        np.testing.assert_array_equal(p.audio, ramp(len(p.audio), samples(p.start)))


def test_max_length_reached_in_the_trailing_pause_just_ends() -> None:
    settings = EndpointSettings(**{**SETTINGS.__dict__, "max_utterance_s": 2.0})
    events = run(script((False, 15), (True, 192), (False, 60)), settings)
    (e,) = ended(events)
    assert e.reason == "max_length"
    assert len(e.audio) <= 2 * RATE
    assert samples(e.end) == 210 * F  # the limit fell inside the 5-frame end padding
    assert sum(isinstance(x, UtteranceStarted) for x in events) == 1


def test_flush_mid_utterance_keeps_everything_received() -> None:
    frames = script((False, 20), (True, 100))
    audio = ramp(len(frames) * F + 77)  # plus part of a frame the VAD never saw
    vad = ScriptedVad(frames)
    ep = Endpointer(vad, SETTINGS, leg="customer")
    events = ep.push(audio)
    assert [type(e) for e in events if not isinstance(e, PartialAudio)] == [UtteranceStarted]
    assert ep.in_utterance
    (e,) = ep.flush()
    assert isinstance(e, UtteranceEnded)
    assert e.reason == "flush" and e.utterance_id == "customer-0001"
    assert_covers(e, 15 * F, len(audio))
    assert vad.resets == 1 and not ep.in_utterance
    assert ep.time == len(audio) / RATE
    # The leg clock keeps running after a flush; ids continue.
    vad.script += script((True, 30), (False, 40))
    more = ep.push(ramp(70 * F, len(audio)))
    (e2,) = ended(more)
    assert e2.utterance_id == "customer-0002"
    assert samples(e2.start) >= len(audio)


def test_flush_in_the_trailing_pause_trims_to_the_padding() -> None:
    (e,) = ended(run(script((False, 20), (True, 30), (False, 10))))
    assert e.reason == "flush"
    assert_covers(e, 15 * F, 55 * F)


def test_flush_drops_an_unconfirmed_burst_and_is_idempotent() -> None:
    vad = ScriptedVad(script((False, 20), (True, 5)))
    ep = Endpointer(vad, SETTINGS, leg="agent")
    assert ep.push(ramp(25 * F)) == []
    assert ep.flush() == []
    assert ep.flush() == []


def test_partial_cadence() -> None:
    events = run(script((False, 10), (True, 300), (False, 40)))  # 3.05 s of padded speech from frame 5
    partials = [e for e in events if isinstance(e, PartialAudio)]
    (final,) = ended(events)
    assert len(partials) == 6  # at 0.5, 1.0, ... 3.0 s into the utterance
    ends = [samples(p.end) for p in partials]
    assert ends[0] - samples(final.start) == samples(SETTINGS.min_partial_s)
    assert all(b - a >= samples(SETTINGS.partial_interval_s) for a, b in itertools.pairwise(ends))
    for p in partials:
        assert p.utterance_id == final.utterance_id and p.start == final.start
        np.testing.assert_array_equal(p.audio, ramp(len(p.audio), samples(p.start)))
        assert samples(p.end) <= 310 * F  # none in the trailing pause
    # Partials come after the utterance was announced and before it ended.
    kinds = [type(e) for e in events]
    assert kinds[0] is UtteranceStarted and kinds[-1] is UtteranceEnded


def test_no_partials_for_short_utterances() -> None:
    events = run(script((False, 10), (True, 40), (False, 40)))
    assert not any(isinstance(e, PartialAudio) for e in events)


def test_chunk_size_does_not_change_the_result() -> None:
    frames = script((False, 20), (True, 60), (False, 15), (True, 150), (False, 30), (True, 8), (False, 40))

    def key(events: list[EndpointEvent]) -> list[tuple[object, ...]]:
        return [
            (type(e).__name__, e.utterance_id, e.start, getattr(e, "end", None), len(getattr(e, "audio", [])))
            for e in events
        ]

    reference = key(run(frames, chunk=len(frames) * F))
    for chunk in (1, F, 333, 4096):
        assert key(run(frames, chunk=chunk)) == reference


def test_memory_is_bounded_by_max_length() -> None:
    settings = EndpointSettings(**{**SETTINGS.__dict__, "max_utterance_s": 2.0})
    vad = ScriptedVad([True] * 2000)
    ep = Endpointer(vad, settings, leg="agent")
    for i in range(0, 2000 * F, 999):
        ep.push(ramp(999, i))
        if ep._utt is not None:
            assert ep._utt.fill <= 2 * RATE
            assert ep._utt.buf.size <= 2 * RATE + F


def test_rejects_non_mono_audio() -> None:
    ep = Endpointer(ScriptedVad([]), SETTINGS, leg="agent")
    with pytest.raises(ValueError, match="mono"):
        ep.push(np.zeros((2, 10), dtype=np.float32))


@pytest.mark.parametrize(("channel", "speaker"), [(0, "agent"), (1, "customer")])
def test_silero_endpoints_match_the_scripted_turns(channel: int, speaker: str) -> None:
    with wave.open(str(FIXTURES / "dev_en_01.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    audio = (pcm[:, channel] / 32768.0).astype(np.float32)
    script_turns = json.loads((FIXTURES / "dev_en_01.json").read_text(encoding="utf-8"))["turns"]
    turns = [(t["start"], t["end"]) for t in script_turns if t["speaker"] == speaker]

    ep = Endpointer(SileroVad(), EndpointSettings(), leg=speaker)
    events: list[EndpointEvent] = []
    for i in range(0, len(audio), 320):  # 20 ms chunks, as the protocol delivers them
        events += ep.push(audio[i : i + 320])
    events += ep.flush()
    utterances = ended(events)

    tolerance = 0.3
    used: set[str] = set()
    for start, end in turns:
        mine = [u for u in utterances if u.end > start and u.start < end]
        assert mine, f"turn {start}-{end} has no utterance"
        used.update(u.utterance_id for u in mine)
        assert abs(min(u.start for u in mine) - start) <= tolerance, (start, [(u.start, u.end) for u in mine])
        assert abs(max(u.end for u in mine) - end) <= tolerance, (end, [(u.start, u.end) for u in mine])
        for a, b in itertools.pairwise(mine):  # a split turn: pieces are adjacent, gap < a pause
            assert b.start - a.end < 1.0
    assert used == {u.utterance_id for u in utterances}, "an utterance outside every scripted turn"


SPECULATIVE = EndpointSettings(**{**SETTINGS.__dict__, "speculative": True})


def test_speculative_end_carries_exactly_the_final_audio() -> None:
    """After pad_ms of silence the early guess has the same audio the final will have."""
    events = run(script((False, 50), (True, 30), (False, 50)), SPECULATIVE)
    kinds = [type(e) for e in events]
    assert kinds == [UtteranceStarted, SpeculativeEnd, UtteranceEnded]
    _, spec, end = events
    assert isinstance(spec, SpeculativeEnd) and isinstance(end, UtteranceEnded)
    assert (spec.utterance_id, spec.start, spec.end) == (end.utterance_id, end.start, end.end)
    np.testing.assert_array_equal(spec.audio, end.audio)


def test_speech_resuming_voids_the_speculation_and_guesses_again() -> None:
    # a 10-frame pause: longer than pad (5) but shorter than min_silence (20)
    events = run(script((False, 50), (True, 30), (False, 10), (True, 30), (False, 50)), SPECULATIVE)
    specs = [e for e in events if isinstance(e, SpeculativeEnd)]
    (end,) = ended(events)
    assert len(specs) == 2
    assert specs[0].end < end.end
    assert specs[1].end == end.end
    np.testing.assert_array_equal(specs[1].audio, end.audio)


# -- cut (the platform paused or changed language) and bridge (audio it discarded) ---------------


def test_cut_mid_speech_ends_here_and_the_rest_is_a_new_utterance() -> None:
    vad = ScriptedVad(script((False, 20), (True, 100), (False, 40)))
    ep = Endpointer(vad, SETTINGS, leg="agent")
    assert not ended(ep.push(ramp(80 * F)))
    (first,) = ep.cut()
    assert isinstance(first, UtteranceEnded) and first.reason == "cut"
    assert_covers(first, 15 * F, 80 * F)  # up to the cut, nothing held back
    rest = ep.push(ramp(80 * F, 80 * F))
    (second,) = ended(rest)
    assert second.utterance_id == "agent-0002" and second.reason == "silence"
    assert_covers(second, 80 * F, 125 * F)  # starts at the cut: no audio sent twice
    assert ep.cut() == []  # nothing in progress


def test_cut_in_the_trailing_pause_ends_as_the_pause_would() -> None:
    vad = ScriptedVad(script((False, 20), (True, 30), (False, 50)))
    ep = Endpointer(vad, SETTINGS, leg="agent")
    ep.push(ramp(60 * F))  # 10 frames into the pause
    (e,) = ep.cut()
    assert isinstance(e, UtteranceEnded) and e.reason == "cut"
    assert_covers(e, 15 * F, 55 * F)
    assert ended(ep.push(ramp(40 * F, 60 * F))) == []  # the pause going on ends nothing more


def test_cut_leaves_an_unconfirmed_burst_alone() -> None:
    vad = ScriptedVad(script((False, 20), (True, 30), (False, 40)))
    ep = Endpointer(vad, SETTINGS, leg="agent")
    ep.push(ramp(25 * F))  # 5 speech frames: below min_speech, nothing to transcribe yet
    assert ep.cut() == []
    (e,) = ended(ep.push(ramp(65 * F, 25 * F)))
    assert_covers(e, 15 * F, 55 * F)  # the burst went on to be one whole utterance


def test_a_gap_inside_speech_neither_splits_nor_shifts_it() -> None:
    # VAD frames: 20 silent, 30 speech | 30 frames of gap (longer than min_silence) | 30 speech, 40 silent
    frames = script((False, 20), (True, 60), (False, 40))
    vad = ScriptedVad(frames)
    ep = Endpointer(vad, SETTINGS, leg="agent")
    events = ep.push(ramp(50 * F))
    events += ep.bridge(np.zeros(30 * F, dtype=np.float32))
    events += ep.push(ramp(70 * F, 80 * F))
    (e,) = ended(events)
    assert (samples(e.start), samples(e.end)) == (15 * F, 115 * F)  # on the clock that counts the gap
    assert len(e.audio) == 100 * F
    np.testing.assert_array_equal(e.audio[35 * F : 65 * F], 0.0)  # the gap, as silence
    np.testing.assert_array_equal(e.audio[65 * F :], ramp(35 * F, 80 * F))
    assert vad.calls == 120, "the VAD never heard the gap"
    # The same silence pushed as audio is a pause, and splits the utterance.
    audio = np.concatenate([ramp(50 * F), np.zeros(30 * F, np.float32), ramp(70 * F, 80 * F)])
    heard = ended(run(script((False, 20), (True, 30), (False, 30), (True, 30), (False, 40)), audio=audio))
    assert len(heard) == 2


def test_a_gap_in_silence_opens_nothing_and_keeps_the_clock() -> None:
    vad = ScriptedVad(script((False, 19), (True, 30), (False, 40)))
    ep = Endpointer(vad, SETTINGS, leg="agent")
    ep.push(ramp(20 * F - 7))  # 19 frames heard; the part of a frame pending goes with the gap
    assert ep.bridge(np.zeros(50 * F + 7, dtype=np.float32)) == []
    assert ep.time == 70 * F / RATE
    (e,) = ended(ep.push(ramp(70 * F, 70 * F)))
    assert (samples(e.start), samples(e.end)) == (65 * F, 105 * F)


def test_a_long_gap_ends_the_utterance_first() -> None:
    vad = ScriptedVad(script((False, 20), (True, 60), (False, 40)))
    ep = Endpointer(vad, SETTINGS, leg="agent")
    ep.push(ramp(50 * F))
    gap = round(MAX_BRIDGED_GAP_S * RATE) + F
    (first,) = ended(ep.bridge(np.zeros(gap, dtype=np.float32)))
    assert first.reason == "cut"
    assert_covers(first, 15 * F, 50 * F)
    (second,) = ended(ep.push(ramp(70 * F, 50 * F + gap)))
    assert samples(second.start) >= 50 * F + gap - 5 * F  # after the gap (at most its pre-roll)
