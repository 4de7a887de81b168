"""Escaping and number formatting shared by the review page and its SVG timeline.

Every piece of report text is HTML-escaped (transcripts are whatever the caller said), and numbers are
read leniently, since a page may be drawn from a report file another tool wrote.
"""

from __future__ import annotations

import html
from typing import Any


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def clock(seconds: Any) -> str:
    t = max(0.0, num(seconds))
    return f"{int(t // 60):02d}:{t % 60:04.1f}"
