"""The playbook's regexes on agent speech: high-precision and cheap, so they also run on partial
transcripts, and the playbook loader uses them to reject suggestions that trip a rule.

A rule's negation regexes neutralise a match when they occur just before it in the same clause
("我们不会上门", "nobody is going to arrest you").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assist.clauses import normalize_asr, split_clauses
from assist.playbook_content import Rule

# How far before a pattern match a negation may end and still neutralise it.
# Chinese packs a negation close to its verb; English puts adverbs between.
NEGATION_WINDOW = {"zh": 8, "en": 32}
PATTERN_SCORE = 1.0


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    quote: str
    why: str
    rephrase: str
    evidence: str  # "pattern: <regex>" or "example: <nearest example> (0.83)"
    score: float
    source: str  # "pattern" | "similarity" | "model" (assist/linemodel.py)

    @classmethod
    def of(cls, rule: Rule, language: str, quote: str, evidence: str, score: float, source: str) -> Finding:
        """A finding of ``rule``, with its severity, why and rephrasing in ``language``."""
        return cls(
            rule=rule.id,
            severity=rule.severity,
            quote=quote,
            why=rule.why.get(language),
            rephrase=rule.rephrase.get(language),
            evidence=evidence,
            score=score,
            source=source,
        )


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
    for clause in split_clauses(normalize_asr(text, language)):
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
                    found[rule.id] = Finding.of(
                        rule, language, hit.group(0), f"pattern: {pattern.pattern}", PATTERN_SCORE, "pattern"
                    )
                    break
    return list(found.values())


# A negation right after "if you" / "unless you" is the borrower's refusal, not a reassurance
# ("If you won't pick up, I'll explain it to your manager").
_CONDITIONAL_BEFORE = re.compile(
    r"(?i)\b(if|unless|when|until|as long as) "
    r"(you|u|he|she|they|this|it|that|the (bill|balance|loan|debt|money))"
    r"( still)?\s*$"
)


def reassures(neg: re.Pattern[str], text: str) -> bool:
    """Whether negation ``neg`` occurs in ``text`` other than in a condition on the borrower."""
    return any(not _CONDITIONAL_BEFORE.search(text[: m.start()]) for m in neg.finditer(text))
