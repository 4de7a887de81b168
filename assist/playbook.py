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
from collections.abc import Sequence
from pathlib import Path

from assist.patterns import pattern_findings
from assist.playbook_content import (
    LANGUAGES,
    NO_STAGE_LABEL,
    RULE_IDS,
    SAMPLE_SLOT_VALUES,
    SEVERITIES,
    SIGNAL_IDS,
    STAGE_IDS,
    LabelledLine,
    Line,
    Playbook,
    Rule,
    Signal,
    Stage,
    fill_slots,
)
from assist.playbook_parse import MISSING, Parser, Problems, kind_of, read_yaml

PLAYBOOK_FILES: tuple[str, ...] = ("playbook.yaml", "stages.yaml", "signals.yaml", "rules.yaml")
# Optional: agent and customer lines labelled by people (call reviews, our own dev set), one
# JSON object per line, same format as bench/data; the learned line models train on them too.
LABELLED_FILE = "labelled.jsonl"
LABELLED_KEYS: tuple[str, ...] = ("language", "speaker", "text", "stage", "rules", "signals")
LABELLED_OPTIONAL_KEYS: tuple[str, ...] = ("id", "split", "source")  # source: where a quoted line came from

# Minimum counts from the issue: enough examples per class for nearest-example
# similarity to generalise, and enough lines that suggestions need not repeat.
MIN_STAGE_EXAMPLES = 10
MIN_STAGE_SUGGESTIONS = 5
MIN_SIGNAL_EXAMPLES = 10
MIN_SIGNAL_RESPONSES = 2
MIN_RULE_VIOLATIONS = 15
MIN_RULE_LOOKALIKES = 10
MIN_RULE_PATTERNS = 1


class PlaybookError(ValueError):
    """A playbook problem, located by file and by the path inside the file."""

    def __init__(self, file: str, path: str, problem: str, all_errors: Sequence[str] = ()) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        message = f"{file}: {path}: {problem}" if path else f"{file}: {problem}"
        self.all_errors: tuple[str, ...] = tuple(all_errors) or (message,)
        super().__init__(message)


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


def playbook_version(directory: str | Path) -> str:
    """A short hash of the playbook files' bytes: changes whenever any content changes."""
    digest = hashlib.sha256()
    base = Path(directory)
    for fname in (*PLAYBOOK_FILES, LABELLED_FILE):
        path = base / fname
        digest.update(fname.encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:16]


