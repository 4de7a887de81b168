"""Compliance findings on agent speech: patterns for precision, similarity for paraphrases.

Each utterance is split into clauses and every clause is judged on its own, so a
reassurance in one clause ("we will not come to your home") cannot hide a threat
in the next, and a quote points at the words that matter.

* Patterns (the playbook's regexes) are high-precision and cheap, so they also
  run on partial transcripts.  A rule's negation regexes neutralise a match
  when they occur just before it in the same clause ("我们不会上门",
  "nobody is going to arrest you").
* Similarity catches paraphrases the regexes miss: a clause fires the rule of
  its nearest violation example only when that example is close enough and
  clearly closer than the nearest compliant sentence (look-alikes and stage
  examples), a kNN margin that keeps calm statements of fact quiet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assist.encoders import ExemplarSet
from assist.playbook import Rule

# Clause boundaries: sentence ends and commas in both scripts; a "." or "," between
# digits is part of a number ("2.5", "2,400"), not a boundary.
CLAUSE_BOUNDARY = re.compile(r"[。！？；，!?;…\n]+|(?<!\d)[.,](?!\d)")
# Clauses shorter than this (CJK characters count 1, latin words 2) carry too little
# meaning to judge alone ("好的", "Look"), so they are merged into a neighbour.
MIN_CLAUSE_WEIGHT = 4
# How far before a pattern match a negation may end and still neutralise it.
# Chinese packs a negation close to its verb; English puts adverbs between.
NEGATION_WINDOW = {"zh": 8, "en": 32}
PATTERN_SCORE = 1.0
# Similarity on a short clause mostly measures topic ("找你谈一下欠款的事" sits near insults
# about debt), so clauses lighter than this are left to the patterns.
MIN_SIMILARITY_WEIGHT = 10

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z0-9']+")


@dataclass(frozen=True)
class Clause:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    quote: str
    why: str
    rephrase: str
    evidence: str  # "pattern: <regex>" or "example: <nearest example> (0.83)"
    score: float
    source: str  # "pattern" | "similarity"


def weight(text: str) -> int:
    """A language-neutral length: CJK characters count 1, latin words 2."""
    return len(_CJK.findall(text)) + 2 * len(_WORD.findall(text))


def split_clauses(text: str) -> list[Clause]:
    """Clauses with their offsets in ``text``, short fragments merged into a neighbour."""
    raw: list[Clause] = []
    pos = 0
    for m in CLAUSE_BOUNDARY.finditer(text):
        _append_clause(raw, text, pos, m.start())
        pos = m.end()
    _append_clause(raw, text, pos, len(text))
    merged: list[Clause] = []
    pending: Clause | None = None
    for cl in raw:
        if pending is not None:
            cl = Clause(text[pending.start : cl.end], pending.start, cl.end)
            pending = None
        if weight(cl.text) < MIN_CLAUSE_WEIGHT:
            pending = cl
            continue
        merged.append(cl)
    if pending is not None:
        if merged:
            last = merged.pop()
            merged.append(Clause(text[last.start : pending.end], last.start, pending.end))
        else:
            merged.append(pending)
    return merged


def _append_clause(out: list[Clause], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Clause(text[start:end], start, end))


def _negated(rule: Rule, clause: str, match_start: int, language: str) -> bool:
    window = NEGATION_WINDOW.get(language, NEGATION_WINDOW["en"])
    for neg in rule.negations.get(language):
        for nm in neg.finditer(clause):
            if nm.start() < match_start and match_start - nm.end() <= window:
                return True
    return False


def pattern_findings(rules: Sequence[Rule], text: str, language: str) -> list[Finding]:
    """Regex findings, at most one per rule (the first clause that trips it)."""
    found: dict[str, Finding] = {}
    for clause in split_clauses(text):
        for rule in rules:
            if rule.id in found:
                continue
            for pattern in rule.patterns.get(language):
                hit = next(
                    (
                        m
                        for m in pattern.finditer(clause.text)
                        if m.end() > m.start() and not _negated(rule, clause.text, m.start(), language)
                    ),
                    None,
                )
                if hit is not None:
                    found[rule.id] = Finding(
                        rule=rule.id,
                        severity=rule.severity,
                        quote=hit.group(0),
                        why=rule.why.get(language),
                        rephrase=rule.rephrase.get(language),
                        evidence=f"pattern: {pattern.pattern}",
                        score=PATTERN_SCORE,
                        source="pattern",
                    )
                    break
    return list(found.values())


class ComplianceChecker:
    """Hybrid checker over one playbook's rules; similarity sets are per language."""

    def __init__(
        self,
        rules: Sequence[Rule],
        violations: dict[str, ExemplarSet],
        compliant: dict[str, ExemplarSet],
        *,
        sim_min: float,
        margin: float,
        top_k: int,
        negation_blocks_similarity: bool = True,
    ) -> None:
        self.rules = tuple(rules)
        self.by_id = {r.id: r for r in self.rules}
        self.violations = violations
        self.compliant = compliant
        self.sim_min = sim_min
        self.margin = margin
        self.top_k = top_k
        self.negation_blocks_similarity = negation_blocks_similarity
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
            k = min(self.top_k, s.size)
            top = np.partition(s, s.size - k)[s.size - k :]
            score = float(top.mean())
            if score > best_score:
                best_rule, best_score, best_idx = rid, score, int(rows[int(np.argmax(s))])
        ok = self.compliant[language]
        ok_sims = ok.vectors @ vector
        if skip_compliant is not None:
            ok_sims[[i for i, lab in enumerate(ok.labels) if lab == skip_compliant]] = -1.0
        k = min(self.top_k, ok_sims.size)
        ok_score = float(np.partition(ok_sims, ok_sims.size - k)[ok_sims.size - k :].mean()) if k else -1.0
        return best_rule, best_score, best_idx, ok_score

    def check(
        self,
        text: str,
        language: str,
        clauses: Sequence[Clause],
        vectors: np.ndarray,
        skip_compliant: str | None = None,
    ) -> list[Finding]:
        """All findings for one final utterance; ``vectors`` holds one row per clause."""
        found: dict[str, Finding] = {f.rule: f for f in self.patterns(text, language)}
        if language not in self.violations or not len(self.violations[language]):
            return list(found.values())
        for clause, vec in zip(clauses, vectors, strict=True):
            if weight(clause.text) < MIN_SIMILARITY_WEIGHT:
                continue
            rid, score, idx, ok_score = self.similarity_scores(vec, language, skip_compliant)
            if not rid or score < self.sim_min or score - ok_score < self.margin:
                continue
            rule = self.by_id[rid]
            if self.negation_blocks_similarity and any(
                neg.search(clause.text) for neg in rule.negations.get(language)
            ):
                continue
            prev = found.get(rid)
            if prev is not None and (prev.source == "pattern" or prev.score >= score):
                continue
            example = self.violations[language].texts[idx]
            found[rid] = Finding(
                rule=rid,
                severity=rule.severity,
                quote=clause.text,
                why=rule.why.get(language),
                rephrase=rule.rephrase.get(language),
                evidence=f"example: {example} ({score:.2f})",
                score=round(score, 3),
                source="similarity",
            )
        order = {r.id: i for i, r in enumerate(self.rules)}
        return sorted(found.values(), key=lambda f: order.get(f.rule, 0))
