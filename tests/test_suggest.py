"""The suggestion policy's choices per customer signal and call state (no model needed).

Runs on the real playbook when it is complete, otherwise on the synthetic one
from test_playbook, so the state machine is tested either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assist.playbook import default_playbook_dir, load_playbook
from assist.playbook_content import Playbook
from assist.suggest import (
    MAX_SUGGESTIONS,
    NO_REPEAT_TURNS,
    CallState,
    Suggester,
    call_slots,
    note_agent_stage,
    note_signals,
)
from tests.fakes import synthetic, write

METADATA = {
    "customer_name": "赵丽萍",
    "amount": "8700元",
    "due_date": "20号",
    "instalment_amount": "2900元",
    "instalments": 3,
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    real = default_playbook_dir()
    try:
        return load_playbook(real)
    except Exception:
        return load_playbook(write(Path(tmp_path_factory.mktemp("pb")), synthetic()))


def new_state(pb: Playbook, language: str = "zh", metadata: dict[str, object] | None = None) -> CallState:
    return CallState(
        language=language, slots=call_slots(pb, language, METADATA if metadata is None else metadata)
    )


def turn(
    sugg: Suggester, st: CallState, signals: list[str] | None = None, stage: str | None = None
) -> list[str]:
    """One final utterance: customer signals or an agent stage, then the suggestions' line ids."""
    st.turn += 1
    if signals is not None:
        note_signals(st, signals)
    if stage is not None:
        st.stage = stage
        note_agent_stage(st, stage)
    return [p.line.id for p in sugg.suggest(st)]


def sources(pb: Playbook, ids: list[str]) -> set[str]:
    by_id = {line.id: line for line in pb.lines()}
    return {by_id[i].source for i in ids}


def test_before_identity_only_lines_that_say_nothing_about_the_debt(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    by_id = {line.id: line for line in playbook.lines()}
    for _ in range(4):
        ids = turn(sugg, st, stage="opening")
        assert all(not by_id[i].needs_identity for i in ids)
    assert not st.identity_confirmed


def test_confirm_identity_unlocks_the_purpose_of_the_call(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, stage="opening")
    ids = turn(sugg, st, signals=["confirm_identity"])
    assert st.identity_confirmed
    by_id = {line.id: line for line in playbook.lines()}
    assert any(by_id[i].needs_identity for i in ids), ids


def test_hardship_empathy_then_inquiry_then_options(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    ids = turn(sugg, st, signals=["hardship"])
    assert ids and sources(playbook, ids) <= {"signal:hardship", "stage:empathy"}
    st.turn += NO_REPEAT_TURNS  # let earlier lines age out so the flow step is visible
    ids = turn(sugg, st, stage="empathy")
    assert "stage:inquiry" in sources(playbook, ids), ids
    ids = turn(sugg, st, stage="inquiry")
    assert "stage:proposal" in sources(playbook, ids), ids


def test_request_plan_leads_to_proposal(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    st.turn += NO_REPEAT_TURNS
    ids = turn(sugg, st, signals=["request_plan"])
    assert sources(playbook, ids) & {"signal:request_plan", "stage:proposal"}
    assert ids[0] in {line.id for line in playbook.signal("request_plan").responses} | {
        line.id for line in playbook.stage("proposal").suggestions
    }


def test_promise_to_pay_leads_to_recap(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    ids = turn(sugg, st, signals=["promise_to_pay"])
    assert sources(playbook, ids) <= {"signal:promise_to_pay", "stage:confirmation"}, ids


@pytest.mark.parametrize("signal", ["cease_contact", "dispute", "lawyer", "hostile"])
def test_signal_responses_come_first(playbook: Playbook, signal: str) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    st.turn += NO_REPEAT_TURNS
    ids = turn(sugg, st, signals=[signal])
    responses = {line.id for line in playbook.signal(signal).responses}
    assert ids and ids[0] in responses
    assert st.active_signal == signal


@pytest.mark.parametrize("signal", ["cease_contact", "lawyer"])
def test_sticky_signals_stop_collection_lines_for_the_rest_of_the_call(
    playbook: Playbook, signal: str
) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    turn(sugg, st, signals=[signal])
    for _ in range(3):
        ids = turn(sugg, st, stage="proposal")
        assert "stage:proposal" not in sources(playbook, ids)


def test_third_party_only_lines_without_the_debt(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    by_id = {line.id: line for line in playbook.lines()}
    for _ in range(NO_REPEAT_TURNS + 2):
        ids = turn(sugg, st, signals=["third_party"])
        assert all(not by_id[i].needs_identity for i in ids)
    assert st.third_party_answered and not st.identity_confirmed


def test_multi_signal_priority(playbook: Playbook) -> None:
    st = new_state(playbook)
    note_signals(st, ["request_plan", "hardship"])
    assert st.active_signal == "hardship"
    note_signals(st, ["hostile", "third_party"])
    assert st.active_signal == "third_party"


def test_at_most_three_and_no_repeat(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook)
    turn(sugg, st, signals=["confirm_identity"])
    history: list[list[str]] = []
    for stage in ["inquiry", "inquiry", "proposal", "proposal", "confirmation"]:
        ids = turn(sugg, st, stage=stage)
        assert len(ids) <= MAX_SUGGESTIONS
        assert len(set(ids)) == len(ids)
        for earlier in history[-(NO_REPEAT_TURNS - 1) :]:
            assert not set(ids) & set(earlier)
        history.append(ids)


def test_unknown_slots_skip_the_line_never_show_a_raw_slot(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook, "en", metadata={})
    turn(sugg, st, signals=["confirm_identity"])
    for stage in ["opening", "inquiry", "proposal", "confirmation"] * 2:
        st.turn += 1
        st.stage = stage
        for pick in sugg.suggest(st):
            assert "{" not in pick.text and "}" not in pick.text
            assert "{amount}" not in pick.line.text.en or "amount" in st.slots


def test_slots_are_filled_from_metadata_and_defaults(playbook: Playbook) -> None:
    slots = call_slots(
        playbook, "zh", {"customer_name": "赵丽萍", "amount": 8700, "company": {"zh": "快易借"}}
    )
    assert slots["customer_name"] == "赵丽萍"
    assert slots["amount"] == "8700"
    assert slots["company"] == "快易借"
    assert slots["agent_name"] == playbook.agent_name.zh
    assert "due_date" not in slots


def test_excluded_lines_are_never_suggested(playbook: Playbook) -> None:
    all_ids = frozenset(line.id for line in playbook.lines())
    sugg = Suggester(playbook, excluded=all_ids)
    st = new_state(playbook)
    assert turn(sugg, st, signals=["hardship"]) == []


def test_reasons_name_the_signal(playbook: Playbook) -> None:
    sugg = Suggester(playbook)
    st = new_state(playbook, "en")
    turn(sugg, st, signals=["confirm_identity"])
    st.turn += NO_REPEAT_TURNS
    st.turn += 1
    note_signals(st, ["hardship"])
    picks = sugg.suggest(st)
    assert picks and picks[0].reason == "customer signalled hardship: empathise first"
