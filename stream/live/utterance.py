"""One utterance of one leg, from its ASR result to the events the call publishes.

The live session (:class:`stream.live.session.CallSession`) and the offline commands
(:mod:`stream.offline.transcribe`, :mod:`stream.offline.batch`) both hand every ASR result to
:class:`UtteranceStep`, so a recording analyzed offline and the same audio heard live cannot drift:
the hallucination guard, personal-data masking, guidance and the retraction of warnings raised from
partials happen here and nowhere else.

Masking is applied once, here, before anything is stored or shown -- and before guidance sees the
text, so a warning's quote never carries an identifier either.  The call store and the review report
trust that the events they receive are already masked.

No I/O and no clock: the caller measures latency and publishes the returned events in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assist.events import ErrorEvent, EventBody, Speaker, TranscriptFinal, TranscriptPartial
from assist.masking import mask_text
from stream.asr.base import SAMPLE_RATE, AsrRequest, AsrResult
from stream.asr.guard import check_transcript
from stream.audio.endpointer import PartialAudio, UtteranceEnded

if TYPE_CHECKING:
    from assist.engine import CallGuide

log = logging.getLogger(__name__)

TIME_DECIMALS = 3  # utterance start/end in events: milliseconds


def speaker_of(leg: str) -> Speaker:
    """Every leg but the agent's is the customer's (a conference's extra legs included)."""
    return "agent" if leg == "agent" else "customer"


@dataclass(frozen=True)
class Heard:
    """One ASR result for one utterance of a leg, with what the guard needs to know of its request.

    The request's audio is not kept (only its length): the offline path holds every utterance of a
    recording until they are judged in the order they ended.
    """

    leg: str
    utterance_id: str
    start: float
    end: float
    result: AsrResult
    language: str
    prompt: str = ""
    hotwords: str = ""
    audio_s: float | None = None

    @classmethod
    def of(cls, audio: PartialAudio | UtteranceEnded, request: AsrRequest, result: AsrResult) -> Heard:
        """What the ASR made of this endpointer event's audio (a partial snapshot or the whole)."""
        return cls(
            leg=audio.leg,
            utterance_id=audio.utterance_id,
            start=audio.start,
            end=audio.end,
            result=result,
            language=request.language,
            prompt=request.prompt,
            hotwords=request.hotwords,
            audio_s=len(request.audio) / SAMPLE_RATE,
        )

    @property
    def speaker(self) -> Speaker:
        return speaker_of(self.leg)


class UtteranceStep:
    """One call's utterances -> events: guard, mask once, guide, retract.

    Partials are best-effort: one that arrives after its utterance's final (or after the final was
    dropped by the guard) yields nothing.  A final's guidance retracts the warnings its partials
    raised and the final does not bear out (:meth:`assist.engine.CallGuide.on_final`).
    """

    def __init__(self, language: str, guide: CallGuide | None, *, masking: bool) -> None:
        self.language = language
        self.guide = guide
        self.masking = masking
        self.finals = 0  # final transcripts that produced a transcript event
        self._finalized: set[str] = set()

    def text(self, heard: Heard) -> str | None:
        """What may be stored or shown of this result: None when nothing real was said (the guard
        is told the clip's length, so a short word Whisper looped on is kept once), else the text
        with personal data masked."""
        verdict = check_transcript(
            heard.result.text,
            heard.result,
            language=heard.language,
            prompt=heard.prompt,
            hotwords=heard.hotwords,
            audio_s=heard.audio_s,
        )
        if not verdict.keep:
            log.debug("guard dropped %r: %s", heard.result.text, verdict.reason)
            return None
        text = verdict.text
        if text and self.masking:
            text = mask_text(text, language=self.language).text
        return text or None

    def _transcript(self, heard: Heard, text: str) -> tuple[Speaker, str, str, str, float, float]:
        """The fields a partial and a final transcript share, in their order."""
        return (
            heard.speaker,
            heard.utterance_id,
            text,
            self.language,
            round(heard.start, TIME_DECIMALS),
            round(heard.end, TIME_DECIMALS),
        )

    def partial(self, heard: Heard) -> list[EventBody]:
        """A provisional transcript of a still-open utterance and the critical warnings it raises."""
        if heard.utterance_id in self._finalized:
            return []
        text = self.text(heard)
        if not text:
            return []
        out: list[EventBody] = [TranscriptPartial(*self._transcript(heard, text))]
        if self.guide is not None:
            out.extend(self.guide.on_partial(heard.speaker, text, heard.utterance_id))
        return out

    def final(self, heard: Heard, *, latency_ms: float) -> list[EventBody]:
        """The utterance's final transcript, then what guidance made of it (a guidance failure is
        an error event: the transcript still counts and the call goes on)."""
        self._finalized.add(heard.utterance_id)
        text = self.text(heard)
        if not text:
            return []
        self.finals += 1
        out: list[EventBody] = [
            TranscriptFinal(*self._transcript(heard, text), latency_ms=round(latency_ms, 1))
        ]
        if self.guide is not None:
            try:
                out.extend(self.guide.on_final(heard.speaker, text, heard.utterance_id))
            except Exception as exc:
                log.exception("guidance failed")
                out.append(ErrorEvent(code="guidance_failed", message=str(exc) or type(exc).__name__))
        return out
