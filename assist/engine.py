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
from pathlib import Path
from typing import Any

import numpy as np

from assist.clauses import Clause, normalize_asr, split_clauses
from assist.compliance import COMPLIANT, VIOLATION, ComplianceChecker
from assist.encoders import ExemplarSet, TextEncoder, cached_encode, default_cache_dir
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
from assist.linemodel import (
    LineJudgement,
    LineModels,
    TrainingLine,
    cached_line_models,
    line_models_key,
    train_line_models,
)
from assist.patterns import Finding
from assist.playbook_content import NO_STAGE_LABEL, SAMPLE_SLOT_VALUES, LabelledLine, Playbook, fill_slots
from assist.signals import NEUTRAL_CUSTOMER, NO_SIGNAL, SignalDetector, SignalHit
from assist.softmax_model import SoftmaxModel, train_softmax
from assist.stages import NEUTRAL_AGENT, NO_STAGE, StageClassifier
from assist.suggest import CallState, Pick, Suggester, call_slots, note_agent_stage, note_signals
from assist.thresholds import Thresholds

log = logging.getLogger(__name__)

# The violation-vs-compliant detector is a sharper model than the rule selector's (swept 1e-4..3e-3).
COMPLIANCE_DETECTOR_L2 = 1e-4

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


@dataclass(frozen=True)
class Exemplars:
    """A playbook's sentences embedded once: the nearest-example sets per kind and language,
    and the line models' training lines."""

    sets: dict[str, dict[str, ExemplarSet]]  # kind ("stage", "signal", "violation", "compliant") -> language
    examples: list[TrainingLine]  # the playbook's agent-side examples
    labelled: list[TrainingLine]  # one per labelled_agent_lines(playbook), in that order


def labelled_agent_lines(pb: Playbook) -> list[LabelledLine]:
    """The playbook's labelled lines the line models learn from: agent lines in its languages."""
    return [x for x in pb.labelled if x.speaker == "agent" and x.language in pb.languages]


def embed_exemplars(pb: Playbook, encoder: TextEncoder, cache_dir: str | Path | None) -> Exemplars:
    """Embed every example sentence of ``pb`` (cached on disk per playbook version)."""
    rows: list[tuple[str, str, str, str]] = []  # (kind, language, label, text)
    for lang in pb.languages:
        for st in pb.stages:
            for ex in st.examples.get(lang):
                rows.append(("stage", lang, st.id, ex))
                rows.append(("compliant", lang, f"stage:{st.id}", ex))
            for line in st.suggestions:
                filled = fill_slots(line.text.get(lang), SAMPLE_SLOT_VALUES[lang])
                if filled:
                    rows.append(("stage", lang, st.id, filled))
                    rows.append(("compliant", lang, f"line:{line.id}", filled))
        for ex in NEUTRAL_AGENT.get(lang, ()):
            rows.append(("stage", lang, NO_STAGE, ex))
            # holding lines and line trouble are compliant agent speech too
            rows.append(("compliant", lang, f"stage:{NO_STAGE}", ex))
        for sg in pb.signals:
            for ex in sg.examples.get(lang):
                rows.append(("signal", lang, sg.id, ex))
            for line in sg.responses:
                filled = fill_slots(line.text.get(lang), SAMPLE_SLOT_VALUES[lang])
                if filled:
                    rows.append(("compliant", lang, f"line:{line.id}", filled))
        for ex in NEUTRAL_CUSTOMER.get(lang, ()):
            rows.append(("signal", lang, NO_SIGNAL, ex))
        for rule in pb.rules:
            for ex in rule.violations.get(lang):
                rows.append(("violation", lang, rule.id, ex))
            for ex in rule.lookalikes.get(lang):
                rows.append(("compliant", lang, f"lookalike:{rule.id}", ex))
    # Reviewed lines are embedded as the engine will see them: after ASR normalisation.
    labelled = labelled_agent_lines(pb)
    labelled_texts = [normalize_asr(x.text, x.language) for x in labelled]
    texts = [r[3] for r in rows]
    all_vectors = cached_encode(
        encoder, [*texts, *labelled_texts], playbook_version=pb.playbook_version, cache_dir=cache_dir
    )
    vectors, labelled_vectors = all_vectors[: len(rows)], all_vectors[len(rows) :]
    sets: dict[str, dict[str, ExemplarSet]] = {}
    for kind in ("stage", "signal", "violation", "compliant"):
        sets[kind] = {}
        for lang in pb.languages:
            idx = [i for i, r in enumerate(rows) if r[0] == kind and r[1] == lang]
            sets[kind][lang] = ExemplarSet(
                texts=tuple(rows[i][3] for i in idx),
                labels=tuple(rows[i][2] for i in idx),
                vectors=vectors[idx] if idx else np.zeros((0, vectors.shape[1]), dtype=np.float32),
            )
    return Exemplars(
        sets,
        _example_lines(rows, vectors),
        [
            TrainingLine(
                x.language, text, vec, NO_STAGE if x.stage in (None, NO_STAGE_LABEL) else x.stage, x.rules
            )
            for x, text, vec in zip(labelled, labelled_texts, labelled_vectors, strict=True)
        ],
    )


