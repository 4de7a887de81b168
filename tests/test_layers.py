"""The import contract: data flows one way through the layers, and no two modules of a package
import each other in a circle.

Every module under assist/ and stream/ is parsed (not imported, so nothing runs and no model
loads) and every import counts: module-level, inside functions, and under ``TYPE_CHECKING``
(a type-only import still ties the lower layer to the upper one's code).  Rules, top to bottom:

    stream.cli
    stream.web | stream.offline
    stream.ingest
    stream.delivery
    stream.live
    stream.audio | stream.asr | stream.store   (+ foundation: stream.settings, stream.auth)
    assist                                     (imports nothing from stream)

A module may import its own layer, anything below it, and the foundation (stream.files too).  An
exception would have to be listed in KNOWN_VIOLATIONS with its reason; there is none.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assist", "stream")

# What each layer must never import (prefixes; a module belongs to the longest prefix it has).
CLI = ("stream.cli",)
ENTRY = ("stream.web", "stream.offline", *CLI)
ABOVE_LIVE = ("stream.ingest", "stream.delivery", *ENTRY)
ABOVE_BASE = ("stream.live", *ABOVE_LIVE)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "assist": ("stream",),
    "stream.settings": ABOVE_BASE,
    "stream.auth": ABOVE_BASE,
    "stream.files": ABOVE_BASE,
    "stream.audio": ABOVE_BASE,
    "stream.asr": ABOVE_BASE,
    "stream.store": ABOVE_BASE,
    "stream.live": ABOVE_LIVE,
    "stream.delivery": ("stream.ingest", *ENTRY),
    "stream.ingest": ENTRY,
    "stream.web": CLI,
    "stream.offline": CLI,
    "stream.cli": (),
}

# Edges allowed to break the rules (importer -> imported), each with its reason: none today.
# An edge listed here that no longer exists fails the test too, so the list cannot go stale.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()

# Import cycles allowed within a package (sorted module names): none today.
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int
    path: Path

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}  ({self.path.relative_to(ROOT)}:{self.line})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_in(
    name: str, is_package: bool, tree: ast.AST, known: dict[str, Path]
) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import anywhere in ``tree``: ast.walk reaches function
    bodies and TYPE_CHECKING blocks.  ``from pkg import name`` imports ``pkg.name`` when that is
    a module, else ``pkg``."""
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in dict.fromkeys(targets):
            if target.split(".")[0] in PACKAGES and target != name:
                yield target, node.lineno


def edges(known: dict[str, Path]) -> Iterator[Edge]:
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, line in imports_in(name, path.name == "__init__.py", tree, known):
            yield Edge(name, target, line, path)


def layer(module: str) -> str | None:
    matches = [prefix for prefix in FORBIDDEN if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=len) if matches else None


def breaks_a_rule(edge: Edge) -> bool:
    own = layer(edge.importer)
    if own is None:
        return False
    return any(edge.imported == f or edge.imported.startswith(f + ".") for f in FORBIDDEN[own])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def package_of(module: str, known: dict[str, Path]) -> str:
    path = known[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def test_parser_sees_every_kind_of_import() -> None:
    """The contract is only as good as the parser: a lazy import in a function, a TYPE_CHECKING
    import and relative imports must all be edges."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "from . import base\n"
        "from ..live.bus import EventBus\n"
        "if TYPE_CHECKING:\n    from stream.web.server import Service\n"
        "def f():\n    import stream.cli.main\n"
    )
    known = modules()
    found = {target for target, _ in imports_in("stream.ingest.twilio", False, ast.parse(src), known)}
    assert found == {"stream.ingest.base", "stream.live.bus", "stream.web.server", "stream.cli.main"}


def test_layers_import_downwards_only() -> None:
    known = modules()
    assert set(layer(m) for m in known if m.startswith("stream.")) - {None} <= set(FORBIDDEN)
    unplaced = sorted(m for m in known if layer(m) is None and m != "stream")
    assert not unplaced, f"modules in no layer (add them to FORBIDDEN): {unplaced}"
    broken = [e for e in edges(known) if breaks_a_rule(e)]
    new = sorted((e for e in broken if (e.importer, e.imported) not in KNOWN_VIOLATIONS), key=str)
    fixed = sorted(KNOWN_VIOLATIONS - {(e.importer, e.imported) for e in broken})
    message = []
    if new:
        message.append("imports against the layers:\n  " + "\n  ".join(map(str, new)))
    if fixed:
        message.append(
            "KNOWN_VIOLATIONS lists edges that are gone (delete them):\n  "
            + "\n  ".join(f"{a} -> {b}" for a, b in fixed)
        )
    assert not message, "\n".join(message)
    if KNOWN_VIOLATIONS:
        warnings.warn(
            f"{len(KNOWN_VIOLATIONS)} known layer violations still tolerated (KNOWN_VIOLATIONS):\n  "
            + "\n  ".join(map(str, sorted((e for e in broken), key=str))),
            stacklevel=1,
        )


def test_no_import_cycles_within_a_package() -> None:
    """Two modules of one package importing each other (even lazily) means neither can be
    understood or tested alone; one of them holds what both need."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for e in edges(known):
        if e.imported in known and package_of(e.importer, known) == package_of(e.imported, known):
            graph.setdefault(e.importer, set()).add(e.imported)
    found = {tuple(c) for c in cycles(graph)}
    new, fixed = sorted(found - KNOWN_CYCLES), sorted(KNOWN_CYCLES - found)
    message = []
    if new:
        message.append("import cycles within a package:\n  " + "\n  ".join(" <-> ".join(c) for c in new))
    if fixed:
        message.append(
            "KNOWN_CYCLES lists cycles that are gone (delete them):\n  "
            + "\n  ".join(" <-> ".join(c) for c in fixed)
        )
    assert not message, "\n".join(message)
    if KNOWN_CYCLES:
        warnings.warn(
            "known import cycles still tolerated (KNOWN_CYCLES): "
            + "; ".join(" <-> ".join(c) for c in sorted(KNOWN_CYCLES)),
            stacklevel=1,
        )
