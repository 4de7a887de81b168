"""Next-line suggestions: what the agent could say now, given the call so far.

The policy follows the domain notes (shared/domain.md, section 2): the last
customer signal decides what matters now (hardship -> empathy, then questions,
then options; a third party on the line -> nothing about the debt; ...), and
without a fresh signal the call's stage decides (lines of the current stage,
then of the next).  Hard filters come before ranking, because a wrong line on
screen is worse than no line: nothing that needs a confirmed identity before
the borrower confirmed, nothing whose slots this call cannot fill, nothing
shown in the last few turns, nothing the engine found non-compliant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assist.playbook_content import SLOTS, STAGE_IDS, Line, Playbook, fill_slots

MAX_SUGGESTIONS = 3
# A line shown at turn t may come back at turn t + NO_REPEAT_TURNS at the earliest:
# repeating a line the agent just ignored only adds noise.
NO_REPEAT_TURNS = 6

# When one customer turn carries several signals, the one that changes what the
# agent may lawfully say comes first, then the emotional state, then the offer.
SIGNAL_PRIORITY: tuple[str, ...] = (
    "third_party",
    "lawyer",
    "cease_contact",
    "dispute",
    "hostile",
    "hardship",
    "request_plan",
    "promise_to_pay",
    "confirm_identity",
)
# Stages the agent should go through after a signal, in order; each step is done
# once the agent says something of that stage.
SIGNAL_FLOW: Mapping[str, tuple[str, ...]] = {
    "hardship": ("empathy", "inquiry", "proposal"),
    "request_plan": ("proposal",),
    "promise_to_pay": ("confirmation",),
    "hostile": ("empathy",),
    "confirm_identity": ("opening", "inquiry"),
}
# These restrict the whole rest of the call (third party: until the borrower confirms).
STICKY_SIGNALS: frozenset[str] = frozenset({"third_party", "lawyer", "cease_contact"})

PARTY_SOURCE = "party:third_party"
RESPONSE_SCORE = 1.0
FLOW_TAGGED_SCORE = 0.9
FLOW_SCORE = 0.8
STAGE_TAGGED_SCORE = 0.7
STAGE_SCORE = 0.6
NEXT_STAGE_SCORE = 0.5
# Once the agent has taken the first step after a signal, its canned responses
# give way to the next step of the flow.
FADED_RESPONSE_SCORE = 0.55
ORDER_PENALTY = 0.01  # keeps the playbook's own order among equals
# Between the signals of one customer turn, the more pressing one's lines rank first.
FRESH_RANK_PENALTY = 0.05

REASONS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "confirm_identity": "identity confirmed: state the purpose of the call",
        "hardship": "customer signalled hardship: empathise first",
        "request_plan": "customer asked for a plan: explore amount and dates",
        "promise_to_pay": "customer promised to pay: recap amount, date and channel",
        "dispute": "customer disputes the debt: stop collecting it, explain verification",
        "cease_contact": "customer asked not to be called: acknowledge, offer writing",
        "third_party": "not the borrower: say nothing about the debt",
        "lawyer": "customer has a lawyer: take the lawyer's contact",
        "hostile": "customer is upset: stay calm and de-escalate",
        "flow": "after {signal}: {goal}",
        "stage": "{goal}",
        "next": "next step, {goal}",
        "no_identity": "identity not confirmed: nothing about the debt yet",
    },
    "zh": {
        "confirm_identity": "身份已确认：说明来电目的",
        "hardship": "客户表示困难：先共情",
        "request_plan": "客户要求分期/延期：了解金额和时间",
        "promise_to_pay": "客户承诺还款：复述金额、日期和渠道",
        "dispute": "客户有异议：暂停催收该部分，说明核实流程",
        "cease_contact": "客户要求停止来电：确认并提供书面渠道",
        "third_party": "非本人接听：不提欠款",
        "lawyer": "客户有律师：记录律师联系方式",
        "hostile": "客户情绪激动：保持冷静，缓和气氛",
        "flow": "{signal}之后：{goal}",
        "stage": "{goal}",
        "next": "下一步，{goal}",
        "no_identity": "尚未核实身份：先不提欠款",
    },
}
# One short line per stage for reasons; the playbook's goals are full sentences, too long
# for a reason shown under each suggestion.
STAGE_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "opening": "opening: introduce yourself, verify identity",
        "empathy": "empathy: acknowledge before asking",
        "inquiry": "inquiry: ask open questions",
        "proposal": "proposal: offer concrete options",
        "confirmation": "confirmation: recap and confirm",
    },
    "zh": {
        "opening": "开场：自我介绍并核实身份",
        "empathy": "共情：先回应对方感受",
        "inquiry": "了解：开放式提问",
        "proposal": "方案：给出具体选项",
        "confirmation": "确认：复述并确认方案",
    },
}
SIGNAL_LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {s: s.replace("_", " ") for s in SIGNAL_PRIORITY},
    "zh": {
        "confirm_identity": "确认身份",
        "hardship": "表示困难",
        "request_plan": "要求分期",
        "promise_to_pay": "承诺还款",
        "dispute": "提出异议",
        "cease_contact": "要求停止来电",
        "third_party": "非本人接听",
        "lawyer": "委托律师",
        "hostile": "情绪激动",
    },
}


@dataclass
class CallState:
    """Everything the policy needs to know about one call; mutated by the CallGuide."""

    language: str
    slots: dict[str, str]
    stage: str | None = None
    stage_history: list[str] = field(default_factory=list)
    identity_confirmed: bool = False
    third_party_answered: bool = False
    signals_seen: dict[str, int] = field(default_factory=dict)
    active_signal: str | None = None
    sticky: set[str] = field(default_factory=set)
    flow_done: set[str] = field(default_factory=set)
    turn: int = 0
    # The signals of the latest customer turn and that turn's number: the suggestion event that
    # turn produces must answer each of them (fresh_signals() below).
    last_signals: tuple[str, ...] = ()
    signal_turn: int = -1
    last_agent_line: str = ""  # what the customer is answering (assist/signals.py read_in_context)
    shown: dict[str, int] = field(default_factory=dict)  # line id -> turn it was last shown
    warnings: dict[str, int] = field(default_factory=lambda: {"critical": 0, "major": 0, "minor": 0})


@dataclass(frozen=True)
class Pick:
    line: Line
    text: str
    reason: str
    score: float
    # Why the line is on the panel, machine-readable: "signal:<id>" (answers that customer
    # signal), "party:third_party" (someone else is on the line), "stage:<id>" (the call's
    # stage), "next:<id>" (the stage after it).
    source: str = ""


def call_slots(playbook: Playbook, language: str, metadata: Mapping[str, Any]) -> dict[str, str]:
    """Slot values for this call: call metadata first, playbook defaults for company and agent."""
    values: dict[str, str] = {}
    if language in playbook.languages:
        values["company"] = playbook.company.get(language)
        values["agent_name"] = playbook.agent_name.get(language)
    for name in SLOTS:
        raw = metadata.get(name)
        if isinstance(raw, Mapping):
            raw = raw.get(language)
        if isinstance(raw, bool) or raw is None:
            continue
        if isinstance(raw, str | int | float) and str(raw).strip():
            values[name] = str(raw).strip()
    return values


def note_signals(state: CallState, signals: list[str]) -> None:
    """Update the state after a customer turn that carried these signals."""
    if not signals:
        return
    for s in signals:
        state.signals_seen[s] = state.signals_seen.get(s, 0) + 1
    ranked = sorted(
        signals, key=lambda s: SIGNAL_PRIORITY.index(s) if s in SIGNAL_PRIORITY else len(SIGNAL_PRIORITY)
    )
    if "third_party" in signals:
        state.third_party_answered = True
        state.identity_confirmed = False
    elif "confirm_identity" in signals:
        state.identity_confirmed = True
        state.third_party_answered = False
        state.sticky.discard("third_party")
    state.sticky.update(s for s in signals if s in STICKY_SIGNALS)
    state.active_signal = ranked[0]
    state.flow_done = set()
    state.last_signals = tuple(ranked)
    state.signal_turn = state.turn


def fresh_signals(state: CallState) -> tuple[str, ...]:
    """The signals the customer gave in this very turn, most pressing first (none after an agent turn)."""
    return state.last_signals if state.signal_turn == state.turn else ()


def note_agent_stage(state: CallState, stage: str | None) -> None:
    if stage is not None and state.active_signal is not None:
        state.flow_done.add(stage)


class Suggester:
    def __init__(self, playbook: Playbook, excluded: frozenset[str] = frozenset()) -> None:
        self.playbook = playbook
        self.excluded = excluded
        self.stage_order = tuple(s.id for s in playbook.stages) or STAGE_IDS

    def _reason(self, language: str, key: str, **kw: str) -> str:
        table = REASONS.get(language, REASONS["en"])
        return table[key].format(**kw)

    def _goal(self, stage_id: str, language: str) -> str:
        return STAGE_LABELS.get(language, STAGE_LABELS["en"]).get(stage_id, stage_id)

    def candidates(self, state: CallState) -> list[tuple[Line, float, str, str]]:
        """(line, score, reason, source) before filtering, best first within each source."""
        lang = state.language
        out: list[tuple[Line, float, str, str]] = []
        active = state.active_signal
        restrict = next((s for s in SIGNAL_PRIORITY if s in state.sticky), None)

        def add_signal_lines(sig: str, base: float, source: str | None = None) -> None:
            try:
                responses = self.playbook.signal(sig).responses
            except KeyError:
                return
            reason = self._reason(lang, sig)
            source = source or f"signal:{sig}"
            for i, line in enumerate(responses):
                out.append((line, base - i * ORDER_PENALTY, reason, source))
            for st in self.playbook.stages:
                for i, line in enumerate(st.suggestions):
                    if sig in line.after_signals:
                        out.append((line, FLOW_TAGGED_SCORE - i * ORDER_PENALTY, reason, source))

        # What the customer just said is answered first, whatever restricts the call: a borrower with
        # a lawyer who then promises to pay still gets a recap (lines about the debt still need a
        # confirmed identity, so a third party hears nothing about it).
        for rank, sig in enumerate(fresh_signals(state)):
            if sig != restrict:
                add_signal_lines(sig, RESPONSE_SCORE - rank * FRESH_RANK_PENALTY)
        if restrict is not None:
            add_signal_lines(restrict, RESPONSE_SCORE, PARTY_SOURCE if restrict == "third_party" else None)
            return out
        if active is not None:
            add_signal_lines(active, FADED_RESPONSE_SCORE if state.flow_done else RESPONSE_SCORE)
            for step in SIGNAL_FLOW.get(active, ()):
                if step in state.flow_done:
                    continue
                label = SIGNAL_LABELS.get(lang, SIGNAL_LABELS["en"]).get(active, active)
                reason = self._reason(lang, "flow", signal=label, goal=self._goal(step, lang))
                for i, line in enumerate(self._stage_lines(step)):
                    score = FLOW_TAGGED_SCORE if active in line.after_signals else FLOW_SCORE
                    out.append((line, score - i * ORDER_PENALTY, reason, f"signal:{active}"))
                break
        current = state.stage or self.stage_order[0]
        reason = self._reason(lang, "stage", stage=current, goal=self._goal(current, lang))
        for i, line in enumerate(self._stage_lines(current)):
            score = STAGE_TAGGED_SCORE if active is not None and active in line.after_signals else STAGE_SCORE
            out.append((line, score - i * ORDER_PENALTY, reason, f"stage:{current}"))
        if current in self.stage_order:
            idx = self.stage_order.index(current)
            if idx + 1 < len(self.stage_order):
                nxt = self.stage_order[idx + 1]
                reason = self._reason(lang, "next", stage=nxt, goal=self._goal(nxt, lang))
                for i, line in enumerate(self._stage_lines(nxt)):
                    out.append((line, NEXT_STAGE_SCORE - i * ORDER_PENALTY, reason, f"next:{nxt}"))
        return out

    def _stage_lines(self, stage_id: str) -> tuple[Line, ...]:
        try:
            return self.playbook.stage(stage_id).suggestions
        except KeyError:
            return ()

    def _allowed(self, state: CallState, line: Line) -> bool:
        """The hard filters other than the repeat filter."""
        if line.id in self.excluded:
            return False
        if line.needs_identity and not state.identity_confirmed:
            return False
        # Greetings and identity checks are stale once the borrower confirmed.
        return not (
            state.identity_confirmed
            and line.source == "stage:opening"
            and not line.needs_identity
            and (state.active_signal is None or state.active_signal not in line.after_signals)
        )

    def suggest(self, state: CallState) -> list[Pick]:
        """At most MAX_SUGGESTIONS lines, best first; marks them shown at the current turn.

        Each signal of the customer's latest turn gets a line that answers it even when all its
        lines were shown lately (the customer raised it again, so the answer is due again), and a
        panel the repeat filter would empty shows the best lines it may show instead: mid-call the
        agent should never face an empty panel.
        """
        lang = state.language
        ranked = sorted(self.candidates(state), key=lambda c: -c[1])
        usable = [c for c in ranked if self._allowed(state, c[0])]
        picks: list[Pick] = []
        seen_texts: set[str] = set()

        def recent(line: Line) -> bool:
            shown_at = state.shown.get(line.id)
            return shown_at is not None and state.turn - shown_at < NO_REPEAT_TURNS

        def just_shown(line: Line) -> bool:  # on the panel the agent is looking at right now
            return state.shown.get(line.id) == state.turn - 1

        def take(line: Line, score: float, reason: str, source: str) -> None:
            if len(picks) >= MAX_SUGGESTIONS or any(p.line.id == line.id for p in picks):
                return
            text = fill_slots(line.text.get(lang), state.slots)
            if text is None or text in seen_texts:
                return
            seen_texts.add(text)
            if not state.identity_confirmed and line.needs_identity is False and state.active_signal is None:
                reason = self._reason(lang, "no_identity") if line.source != "stage:opening" else reason
            picks.append(Pick(line, text, reason, round(max(0.0, score), 3), source))

        for sig in fresh_signals(state):
            answers = [c for c in usable if handles(c[3], sig)]
            answers.sort(
                key=lambda c: (
                    just_shown(c[0]),
                    recent(c[0]),
                    state.shown.get(c[0].id, -1) if recent(c[0]) else 0,
                )
            )
            before = len(picks)
            for c in answers:
                take(*c)
                if len(picks) > before:
                    break
        for c in usable:
            if not recent(c[0]):
                take(*c)
        if not picks:  # lines shown a few turns ago, but not the ones on the panel right now
            for c in usable:
                if not just_shown(c[0]):
                    take(*c)
        if not picks:
            for c in usable:
                take(*c)
        picks.sort(key=lambda p: -p.score)
        for p in picks:
            state.shown[p.line.id] = state.turn
        return picks


def handles(source: str, signal: str) -> bool:
    """Whether a line shown for ``source`` (Pick.source) answers the customer ``signal``."""
    return source == f"signal:{signal}" or (signal == "third_party" and source == PARTY_SOURCE)
