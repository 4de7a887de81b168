"""Which compliance warnings are in force: the one rule the store, the review, the supervisor feed and
the tests share (``assist.events.WarningsInForce``)."""

from __future__ import annotations

from assist.events import (
    ComplianceRetracted,
    ComplianceWarning,
    Event,
    EventBody,
    TranscriptFinal,
    WarningsInForce,
    warning_key,
    warnings_in_force,
)


def warning(utt: str, rule: str, *, partial: bool = False, quote: str = "q") -> ComplianceWarning:
    return ComplianceWarning(utt, "agent", rule, "critical", quote, "why", "say", "ev", 0.9, partial)


def log(*bodies: EventBody) -> list[Event]:
    return [Event("c1", i, 100.0 + i, b) for i, b in enumerate(bodies, start=1)]


def test_a_retraction_withdraws_the_warning_with_its_utterance_and_rule() -> None:
    events = log(
        warning("u1", "threat_violence", partial=True),
        warning("u2", "threat_violence"),
        warning("u1", "abusive_language"),
        ComplianceRetracted("u1", "threat_violence", "critical", "not in the final transcript"),
        TranscriptFinal("agent", "u1", "text", "zh", 0.0, 1.0, 100.0),
    )
    assert [e.seq for e in warnings_in_force(events)] == [2, 3]
    assert warning_key(warning("u1", "x")) == warning_key(ComplianceRetracted("u1", "x", "minor", "r"))


def test_a_final_warning_supersedes_a_partial_one_and_otherwise_the_first_stands() -> None:
    events = log(
        warning("u1", "r", partial=True, quote="partial"),
        warning("u2", "r"),
        warning("u1", "r", quote="final"),
        warning("u1", "r", partial=True, quote="late partial"),
        warning("u2", "r", quote="re-sent"),
    )
    standing = warnings_in_force(events)
    assert [(e.seq, getattr(e.body, "quote", "")) for e in standing] == [(3, "final"), (2, "q")]


def test_the_fold_keeps_the_callers_items_oldest_first() -> None:
    fold: WarningsInForce[str] = WarningsInForce()
    fold.add(warning("u1", "a"), "first")
    fold.add(warning("u2", "b"), "second")
    fold.retract(ComplianceRetracted("u9", "zzz", "minor", "never raised"))  # no error
    assert fold.items() == ["first", "second"] and len(fold) == 2
    fold.retract(ComplianceRetracted("u1", "a", "critical", "r"))
    assert fold.items() == ["second"]
