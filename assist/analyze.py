"""``callassist analyze-text``: guidance for transcripts given as JSON lines, without audio.

Input, one JSON object a line::

    {"speaker": "agent" | "customer", "text": "...", "language": "zh" | "en", "call": "optional id"}

Lines with the same ``call`` share one call's state, in order (so identity,
signals and suggestions build up as in a live call); a line without ``call`` is
judged on its own.  Output, one JSON line per input line::

    {"stage": id or null, "rules": [{"id", "severity", "quote", "why", "rephrase"}],
     "signals": [{"id", "score"}], "suggestions": [{"text", "reason", "source"}]}

``source`` is what the line answers, as in the ``suggestion`` event (``signal:dispute``,
``party:third_party``, ``stage:proposal``, ``next:confirmation``).

``stage`` is the stage this agent utterance was judged to be in (null when it
fits none, and for customer lines).  A bad line yields ``{"error": "..."}`` and
the rest carry on: one typo in a batch file should not lose the whole run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from assist.engine import CallGuide, GuidanceEngine, TurnResult
from assist.events import SPEAKERS, Speaker

# How many separate calls one run keeps state for; input is usually grouped by
# call, so the oldest call is dropped first when a long file exceeds this.
MAX_OPEN_CALLS = 1_000


def result_dict(result: TurnResult) -> dict[str, Any]:
    return {
        "stage": result.stage if result.speaker == "agent" else None,
        "rules": [
            {"id": f.rule, "severity": f.severity, "quote": f.quote, "why": f.why, "rephrase": f.rephrase}
            for f in result.findings
        ],
        "signals": [{"id": h.signal, "score": h.score} for h in result.signals],
        "suggestions": [{"text": p.text, "reason": p.reason, "source": p.source} for p in result.suggestions],
    }


def analyze_text(engine: GuidanceEngine, text: str, speaker: str, language: str) -> dict[str, Any]:
    """One utterance judged on its own, in the analyze-text output shape."""
    _check_fields(speaker, text, language, engine)
    guide = engine.new_call(language, {})
    return result_dict(guide.judge_final("agent" if speaker == "agent" else "customer", text, "u1"))


def _check_fields(speaker: Any, text: Any, language: Any, engine: GuidanceEngine) -> None:
    if speaker not in SPEAKERS:
        raise ValueError(f"speaker must be 'agent' or 'customer', got {speaker!r}")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if language not in engine.playbook.languages:
        raise ValueError(f"language must be one of {', '.join(engine.playbook.languages)}, got {language!r}")


def analyze_lines(lines: Iterable[str], engine: GuidanceEngine) -> Iterator[str]:
    """One JSON output line per input line (blank input lines are skipped)."""
    calls: dict[str, CallGuide] = {}
    counters: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield json.dumps(_one(raw, lineno, engine, calls, counters), ensure_ascii=False)
        except ValueError as exc:
            yield json.dumps({"error": f"line {lineno}: {exc}"}, ensure_ascii=False)


def _one(
    raw: str, lineno: int, engine: GuidanceEngine, calls: dict[str, CallGuide], counters: dict[str, int]
) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, Mapping):
        raise ValueError("expected a JSON object")
    speaker, text, language = data.get("speaker"), data.get("text"), data.get("language")
    _check_fields(speaker, text, language, engine)
    assert isinstance(text, str) and isinstance(language, str)
    who: Speaker = "agent" if speaker == "agent" else "customer"
    call = data.get("call")
    if call is not None and not isinstance(call, str | int):
        raise ValueError(f"call must be a string id, got {type(call).__name__}")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise ValueError("metadata must be an object")
    if call is None:
        guide = engine.new_call(language, metadata)
        key = f"line{lineno}"
    else:
        key = str(call)
        guide_or_none = calls.get(key)
        if guide_or_none is None:
            if len(calls) >= MAX_OPEN_CALLS:
                oldest = next(iter(calls))
                del calls[oldest]
                counters.pop(oldest, None)
            guide_or_none = engine.new_call(language, metadata)
            calls[key] = guide_or_none
        guide = guide_or_none
    counters[key] = counters.get(key, 0) + 1
    result = guide.judge_final(who, text, f"{key}-{counters[key]}")
    return result_dict(result)
