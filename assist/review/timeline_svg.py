"""The review page's SVG timeline: one picture of the whole call.

Both speakers' turns sit in their own rows under the stages drawn as bands; findings are markers that
link to their utterance in the transcript, interruptions dashed lines, long silences shaded.  Plain
SVG with ``<title>`` tooltips: no script.
"""

from __future__ import annotations

from typing import Any

from assist.review.labels import PageWords
from assist.review.markup import clock, esc, num
from assist.review.model import Report
from assist.review.style import OTHER_STAGE_COLOR, SEVERITY_COLORS, SPEAKER_COLORS, STAGE_COLORS

SVG_WIDTH = 1000
SVG_LABEL_W = 92  # left margin holding the row labels
SVG_RIGHT_PAD = 12
TICK_STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
MAX_TICKS = 12


def timeline_svg(report: Report, words: PageWords) -> str:
    """Both speakers' turns over the stages as bands, findings as markers linking to their utterance,
    interruptions as dashed lines and long silences shaded."""
    utterances = report.utterances
    duration = max(
        [num(report.call.duration, 0.0), 1.0]
        + [num(u.end) for u in utterances]
        + [num(s.end) for s in report.stage_timeline]
    )
    plot_w = SVG_WIDTH - SVG_LABEL_W - SVG_RIGHT_PAD

    def x(t: Any) -> float:
        return round(SVG_LABEL_W + max(0.0, min(num(t), duration)) / duration * plot_w, 2)

    rows = {"stage": (8, 22), "agent": (38, 26), "customer": (72, 26), "finding": (104, 16)}
    axis_y = 132
    height = 152
    parts = [
        f'<svg viewBox="0 0 {SVG_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{esc(words.L["timeline"])}">'
    ]
    for key, label in (
        ("stage", words.L["stages"]),
        ("agent", words.L["agent"]),
        ("customer", words.L["customer"]),
        ("finding", words.L["findings"]),
    ):
        y, h = rows[key]
        parts.append(f'<text x="4" y="{y + h / 2 + 4}">{esc(label)}</text>')
        parts.append(
            f'<rect x="{SVG_LABEL_W}" y="{y}" width="{plot_w}" height="{h}" fill="#f4f5f8" stroke="#e2e4ea"/>'
        )
    talk_top = rows["agent"][0]
    talk_bottom = rows["customer"][0] + rows["customer"][1]
    for s in report.silences:
        x0, x1 = x(s.start), x(s.end)
        parts.append(
            f'<rect x="{x0}" y="{talk_top}" width="{max(0.5, x1 - x0)}" '
            f'height="{talk_bottom - talk_top}" '
            f'fill="#9aa0aa" fill-opacity="0.25"><title>{esc(words.L["silence"])} {clock(s.start)}-'
            f"{clock(s.end)}</title></rect>"
        )
    for span in report.stage_timeline:
        x0, x1 = x(span.start), x(span.end)
        stage = str(span.stage)
        color = STAGE_COLORS.get(stage, OTHER_STAGE_COLOR)
        y, h = rows["stage"]
        parts.append(
            f'<rect x="{x0}" y="{y}" width="{max(0.5, x1 - x0)}" height="{h}" fill="{color}">'
            f"<title>{esc(words.name(stage))} {clock(span.start)}-{clock(span.end)}"
            "</title></rect>"
        )
        if x1 - x0 > 60:
            parts.append(f'<text x="{x0 + 4}" y="{y + 15}">{esc(words.name(stage))}</text>')
    for u in utterances:
        speaker = "agent" if u.speaker == "agent" else "customer"
        y, h = rows[speaker]
        x0, x1 = x(u.start), x(u.end)
        flagged = bool(u.rules)
        stroke = ' stroke="#c1121f" stroke-width="2"' if flagged else ""
        text = str(u.text)
        short = text if len(text) <= 120 else text[:117] + "..."
        parts.append(
            f'<a href="#u{esc(u.index)}"><rect x="{x0}" y="{y + 2}" width="{max(1.0, x1 - x0)}" '
            f'height="{h - 4}" rx="3" fill="{SPEAKER_COLORS[speaker]}"{stroke}>'
            f"<title>{clock(u.start)} {esc(words.name(speaker))}: {esc(short)}</title></rect></a>"
        )
    taken: dict[int, int] = {}  # findings on the same spot are fanned out, not drawn on top of each other
    for f in report.findings:
        cx = x(f.start)
        slot = round(cx / 14)
        cx += 14 * taken.get(slot, 0)
        taken[slot] = taken.get(slot, 0) + 1
        y, h = rows["finding"]
        color = SEVERITY_COLORS.get(str(f.severity), SEVERITY_COLORS["minor"])
        target = f.utterance
        points = f"{cx - 7},{y + h} {cx + 7},{y + h} {cx},{y}"
        marker = (
            f'<polygon points="{points}" fill="{color}" stroke="#fff" stroke-width="1">'
            f"<title>{clock(f.start)} {esc(words.name(f.severity))} "
            f"{esc(words.name(f.rule))}: {esc(f.quote)}</title></polygon>"
        )
        parts.append(f'<a href="#u{esc(target)}">{marker}</a>' if target is not None else marker)
    for i in report.interruptions:
        cx = x(i.time)
        parts.append(
            f'<line x1="{cx}" y1="{talk_top}" x2="{cx}" y2="{talk_bottom}" stroke="#c1121f" '
            f'stroke-dasharray="3 2"><title>{esc(words.L["interruptions"])} {clock(i.time)}'
            "</title></line>"
        )
    step = next((s for s in TICK_STEPS_S if duration / s <= MAX_TICKS), TICK_STEPS_S[-1])
    parts.append(
        f'<line x1="{SVG_LABEL_W}" y1="{axis_y}" x2="{SVG_LABEL_W + plot_w}" y2="{axis_y}" stroke="#888"/>'
    )
    t = 0
    while t <= duration + 1e-9:
        tx = x(t)
        parts.append(f'<line x1="{tx}" y1="{axis_y}" x2="{tx}" y2="{axis_y + 5}" stroke="#888"/>')
        parts.append(
            f'<text x="{tx}" y="{axis_y + 17}" text-anchor="middle">{int(t // 60)}:{int(t % 60):02d}</text>'
        )
        t += step
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="sw" style="background:{c}"></i>{esc(words.name(s))}</span>'
        for s, c in STAGE_COLORS.items()
    ) + "".join(
        f'<span><i class="sw" style="background:{c}"></i>{esc(words.name(s))}</span>'
        for s, c in SEVERITY_COLORS.items()
    )
    return f'<div class="card">{"".join(parts)}<div class="legend">{legend}</div></div>'
