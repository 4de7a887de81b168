"""Per-leg utterance segmentation (sans-IO): push 16 kHz audio in, get events out.

Whisper transcribes whole utterances far better than fixed windows, and the
guidance logic reacts per utterance, so each call leg is cut at pauses.  The
:class:`Endpointer` owns no clock, thread or socket: the caller pushes audio
chunks of any length and acts on the returned events; leg time is simply the
number of samples pushed divided by the sample rate, so results are
reproducible from a recording.

Segmentation runs on the VAD's frame grid (``vad.frame_samples``):

* An utterance opens on a frame with speech probability >= ``threshold``.
  Frames stay "speech" until the probability drops below ``threshold - 0.15``
  (hysteresis, as in faster-whisper), so a wobbling probability does not
  chop words.
* It closes once ``min_silence_ms`` of non-speech follows the last speech
  frame; shorter pauses are bridged.
* ``pad_ms`` of audio is kept before the first speech frame (from a pre-roll
  buffer, never reaching back into the previous utterance) and after the
  last, because VADs fire late on soft onsets and early on trailing consonants.
* An utterance with less than ``min_speech_ms`` of speech frames is dropped as
  a click or a cough.  :class:`UtteranceStarted` is only emitted once that much
  speech has been heard, so every ``UtteranceStarted`` is followed by exactly
  one :class:`UtteranceEnded` with the same id and ids have no gaps.  Its
  ``start`` is still the true (padded) start.
* An utterance reaching ``max_utterance_s`` is split so Whisper's 30 s window
  is never exceeded: at the quietest frame of the last few seconds, or at the
  limit if there is no earlier candidate; the rest continues as a new utterance
  that needs no fresh confirmation.  No utterance is longer than
  ``max_utterance_s`` (except that a flush appends the last, partial VAD frame,
  < 32 ms), and the audio held per leg is bounded by that plus one frame.
* While speech continues, :class:`PartialAudio` snapshots (the utterance so far)
  are emitted for provisional transcripts, at most every
  ``partial_interval_s`` and only past ``min_partial_s``.
* :meth:`Endpointer.flush` at the end of the call closes an open utterance
  (reason ``"flush"``) so audio already received is still transcribed.
* :meth:`Endpointer.cut` ends the utterance in progress *now* (reason ``"cut"``)
  while the stream goes on: a platform that pauses the stream or changes its
  language wants what was said so far transcribed without waiting for a pause.
* :meth:`Endpointer.bridge` takes audio that stands for a gap in the stream
  (audio the platform discarded): it keeps leg time equal to the platform's
  position but is not listened to, so a gap neither ends nor starts an
  utterance (up to :data:`MAX_BRIDGED_GAP_S`).

Event audio arrays are fresh read-only copies, safe to hand to another thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from stream.audio.vad import Vad
from stream.settings import EndpointSettings

FloatArray = npt.NDArray[np.float32]
EndReason: TypeAlias = Literal["silence", "max_length", "flush", "cut"]

HYSTERESIS: Final = 0.15  # a speaking leg turns silent only below threshold - this
MIN_NEG_THRESHOLD: Final = 0.01  # keeps the silence threshold positive for very low thresholds
SPLIT_SEARCH_S: Final = 4.0  # how far back from the limit a max-length cut may move to find a pause
SPLIT_SEARCH_FRACTION: Final = 0.5  # ...but never more than this share of max_utterance_s
UTTERANCE_ID_FORMAT: Final = "{leg}-{n:04d}"
# A gap longer than this ends the utterance in progress first: speech that far apart is not one
# utterance, and Whisper would be handed a long hole (gaps are bounded by the adapters anyway).
MAX_BRIDGED_GAP_S: Final = 2.0


@dataclass(frozen=True)
class UtteranceStarted:
    leg: str
    utterance_id: str
    start: float


@dataclass(frozen=True, eq=False)
class PartialAudio:
    leg: str
    utterance_id: str
    start: float
    end: float
    audio: FloatArray = field(repr=False)


@dataclass(frozen=True, eq=False)
class UtteranceEnded:
    leg: str
    utterance_id: str
    start: float
    end: float
    audio: FloatArray = field(repr=False)
    reason: EndReason


@dataclass(frozen=True, eq=False)
class SpeculativeEnd:
    """The utterance *may* have ended: ``pad_ms`` of silence follow the last speech.

    Its audio is exactly what :class:`UtteranceEnded` will carry if the silence
    lasts to ``min_silence_ms`` (speech + ``pad_ms``), so a transcription started
    now can be used as the final one, saving ``min_silence_ms - pad_ms`` of
    latency.  If speech resumes, the utterance goes on and this is void.
    """

    leg: str
    utterance_id: str
    start: float
    end: float
    audio: FloatArray = field(repr=False)


EndpointEvent: TypeAlias = UtteranceStarted | PartialAudio | SpeculativeEnd | UtteranceEnded
FrameStep: TypeAlias = Callable[[FloatArray, list[EndpointEvent]], None]  # one VAD frame in, events out


class _Open:
    """The utterance being collected; positions are absolute leg sample indices."""

    def __init__(self, capacity: int, start: int) -> None:
        self.buf = np.zeros(capacity, dtype=np.float32)
        self.fill = 0
        self.start = start
        self.speech_samples = 0
        self.last_speech_end = start
        self.utterance_id: str | None = None  # set once confirmed by min_speech_ms
        self.last_partial: int | None = None
        self.speculated_for: int | None = None  # last_speech_end a SpeculativeEnd was emitted for

    @property
    def end(self) -> int:
        return self.start + self.fill

    def append(self, audio: FloatArray) -> None:
        self.buf[self.fill : self.fill + len(audio)] = audio
        self.fill += len(audio)

    def audio(self, end: int) -> FloatArray:
        out = self.buf[: end - self.start].copy()
        out.flags.writeable = False
        return out


def _mono(audio: FloatArray) -> FloatArray:
    chunk = np.asarray(audio, dtype=np.float32)
    if chunk.ndim != 1:
        raise ValueError(f"expected mono audio, got shape {chunk.shape}")
    return chunk


class Endpointer:
    """Cuts one leg into utterances; one instance (and one Vad) per leg."""

    def __init__(self, vad: Vad, settings: EndpointSettings, *, leg: str, sample_rate: int = 16000) -> None:
        self.vad = vad
        self.settings = settings
        self.leg = leg
        self.sample_rate = sample_rate
        self.frame = vad.frame_samples
        ms = sample_rate / 1000
        self._threshold = settings.threshold
        self._neg_threshold = max(settings.threshold - HYSTERESIS, MIN_NEG_THRESHOLD)
        self._min_speech = round(settings.min_speech_ms * ms)
        self._min_silence = round(settings.min_silence_ms * ms)
        self._pad = round(settings.pad_ms * ms)
        self._max = round(settings.max_utterance_s * sample_rate)
        self._partial_interval = round(settings.partial_interval_s * sample_rate)
        self._min_partial = round(settings.min_partial_s * sample_rate)
        search = min(SPLIT_SEARCH_S, SPLIT_SEARCH_FRACTION * settings.max_utterance_s)
        self._split_search = round(search * sample_rate)
        self._max_bridge = round(MAX_BRIDGED_GAP_S * sample_rate)
        self._capacity = max(self._max, self._pad) + self.frame
        self._pending = np.zeros(0, dtype=np.float32)  # less than one frame, not yet classified
        self._preroll = np.zeros(0, dtype=np.float32)  # the last pad samples before the next frame
        self._recent: deque[tuple[int, float]] = deque(maxlen=max(1, self._split_search // self.frame + 1))
        self._pos = 0  # absolute sample index of the next frame
        self._last_end = 0  # end of the last emitted utterance: pre-roll never reaches before it
        self._speaking = False
        self._utt: _Open | None = None
        self._count = 0

    @property
    def time(self) -> float:
        """Leg time in seconds: every sample pushed so far."""
        return (self._pos + len(self._pending)) / self.sample_rate

    @property
    def in_utterance(self) -> bool:
        return self._utt is not None

    def push(self, audio: FloatArray) -> list[EndpointEvent]:
        events: list[EndpointEvent] = []
        self._frames(_mono(audio), self._process_frame, events)
        return events

    def _frames(self, chunk: FloatArray, step: FrameStep, events: list[EndpointEvent]) -> None:
        """Run ``step`` on every whole VAD frame of pending audio + ``chunk``; keep the rest pending."""
        data = np.concatenate((self._pending, chunk)) if len(self._pending) else chunk
        n = len(data) // self.frame * self.frame
        for i in range(0, n, self.frame):
            step(data[i : i + self.frame], events)
        self._pending = data[n:].copy()

    def _end_of(self, utt: _Open) -> int:
        """Where an utterance ending now ends: here while speech goes on, else after its end padding."""
        return utt.end if self._speaking else min(utt.last_speech_end + self._pad, utt.end)

    def cut(self) -> list[EndpointEvent]:
        """End the utterance in progress here, keeping the stream going (leg time and VAD state).

        For a platform that pauses the stream or changes its language mid-call: what was said so
        far is transcribed now instead of when the speaker next pauses.  A confirmed utterance ends
        at the current frame boundary if speech is in progress, else after its end padding, exactly
        as a pause would end it; speech that goes on becomes a new utterance that must reach
        ``min_speech_ms`` like any other, so a cut never leaves a transcribed sliver.  An utterance
        not yet confirmed is left alone (there is nothing to transcribe yet), and so is audio short
        of a whole VAD frame (it belongs to what follows).
        """
        utt = self._utt
        if utt is None or utt.utterance_id is None:
            return []
        events: list[EndpointEvent] = []
        self._emit_end(utt, self._end_of(utt), "cut", events)
        self._utt = None
        return events

    def bridge(self, audio: FloatArray) -> list[EndpointEvent]:
        """Audio standing for a gap in the stream (the platform discarded it): counted, not heard.

        Leg time advances by its length, so utterance times stay on the platform's clock, but no
        frame of it reaches the VAD: it opens no utterance, and the utterance in progress spans it
        without its silence clock running, so a gap does not split what the speaker said.  Audio
        already pending (short of a frame) is bridged with it.  A gap longer than
        :data:`MAX_BRIDGED_GAP_S` first ends the utterance in progress (an unconfirmed one is
        dropped), as a pause would.
        """
        chunk = _mono(audio)
        events: list[EndpointEvent] = []
        if len(chunk) > self._max_bridge:
            events += self.cut()
            self._utt = None
            self._speaking = False  # after a long hole, speech must be heard afresh
        self._frames(chunk, self._gap_frame, events)
        return events

    def flush(self) -> list[EndpointEvent]:
        """End of the leg: close any open utterance and start afresh (leg time keeps counting)."""
        events: list[EndpointEvent] = []
        tail, self._pending = self._pending, np.zeros(0, dtype=np.float32)
        utt = self._utt
        if utt is not None:
            utt.append(tail)
            if self._speaking:  # the unclassified tail continues the speech in progress
                utt.speech_samples += len(tail)
                utt.last_speech_end = utt.end
            if utt.utterance_id is None and utt.speech_samples >= self._min_speech:
                self._confirm(utt, events)
            if utt.utterance_id is not None:
                self._emit_end(utt, self._end_of(utt), "flush", events)
        self._pos += len(tail)
        self._utt = None
        self._speaking = False
        self._preroll = np.zeros(0, dtype=np.float32)
        self._recent.clear()
        self.vad.reset()
        return events

    def _process_frame(self, frame: FloatArray, events: list[EndpointEvent]) -> None:
        start, end = self._pos, self._pos + len(frame)
        prob = self.vad.speech_prob(frame)
        if prob >= self._threshold:
            self._speaking = True
        elif prob < self._neg_threshold:
            self._speaking = False

        utt = self._utt
        if utt is None and self._speaking:
            utt = self._utt = _Open(self._capacity, start)
            pre = min(len(self._preroll), start - self._last_end)
            if pre > 0:
                utt.start -= pre
                utt.append(self._preroll[-pre:])
        if utt is not None:
            utt.append(frame)
            self._recent.append((start, float(np.mean(np.square(frame)))))
            if self._speaking:
                utt.speech_samples += len(frame)
                utt.last_speech_end = end
            self._advance(utt, end, events)

        self._after_frame(frame, end)

    def _after_frame(self, frame: FloatArray, end: int) -> None:
        """Keep the last pad samples for the next utterance's lead-in; leg time moves on."""
        self._preroll = np.concatenate((self._preroll, frame))[-self._pad :] if self._pad else self._preroll
        self._pos = end

    def _gap_frame(self, frame: FloatArray, events: list[EndpointEvent]) -> None:
        start, end = self._pos, self._pos + len(frame)
        utt = self._utt
        if utt is not None:
            utt.append(frame)
            utt.last_speech_end += len(frame)  # time spent in a gap is neither speech nor pause
            self._recent.append((start, float(np.mean(np.square(frame)))))
            if utt.fill >= self._max:
                self._split(utt, end, events)
        self._after_frame(frame, end)

    def _advance(self, utt: _Open, now: int, events: list[EndpointEvent]) -> None:
        if now - utt.last_speech_end >= self._min_silence:
            if utt.utterance_id is not None:
                self._emit_end(utt, min(utt.last_speech_end + self._pad, now), "silence", events)
            self._utt = None
            return
        if (
            self.settings.speculative
            and utt.utterance_id is not None
            and not self._speaking
            and now - utt.last_speech_end >= self._pad
            and utt.speculated_for != utt.last_speech_end
        ):
            utt.speculated_for = utt.last_speech_end
            end = utt.last_speech_end + self._pad
            events.append(
                SpeculativeEnd(
                    self.leg, utt.utterance_id, self._seconds(utt.start), self._seconds(end), utt.audio(end)
                )
            )
        if utt.utterance_id is None and utt.speech_samples >= self._min_speech:
            self._confirm(utt, events)
        if utt.fill >= self._max:
            self._split(utt, now, events)
            return
        if (
            utt.utterance_id is not None
            and self._speaking
            and now - utt.start >= self._min_partial
            and (utt.last_partial is None or now - utt.last_partial >= self._partial_interval)
        ):
            utt.last_partial = now
            events.append(
                PartialAudio(
                    self.leg, utt.utterance_id, self._seconds(utt.start), self._seconds(now), utt.audio(now)
                )
            )

    def _split(self, utt: _Open, now: int, events: list[EndpointEvent]) -> None:
        if utt.utterance_id is None:  # never reached min_speech: noise that hovered near the threshold
            self._utt = None
            return
        if not self._speaking:  # already in the trailing pause: just end here
            end = min(utt.last_speech_end + self._pad, now, utt.start + self._max)
            self._emit_end(utt, end, "max_length", events)
            self._utt = None
            return
        half = self.frame // 2
        earliest = utt.start + self._max - self._split_search
        candidates = [(power, s + half) for s, power in self._recent if s + half > earliest]
        cut = min(candidates)[1] if candidates else utt.start + self._max
        cut = min(cut, utt.start + self._max)
        self._emit_end(utt, cut, "max_length", events)
        rest = _Open(self._capacity, cut)
        rest.append(utt.buf[cut - utt.start : utt.fill])
        rest.speech_samples = rest.fill
        rest.last_speech_end = utt.last_speech_end
        self._utt = rest
        self._confirm(rest, events)

    def _confirm(self, utt: _Open, events: list[EndpointEvent]) -> None:
        self._count += 1
        utt.utterance_id = UTTERANCE_ID_FORMAT.format(leg=self.leg, n=self._count)
        events.append(UtteranceStarted(self.leg, utt.utterance_id, self._seconds(utt.start)))

    def _emit_end(self, utt: _Open, end: int, reason: EndReason, events: list[EndpointEvent]) -> None:
        assert utt.utterance_id is not None
        events.append(
            UtteranceEnded(
                self.leg,
                utt.utterance_id,
                self._seconds(utt.start),
                self._seconds(end),
                utt.audio(end),
                reason,
            )
        )
        self._last_end = end

    def _seconds(self, samples: int) -> float:
        return samples / self.sample_rate
