"""bench/data/realworld.jsonl is only worth something if every line can be traced to its document
and the test half shares no document with the train half; these checks keep it that way.

No model is loaded: the file is read as JSON and compared with prompts/rules.yaml and the
sources list bench/data/realworld_sources.md.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "data" / "realworld.jsonl"
SOURCES_MD = ROOT / "bench" / "data" / "realworld_sources.md"
RULES_YAML = ROOT / "prompts" / "rules.yaml"

LINE_KEYS = ("id", "language", "speaker", "text", "stage", "rules", "signals", "split")
PROVENANCE_KEYS = ("source_id", "source_title", "source_url", "licence", "quote_note")
STAGES = ("opening", "empathy", "inquiry", "proposal", "confirmation", "*")
SPLITS = ("train", "test")
LANGUAGES = ("zh", "en")
MIN_RULES_PER_HALF = 3  # each half of each language must exercise at least this many rules
MAX_HALF_SHARE = 0.65  # neither half may hold more than this share of a language's lines


@pytest.fixture(scope="module")
def lines() -> list[dict[str, Any]]:
    out = []
    for n, raw in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), start=1):
        assert raw.strip(), f"line {n} is empty"
        out.append(json.loads(raw))
    assert out
    return out


def test_keys_follow_the_labelled_line_format_plus_provenance(lines: list[dict[str, Any]]) -> None:
    for it in lines:
        assert tuple(it) == LINE_KEYS + PROVENANCE_KEYS, it["id"]


def test_ids_unique_and_values_in_vocabulary(lines: list[dict[str, Any]]) -> None:
    assert len({it["id"] for it in lines}) == len(lines)
    for it in lines:
        assert it["language"] in LANGUAGES, it["id"]
        assert it["speaker"] == "agent", it["id"]
        assert it["stage"] in STAGES, it["id"]
        assert it["signals"] == [], it["id"]
        assert it["split"] in SPLITS, it["id"]
        assert isinstance(it["text"], str) and it["text"].strip(), it["id"]


def test_every_line_has_provenance(lines: list[dict[str, Any]]) -> None:
    for it in lines:
        for key in PROVENANCE_KEYS:
            assert isinstance(it[key], str) and it[key].strip(), f"{it['id']}: empty {key}"


def test_rule_ids_exist_in_the_playbook(lines: list[dict[str, Any]]) -> None:
    known = {r["id"] for r in yaml.safe_load(RULES_YAML.read_text(encoding="utf-8"))["rules"]}
    for it in lines:
        assert isinstance(it["rules"], list), it["id"]
        assert len(set(it["rules"])) == len(it["rules"]), it["id"]
        assert set(it["rules"]) <= known, f"{it['id']}: unknown {set(it['rules']) - known}"


def test_no_source_in_both_splits(lines: list[dict[str, Any]]) -> None:
    splits_of: dict[str, set[str]] = defaultdict(set)
    for it in lines:
        splits_of[it["source_id"]].add(it["split"])
    assert {s: sp for s, sp in splits_of.items() if len(sp) > 1} == {}


def test_a_source_keeps_one_title_url_and_licence(lines: list[dict[str, Any]]) -> None:
    seen: dict[str, tuple[str, str, str, str]] = {}
    for it in lines:
        meta = (it["language"], it["source_title"], it["source_url"], it["licence"])
        assert seen.setdefault(it["source_id"], meta) == meta, it["id"]


def test_halves_are_balanced_and_both_hold_several_rules(lines: list[dict[str, Any]]) -> None:
    for language in LANGUAGES:
        mine = [it for it in lines if it["language"] == language]
        for split in SPLITS:
            half = [it for it in mine if it["split"] == split]
            assert len(half) <= MAX_HALF_SHARE * len(mine), (language, split, len(half), len(mine))
            rules = {r for it in half for r in it["rules"]}
            assert len(rules) >= MIN_RULES_PER_HALF, (language, split, sorted(rules))
            assert any(not it["rules"] for it in half), (language, split, "no compliant line")


def test_sources_file_lists_every_source(lines: list[dict[str, Any]]) -> None:
    text = SOURCES_MD.read_text(encoding="utf-8")
    missing = sorted({it["source_id"] for it in lines if f"`{it['source_id']}`" not in text})
    assert missing == []
