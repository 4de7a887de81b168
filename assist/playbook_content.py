"""What a playbook holds, as frozen dataclasses: stages, signals, rules and the lines the agent
may be offered, each with its text per language; and the fixed ids they are keyed by.

Kept apart from the loader (assist/playbook.py) so the compliance patterns, the suggester and
the engine can use these types without importing the YAML parser and its checks, which in turn
need the compliance patterns.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

LANGUAGES: tuple[str, ...] = ("zh", "en")
STAGE_IDS: tuple[str, ...] = ("opening", "empathy", "inquiry", "proposal", "confirmation")
SIGNAL_IDS: tuple[str, ...] = (
    "confirm_identity",
    "hardship",
    "request_plan",
    "promise_to_pay",
    "dispute",
    "cease_contact",
    "third_party",
    "lawyer",
    "hostile",
)
RULE_IDS: tuple[str, ...] = (
    "threat_violence",
    "abusive_language",
    "false_criminal_threat",
    "impersonation",
    "third_party_disclosure",
    "harassment",
    "misrepresentation",
    "overbearing",
)
SEVERITIES: tuple[str, ...] = ("critical", "major", "minor")
SLOTS: frozenset[str] = frozenset(
    {"customer_name", "agent_name", "company", "amount", "due_date", "instalment_amount", "instalments"}
)
NO_STAGE_LABEL = "*"  # a labelled agent line that does no stage's job

# Values used to fill slots when a suggestion is checked for compliance or
# embedded as a stage exemplar: realistic enough that the sentence reads normally.
SAMPLE_SLOT_VALUES: Mapping[str, Mapping[str, str]] = {
    "zh": {
        "customer_name": "王芳",
        "agent_name": "李明",
        "company": "鼎泰资产管理",
        "amount": "8700元",
        "due_date": "本月20号",
        "instalment_amount": "2900元",
        "instalments": "3",
    },
    "en": {
        "customer_name": "Alex Morgan",
        "agent_name": "Sam Lee",
        "company": "Crestview Collections",
        "amount": "$2,400",
        "due_date": "Friday",
        "instalment_amount": "$200",
        "instalments": "3",
    },
}

T = TypeVar("T")


@dataclass(frozen=True)
class PerLanguage(Generic[T]):
    """One value per supported language (the playbook's ``{zh: ..., en: ...}``)."""

    zh: T
    en: T

    def get(self, language: str) -> T:
        if language == "zh":
            return self.zh
        if language == "en":
            return self.en
        raise KeyError(f"unsupported language {language!r}")


@dataclass(frozen=True)
class Line:
    """A line the agent could say next: a stage suggestion or a signal response."""

    id: str
    text: PerLanguage[str]
    after_signals: tuple[str, ...]
    needs_identity: bool
    source: str  # "stage:<id>" or "signal:<id>", for reasons and debugging

    def slots(self, language: str) -> frozenset[str]:
        return slot_names(self.text.get(language))


@dataclass(frozen=True)
class Stage:
    id: str
    goal: PerLanguage[str]
    examples: PerLanguage[tuple[str, ...]]
    suggestions: tuple[Line, ...]


@dataclass(frozen=True)
class Signal:
    id: str
    meaning: PerLanguage[str]
    examples: PerLanguage[tuple[str, ...]]
    responses: tuple[Line, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    why: PerLanguage[str]
    grounding: str
    patterns: PerLanguage[tuple[re.Pattern[str], ...]]
    negations: PerLanguage[tuple[re.Pattern[str], ...]]
    violations: PerLanguage[tuple[str, ...]]
    lookalikes: PerLanguage[tuple[str, ...]]
    rephrase: PerLanguage[str]


@dataclass(frozen=True)
class LabelledLine:
    """One utterance with the labels a reviewer gave it (see bench/data/README.md)."""

    language: str
    speaker: str  # "agent" | "customer"
    text: str
    stage: str | None  # a stage id, NO_STAGE_LABEL, or None for customer lines
    rules: tuple[str, ...]
    signals: tuple[str, ...]
    batch: str = ""  # the optional ``split`` key: which sitting wrote or reviewed it (for cross-validation)
    source: str = ""  # the optional ``source`` key: the public document a quoted line comes from


@dataclass(frozen=True)
class Playbook:
    version: str
    name: str
    languages: tuple[str, ...]
    company: PerLanguage[str]
    agent_name: PerLanguage[str]
    hotwords: PerLanguage[tuple[str, ...]]
    stages: tuple[Stage, ...]
    signals: tuple[Signal, ...]
    rules: tuple[Rule, ...]
    playbook_version: str  # content hash of the files, keys the embedding cache
    directory: str
    labelled: tuple[LabelledLine, ...] = ()

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(stage_id)

    def signal(self, signal_id: str) -> Signal:
        for s in self.signals:
            if s.id == signal_id:
                return s
        raise KeyError(signal_id)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def lines(self) -> Iterator[Line]:
        for st in self.stages:
            yield from st.suggestions
        for sg in self.signals:
            yield from sg.responses


def slot_names(text: str) -> frozenset[str]:
    """Names of the ``{slot}`` fields in a line; raises ValueError on a malformed brace."""
    names: set[str] = set()
    for _literal, field_name, _spec, _conv in string.Formatter().parse(text):
        if field_name is not None:
            names.add(field_name)
    return frozenset(names)


def fill_slots(text: str, values: Mapping[str, str]) -> str | None:
    """The line with its slots filled, or None when a slot has no value for this call."""
    try:
        needed = slot_names(text)
    except ValueError:
        return None
    if any(not values.get(name) for name in needed):
        return None
    return text.format_map({name: values[name] for name in needed}) if needed else text
