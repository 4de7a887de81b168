"""The playbook's sentences embedded once, and the models the engine trains from them.

Every example sentence (stage, signal, violation, compliant look-alike, suggestion line with
sample slot values) and every reviewed agent line is embedded in one batch, kept in the caller's
``ArrayCache`` per playbook version; the nearest-example sets, the softmax models (rule selector,
violation detector, stage model) and the learned line models are built from those vectors.
Deterministic: the same playbook and encoder always give the same models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assist.caching import ArrayCache
from assist.clauses import normalize_asr
from assist.compliance import COMPLIANT, VIOLATION
from assist.encoders import ExemplarSet, TextEncoder, cached_encode
from assist.linemodel import LineModels, TrainingLine, cached_line_models, line_models_key, train_line_models
from assist.playbook_content import NO_STAGE_LABEL, SAMPLE_SLOT_VALUES, LabelledLine, Playbook, fill_slots
from assist.signals import NEUTRAL_CUSTOMER, NO_SIGNAL
from assist.softmax_model import SoftmaxModel, train_softmax
from assist.stages import NEUTRAL_AGENT, NO_STAGE

# Batches of our own lines written to teach rules in the styles real collectors use (issue 11):
# with their stage labels the stage model moved (held-out stage accuracy 0.884 -> 0.869), so like
# quoted lines they teach rules only.
RULES_ONLY_BATCHES = frozenset({"real1"})

# The violation-vs-compliant detector is a sharper model than the rule selector's (swept 1e-4..3e-3).
COMPLIANCE_DETECTOR_L2 = 1e-4


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


def embed_exemplars(pb: Playbook, encoder: TextEncoder, cache: ArrayCache) -> Exemplars:
    """Embed every example sentence of ``pb`` (kept in ``cache`` per playbook version)."""
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
        encoder, [*texts, *labelled_texts], playbook_version=pb.playbook_version, cache=cache
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
            TrainingLine(x.language, text, vec, stage_taught(x), x.rules)
            for x, text, vec in zip(labelled, labelled_texts, labelled_vectors, strict=True)
        ],
    )


def stage_taught(x: LabelledLine) -> str | None:
    """The stage a labelled line teaches the stage model, or None for none.

    A line quoted from a public document (it has a ``source``) teaches rules only: lifted out of
    its call, its stage label is a guess, and those lines (dunning notices, bare demands) pulled
    the stage model away from our own calls' stages.  So do the batches in RULES_ONLY_BATCHES.
    """
    if x.source or x.batch in RULES_ONLY_BATCHES:
        return None
    return NO_STAGE if x.stage in (None, NO_STAGE_LABEL) else x.stage


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


def train_line_models_once(
    pb: Playbook, encoder_name: str, training: list[TrainingLine], cache: ArrayCache
) -> LineModels:
    """The learned line models over the playbook's examples and labelled lines (cached)."""
    rules = tuple(r.id for r in pb.rules)
    stages = (*(s.id for s in pb.stages), NO_STAGE)
    key = line_models_key(encoder_name, pb.playbook_version, training)
    return cached_line_models(key, cache, lambda: train_line_models(rules, stages, training))


def train_rule_selector(pb: Playbook, sets: dict[str, dict[str, ExemplarSet]]) -> SoftmaxModel:
    """The rule selector, from the playbook's violation examples in every language at once.

    The encoder is multilingual, so Mandarin and English examples of a rule teach one model.
    """
    vio = [sets["violation"][lang] for lang in pb.languages]
    return train_softmax(
        tuple(r.id for r in pb.rules),
        np.concatenate([ex.vectors for ex in vio]),
        [lab for ex in vio for lab in ex.labels],
    )


def train_violation_detector(pb: Playbook, sets: dict[str, dict[str, ExemplarSet]]) -> SoftmaxModel:
    """Violation examples against every compliant sentence, both languages at once."""
    vio = [sets["violation"][lang].vectors for lang in pb.languages]
    ok = [sets["compliant"][lang].vectors for lang in pb.languages]
    labels = [VIOLATION] * sum(len(v) for v in vio) + [COMPLIANT] * sum(len(v) for v in ok)
    return train_softmax(
        (VIOLATION, COMPLIANT), np.concatenate([*vio, *ok]), labels, l2=COMPLIANCE_DETECTOR_L2
    )


def train_stage_model(pb: Playbook, sets: dict[str, dict[str, ExemplarSet]]) -> SoftmaxModel:
    """A softmax model over the stage examples (and neutral lines), both languages at once."""
    ex = [sets["stage"][lang] for lang in pb.languages]
    return train_softmax(
        (*(s.id for s in pb.stages), NO_STAGE),
        np.concatenate([e.vectors for e in ex]),
        [lab for e in ex for lab in e.labels],
    )
