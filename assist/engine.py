"""The guidance engine: one per process, one CallGuide per call.

``GuidanceEngine`` holds what is expensive and shared (the playbook, the
encoder, the exemplar embeddings); ``CallGuide`` holds what one call has seen
and turns each transcript into guidance events.  Everything here is
synchronous: the caller decides which thread runs it.

The thresholds are declared once, with how they were calibrated, in assist/thresholds.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from assist.caching import ArrayCache, NoCache
from assist.clauses import Clause, normalize_asr, split_clauses
from assist.compliance import ComplianceChecker
from assist.encoders import TextEncoder
from assist.events import (
    ComplianceRetracted,
    ComplianceWarning,
    CustomerSignal,
    EventBody,
    Speaker,
    StageChanged,
    Suggestion,
    SuggestionItem,
)
from assist.exemplars import (
    embed_exemplars,
    train_line_models_once,
    train_rule_selector,
    train_stage_model,
    train_violation_detector,
)
from assist.linemodel import (
    LineJudgement,
)
from assist.patterns import Finding
from assist.playbook_content import SAMPLE_SLOT_VALUES, Playbook, fill_slots
from assist.signal_context import TurnContext, read_in_context
from assist.signals import SignalDetector, SignalHit
from assist.stages import NO_STAGE, StageClassifier
from assist.suggest import CallState, Pick, Suggester, call_slots, note_agent_stage, note_signals
from assist.thresholds import Thresholds

log = logging.getLogger(__name__)

# ComplianceRetracted.reason when the final transcript no longer breaks the rule.
RETRACTED_NOT_IN_FINAL = "not in the final transcript"

# The agent saying the borrower is verified counts as much as the borrower saying so.
AGENT_CONFIRMS_IDENTITY = re.compile(
    r"(谢谢|感谢)(您|你)?的?(确认|配合核实|核实)|身份(已经?|已)?(核实|确认)(无误|了|完毕)?|核实(无误|完毕|通过)"
    r"|thanks? (you )?for (confirming|verifying)|(you've|you have) been verified"
    r"|identity (is |has been )?(confirmed|verified)",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True)
class AgentJudgement:
    stage: str | None
    confidence: float
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class TurnResult:
    """What one final utterance produced, in plain form (also what analyze-text prints)."""

    speaker: Speaker
    stage: str | None  # the stage this agent utterance was judged to be in
    confidence: float
    findings: tuple[Finding, ...]
    signals: tuple[SignalHit, ...]
    suggestions: tuple[Pick, ...]
    previous_stage: str | None = None  # the call's stage before this utterance
    stage_changed: bool = False
    retracted: tuple[Finding, ...] = ()  # raised from a partial, not borne out by this final


def resolve_language(text: str, default: str, supported: tuple[str, ...]) -> str:
    """The call's language unless the text is plainly in the other one (code-switching happens)."""
    if _CJK.search(text):
        lang = "zh"
    elif _LATIN.search(text):
        lang = "en"
    else:
        lang = default
    return lang if lang in supported else default


