"""The review report as one self-contained HTML page.

A QA reviewer opens it from the service, a shared folder or an e-mail attachment, so the page carries
everything inline: CSS (:mod:`assist.review.style`), and an SVG timeline of both speakers' turns with
the stages as bands, findings as markers (each linking to its utterance) and long silences shaded
(:mod:`assist.review.timeline_svg`).  No script, no external asset, no web font: nothing to fail to
load and nothing to run.  Every piece of text from the report is HTML-escaped, since transcripts are
whatever the caller said.  Labels follow the call's language (:mod:`assist.review.labels`).

Input is the :class:`~assist.review.model.Report` from :func:`assist.review.report.build_report`, or
its JSON read back (parsed leniently by ``Report.from_dict``): missing optional parts render as empty
sections rather than errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assist.review.labels import LABELS, PageWords
from assist.review.markup import clock, esc, num
from assist.review.model import Deduction, Report
from assist.review.style import CSS, SPEAKER_COLORS
from assist.review.timeline_svg import timeline_svg

__all__ = ["LABELS", "render_html"]


class _Page:
    def __init__(self, report: Report) -> None:
        self.r = report
        self.call = report.call
        self.words = PageWords(self.call.language)
        self.lang = self.words.lang
        self.L = self.words.L
        self.name = self.words.name

    def none(self) -> str:
        return f'<p class="muted">{esc(self.L["none"])}</p>'

    # -- sections

    def header(self) -> str:
        score = int(num(self.r.score))
        grade = "good" if score >= 80 else "fair" if score >= 60 else "poor"
        rows = []
        for key in (
            "start_time",
            "local_start_time",
            "duration",
            "language",
            "agent",
            "customer",
            "company",
            "status",
        ):
            value = getattr(self.call, key)
            if value in (None, ""):
                continue
            if key == "duration":
                value = clock(value)
            elif key == "status":
                value = self.name(value)
            rows.append(f"<dt>{esc(self.L[key])}</dt><dd>{esc(value)}</dd>")
        return (
            '<div class="card head"><div>'
            f"<h1>{esc(self.L['title'])}</h1>"
            f'<div class="muted">{esc(self.L["call"])} {esc(self.call.id)}</div>'
            f'<dl class="meta">{"".join(rows)}</dl></div>'
            f'<div class="score {grade}" role="img" aria-label="{esc(self.L["score"])} {score}">'
            f'<span class="n">{score}</span><span class="l">{esc(self.L["score"])}</span></div></div>'
        )

    def checklist(self) -> str:
        items = self.r.checklist
        if not items:
            return self.none()
        rows = []
        for c in items:
            status = str(c.status)
            ev = c.evidence
            evidence = ""
            if ev is not None:
                evidence = f'<span class="muted">{clock(ev.time)}</span> “{esc(ev.quote)}”'
            rows.append(
                f"<tr><td>{esc(c.n)}</td><td>{esc(c.title)}</td>"
                f'<td><span class="badge {esc(status)}">{esc(self.L.get(status, status))}</span></td>'
                f"<td>{esc(c.detail)}</td><td>{evidence}</td></tr>"
            )
        head = "<th>#</th>" + "".join(
            f"<th>{esc(self.L[k])}</th>" for k in ("item", "result", "detail", "evidence")
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def findings(self) -> str:
        items = self.r.findings
        if not items:
            return self.none()
        rows = []
        for f in items:
            sev = str(f.severity)
            target = f.utterance
            when = clock(f.start)
            when_html = f'<a href="#u{esc(target)}">{when}</a>' if target is not None else when
            rows.append(
                f'<tr><td class="t">{when_html}</td><td>{esc(self.name(f.speaker))}</td>'
                f"<td>{esc(self.name(f.rule))}</td>"
                f'<td><span class="badge sev-{esc(sev)}">{esc(self.name(sev))}</span></td>'
                f"<td>“{esc(f.quote)}”</td><td>{esc(f.why)}</td><td>{esc(f.rephrase)}</td></tr>"
            )
        keys = ("time", "speaker", "rule", "severity", "quote", "why", "rephrase")
        head = "".join(f"<th>{esc(self.L[k])}</th>" for k in keys)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def signals(self) -> str:
        items = self.r.signals
        if not items:
            return self.none()
        rows = []
        for s in items:
            handled = bool(s.handled)
            badge = "pass" if handled else "fail"
            rows.append(
                f'<tr><td class="t">{clock(s.time)}</td><td>{esc(self.name(s.signal))}</td>'
                f"<td>“{esc(s.quote)}”</td>"
                f'<td><span class="badge {badge}">{esc(self.L["yes" if handled else "no"])}</span></td>'
                f"<td>{esc(s.handled_by or '')}</td></tr>"
            )
        keys = ("time", "signal", "quote", "handled", "handled_by")
        head = "".join(f"<th>{esc(self.L[k])}</th>" for k in keys)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def talk(self) -> str:
        tt = self.r.talk_time
        agent, customer = num(tt.agent_s), num(tt.customer_s)
        total = agent + customer
        share = agent / total if total > 0 else 0.0
        bar = (
            f'<div class="bar"><div style="width:{share * 100:.1f}%;'
            f'background:{SPEAKER_COLORS["agent"]}"></div>'
            f'<div style="width:{(1 - share) * 100:.1f}%;'
            f'background:{SPEAKER_COLORS["customer"]}"></div></div>'
            if total > 0
            else ""
        )
        text = (
            f"<p>{esc(self.L['agent_s'])} {agent:.1f} s ({share * 100:.0f}%) · "
            f"{esc(self.L['customer_s'])} {customer:.1f} s ({(1 - share) * 100 if total else 0:.0f}%)</p>"
        )
        inter = self.r.interruptions
        inter_html = (
            "<ul>"
            + "".join(
                f'<li><span class="muted">{clock(i.time)}</span> {esc(self.L["by"])} '
                f"{esc(self.name(i.by))}, {esc(self.L['overlap'])} {num(i.overlap):.1f} s: "
                f"“{esc(i.quote)}”</li>"
                for i in inter
            )
            + "</ul>"
            if inter
            else self.none()
        )
        sil = self.r.silences
        sil_html = (
            "<ul>"
            + "".join(
                f'<li><span class="muted">{clock(s.start)}-{clock(s.end)}</span> '
                f"{num(s.duration):.1f} s"
                + (f" ({esc(self.L['after'])}: {esc(self.name(s.after))})" if s.after else "")
                + "</li>"
                for s in sil
            )
            + "</ul>"
            if sil
            else self.none()
        )
        return (
            f'<div class="card">{text}{bar}<h3>{esc(self.L["interruptions"])}</h3>{inter_html}'
            f"<h3>{esc(self.L['silences'])}</h3>{sil_html}</div>"
        )

    def transcript(self) -> str:
        items = self.r.utterances
        if not items:
            return self.none()
        rows = []
        for u in items:
            speaker = "agent" if u.speaker == "agent" else "customer"
            rules = [str(r) for r in u.rules or []]
            tags = "".join(f'<span class="tag">{esc(self.name(s))}</span>' for s in u.signals or [])
            tags += "".join(f'<span class="tag rule">{esc(self.name(r))}</span>' for r in rules)
            cls = f"{speaker} flag" if rules else speaker
            rows.append(
                f'<tr id="u{esc(u.index)}" class="{cls}"><td class="t">{clock(u.start)}</td>'
                f'<td class="who nw">{esc(self.name(speaker))}</td>'
                f'<td class="nw">{esc(self.name(u.stage or ""))}</td>'
                f"<td>{esc(u.text)} {tags}</td></tr>"
            )
        keys = ("time", "speaker", "stage", "text")
        head = "".join(f"<th>{esc(self.L[k])}</th>" for k in keys)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def breakdown(self) -> str:
        items = self.r.score_breakdown
        if not items:
            return self.none()
        rows = "".join(f"<tr><td>{self.reason(b)}</td><td>{esc(b.points)}</td></tr>" for b in items)
        return (
            f"<table><thead><tr><th>{esc(self.L['reason'])}</th><th>{esc(self.L['points'])}</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )

    def reason(self, item: Deduction) -> str:
        """A score deduction in words; a finding is named by severity and rule in the page's language."""
        if item.kind == "finding" and item.severity:
            when = f'<span class="muted">{clock(item.time)}</span> '
            return f"{when}{esc(self.name(item.severity))} · {esc(self.name(item.id))}"
        return esc(item.reason)

    def page(self) -> str:
        lang_attr = "zh-CN" if self.lang == "zh" else "en"
        title = f"{self.L['title']} · {self.call.id}"
        sections = [
            self.header(),
            f"<h2>{esc(self.L['timeline'])}</h2>{timeline_svg(self.r, self.words)}",
            f"<h2>{esc(self.L['checklist'])}</h2>{self.checklist()}",
            f"<h2>{esc(self.L['findings'])}</h2>{self.findings()}",
            f"<h2>{esc(self.L['signals'])}</h2>{self.signals()}",
            f"<h2>{esc(self.L['talk'])}</h2>{self.talk()}",
            f"<h2>{esc(self.L['transcript'])}</h2>{self.transcript()}",
            f"<h2>{esc(self.L['breakdown'])}</h2>{self.breakdown()}",
        ]
        return (
            f'<!DOCTYPE html>\n<html lang="{lang_attr}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(sections)}</main></body></html>\n"
        )


def render_html(report: Report | Mapping[str, Any]) -> str:
    """One self-contained HTML page for a review report, typed or read back from its JSON (see the
    module docstring)."""
    typed = report if isinstance(report, Report) else Report.from_dict(report)
    return _Page(typed).page()
