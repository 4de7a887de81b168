"""Playbook loading and validation: each kind of mistake is reported with file, path and problem.

The validation tests run on a small synthetic playbook written to a temp folder
(so they do not move when the real prompts/ content is edited); the last tests
check that the real prompts/ folder itself is valid.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from assist.playbook import (
    SIGNAL_IDS,
    STAGE_IDS,
    PlaybookError,
    check_playbook,
    default_playbook_dir,
    load_playbook,
    playbook_version,
)
from assist.playbook_content import fill_slots
from tests.fakes import synthetic, write


def errors_for(tmp_path: Path, mutate: Any) -> list[str]:
    data = synthetic()
    mutate(data)
    return check_playbook(write(tmp_path / "pb", data))


def test_synthetic_playbook_loads(tmp_path: Path) -> None:
    folder = write(tmp_path / "pb", synthetic())
    assert check_playbook(folder) == []
    pb = load_playbook(folder)
    assert [s.id for s in pb.stages] == list(STAGE_IDS)
    assert {s.id for s in pb.signals} == set(SIGNAL_IDS)
    assert pb.rule("threat_violence").patterns.zh[0].search("这是违规词0号")
    assert pb.stage("opening").suggestions[0].needs_identity is False
    assert pb.stage("opening").suggestions[1].needs_identity is True
    assert pb.hotwords.zh == ("还款", "分期")
    assert pb.company.get("en") == "Test Co"
    with pytest.raises(dataclasses.FrozenInstanceError):
        pb.name = "x"  # type: ignore[misc]


def test_version_hash_follows_content(tmp_path: Path) -> None:
    folder = write(tmp_path / "pb", synthetic())
    v1 = load_playbook(folder).playbook_version
    assert v1 == playbook_version(folder)
    data = synthetic()
    data["stages.yaml"]["stages"][0]["examples"]["en"][0] = "changed"
    write(folder, data)
    assert load_playbook(folder).playbook_version != v1


def test_count_error_names_file_path_and_counts(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules.yaml"]["rules"][3]["violations"]["zh"] = d["rules.yaml"]["rules"][3]["violations"]["zh"][:12]

    errs = errors_for(tmp_path, mutate)
    assert errs == [f"{tmp_path / 'pb' / 'rules.yaml'}: rules[3].violations.zh: needs >= 15 examples, has 12"]
    with pytest.raises(PlaybookError) as info:
        load_playbook(tmp_path / "pb")
    assert info.value.file == str(tmp_path / "pb" / "rules.yaml")
    assert info.value.path == "rules[3].violations.zh"
    assert info.value.problem == "needs >= 15 examples, has 12"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["stages.yaml"]["stages"][1].__setitem__("id", "smalltalk"),
            [
                "stages.yaml: stages[1].id: unknown stage id 'smalltalk'",
                "stages.yaml: stages: missing stage id 'empathy'",
            ],
        ),
        (
            lambda d: d["signals.yaml"]["signals"][2].__setitem__("id", "hardship"),
            [
                "signals.yaml: signals[2].id: duplicate signal id 'hardship' (also signals[1])",
                "signals.yaml: signals: missing signal id 'request_plan'",
            ],
        ),
        (
            lambda d: d["rules.yaml"]["rules"].pop(),
            ["rules.yaml: rules: missing rule id 'overbearing'"],
        ),
        (
            lambda d: d["rules.yaml"]["rules"][2]["patterns"]["en"].append("(unclosed"),
            ["rules.yaml: rules[2].patterns.en[1]: regex '(unclosed' does not compile"],
        ),
        (
            lambda d: d["rules.yaml"]["rules"][0]["negations"]["zh"].append("[bad"),
            ["rules.yaml: rules[0].negations.zh[1]: regex '[bad' does not compile"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][0]["suggestions"][1]["text"].__setitem__(
                "en", "Hi {custmer_name}"
            ),
            ["stages.yaml: stages[0].suggestions[1].text.en: unknown slot(s) {custmer_name}"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][0]["suggestions"][1]["text"].__setitem__(
                "zh", "您好{customer_name"
            ),
            ["stages.yaml: stages[0].suggestions[1].text.zh: malformed slot braces"],
        ),
        (
            lambda d: d["signals.yaml"]["signals"][0]["responses"][0]["text"].__setitem__(
                "zh", "再不还就违规词0号"
            ),
            [
                "signals.yaml: signals[0].responses[0].text.zh: "
                "suggestion trips compliance rule threat_violence (pattern: 违规词0号)"
            ],
        ),
        (
            lambda d: d["rules.yaml"]["rules"][1]["lookalikes"]["en"].__setitem__(
                0, "a calm badword4 mention"
            ),
            ["rules.yaml: rules[1].lookalikes.en[0]: compliant look-alike trips rule third_party_disclosure"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][2].__setitem__("colour", "blue"),
            ["stages.yaml: stages[2].colour: unknown key (allowed: id, goal, examples, suggestions)"],
        ),
        (
            lambda d: d["rules.yaml"]["rules"][5].pop("rephrase"),
            ["rules.yaml: rules[5].rephrase: missing"],
        ),
        (
            lambda d: d["rules.yaml"]["rules"][5].__setitem__("severity", "fatal"),
            ["rules.yaml: rules[5].severity: must be one of critical, major, minor, got 'fatal'"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][4]["suggestions"][0].__setitem__("after_signals", ["angry"]),
            ["stages.yaml: stages[4].suggestions[0].after_signals[0]: unknown signal id 'angry'"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][4]["suggestions"][0].__setitem__("needs_identity", "no"),
            ["stages.yaml: stages[4].suggestions[0].needs_identity: expected true or false, got a string"],
        ),
        (
            lambda d: d["signals.yaml"]["signals"][3]["responses"][1].__setitem__("id", "opening_0"),
            ["signals.yaml: signals[3].responses[1].id: duplicate suggestion id 'opening_0'"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][3]["suggestions"].pop(),
            ["stages.yaml: stages[3].suggestions: needs >= 5 entries, has 4"],
        ),
        (
            lambda d: d["signals.yaml"]["signals"][0]["examples"].pop("en"),
            ["signals.yaml: signals[0].examples.en: missing"],
        ),
        (
            lambda d: d["stages.yaml"]["stages"][0]["examples"]["zh"].__setitem__(
                3, "stage opening中文例句第2句"
            ),
            ["stages.yaml: stages[0].examples.zh[3]: duplicate of [2]"],
        ),
        (
            lambda d: d["playbook.yaml"].__setitem__("languages", ["zh", "fr"]),
            ["playbook.yaml: languages: must be a non-empty list drawn from zh, en"],
        ),
        (
            lambda d: d["playbook.yaml"]["defaults"].pop("company"),
            ["playbook.yaml: defaults.company: missing"],
        ),
    ],
)
def test_validation_errors(tmp_path: Path, mutate: Any, expected: list[str]) -> None:
    errs = errors_for(tmp_path, mutate)
    prefix = str(tmp_path / "pb") + "/"
    assert len(errs) == len(expected), errs
    for got, want in zip(errs, expected, strict=True):
        assert got.startswith(prefix + want), (got, want)


def test_missing_file_and_yaml_syntax(tmp_path: Path) -> None:
    folder = write(tmp_path / "pb", synthetic())
    (folder / "signals.yaml").unlink()
    (folder / "rules.yaml").write_text("rules:\n  - id: x\n   bad: [\n", encoding="utf-8")
    errs = check_playbook(folder)
    assert f"{folder / 'signals.yaml'}: file not found" in errs
    assert any(
        re.match(rf"{re.escape(str(folder / 'rules.yaml'))}: line \d+, column \d+: YAML syntax error", e)
        for e in errs
    )
    with pytest.raises(PlaybookError) as info:
        load_playbook(folder)
    assert len(info.value.all_errors) == len(errs)


def test_negation_in_suggestion_is_allowed(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["stages.yaml"]["stages"][1]["suggestions"][0]["text"]["zh"] = "我们不会违规词0号，请放心"

    assert errors_for(tmp_path, mutate) == []


def test_fill_slots() -> None:
    assert fill_slots(
        "您好{customer_name}，我是{agent_name}", {"customer_name": "王芳", "agent_name": "李明"}
    ) == ("您好王芳，我是李明")
    assert fill_slots("Your balance is {amount}", {"customer_name": "x"}) is None
    assert fill_slots("Your balance is {amount}", {"amount": ""}) is None
    assert fill_slots("no slots", {}) == "no slots"


# --------------------------------------------------------------------------- the real playbook

REAL = default_playbook_dir()
needs_real = pytest.mark.skipif(
    not (REAL / "rules.yaml").is_file(), reason="prompts/ content not written yet"
)


@needs_real
def test_real_playbook_is_valid() -> None:
    assert check_playbook(REAL) == []
    pb = load_playbook(REAL)
    assert pb.languages == ("zh", "en")
    assert "还款" in pb.hotwords.zh


@needs_real
def test_real_playbook_suggestions_use_known_slots_only() -> None:
    pb = load_playbook(REAL)
    for line in pb.lines():
        for lang in pb.languages:
            assert "{" not in (fill_slots(line.text.get(lang), _ALL_SLOTS) or "")


_ALL_SLOTS = {
    "customer_name": "A",
    "agent_name": "B",
    "company": "C",
    "amount": "1",
    "due_date": "D",
    "instalment_amount": "2",
    "instalments": "3",
}


# --------------------------------------------------------------------------- labelled.jsonl

LABELLED_OK = [
    {
        "language": "zh",
        "speaker": "agent",
        "text": "您好，请问是李先生吗？",
        "stage": "opening",
        "rules": [],
        "signals": [],
    },
    {
        "language": "en",
        "speaker": "agent",
        "text": "Pay today or else.",
        "stage": "*",
        "rules": ["overbearing"],
        "signals": [],
        "id": "en-a-1",
        "split": "dev",
    },
    {
        "language": "en",
        "speaker": "customer",
        "text": "I lost my job.",
        "stage": None,
        "rules": [],
        "signals": ["hardship"],
    },
]


def _write_labelled(folder: Path, lines: list[str]) -> None:
    (folder / "labelled.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_labelled_lines_load_and_change_the_version(tmp_path: Path) -> None:
    folder = write(tmp_path / "pb", synthetic())
    before = playbook_version(folder)
    assert load_playbook(folder).labelled == ()
    _write_labelled(folder, [json.dumps(d, ensure_ascii=False) for d in LABELLED_OK])
    pb = load_playbook(folder)
    assert [(x.language, x.speaker, x.stage, x.rules, x.signals) for x in pb.labelled] == [
        ("zh", "agent", "opening", (), ()),
        ("en", "agent", "*", ("overbearing",), ()),
        ("en", "customer", None, (), ("hardship",)),
    ]
    assert [x.batch for x in pb.labelled] == ["", "dev", ""]  # `split` names the batch
    assert pb.playbook_version != before  # the trained models' cache key follows the lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "line 2: not JSON"),
        ('["a list"]', "line 2: expected an object, got a list"),
        (
            '{"language": "zh", "speaker": "agent", "text": "x", "stage": "*", "rules": []}',
            "line 2: missing ['signals']",
        ),
        (
            '{"language": "fr", "speaker": "agent", "text": "x", "stage": "*", "rules": [], "signals": []}',
            "line 2.language: 'fr' is not one of the playbook's languages",
        ),
        (
            '{"language": "en", "speaker": "agent", "text": "x", '
            '"stage": "*", "rules": ["rude"], "signals": []}',
            "line 2.rules: expected a list of rule ids",
        ),
        (
            '{"language": "en", "speaker": "agent", "text": "x", '
            '"stage": "closing", "rules": [], "signals": []}',
            "line 2.stage: an agent line needs a stage id or '*', got 'closing'",
        ),
        (
            '{"language": "en", "speaker": "agent", "text": " ", "stage": "*", "rules": [], "signals": []}',
            "line 2.text: expected a non-empty string",
        ),
        (
            '{"language": "en", "speaker": "bot", "text": "x", "stage": "*", "rules": [], "signals": []}',
            "line 2.speaker: expected 'agent' or 'customer', got 'bot'",
        ),
        (
            '{"language": "en", "speaker": "agent", "text": "x", '
            '"stage": "*", "rules": [], "signals": [], "x": 1}',
            "line 2: unknown keys ['x']",
        ),
    ],
)
def test_labelled_line_errors_name_the_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    folder = write(tmp_path / "pb", synthetic())
    _write_labelled(folder, [json.dumps(LABELLED_OK[0], ensure_ascii=False), line])
    errs = check_playbook(folder)
    assert len(errs) == 1, errs
    assert errs[0].startswith(f"{folder / 'labelled.jsonl'}: {expected}"), errs
    with pytest.raises(PlaybookError):
        load_playbook(folder)