class GuidanceEngine:
    """Built once per process: embeds the playbook's exemplars (kept in the caller's ``cache``) and
    holds the models trained from them."""

    def __init__(
        self,
        playbook: Playbook,
        encoder: TextEncoder,
        *,
        cache: ArrayCache | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.playbook = playbook
        self.encoder = encoder
        self.thresholds = thresholds or Thresholds()
        cache = cache or NoCache()
        exemplars = embed_exemplars(playbook, encoder, cache)
        sets = exemplars.sets
        training = [*exemplars.examples, *exemplars.labelled]
        self.line_models = train_line_models_once(playbook, encoder.name, training, cache)
        t = self.thresholds
        self.compliance = ComplianceChecker(
            playbook.rules,
            sets["violation"],
            sets["compliant"],
            t,
            selector=train_rule_selector(playbook, sets),
            detector=train_violation_detector(playbook, sets),
        )
        self.stages = StageClassifier(
            tuple(s.id for s in playbook.stages),
            sets["stage"],
            top_k=t.stage_top_k,
            min_score=t.stage_min,
            keyword_boost=t.stage_keyword_boost,
            model=train_stage_model(playbook, sets),
            model_weight=t.stage_model_weight,
        )
        self.signals = SignalDetector(
            tuple(s.id for s in playbook.signals),
            sets["signal"],
            top_k=t.signal_top_k,
            min_score=t.signal_min,
            multi_gap=t.signal_multi_gap,
            second_min=t.signal_second_min,
            keyword_boost=t.signal_keyword_boost,
            none_margin=t.signal_none_margin,
        )
        self.excluded_lines = self._screen_lines()
        self.suggester = Suggester(playbook, frozenset(self.excluded_lines))

    def _screen_lines(self) -> dict[str, str]:
        """Suggestion lines the similarity check flags: never shown (patterns already fail the load)."""
        excluded: dict[str, str] = {}
        for line in self.playbook.lines():
            for lang in self.playbook.languages:
                filled = fill_slots(line.text.get(lang), SAMPLE_SLOT_VALUES[lang])
                if not filled:
                    continue
                findings = self.judge_agent(filled, lang, skip_compliant=f"line:{line.id}").findings
                if findings:
                    excluded[line.id] = f"{lang}: {findings[0].rule} ({findings[0].evidence})"
                    log.warning("suggestion %s withheld: looks like %s", line.id, excluded[line.id])
                    break
        return excluded

    def _encode_units(self, text: str) -> tuple[list[Clause], np.ndarray]:
        """Embed the whole text (row 0) and, when there are several, each clause (rows 1..)."""
        clauses = split_clauses(text)
        if not clauses:
            return [], np.zeros((0, 0), dtype=np.float32)
        units = [text] if len(clauses) == 1 else [text, *(c.text for c in clauses)]
        return clauses, self.encoder.encode(units)

    def judge_agent(self, text: str, language: str, *, skip_compliant: str | None = None) -> AgentJudgement:
        """Stage and compliance findings for one finished agent utterance."""
        text = normalize_asr(text, language)
        clauses, vecs = self._encode_units(text)
        if not clauses:
            return AgentJudgement(None, 0.0, ())
        stage, _ = self.stages.classify(vecs[0], text, language)  # for the margin below
        # Similarity judges each clause and, when there are several, the whole utterance too:
        # some violations only read as one across a comma ("不还的话，你那个店还想不想开").
        units = clauses if len(clauses) == 1 else [*clauses, Clause(text.strip(), 0, len(text))]
        unit_vecs = vecs[:1] if len(clauses) == 1 else np.concatenate([vecs[1:], vecs[:1]])
        # A line whose own wording does a stage's job ("请问是马先生本人吗", "would either of those
        # work?") is rarely a violation the patterns miss, while calm lines about cards and loans
        # sit close to violation examples on topic alone: similarity then needs a wider margin.
        extra = (
            self.thresholds.compliance_stage_margin
            if stage is not None and self.stages.keyword_hit(stage, text, language)
            else 0.0
        )
        findings = self.compliance.check(text, language, units, unit_vecs, skip_compliant, extra)
        line = self.line_models.judge(text, language, vecs[0])
        findings = self._with_line_model(text, language, findings, line)
        model_stage = None if line.stage == NO_STAGE else line.stage
        if model_stage is None and findings:
            # Most violating lines serve no stage, and the model learned that; one whose own
            # wording also does a stage's job ("少跟我啰嗦，你就说几号还") keeps it
            # (assist/stages.py VIOLATION_STAGE_CUES).
            model_stage = self.stages.violation_stage(text, language)
        return AgentJudgement(model_stage, round(line.stage_probability, 3), tuple(findings))

    def _with_line_model(
        self, text: str, language: str, findings: list[Finding], line: LineJudgement
    ) -> list[Finding]:
        """Findings plus the rules the line model is sure of (never a reassurance of that rule),
        less nearest-example findings on a line the model reads as compliant (Thresholds.line_veto_*)."""
        t = self.thresholds
        if line.violation < t.line_veto_violation:  # the model's "compliant" outweighs topic
            findings = [
                f
                for f in findings
                if f.source != "similarity" or line.rules.get(f.rule, 0.0) >= t.line_veto_rule
            ]
        have = {f.rule for f in findings}
        ranked = sorted(line.rules.items(), key=lambda kv: -kv[1])
        if have:
            extra = [(r, p) for r, p in ranked if p >= t.line_rule_add and r not in have]
        elif line.violation >= t.line_violation_min:
            extra = [(r, p) for r, p in ranked if p >= t.line_rule_alone]
        else:
            extra = []
        out = list(findings)
        for rid, p in extra:
            rule = self.compliance.by_id.get(rid)
            if rule is None or self.compliance.reassured(rid, text, language):
                continue
            evidence = f"line model: {p:.2f} (violation {line.violation:.2f})"
            out.append(Finding.of(rule, language, text.strip(), evidence, round(p, 3), "model"))
        return self.compliance.in_order(out)

    def judge_customer(self, text: str, language: str) -> list[SignalHit]:
        """Customer signals for one finished customer utterance."""
        clauses, vecs = self._encode_units(text)
        if not clauses:
            return []
        texts = [text] if len(clauses) == 1 else [text, *(c.text for c in clauses)]
        return self.signals.detect(texts, vecs, language)

    def new_call(self, language: str, metadata: Mapping[str, Any] | None = None) -> CallGuide:
        return CallGuide(self, language, metadata or {})


class CallGuide:
    """Per-call state and the events each transcript produces."""

    def __init__(self, engine: GuidanceEngine, language: str, metadata: Mapping[str, Any]) -> None:
        self.engine = engine
        supported = engine.playbook.languages
        self.language = language if language in supported else supported[0]
        self.metadata = dict(metadata)
        self.call_state = CallState(
            language=self.language, slots=call_slots(engine.playbook, self.language, metadata)
        )
        self._partial_raised: dict[str, dict[str, Finding]] = {}  # utterance -> rule -> warning
        self.last: TurnResult | None = None

    # -- partial transcripts: patterns only, critical rules only, once per utterance; the final
    # either bears a warning out (it is not raised again) or retracts it

    def on_partial(self, speaker: Speaker, text: str, utterance_id: str) -> list[EventBody]:
        if speaker != "agent" or not text.strip():
            return []
        lang = resolve_language(text, self.language, self.engine.playbook.languages)
        raised = self._partial_raised.setdefault(utterance_id, {})
        out: list[EventBody] = []
        for f in self.engine.compliance.patterns(text, lang):
            if f.severity != "critical" or f.rule in raised:
                continue
            raised[f.rule] = f
            self.call_state.warnings[f.severity] = self.call_state.warnings.get(f.severity, 0) + 1
            out.append(self._warning(f, utterance_id, partial=True))
        return out

    # -- final transcripts

    def judge_final(self, speaker: Speaker, text: str, utterance_id: str) -> TurnResult:
        """Update the call state with one finished utterance and return what it produced."""
        st = self.call_state
        st.turn += 1
        lang = resolve_language(text, self.language, self.engine.playbook.languages)
        stage: str | None = None
        confidence = 0.0
        findings: tuple[Finding, ...] = ()
        signals: tuple[SignalHit, ...] = ()
        retracted: tuple[Finding, ...] = ()
        if speaker == "agent":
            judged = self.engine.judge_agent(text, lang)
            stage, confidence = judged.stage, judged.confidence
            early = self._partial_raised.pop(utterance_id, {})
            findings = tuple(f for f in judged.findings if f.rule not in early)
            final_rules = {f.rule for f in judged.findings}
            retracted = tuple(f for rule, f in early.items() if rule not in final_rules)
            for f in findings:
                st.warnings[f.severity] = st.warnings.get(f.severity, 0) + 1
            for f in retracted:
                st.warnings[f.severity] = max(0, st.warnings.get(f.severity, 0) - 1)
            if AGENT_CONFIRMS_IDENTITY.search(text) and not st.third_party_answered:
                st.identity_confirmed = True
            note_agent_stage(st, stage)
            st.last_agent_line = text
        else:
            context = TurnContext(
                st.last_agent_line,
                st.third_party_answered,
                st.identity_confirmed,
                st.active_signal,
                frozenset(st.signals_seen),
            )
            signals = tuple(read_in_context(self.engine.judge_customer(text, lang), text, lang, context))
            note_signals(st, [h.signal for h in signals])
        previous = st.stage
        changed = (
            stage is not None and stage != previous and confidence >= self.engine.thresholds.stage_change_min
        )
        if changed:
            st.stage = stage
            st.stage_history.append(stage or "")
        picks = tuple(self.engine.suggester.suggest(st))
        result = TurnResult(
            speaker, stage, confidence, findings, signals, picks, previous, changed, retracted
        )
        self.last = result
        return result

    def on_final(self, speaker: Speaker, text: str, utterance_id: str) -> list[EventBody]:
        """ComplianceRetracted (if any), StageChanged (if any), ComplianceWarnings, CustomerSignals,
        then one Suggestion."""
        st = self.call_state
        result = self.judge_final(speaker, text, utterance_id)
        out: list[EventBody] = [
            ComplianceRetracted(utterance_id, f.rule, f.severity, RETRACTED_NOT_IN_FINAL)
            for f in result.retracted
        ]
        if result.stage_changed and result.stage is not None:
            out.append(StageChanged(result.stage, result.previous_stage, result.confidence, utterance_id))
        out.extend(self._warning(f, utterance_id, partial=False) for f in result.findings)
        out.extend(CustomerSignal(utterance_id, h.signal, h.score, h.quote) for h in result.signals)
        items = tuple(SuggestionItem(p.text, p.reason, p.score, p.source) for p in result.suggestions)
        out.append(Suggestion(utterance_id, st.stage, items))
        return out

    def _warning(self, f: Finding, utterance_id: str, *, partial: bool) -> ComplianceWarning:
        return ComplianceWarning(
            utterance_id=utterance_id,
            speaker="agent",
            rule=f.rule,
            severity=f.severity,
            quote=f.quote,
            why=f.why,
            rephrase=f.rephrase,
            evidence=f.evidence,
            score=f.score,
            partial=partial,
        )

    def state(self) -> dict[str, Any]:
        st = self.call_state
        return {
            "stage": st.stage,
            "stages": list(st.stage_history),
            "identity_confirmed": st.identity_confirmed,
            "third_party_answered": st.third_party_answered,
            "signals_seen": dict(st.signals_seen),
            "last_signal": st.active_signal,
            "warnings": dict(st.warnings),
            "turns": st.turn,
        }
