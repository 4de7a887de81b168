"""Parsing primitives for the playbook's YAML: each returns a usable fallback after recording
a located problem, so one run of the loader reports every mistake, not just the first."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from assist.playbook_content import SIGNAL_IDS, SLOTS, Line, PerLanguage, slot_names


class Problems:
    """Collects located problems while the parse carries on, so one run reports them all."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.items: list[tuple[str, str, str]] = []
        self.file = ""

    def add(self, path: str, problem: str) -> None:
        self.items.append((self.file, path, problem))

    def messages(self) -> list[str]:
        return [f"{f}: {p}: {m}" if p else f"{f}: {m}" for f, p, m in self.items]


def kind_of(value: Any) -> str:
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


MISSING: Any = object()  # a key that is absent: already reported by mapping(), so stay quiet


class Parser:
    def __init__(self, problems: Problems, languages: tuple[str, ...]) -> None:
        self.p = problems
        self.languages = languages

    # -- primitives: each returns a usable fallback after recording the problem

    def mapping(
        self, value: Any, path: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict[str, Any]:
        if value is MISSING:
            return {}
        if not isinstance(value, dict):
            self.p.add(path, f"expected a mapping, got {kind_of(value)}")
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
        if value is MISSING:
            return ""
        if not isinstance(value, str):
            self.p.add(path, f"expected a string, got {kind_of(value)}")
            return ""
        if not value.strip():
            self.p.add(path, "is empty")
        return value

    def texts(self, value: Any, path: str, minimum: int, what: str = "examples") -> tuple[str, ...]:
        if value is MISSING:
            return ()
        if value is None:
            value = []
        if not isinstance(value, list):
            self.p.add(path, f"expected a list, got {kind_of(value)}")
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
            lang: self.texts(data.get(lang, MISSING), f"{path}.{lang}", minimum, what) if lang in data else ()
            for lang in self.languages
        }
        return PerLanguage(zh=got.get("zh", ()), en=got.get("en", ()))

    def patterns(
        self, value: Any, path: str, minimum: int, optional: bool = False
    ) -> PerLanguage[tuple[re.Pattern[str], ...]]:
        if value is MISSING or (value is None and optional):
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
        ident = self.text(data.get("id", MISSING), f"{path}.id") if "id" in data else ""
        if ident in line_ids:
            self.p.add(f"{path}.id", f"duplicate suggestion id {ident!r} (also {line_ids[ident]})")
        elif ident:
            line_ids[ident] = f"{self.p.file}: {path}"
        text = self.per_language_text(data.get("text", MISSING), f"{path}.text")
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
            self.p.add(f"{path}.after_signals", f"expected a list, got {kind_of(after)}")
        else:
            for i, sig in enumerate(after):
                if sig not in SIGNAL_IDS:
                    self.p.add(f"{path}.after_signals[{i}]", f"unknown signal id {sig!r}")
                else:
                    after_ids.append(sig)
        needs_identity = data.get("needs_identity", True)
        if not isinstance(needs_identity, bool):
            self.p.add(f"{path}.needs_identity", f"expected true or false, got {kind_of(needs_identity)}")
            needs_identity = True
        return Line(ident, text, tuple(after_ids), needs_identity, source)

    def lines(
        self, value: Any, path: str, minimum: int, source: str, line_ids: dict[str, str]
    ) -> tuple[Line, ...]:
        if value is MISSING:
            return ()
        if not isinstance(value, list):
            self.p.add(path, f"expected a list, got {kind_of(value)}")
            return ()
        if len(value) < minimum:
            self.p.add(path, f"needs >= {minimum} entries, has {len(value)}")
        out = [self.line(item, f"{path}[{i}]", source, line_ids) for i, item in enumerate(value)]
        return tuple(x for x in out if x is not None)


def read_yaml(problems: Problems, fname: str) -> Any:
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