def _parse(directory: str | Path, problems: Problems) -> Playbook | None:
    # playbook.yaml first: it says which languages every other bilingual field must cover.
    raw = read_yaml(problems, "playbook.yaml")
    p = Parser(problems, LANGUAGES)
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
    p = Parser(problems, languages)
    version = (
        str(head.get("version", "")) if isinstance(head.get("version", MISSING), str | int | float) else ""
    )
    if "version" in head and not isinstance(head["version"], str | int | float):
        problems.add("version", f"expected a string, got {kind_of(head['version'])}")
    name = p.text(head["name"], "name") if "name" in head else ""
    defaults = (
        p.mapping(head.get("defaults", MISSING), "defaults", ("company", "agent_name"))
        if "defaults" in head
        else {}
    )
    company = (
        p.per_language_text(defaults.get("company", MISSING), "defaults.company")
        if "company" in defaults
        else None
    )
    agent = (
        p.per_language_text(defaults.get("agent_name", MISSING), "defaults.agent_name")
        if "agent_name" in defaults
        else None
    )
    hotwords = (
        p.per_language_texts(head.get("hotwords", MISSING), "hotwords", 0, "hotwords")
        if "hotwords" in head
        else None
    )

    line_ids: dict[str, str] = {}

    raw = read_yaml(problems, "stages.yaml")
    stages: list[Stage] = []
    if raw is not None:
        top = p.mapping(raw, "", ("stages",))
        items = top.get("stages")
        if "stages" in top and not isinstance(items, list):
            problems.add("stages", f"expected a list, got {kind_of(items)}")
        elif isinstance(items, list):
            ids = p.ids(items, "stages", STAGE_IDS, "stage")
            for i, (item, ident) in enumerate(zip(items, ids, strict=True)):
                path = f"stages[{i}]"
                d = p.mapping(item, path, ("id", "goal", "examples", "suggestions"))
                if not d:
                    continue
                goal = p.per_language_text(d.get("goal", MISSING), f"{path}.goal")
                ex = p.per_language_texts(d.get("examples", MISSING), f"{path}.examples", MIN_STAGE_EXAMPLES)
                lines = p.lines(
                    d.get("suggestions", MISSING),
                    f"{path}.suggestions",
                    MIN_STAGE_SUGGESTIONS,
                    f"stage:{ident}",
                    line_ids,
                )
                if ident is not None:
                    stages.append(Stage(ident, goal, ex, lines))

    raw = read_yaml(problems, "signals.yaml")
    signals: list[Signal] = []
    if raw is not None:
        top = p.mapping(raw, "", ("signals",))
        items = top.get("signals")
        if "signals" in top and not isinstance(items, list):
            problems.add("signals", f"expected a list, got {kind_of(items)}")
        elif isinstance(items, list):
            ids = p.ids(items, "signals", SIGNAL_IDS, "signal")
            for i, (item, ident) in enumerate(zip(items, ids, strict=True)):
                path = f"signals[{i}]"
                d = p.mapping(item, path, ("id", "meaning", "examples", "responses"))
                if not d:
                    continue
                meaning = p.per_language_text(d.get("meaning", MISSING), f"{path}.meaning")
                ex = p.per_language_texts(d.get("examples", MISSING), f"{path}.examples", MIN_SIGNAL_EXAMPLES)
                lines = p.lines(
                    d.get("responses", MISSING),
                    f"{path}.responses",
                    MIN_SIGNAL_RESPONSES,
                    f"signal:{ident}",
                    line_ids,
                )
                if ident is not None:
                    signals.append(Signal(ident, meaning, ex, lines))

    raw = read_yaml(problems, "rules.yaml")
    rules: list[Rule] = []
    if raw is not None:
        top = p.mapping(raw, "", ("rules",))
        items = top.get("rules")
        if "rules" in top and not isinstance(items, list):
            problems.add("rules", f"expected a list, got {kind_of(items)}")
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
                severity = d.get("severity", MISSING)
                if "severity" in d and severity not in SEVERITIES:
                    problems.add(
                        f"{path}.severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}"
                    )
                rule = Rule(
                    id=ident or "",
                    severity=severity if isinstance(severity, str) else "",
                    why=p.per_language_text(d.get("why", MISSING), f"{path}.why"),
                    grounding=p.text(d.get("grounding", MISSING), f"{path}.grounding")
                    if "grounding" in d
                    else "",
                    patterns=p.patterns(d.get("patterns", MISSING), f"{path}.patterns", MIN_RULE_PATTERNS),
                    negations=p.patterns(d.get("negations", MISSING), f"{path}.negations", 0, optional=True),
                    violations=p.per_language_texts(
                        d.get("violations", MISSING), f"{path}.violations", MIN_RULE_VIOLATIONS
                    ),
                    lookalikes=p.per_language_texts(
                        d.get("lookalikes", MISSING), f"{path}.lookalikes", MIN_RULE_LOOKALIKES
                    ),
                    rephrase=p.per_language_text(d.get("rephrase", MISSING), f"{path}.rephrase"),
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


def _read_labelled(problems: Problems, languages: tuple[str, ...]) -> tuple[LabelledLine, ...]:
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
            problems.add(where, f"expected an object, got {kind_of(d)}")
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
                    source if isinstance(source := d.get("source", ""), str) else "",
                )
            )
    return tuple(out)


def _check_content(pb: Playbook, problems: Problems) -> None:
    """Cross-file checks that need the parsed whole: suggestions must not trip a rule's patterns,
    and each rule's own examples must agree with its patterns where that is decidable."""
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


def _check_line(pb: Playbook, problems: Problems, file: str, path: str, line: Line) -> None:
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
    problems = Problems(directory)
    pb = _parse(directory, problems)
    if pb is not None:
        _check_content(pb, problems)
    return problems.messages()


def load_playbook(directory: str | Path | None = None) -> Playbook:
    """Parse and validate a playbook folder; raise PlaybookError naming the first problem."""
    directory = default_playbook_dir() if directory is None else directory
    problems = Problems(directory)
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