def _example_lines(rows: list[tuple[str, str, str, str]], vectors: np.ndarray) -> list[TrainingLine]:
    """The playbook's agent-side examples as line-model training lines: stage examples and
    suggestions teach their stage, violations their rule, everything compliant "no rule";
    neutral lines teach "compliant" only."""
    seen: set[tuple[str, str]] = set()  # stage examples are also compliant rows: once each
    out: list[TrainingLine] = []
    for (kind, lang, label, text), vec in zip(rows, vectors, strict=True):
        if kind == "signal" or (lang, text) in seen:
            continue
        seen.add((lang, text))
        stage = label if kind == "stage" and label != NO_STAGE else None
        rules = (label,) if kind == "violation" else ()
        out.append(TrainingLine(lang, normalize_asr(text, lang), vec, stage, rules))
    return out


class GuidanceEngine:
    """Built once per process: embeds the playbook's exemplars (cached on disk) and holds the models."""

    def __init__(
        self,
        playbook: Playbook,
        encoder: TextEncoder,
        *,
        cache_dir: str | Path | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.playbook = playbook
        self.encoder = encoder
        self.thresholds = thresholds or Thresholds()
        exemplars = embed_exemplars(playbook, encoder, cache_dir)
        sets = exemplars.sets
        self.line_models = self._train_line_models([*exemplars.examples, *exemplars.labelled], cache_dir)
        t = self.thresholds
        self.compliance = ComplianceChecker(
            playbook.rules,
            sets["violation"],
            sets["compliant"],
            t,
            selector=self._train_rule_selector(sets),
            detector=self._train_violation_detector(sets),
        )
        self.stages = StageClassifier(
            tuple(s.id for s in playbook.stages),
            sets["stage"],
            top_k=t.stage_top_k,
            min_score=t.stage_min,
            keyword_boost=t.stage_keyword_boost,
            model=self._train_stage_model(sets),
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

    def _train_line_models(self, training: list[TrainingLine], cache_dir: str | Path | None) -> LineModels:
        """The learned line models over the playbook's examples and labelled lines (cached)."""
        pb = self.playbook
        rules = tuple(r.id for r in pb.rules)
        stages = (*(s.id for s in pb.stages), NO_STAGE)
        key = line_models_key(self.encoder.name, pb.playbook_version, training)
        base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        return cached_line_models(key, base, lambda: train_line_models(rules, stages, training))

    def _train_rule_selector(self, sets: dict[str, dict[str, ExemplarSet]]) -> SoftmaxModel:
        """The rule selector, from the playbook's violation examples in every language at once.

        The encoder is multilingual, so Mandarin and English examples of a rule teach one model.
        """
        vio = [sets["violation"][lang] for lang in self.playbook.languages]
        return train_softmax(
            tuple(r.id for r in self.playbook.rules),
            np.concatenate([ex.vectors for ex in vio]),
            [lab for ex in vio for lab in ex.labels],
        )

    def _train_violation_detector(self, sets: dict[str, dict[str, ExemplarSet]]) -> SoftmaxModel:
        """Violation examples against every compliant sentence, both languages at once."""
        vio = [sets["violation"][lang].vectors for lang in self.playbook.languages]
        ok = [sets["compliant"][lang].vectors for lang in self.playbook.languages]
        labels = [VIOLATION] * sum(len(v) for v in vio) + [COMPLIANT] * sum(len(v) for v in ok)
        return train_softmax(
            (VIOLATION, COMPLIANT), np.concatenate([*vio, *ok]), labels, l2=COMPLIANCE_DETECTOR_L2
        )

    def _train_stage_model(self, sets: dict[str, dict[str, ExemplarSet]]) -> SoftmaxModel:
        """A softmax model over the stage examples (and neutral lines), both languages at once."""
        ex = [sets["stage"][lang] for lang in self.playbook.languages]
        return train_softmax(
            (*(s.id for s in self.playbook.stages), NO_STAGE),
            np.concatenate([e.vectors for e in ex]),
            [lab for e in ex for lab in e.labels],
        )

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
        """Findings plus the rules the line model is sure of (never a reassurance of that rule)."""
        t = self.thresholds
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
        else:
            signals = tuple(self.engine.judge_customer(text, lang))
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
        items = tuple(SuggestionItem(p.text, p.reason, p.score) for p in result.suggestions)
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
