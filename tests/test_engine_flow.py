"""End to end through CallGuide on the scripted fixture calls, plus analyze-text.

dev_zh_02 and dev_en_02 carry per-turn rule labels: the labelled violations must
fire on their turns and the compliant agent turns must stay clean.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from assist.analyze import analyze_lines, analyze_text
from assist.events import (
    ComplianceWarning,
    CustomerSignal,
    Event,
    EventBody,
    StageChanged,
    Suggestion,
    event_from_dict,
)
from tests.engines import GUIDANCE_MARKS, shared_engine

pytestmark = GUIDANCE_MARKS

FIXTURES = Path(__file__).parent / "fixtures"
ORDER = {StageChanged: 0, ComplianceWarning: 1, CustomerSignal: 2, Suggestion: 3}
METADATA = {
    "dev_zh_02": {"customer_name": "赵丽萍", "company": "鼎泰资产管理", "amount": "8700元"},
    "dev_en_02": {"customer_name": "Marcus Bell", "company": "Crestview Collections", "amount": "$2,400"},
}


def run_call(name: str) -> tuple[dict[str, Any], list[list[EventBody]], Any]:
    script = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    guide = shared_engine().new_call(script["language"], METADATA[name])
    per_turn = [
        guide.on_final(turn["speaker"], turn["text"], f"{name}-{i}") for i, turn in enumerate(script["turns"])
    ]
    return script, per_turn, guide


# (fixture, turn) pairs that need content in prompts/rules.yaml rather than engine logic.
# (empty: 罚息按双倍 in dev_zh_02 turn 8 is now covered by a misrepresentation zh pattern)
CONTENT_GAPS: dict[tuple[str, int], str] = {}


def _agent_turns() -> list[Any]:
    params = []
    for name in ("dev_zh_02", "dev_en_02"):
        script = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
        for i, turn in enumerate(script["turns"]):
            if turn["speaker"] != "agent":
                continue
            marks = []
            if (name, i) in CONTENT_GAPS:
                marks.append(pytest.mark.xfail(reason=CONTENT_GAPS[(name, i)], strict=False))
            params.append(pytest.param(name, i, id=f"{name}-turn{i}", marks=marks))
    return params


@functools.cache
def _fired(name: str) -> list[set[str]]:
    _, per_turn, _ = run_call(name)
    return [{e.rule for e in events if isinstance(e, ComplianceWarning)} for events in per_turn]


@pytest.mark.parametrize(("name", "index"), _agent_turns())
def test_labelled_violations_fire_on_their_turn_and_clean_turns_stay_clean(name: str, index: int) -> None:
    script = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    expected = set(script["turns"][index]["rules"])
    fired = _fired(name)[index]
    assert expected <= fired, (script["turns"][index]["text"], expected, fired)
    if not expected:
        assert not fired, (script["turns"][index]["text"], fired)


@pytest.mark.parametrize("name", ["dev_zh_02", "dev_en_02"])
def test_customer_turns_raise_no_warnings(name: str) -> None:
    script = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    for turn, fired in zip(script["turns"], _fired(name), strict=True):
        if turn["speaker"] == "customer":
            assert not fired


@pytest.mark.parametrize("name", ["dev_zh_02", "dev_en_02"])
def test_event_order_and_wire_round_trip(name: str) -> None:
    _, per_turn, _ = run_call(name)
    seq = 0
    for events in per_turn:
        assert isinstance(events[-1], Suggestion)
        assert sum(isinstance(e, Suggestion) for e in events) == 1
        ranks = [ORDER[type(e)] for e in events]
        assert ranks == sorted(ranks)
        for body in events:
            seq += 1
            event = Event(call_id=name, seq=seq, ts=0.0, body=body)
            assert event_from_dict(json.loads(event.to_json())) == event


@pytest.mark.parametrize("name", ["dev_zh_02", "dev_en_02"])
def test_warnings_quote_the_words_and_offer_a_rephrase(name: str) -> None:
    script, per_turn, _ = run_call(name)
    for turn, events in zip(script["turns"], per_turn, strict=True):
        for w in (e for e in events if isinstance(e, ComplianceWarning)):
            assert w.quote and w.quote in turn["text"]
            assert w.why and w.rephrase and w.evidence
            assert w.speaker == "agent" and not w.partial


@pytest.mark.parametrize("name", ["dev_zh_02", "dev_en_02"])
def test_call_state_and_suggestions(name: str) -> None:
    script, per_turn, guide = run_call(name)
    state = guide.state()
    assert state["identity_confirmed"]
    assert state["warnings"]["critical"] >= 2
    assert state["turns"] == len(script["turns"])
    stage_changes = [e.stage for events in per_turn for e in events if isinstance(e, StageChanged)]
    assert stage_changes and stage_changes[0] == "opening"
    assert "proposal" in stage_changes or "confirmation" in stage_changes
    shown_last: set[str] = set()
    for events in per_turn:
        items = events[-1].items if isinstance(events[-1], Suggestion) else ()
        assert len(items) <= 3
        texts = {item.text for item in items}
        assert not texts & shown_last  # never the line just shown
        shown_last = texts
        for item in items:
            assert "{" not in item.text and item.reason
    signals = {e.signal for events in per_turn for e in events if isinstance(e, CustomerSignal)}
    expected = {t["intent"] for t in script["turns"] if t["speaker"] == "customer" and t["intent"] != "-"}
    assert len(signals & expected) >= len(expected) - 1, (signals, expected)


def test_hardship_turn_suggests_empathy_first() -> None:
    guide = shared_engine().new_call("en", {"customer_name": "Marcus Bell"})
    guide.on_final("agent", "Hello, is this Marcus Bell?", "a1")
    guide.on_final("customer", "Yes, speaking.", "c1")
    events = guide.on_final("customer", "I lost my job last month and my wife is in the hospital.", "c2")
    assert any(isinstance(e, CustomerSignal) and e.signal == "hardship" for e in events)
    suggestion = events[-1]
    assert isinstance(suggestion, Suggestion) and suggestion.items
    assert suggestion.items[0].reason == "customer signalled hardship: empathise first"


def test_analyze_lines_shares_state_per_call_and_survives_bad_lines() -> None:
    engine = shared_engine()
    lines = [
        json.dumps(
            {"speaker": "agent", "text": "您好，请问是赵丽萍女士吗？", "language": "zh", "call": "c1"}
        ),
        json.dumps({"speaker": "customer", "text": "是我，什么事？", "language": "zh", "call": "c1"}),
        "not json",
        json.dumps({"speaker": "robot", "text": "hi", "language": "en"}),
        "",
        json.dumps(
            {"speaker": "agent", "text": "你不还就是诈骗，我们马上报警抓你。", "language": "zh", "call": "c1"}
        ),
        json.dumps({"speaker": "customer", "text": "I lost my job and can't pay.", "language": "en"}),
    ]
    out = [json.loads(x) for x in analyze_lines(lines, engine)]
    assert len(out) == 6
    assert out[0]["stage"] == "opening" and out[0]["rules"] == []
    assert set(out[0]) == {"stage", "rules", "signals", "suggestions"}
    assert "confirm_identity" in {s["id"] for s in out[1]["signals"]}
    assert out[2]["error"].startswith("line 3: not JSON")
    assert "speaker" in out[3]["error"]
    rule = out[4]["rules"][0]
    assert rule["id"] == "false_criminal_threat" and set(rule) == {
        "id",
        "severity",
        "quote",
        "why",
        "rephrase",
    }
    assert out[4]["stage"] is None
    assert "hardship" in {s["id"] for s in out[5]["signals"]}
    assert out[5]["stage"] is None
    for o in out:
        for s in o.get("suggestions", []):
            assert set(s) == {"text", "reason", "source"}


def test_analyze_text_api() -> None:
    result = analyze_text(
        shared_engine(), "Nobody is going to arrest you, this is a civil matter.", "agent", "en"
    )
    assert result["rules"] == []
    with pytest.raises(ValueError, match="language"):
        analyze_text(shared_engine(), "hi", "agent", "fr")
