"""Load and validate a playbook folder (``prompts/`` or a team's own copy).

The playbook is content written by people who are not programmers, and a
mistake in it (a typo in a rule id, a regex that does not compile, a suggestion
that itself threatens the customer) must surface when the service starts, not
in front of an agent mid-call.  So every problem is reported with the file, the
path inside it and what is wrong, e.g.::

    prompts/rules.yaml: rules[3].violations.zh: needs >= 15 examples, has 12

``check_playbook`` collects every problem for ``callassist playbook check``;
``load_playbook`` raises the first one as :class:`PlaybookError` (with all of
them attached) and otherwise returns frozen dataclasses.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

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
PLAYBOOK_FILES: tuple[str, ...] = ("playbook.yaml", "stages.yaml", "signals.yaml", "rules.yaml")
# Optional: agent and customer lines labelled by people (call reviews, our own dev set), one
# JSON object per line, same format as bench/data; the learned line models train on them too.
LABELLED_FILE = "labelled.jsonl"
LABELLED_KEYS: tuple[str, ...] = ("language", "speaker", "text", "stage", "rules", "signals")
LABELLED_OPTIONAL_KEYS: tuple[str, ...] = ("id", "split")
NO_STAGE_LABEL = "*"  # a labelled agent line that does no stage's job

# Minimum counts from the issue: enough examples per class for nearest-example
# similarity to generalise, and enough lines that suggestions need not repeat.
MIN_STAGE_EXAMPLES = 10
MIN_STAGE_SUGGESTIONS = 5
MIN_SIGNAL_EXAMPLES = 10
MIN_SIGNAL_RESPONSES = 2
MIN_RULE_VIOLATIONS = 15
MIN_RULE_LOOKALIKES = 10
MIN_RULE_PATTERNS = 1

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


class PlaybookError(ValueError):
    """A playbook problem, located by file and by the path inside the file."""

    def __init__(self, file: str, path: str, problem: str, all_errors: Sequence[str] = ()) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        message = f"{file}: {path}: {problem}" if path else f"{file}: {problem}"
        self.all_errors: tuple[str, ...] = tuple(all_errors) or (message,)
        super().__init__(message)


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


def default_playbook_dir() -> Path:
    """The playbook shipped with the project.

    A wheel carries the repository's ``prompts/`` as ``assist/default_playbook/`` (mapped in
    pyproject.toml), so an installed service finds it wherever site-packages is.  A checkout,
    and an editable install (which runs the checkout's files), has no such folder: there the
    playbook is ``prompts/`` beside ``assist/``, that checkout's own copy.
    """
    from importlib import resources

    package = Path(str(resources.files("assist")))
    installed = package / "default_playbook"
    return installed if installed.is_dir() else package.parent / "prompts"


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


def playbook_version(directory: str | Path) -> str:
    """A short hash of the playbook files' bytes: changes whenever any content changes."""
    digest = hashlib.sha256()
    base = Path(directory)
    for fname in (*PLAYBOOK_FILES, LABELLED_FILE):
        path = base / fname
        digest.update(fname.encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- validation


class _Problems:
    """Collects located problems while the parse carries on, so one run reports them all."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.items: list[tuple[str, str, str]] = []
        self.file = ""

    def add(self, path: str, problem: str) -> None:
        self.items.append((self.file, path, problem))

    def messages(self) -> list[str]:
        return [f"{f}: {p}: {m}" if p else f"{f}: {m}" for f, p, m in self.items]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_MISSING: Any = object()  # a key that is absent: already reported by mapping(), so stay quiet


class _Parser:
    def __init__(self, problems: _Problems, languages: tuple[str, ...]) -> None:
        self.p = problems
        self.languages = languages

    # -- primitives: each returns a usable fallback after recording the problem

    def mapping(
        self, value: Any, path: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict[str, Any]:
        if value is _MISSING:
            return {}
        if not isinstance(value, dict):
            self.p.add(path, f"expected a mapping, got {_kind(value)}")
            return {}
        prefix = f"{path}." if path else ""
        for key in value:
            if key not in required and key not in optional:
                allowed = ", ".join([*required, *optional])
                self.p.add(f"{prefix}{key}", f"unknown key (allowed: {allowed})")
        for key in required:
            if key not in value:
                self.p.add(f"{prefix}{key}", "missing")
        return value

    def text(self, value: Any, path: str) -> str:
        if value is _MISSING:
            return ""
        if not isinstance(value, str):
            self.p.add(path, f"expected a string, got {_kind(value)}")
            return ""
        if not value.strip():
            self.p.add(path, "is empty")
        return value

    def texts(self, value: Any, path: str, minimum: int, what: str = "examples") -> tuple[str, ...]:
        if value is _MISSING:
            return ()
        if value is None:
            value = []
        if not isinstance(value, list):
            self.p.add(path, f"expected a list, got {_kind(value)}")
            return ()
        out = [self.text(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if len(out) < minimum:
            self.p.add(path, f"needs >= {minimum} {what}, has {len(out)}")
        seen: dict[str, int] = {}
        for i, item in enumerate(out):
            key = item.strip()
            if key and key in seen:
                self.p.add(f"{path}[{i}]", f"duplicate of [{seen[key]}]")
            seen.setdefault(key, i)
        return tuple(s for s in out if s)

    def per_language_text(self, value: Any, path: str) -> PerLanguage[str]:
        data = self.mapping(value, path, self.languages)
        got = {
            lang: self.text(data[lang], f"{path}.{lang}") if lang in data else "" for lang in self.languages
        }
        return PerLanguage(zh=got.get("zh", ""), en=got.get("en", ""))

    def per_language_texts(
        self, value: Any, path: str, minimum: int, what: str = "examples"
    ) -> PerLanguage[tuple[str, ...]]:
        data = self.mapping(value, path, self.languages)
        got = {
            lang: self.texts(data.get(lang, _MISSING), f"{path}.{lang}", minimum, what)
            if lang in data
            else ()
            for lang in self.languages
        }
        return PerLanguage(zh=got.get("zh", ()), en=got.get("en", ()))

    def patterns(
        self, value: Any, path: str, minimum: int, optional: bool = False
    ) -> PerLanguage[tuple[re.Pattern[str], ...]]:
        if value is _MISSING or (value is None and optional):
            return PerLanguage(zh=(), en=())
        data = self.mapping(
            value, path, () if optional else self.languages, self.languages if optional else ()
        )
        out: dict[str, tuple[re.Pattern[str], ...]] = {}
        for lang in self.languages:
            if lang not in data:
                out[lang] = ()
                continue
            sources = self.texts(data[lang], f"{path}.{lang}", minimum, "patterns")
            compiled: list[re.Pattern[str]] = []
            for i, src in enumerate(sources):
                try:
                    compiled.append(re.compile(src, re.IGNORECASE))
                except re.error as exc:
                    self.p.add(f"{path}.{lang}[{i}]", f"regex {src!r} does not compile: {exc}")
            out[lang] = tuple(compiled)
        return PerLanguage(zh=out.get("zh", ()), en=out.get("en", ()))

    def ids(self, items: list[Any], path: str, known: Sequence[str], what: str) -> list[str | None]:
        """Check each entry's id: known, unique, and every known id present."""
        found: list[str | None] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str):
                found.append(None)
                continue
            if ident not in known:
                self.p.add(f"{path}[{i}].id", f"unknown {what} id {ident!r} (known: {', '.join(known)})")
                found.append(None)
                continue
            if ident in seen:
                self.p.add(f"{path}[{i}].id", f"duplicate {what} id {ident!r} (also {path}[{seen[ident]}])")
                found.append(None)
                continue
            seen[ident] = i
            found.append(ident)
        for ident in known:
            if ident not in seen:
                self.p.add(path, f"missing {what} id {ident!r}")
        return found

    def line(self, value: Any, path: str, source: str, line_ids: dict[str, str]) -> Line | None:
        data = self.mapping(value, path, ("id", "text"), ("after_signals", "needs_identity"))
        if not data:
            return None
        ident = self.text(data.get("id", _MISSING), f"{path}.id") if "id" in data else ""
        if ident in line_ids:
            self.p.add(f"{path}.id", f"duplicate suggestion id {ident!r} (also {line_ids[ident]})")
        elif ident:
            line_ids[ident] = f"{self.p.file}: {path}"
        text = self.per_language_text(data.get("text", _MISSING), f"{path}.text")
        for lang in self.languages:
            try:
                unknown = sorted(slot_names(text.get(lang)) - SLOTS)
            except ValueError as exc:
                self.p.add(f"{path}.text.{lang}", f"malformed slot braces: {exc}")
                continue
            if unknown:
                self.p.add(
                    f"{path}.text.{lang}",
                    f"unknown slot(s) {', '.join('{' + u + '}' for u in unknown)} "
                    f"(known: {', '.join(sorted(SLOTS))})",
                )
        after = data.get("after_signals", [])
        after_ids: list[str] = []
        if not isinstance(after, list):
            self.p.add(f"{path}.after_signals", f"expected a list, got {_kind(after)}")
        else:
            for i, sig in enumerate(after):
                if sig not in SIGNAL_IDS:
                    self.p.add(f"{path}.after_signals[{i}]", f"unknown signal id {sig!r}")
                else:
                    after_ids.append(sig)
        needs_identity = data.get("needs_identity", True)
        if not isinstance(needs_identity, bool):
            self.p.add(f"{path}.needs_identity", f"expected true or false, got {_kind(needs_identity)}")
            needs_identity = True
        return Line(ident, text, tuple(after_ids), needs_identity, source)

    def lines(
        self, value: Any, path: str, minimum: int, source: str, line_ids: dict[str, str]
    ) -> tuple[Line, ...]:
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self.p.add(path, f"expected a list, got {_kind(value)}")
            return ()
        if len(value) < minimum:
            self.p.add(path, f"needs >= {minimum} entries, has {len(value)}")
        out = [self.line(item, f"{path}[{i}]", source, line_ids) for i, item in enumerate(value)]
        return tuple(x for x in out if x is not None)


def _read_yaml(problems: _Problems, fname: str) -> Any:
    path = problems.directory / fname
    problems.file = str(path)
    if not path.is_file():
        problems.add("", "file not found")
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        problems.add("", f"not UTF-8 text: {exc}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problems.add(where, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}")
    return None


def _parse(directory: str | Path, problems: _Problems) -> Playbook | None:
    # playbook.yaml first: it says which languages every other bilingual field must cover.
    raw = _read_yaml(problems, "playbook.yaml")
    p = _Parser(problems, LANGUAGES)
    head = (
        p.mapping(raw, "", ("version", "name", "languages", "defaults", "hotwords"))
        if raw is not None
        else {}
    )
    languages: tuple[str, ...] = LANGUAGES
    if "languages" in head:
        langs = head["languages"]
        if not isinstance(langs, list) or not langs or any(lang not in LANGUAGES for lang in langs):
            problems.add(
                "languages", f"must be a non-empty list drawn from {', '.join(LANGUAGES)}, got {langs!r}"
            )
        elif len(set(langs)) != len(langs):
            problems.add("languages", "lists a language twice")
        else:
            languages = tuple(langs)
    p = _Parser(problems, languages)
    version = (
        str(head.get("version", "")) if isinstance(head.get("version", _MISSING), str | int | float) else ""
    )
    if "version" in head and not isinstance(head["version"], str | int | float):
        problems.add("version", f"expected a string, got {_kind(head['version'])}")
    name = p.text(head["name"], "name") if "name" in head else ""
    defaults = (
        p.mapping(head.get("defaults", _MISSING), "defaults", ("company", "agent_name"))
        if "defaults" in head
        else {}
    )
    company = (
        p.per_language_text(defaults.get("company", _MISSING), "defaults.company")
        if "company" in defaults
        else None
    )
    agent = (
        p.per_language_text(defaults.get("agent_name", _MISSING), "defaults.agent_name")
        if "agent_name" in defaults
        else None
    )
    hotwords = (
        p.per_language_texts(head.get("hotwords", _MISSING), "hotwords", 0, "hotwords")
        if "hotwords" in head
        else None
    )

    line_ids: dict[str, str] = {}

    raw = _read_yaml(problems, "stages.yaml")
    stages: list[Stage] = []
    if raw is not None:
        top = p.mapping(raw, "", ("stages",))
        items = top.get("stages")
        if "stages" in top and not isinstance(items, list):
            problems.add("stages", f"expected a list, got {_kind(items)}")
        elif isinstance(items, list):
            ids = p.ids(items, "stages", STAGE_IDS, "stage")
            for i, (item, ident) in enumerate(zip(items, ids, strict=True)):
                path = f"stages[{i}]"
                d = p.mapping(item, path, ("id", "goal", "examples", "suggestions"))
                if not d:
                    continue
                goal = p.per_language_text(d.get("goal", _MISSING), f"{path}.goal")
                ex = p.per_language_texts(d.get("examples", _MISSING), f"{path}.examples", MIN_STAGE_EXAMPLES)
                lines = p.lines(
                    d.get("suggestions", _MISSING),
                    f"{path}.suggestions",
                    MIN_STAGE_SUGGESTIONS,
                    f"stage:{ident}",
                    line_ids,
                )
                if ident is not None:
                    stages.append(Stage(ident, goal, ex, lines))

    raw = _read_yaml(problems, "signals.yaml")
    signals: list[Signal] = []
    if raw is not None:
        top = p.mapping(raw, "", ("signals",))
        items = top.get("signals")
        if "signals" in top and not isinstance(items, list):
            problems.add("signals", f"expected a list, got {_kind(items)}")
        elif isinstance(items, list):
            ids = p.ids(items, "signals", SIGNAL_IDS, "signal")
            for i, (item, ident) in enumerate(zip(items, ids, strict=True)):
                path = f"signals[{i}]"
                d = p.mapping(item, path, ("id", "meaning", "examples", "responses"))
                if not d:
                    continue
                meaning = p.per_language_text(d.get("meaning", _MISSING), f"{path}.meaning")
                ex = p.per_language_texts(
                    d.get("examples", _MISSING), f"{path}.examples", MIN_SIGNAL_EXAMPLES
                )
                lines = p.lines(
                    d.get("responses", _MISSING),
                    f"{path}.responses",
                    MIN_SIGNAL_RESPONSES,
                    f"signal:{ident}",
                    line_ids,
                )
                if ident is not None:
                    signals.append(Signal(ident, meaning, ex, lines))

    raw = _read_yaml(problems, "rules.yaml")
    rules: list[Rule] = []
    if raw is not None:
        top = p.mapping(raw, "", ("rules",))
        items = top.get("rules")
        if "rules" in top and not isinstance(items, list):
            problems.add("rules", f"expected a list, got {_kind(items)}")
        elif isinstance(items, list):
            ids = p.ids(items, "rules", RULE_IDS, "rule")
            for i, (item, ident) in enumerate(zip(items, ids, strict=True)):
                path = f"rules[{i}]"
                d = p.mapping(
                    item,
                    path,
                    (
                        "id",
                        "severity",
                        "why",
                        "grounding",
                        "patterns",
                        "violations",
                        "lookalikes",
                        "rephrase",
                    ),
                    ("negations",),
                )
                if not d:
                    continue
                severity = d.get("severity", _MISSING)
                if "severity" in d and severity not in SEVERITIES:
                    problems.add(
                        f"{path}.severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}"
                    )
                rule = Rule(
                    id=ident or "",
                    severity=severity if isinstance(severity, str) else "",
                    why=p.per_language_text(d.get("why", _MISSING), f"{path}.why"),
                    grounding=p.text(d.get("grounding", _MISSING), f"{path}.grounding")
                    if "grounding" in d
                    else "",
                    patterns=p.patterns(d.get("patterns", _MISSING), f"{path}.patterns", MIN_RULE_PATTERNS),
                    negations=p.patterns(d.get("negations", _MISSING), f"{path}.negations", 0, optional=True),
                    violations=p.per_language_texts(
                        d.get("violations", _MISSING), f"{path}.violations", MIN_RULE_VIOLATIONS
                    ),
                    lookalikes=p.per_language_texts(
                        d.get("lookalikes", _MISSING), f"{path}.lookalikes", MIN_RULE_LOOKALIKES
                    ),
                    rephrase=p.per_language_text(d.get("rephrase", _MISSING), f"{path}.rephrase"),
                )
                if ident is not None:
                    rules.append(rule)

    if problems.items or company is None or agent is None or hotwords is None:
        return None
    return Playbook(
        version=version,
        name=name,
        languages=languages,
        company=company,
        agent_name=agent,
        hotwords=hotwords,
        stages=tuple(stages),
        signals=tuple(signals),
        rules=tuple(rules),
        playbook_version=playbook_version(directory),
        directory=str(directory),
        labelled=_read_labelled(problems, languages),
    )


def _read_labelled(problems: _Problems, languages: tuple[str, ...]) -> tuple[LabelledLine, ...]:
    """``labelled.jsonl`` when present; each bad line is reported as ``labelled.jsonl: line N``."""
    path = problems.directory / LABELLED_FILE
    if not path.is_file():
        return ()
    problems.file = str(path)
    out: list[LabelledLine] = []
    try:
        raw_lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.add("", f"cannot read: {exc}")
        return ()
    for n, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        where = f"line {n}"
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.add(where, f"not JSON: {exc.msg}")
            continue
        if not isinstance(d, dict):
            problems.add(where, f"expected an object, got {_kind(d)}")
            continue
        unknown = sorted(set(d) - set(LABELLED_KEYS) - set(LABELLED_OPTIONAL_KEYS))
        missing = [k for k in LABELLED_KEYS if k not in d]
        if unknown or missing:
            problems.add(where, f"unknown keys {unknown}" if unknown else f"missing {missing}")
            continue
        lang, speaker, text, stage = d["language"], d["speaker"], d["text"], d["stage"]
        rules, signals = d["rules"], d["signals"]
        if lang not in languages:
            problems.add(
                f"{where}.language", f"{lang!r} is not one of the playbook's languages {list(languages)}"
            )
        elif speaker not in ("agent", "customer"):
            problems.add(f"{where}.speaker", f"expected 'agent' or 'customer', got {speaker!r}")
        elif not isinstance(text, str) or not text.strip():
            problems.add(f"{where}.text", "expected a non-empty string")
        elif not isinstance(rules, list) or any(r not in RULE_IDS for r in rules):
            problems.add(f"{where}.rules", f"expected a list of rule ids {list(RULE_IDS)}")
        elif not isinstance(signals, list) or any(g not in SIGNAL_IDS for g in signals):
            problems.add(f"{where}.signals", f"expected a list of signal ids {list(SIGNAL_IDS)}")
        elif speaker == "agent" and stage not in (*STAGE_IDS, NO_STAGE_LABEL):
            problems.add(
                f"{where}.stage", f"an agent line needs a stage id or {NO_STAGE_LABEL!r}, got {stage!r}"
            )
        elif speaker == "customer" and (stage is not None or rules):
            problems.add(where, "a customer line has stage null and no rules")
        else:
            batch = d.get("split", "")
            out.append(
                LabelledLine(
                    lang,
                    speaker,
                    text,
                    stage,
                    tuple(rules),
                    tuple(signals),
                    batch if isinstance(batch, str) else "",
                )
            )
    return tuple(out)


def _check_content(pb: Playbook, problems: _Problems) -> None:
    """Cross-file checks that need the parsed whole: suggestions must not trip a rule's patterns,
    and each rule's own examples must agree with its patterns where that is decidable."""
    from assist.compliance import pattern_findings  # compliance imports this module

    base = Path(pb.directory)
    for si, st in enumerate(pb.stages):
        for li, line in enumerate(st.suggestions):
            _check_line(pb, problems, str(base / "stages.yaml"), f"stages[{si}].suggestions[{li}]", line)
    for gi, sg in enumerate(pb.signals):
        for li, line in enumerate(sg.responses):
            _check_line(pb, problems, str(base / "signals.yaml"), f"signals[{gi}].responses[{li}]", line)
    problems.file = str(base / "rules.yaml")
    for ri, rule in enumerate(pb.rules):
        for lang in pb.languages:
            for ei, example in enumerate(rule.lookalikes.get(lang)):
                hits = pattern_findings(pb.rules, example, lang)
                if hits:
                    problems.add(
                        f"rules[{ri}].lookalikes.{lang}[{ei}]",
                        f"compliant look-alike trips rule {hits[0].rule} ({hits[0].evidence})",
                    )


def _check_line(pb: Playbook, problems: _Problems, file: str, path: str, line: Line) -> None:
    from assist.compliance import pattern_findings

    problems.file = file
    for lang in pb.languages:
        filled = fill_slots(line.text.get(lang), SAMPLE_SLOT_VALUES[lang])
        if filled is None:
            continue
        hits = pattern_findings(pb.rules, filled, lang)
        if hits:
            problems.add(
                f"{path}.text.{lang}",
                f"suggestion trips compliance rule {hits[0].rule} ({hits[0].evidence}): {hits[0].quote!r}",
            )


def check_playbook(directory: str | Path) -> list[str]:
    """Every problem in the playbook folder, one located message each; empty when valid."""
    problems = _Problems(directory)
    pb = _parse(directory, problems)
    if pb is not None:
        _check_content(pb, problems)
    return problems.messages()


def load_playbook(directory: str | Path | None = None) -> Playbook:
    """Parse and validate a playbook folder; raise PlaybookError naming the first problem."""
    directory = default_playbook_dir() if directory is None else directory
    problems = _Problems(directory)
    pb = _parse(directory, problems)
    if pb is not None:
        _check_content(pb, problems)
    if problems.items or pb is None:
        if not problems.items:
            problems.file = str(Path(directory))
            problems.add("", "incomplete playbook")
        file, path, problem = problems.items[0]
        raise PlaybookError(file, path, problem, problems.messages())
    return pb
