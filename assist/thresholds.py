"""Every calibrated guidance threshold, declared once.

Calibrated with the USE encoder on the tune split of bench/data/guidance_eval.jsonl AND on our
own dev set (prompts/labelled.jsonl, written from the domain notes, which the line models train
on) and fresh batches (bench/data/guidance_holdout.jsonl), because the tune split alone was
saturated and over-fitted; the held-out test split is only read as summary figures
(``bench/guidance_eval.py --calibrate`` / ``--data``).  Every setting was also checked against
the fixture calls' compliant turns and the suggestion lines (none may be withheld): a false
warning mid-call costs the agent more than a miss.

One frozen dataclass, so the bench can try other values (``dataclasses.replace``) and every
component reads its share from the same object: the compliance checker takes it whole, the stage
and signal classifiers get their fields from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # -- compliance, nearest examples (assist/compliance.py)
    # With the broader playbook and the rule selector the floor came down from 0.53 to 0.45; the
    # weak band just above it is guarded by compliance_sim_sure / compliance_selector_sure.
    compliance_sim_min: float = 0.45
    """Nearest-violation similarity a paraphrase needs at least..."""
    compliance_margin: float = 0.06
    """...and how much closer than the nearest compliant sentence it must be."""
    compliance_top_k: int = 1
    """Neighbours averaged per rule."""
    compliance_selector_min: float = 0.3
    """A paraphrase whose rule the selector cannot name with at least this probability is too
    ambiguous to warn about (swept on tune + own dev set; it keeps compliant suggestion lines
    such as "You're entitled to make a complaint..." from being read as a violation)."""
    compliance_sim_sure: float = 0.48
    """Between compliance_sim_min and this, the nearest example alone is weak evidence (garbled
    ASR, short proposal lines near a threat): the selector must then give the rule at least
    compliance_selector_sure."""
    compliance_selector_sure: float = 0.55
    compliance_selector_override: float = 0.45
    """Overruling the nearest example's rule needs the selector this sure; below it the nearest
    example's own rule stands only on a margin of compliance_knn_keep_margin."""
    compliance_knn_keep_margin: float = 0.15
    compliance_stage_margin: float = 0.04
    """Extra similarity margin when the line's stage keywords match (a line whose own wording
    does a stage's job is rarely a violation the patterns miss)."""
    compliance_selector_confident: float = 0.6
    """When the selector names the same rule as the nearest example at least this surely, the
    floor and margin drop to the two values after it (swept on tune + own dev set dev..dev14; the
    stage-like-line margin still applies on top)."""
    compliance_confident_sim_min: float = 0.42
    compliance_confident_margin: float = 0.04
    compliance_compliant_veto: float = 0.2
    """A line whose whole wording is at least this much closer to a compliant sentence than to
    any violation gets no similarity finding from one of its clauses."""
    # -- compliance, the learned violation-vs-compliant detector: trained on all violation
    # examples against all compliant sentences (both languages), it generalises beyond the
    # nearest example to a clause's attitude.
    compliance_detector_min: float = 0.89
    """The detector calls a clause a violation (of the selector's rule) from this probability,
    when the nearest compliant sentence is not more than -compliance_detector_gap closer than
    the nearest violation."""
    compliance_detector_gap: float = 0.0
    compliance_detector_selector_min: float = 0.3
    """...and the selector must name the rule this surely."""
    compliance_detector_sim_min: float = 0.0
    """A floor on the nearest violation (0.38..0.42 only cost recall on dev)."""

    # -- stages (assist/stages.py)
    stage_top_k: int = 5
    stage_min: float = 0.25
    """Below this an utterance fits no stage."""
    stage_keyword_boost: float = 0.08
    """Keyword priors settle near-ties between stages."""
    stage_change_min: float = 0.30
    """A stage change needs at least this confidence."""
    stage_model_weight: float = 0.1
    """Weight of the embedding-only stage model's probability added to each stage's
    nearest-example score.  Since the line models choose the reported stage, this
    nearest-example stage only decides whether a line's own wording does a stage's job
    (compliance_stage_margin).  Swept 0..0.2 on tune and our dev splits when it still chose the
    stage: 0.1 helped the newest splits most."""

    # -- customer signals (assist/signals.py)
    signal_top_k: int = 2
    signal_min: float = 0.45
    signal_multi_gap: float = 0.0
    """A second signal is reported when within this of the best..."""
    signal_second_min: float = 0.70
    """...or when it is this strong on its own ("I lost my job, can I pay in parts?")."""
    signal_keyword_boost: float = 0.30
    signal_none_margin: float = 0.0
    """The best signal must beat the neutral back-channel examples by this."""

    # -- the learned line models (assist/linemodel.py) add what patterns and nearest examples
    # missed.  Chosen on a fresh batch of lines written after the models (dev16,
    # bench/data/guidance_dev.md).
    line_rule_add: float = 0.4
    """A rule the model is this sure of is added to a line's findings..."""
    line_violation_min: float = 0.3
    """...and a line nothing else flagged is a violation when the model is this sure it breaks
    some rule and names the rules (each at line_rule_alone or more): "breaks something" with no
    rule standing out was mostly a calm line on a touchy topic ("You're ninety days behind...")."""
    line_rule_alone: float = 0.3
    line_veto_violation: float = 0.5
    line_veto_rule: float = 0.1
    """A nearest-example (similarity) finding is dropped when the line model finds the line
    compliant (violation below line_veto_violation) and gives that rule less than line_veto_rule:
    calm dunning lines quoted in public sources ("You owe us $850, and you haven't been making any
    payments") sat near misrepresentation examples on topic alone.  Chosen on the tune split, the
    fresh batches dev18/dev19 and the real-world train half: at these values it dropped 7 wrong
    similarity findings and no right one."""
