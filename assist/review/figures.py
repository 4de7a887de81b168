"""The call's shape in figures: stage timeline, talk time, interruptions and long silences."""

from __future__ import annotations

from collections.abc import Sequence

from assist.review.call import Turn
from assist.review.model import Interruption, Silence, StageSpan, TalkTime

SILENCE_MIN_S = 5.0  # a gap with nobody speaking longer than this is listed as a silence
INTERRUPTION_MIN_OVERLAP_S = 0.3  # endpointer padding makes turns that merely abut overlap slightly


def stage_timeline(turns: Sequence[Turn], duration: float) -> tuple[StageSpan, ...]:
    """Spans of the stage in effect, each ending where the next begins; the last ends with the call."""
    starts: list[tuple[str, float]] = []
    for t in turns:
        if t.stage is None or (starts and starts[-1][0] == t.stage):
            continue
        starts.append((t.stage, round(t.start, 3)))
    ends = [start for _, start in starts[1:]]
    if starts:
        ends.append(round(max(duration, starts[-1][1]), 3))
    return tuple(StageSpan(stage, start, end) for (stage, start), end in zip(starts, ends, strict=True))


def talk_time(turns: Sequence[Turn]) -> TalkTime:
    agent = sum(t.end - t.start for t in turns if t.speaker == "agent")
    customer = sum(t.end - t.start for t in turns if t.speaker == "customer")
    total = agent + customer
    return TalkTime(
        agent_s=round(agent, 3),
        customer_s=round(customer, 3),
        agent_share=round(agent / total, 3) if total > 0 else None,
    )


def interruptions(turns: Sequence[Turn]) -> tuple[Interruption, ...]:
    """Turns that start while the other speaker's latest turn is still going."""
    out: list[Interruption] = []
    last: dict[str, Turn] = {}
    for t in turns:
        other = last.get("customer" if t.speaker == "agent" else "agent")
        if other is not None and other.end - t.start >= INTERRUPTION_MIN_OVERLAP_S:
            out.append(
                Interruption(
                    time=round(t.start, 3),
                    by=t.speaker,
                    interrupted=other.speaker,
                    overlap=round(min(other.end, t.end) - t.start, 3),
                    utterance=t.index,
                    quote=t.text,
                )
            )
        prev = last.get(t.speaker)
        if prev is None or t.end >= prev.end:
            last[t.speaker] = t
    return tuple(out)


def silences(turns: Sequence[Turn]) -> tuple[Silence, ...]:
    """Gaps longer than ``SILENCE_MIN_S`` with nobody speaking, and who spoke last before each."""
    out: list[Silence] = []
    covered_to: float | None = None
    speaker: str | None = None
    for t in turns:
        if covered_to is not None and t.start - covered_to > SILENCE_MIN_S:
            out.append(
                Silence(
                    start=round(covered_to, 3),
                    end=round(t.start, 3),
                    duration=round(t.start - covered_to, 3),
                    after=speaker,
                )
            )
        if covered_to is None or t.end >= covered_to:
            covered_to, speaker = t.end, t.speaker
    return tuple(out)
