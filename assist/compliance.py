"""Compliance findings on agent speech: patterns for precision, similarity for paraphrases.

Each utterance is split into clauses (assist/clauses.py) and every clause is judged on its own, so a
reassurance in one clause ("we will not come to your home") cannot hide a threat
in the next, and a quote points at the words that matter.

* Patterns (the playbook's regexes, assist/patterns.py) are high-precision and cheap, so they also
  run on partial transcripts.  A rule's negation regexes neutralise a match
  when they occur just before it in the same clause ("我们不会上门",
  "nobody is going to arrest you").
* Similarity catches paraphrases the regexes miss.  It answers two questions
  separately.  *Is this a violation?*  The clause's nearest violation example
  must be close enough and clearly closer than the nearest compliant sentence
  (look-alikes, stage examples, suggestion lines, neutral lines): a kNN margin
  that keeps calm statements of fact quiet.  *Which rule?*  A softmax
  regression over the embeddings of all violation examples (``SoftmaxModel``,
  trained once per engine from the playbook), because the single nearest
  example often shares the topic (the debt) rather than the rule.  Weak
  evidence is gated: a score just above the floor needs a confident selector,
  overruling the nearest example's rule needs a fairly confident selector, a
  rule's negation anywhere in the utterance is a reassurance, and a clause a
  pattern already explains gets no second rule from similarity.  A selector that
  agrees with the nearest example and is confident lowers the floor and margin.
* A learned violation-vs-compliant model (``detector``, also a ``SoftmaxModel``
  trained from the playbook) judges the whole line when nothing else fired: it
  generalises to attitude-only lines ("Everything you say is noise") that have no
  close example.  A line far closer to a compliant sentence than to any violation
  gets no similarity finding from a fragment of it.

Every limit named above is a field of ``Thresholds`` (assist/thresholds.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from assist.clauses import Clause, weight
from assist.encoders import ExemplarSet
from assist.patterns import Finding, pattern_findings, reassures
from assist.playbook_content import Rule
from assist.softmax_model import SoftmaxModel
from assist.thresholds import Thresholds

# Similarity on a short clause mostly measures topic ("找你谈一下欠款的事" sits near insults
# about debt), so clauses lighter than this are left to the patterns.  English needs a little
# more: a five-word fragment ("or a partial payment now") already sat near an ultimatum, while
# ten Chinese characters are a whole clause ("过了今晚罚息就按三倍收").
MIN_SIMILARITY_WEIGHT = {"zh": 10, "en": 12}

# Public shaming is harassment and third-party disclosure at once; these cues mark a line that
# exposes the borrower in public (group chats, banners, flyers, in front of colleagues).
SHAMING_PAIR = ("harassment", "third_party_disclosure")
PUBLIC_SHAMING: dict[str, re.Pattern[str]] = {
    "zh": re.compile(
        r"群|朋友圈|横幅|传单|大字报|贴(到|在)|当着[^，。！？]{0,10}面|所有人|大家|街坊|邻居|曝光|网上|抖音|微博"
    ),
    "en": re.compile(
        r"(?i)\b(group chats?|flyers?|posters?|banners?|online|facebook|instagram|social media|in front of"
        r"|everyone|everybody|whole (office|street|block|neighbou?rhood|town)|neighbou?rhood|neighbou?rs)\b"
    ),
}

# Class ids of the violation-vs-compliant model (``detector``).
VIOLATION = "violation"
COMPLIANT = "compliant"


class ComplianceChecker:
    """Hybrid checker over one playbook's rules; similarity sets are per language."""

    def __init__(
        self,
        rules: Sequence[Rule],
        violations: dict[str, ExemplarSet],
        compliant: dict[str, ExemplarSet],
        limits: Thresholds,
        *,
        selector: SoftmaxModel | None = None,
        detector: SoftmaxModel | None = None,
        negation_blocks_similarity: bool = True,
    ) -> None:
        self.rules = tuple(rules)
        self.by_id = {r.id: r for r in self.rules}
        self.violations = violations
        self.compliant = compliant
        self.limits = limits
        self.selector = selector
        self.detector = detector
        self.negation_blocks_similarity = negation_blocks_similarity
        self._order = {r.id: i for i, r in enumerate(self.rules)}  # findings come out in playbook order
        self._rule_rows: dict[str, dict[str, np.ndarray]] = {
            lang: {
                rid: np.array([i for i, lab in enumerate(ex.labels) if lab == rid], dtype=np.int64)
                for rid in self.by_id
            }
            for lang, ex in violations.items()
        }

    def patterns(self, text: str, language: str) -> list[Finding]:
        return pattern_findings(self.rules, text, language)

    def similarity_scores(
        self, vector: np.ndarray, language: str, skip_compliant: str | None = None
    ) -> tuple[str, float, int, float]:
        """(best rule, its score, index of its nearest example, nearest compliant score).

        ``skip_compliant`` leaves out the compliant rows with that label, so a suggestion
        line can be screened without being its own nearest compliant neighbour.
        """
        vio = self.violations[language]
        sims = vio.vectors @ vector
        best_rule, best_score, best_idx = "", -1.0, -1
        for rid, rows in self._rule_rows[language].items():
            if rows.size == 0:
                continue
            s = sims[rows]
            k = min(self.limits.compliance_top_k, s.size)
            top = np.partition(s, s.size - k)[s.size - k :]
            score = float(top.mean())
            if score > best_score:
                best_rule, best_score, best_idx = rid, score, int(rows[int(np.argmax(s))])
        ok = self.compliant[language]
        ok_sims = ok.vectors @ vector
        if skip_compliant is not None:
            ok_sims[[i for i, lab in enumerate(ok.labels) if lab == skip_compliant]] = -1.0
        k = min(self.limits.compliance_top_k, ok_sims.size)
        ok_score = float(np.partition(ok_sims, ok_sims.size - k)[ok_sims.size - k :].mean()) if k else -1.0
        return best_rule, best_score, best_idx, ok_score

    def _learned_violation(self, vector: np.ndarray, gap: float, confidence: float) -> bool:
        """Whether the learned violation-vs-compliant model alone calls this clause a violation."""
        lim = self.limits
        if (
            self.detector is None
            or gap < lim.compliance_detector_gap
            or confidence < lim.compliance_detector_selector_min
        ):
            return False
        p = self.detector.probabilities(vector[None, :])[0]
        return float(p[self.detector.classes.index(VIOLATION)]) >= self.limits.compliance_detector_min

    def _knn_violation(
        self, score: float, gap: float, chosen: str, rid: str, confidence: float, extra_margin: float
    ) -> bool:
        """Whether the nearest examples (with the selector's confidence) call this a violation."""
        # Two independent readings agreeing (the nearest example's rule and a confident
        # selector) are strong evidence, so such a clause needs a lower floor and a smaller
        # margin over the compliant sentences: implicit violations ("别插嘴，今天就按我说的办")
        # sit close to calm lines on topic.
        if chosen == rid and confidence >= self.limits.compliance_selector_confident:
            if (
                score < self.limits.compliance_confident_sim_min
                or gap < self.limits.compliance_confident_margin + extra_margin
            ):
                return False
        elif score < self.limits.compliance_sim_min or gap < self.limits.compliance_margin + extra_margin:
            return False
        if self.selector is None:
            return True
        # Similarity said "a violation"; the selector must be able to say which rule.  Between
        # the floor and ``sim_sure`` the nearest example alone is weak evidence (garbled ASR,
        # short proposals); the selector must then be sure of the rule.
        if confidence < self.limits.compliance_selector_min:
            return False
        return not (
            score < self.limits.compliance_sim_sure and confidence < self.limits.compliance_selector_sure
        )

    def _nearest_of(self, vector: np.ndarray, language: str, rule_id: str, default: int) -> int:
        """Index of the violation example of ``rule_id`` nearest to ``vector`` (the evidence)."""
        rows = self._rule_rows[language].get(rule_id)
        if rows is None or rows.size == 0:
            return default
        sims = self.violations[language].vectors[rows] @ vector
        return int(rows[int(np.argmax(sims))])

    def check(
        self,
        text: str,
        language: str,
        clauses: Sequence[Clause],
        vectors: np.ndarray,
        skip_compliant: str | None = None,
        extra_margin: float = 0.0,
    ) -> list[Finding]:
        """All findings for one final utterance; ``vectors`` holds one row per clause.

        ``extra_margin`` raises the similarity margin for this utterance (the engine sets it
        when the line's own wording already does a compliant stage's job).
        """
        found: dict[str, Finding] = {f.rule: f for f in self.patterns(text, language)}
        pattern_rules = frozenset(found)
        if language not in self.violations or not len(self.violations[language]):
            return list(found.values())
        scored = [
            (clause, vec, self.similarity_scores(vec, language, skip_compliant))
            for clause, vec in zip(clauses, vectors, strict=True)
        ]
        # A line that as a whole is far closer to a compliant sentence than to any violation
        # ("孩子生病住院，您一个人扛着确实太辛苦了") is compliant, whatever one of its clauses sits near.
        whole = text.strip()
        if len(scored) > 1 and any(
            c.text == whole and sc[3] - sc[1] >= self.limits.compliance_compliant_veto for c, _, sc in scored
        ):
            return self.in_order(found.values())
        # Two passes: the nearest examples first; the learned violation model only when nothing
        # else found a violation in the utterance (it is there for recall, and adding a second
        # rule to a line already flagged was mostly the same words read as a neighbouring rule).
        for learned in (False, True):
            if learned and found:
                break
            self._similarity_pass(text, language, scored, found, pattern_rules, extra_margin, learned=learned)
        self._add_shaming_pair(text, language, found)
        return self.in_order(found.values())

    def in_order(self, findings: Iterable[Finding]) -> list[Finding]:
        """Findings in playbook rule order (the order reports and events use)."""
        return sorted(findings, key=lambda f: self._order.get(f.rule, 0))

    def reassured(self, rule_id: str, text: str, language: str) -> bool:
        """Whether ``text`` negates ``rule_id`` ("我们不会上门"): then it is not a violation of it."""
        rule = self.by_id.get(rule_id)
        return rule is not None and any(reassures(neg, text) for neg in rule.negations.get(language))

    def _add_shaming_pair(self, text: str, language: str, found: dict[str, Finding]) -> None:
        """Public shaming breaks both harassment and third-party disclosure (bench/data/README.md).

        When one of the two was found and the line exposes the borrower in public (a group chat,
        a banner, in front of colleagues), the other is added with the same quote.
        """
        have = [r for r in SHAMING_PAIR if r in found]
        cue = PUBLIC_SHAMING.get(language)
        if len(have) != 1 or cue is None or not cue.search(text):
            return
        other = next(r for r in SHAMING_PAIR if r not in found)
        rule = self.by_id.get(other)
        if rule is None:
            return
        f = found[have[0]]
        evidence = f"public shaming, with {have[0]}"
        found[other] = Finding.of(rule, language, f.quote, evidence, f.score, f.source)

    def _similarity_pass(
        self,
        text: str,
        language: str,
        scored: list[tuple[Clause, np.ndarray, tuple[str, float, int, float]]],
        found: dict[str, Finding],
        pattern_rules: frozenset[str],
        extra_margin: float,
        *,
        learned: bool,
    ) -> None:
        for clause, vec, (rid, score, idx, ok_score) in scored:
            if weight(clause.text) < MIN_SIMILARITY_WEIGHT.get(language, MIN_SIMILARITY_WEIGHT["en"]):
                continue
            if not rid:
                continue
            gap = score - ok_score
            chosen, confidence = self.selector.best(vec) if self.selector is not None else (rid, 0.0)
            candidates = [rid]
            if learned:
                # The violation-vs-compliant model is sure of the whole line (a fragment of a calm
                # line, "八千七百块一分都没还", can look like a violation on its own) and the nearest
                # examples do not clearly disagree: the selector names the rule.
                if len(scored) > 1 and clause.text != text.strip():
                    continue
                if score < self.limits.compliance_detector_sim_min or not self._learned_violation(
                    vec, gap, confidence
                ):
                    continue
                if chosen != rid and chosen in self.by_id:
                    candidates.append(chosen)
                    rid, idx = chosen, self._nearest_of(vec, language, chosen, idx)
            elif not self._knn_violation(score, gap, chosen, rid, confidence, extra_margin):
                continue
            elif self.selector is not None and chosen != rid:
                # Overruling the nearest example's rule needs a selector that is fairly sure; when
                # it is not, the nearest example's rule stands only on a clear margin.
                if confidence < self.limits.compliance_selector_override:
                    if gap < self.limits.compliance_knn_keep_margin:
                        continue
                elif chosen in self.by_id:
                    candidates.append(chosen)
                    rid, idx = chosen, self._nearest_of(vec, language, chosen, idx)
            rule = self.by_id[rid]
            # A negation of either rule is a reassurance, not a violation.  Similarity is the
            # weaker evidence, so for it the whole utterance counts ("我们公司有合作的律所，但我本人
            # 不是律师"); patterns keep to their clause, so a reassurance cannot hide a threat.
            if self.negation_blocks_similarity and any(self.reassured(c, text, language) for c in candidates):
                continue
            if rid not in pattern_rules and pattern_findings(self.rules, clause.text, language):
                # A pattern already names what this clause breaks; similarity adding a second
                # rule there was mostly the same words read as a neighbouring rule.
                continue
            prev = found.get(rid)
            if prev is not None and (prev.source == "pattern" or prev.score >= score):
                continue
            evidence = f"example: {self.violations[language].texts[idx]} ({score:.2f})"
            found[rid] = Finding.of(rule, language, clause.text, evidence, round(score, 3), "similarity")
            if learned:
                return  # one rule from the learned model, at most
