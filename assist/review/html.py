"""The review report as one self-contained HTML page.

A QA reviewer opens it from the service, a shared folder or an e-mail attachment, so the page carries
everything inline: CSS, and an SVG timeline of both speakers' turns with the stages as bands, findings
as markers (each linking to its utterance) and long silences shaded.  No script, no external asset, no
web font: nothing to fail to load and nothing to run.  Every piece of text from the report is
HTML-escaped, since transcripts are whatever the caller said.  Labels follow the call's language.

Input is the dict from :func:`assist.review.report.build_report` (or that dict read back from its JSON);
missing optional parts render as empty sections rather than errors.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

SVG_WIDTH = 1000
SVG_LABEL_W = 92  # left margin holding the row labels
SVG_RIGHT_PAD = 12
TICK_STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
MAX_TICKS = 12

STAGE_COLORS: Mapping[str, str] = {
    "opening": "#8ecae6",
    "empathy": "#ffb4a2",
    "inquiry": "#b5e48c",
    "proposal": "#ffd166",
    "confirmation": "#cdb4db",
}
OTHER_STAGE_COLOR = "#dddddd"
SEVERITY_COLORS: Mapping[str, str] = {"critical": "#c1121f", "major": "#f77f00", "minor": "#e9c46a"}
SPEAKER_COLORS: Mapping[str, str] = {"agent": "#1d4e89", "customer": "#2a9d8f"}

LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Call review",
        "call": "Call",
        "start_time": "Start (UTC)",
        "local_start_time": "Start (borrower's time)",
        "duration": "Duration",
        "language": "Language",
        "agent": "Agent",
        "customer": "Customer",
        "company": "Company",
        "status": "Status",
        "score": "Score",
        "timeline": "Timeline",
        "stages": "Stages",
        "findings": "Findings",
        "checklist": "Checklist",
        "signals": "Customer signals",
        "talk": "Talk time",
        "interruptions": "Interruptions",
        "silences": "Long silences",
        "transcript": "Transcript",
        "breakdown": "Score breakdown",
        "time": "Time",
        "speaker": "Speaker",
        "rule": "Rule",
        "severity": "Severity",
        "quote": "Words",
        "why": "Why",
        "rephrase": "Say instead",
        "item": "Item",
        "result": "Result",
        "evidence": "Evidence",
        "detail": "Detail",
        "signal": "Signal",
        "handled": "Handled",
        "handled_by": "Agent's answer",
        "stage": "Stage",
        "text": "Text",
        "yes": "yes",
        "no": "no",
        "pass": "pass",
        "fail": "fail",
        "not_applicable": "n/a",
        "agent_s": "agent",
        "customer_s": "customer",
        "none": "None.",
        "by": "by",
        "overlap": "overlap",
        "after": "after",
        "silence": "silence",
        "points": "Points",
        "reason": "Reason",
    },
    "zh": {
        "title": "通话质检报告",
        "call": "通话",
        "start_time": "开始时间（UTC）",
        "local_start_time": "开始时间（借款人当地）",
        "duration": "时长",
        "language": "语言",
        "agent": "坐席",
        "customer": "客户",
        "company": "公司",
        "status": "状态",
        "score": "得分",
        "timeline": "时间轴",
        "stages": "阶段",
        "findings": "违规发现",
        "checklist": "检查清单",
        "signals": "客户信号",
        "talk": "说话时长",
        "interruptions": "抢话",
        "silences": "长时间沉默",
        "transcript": "通话文本",
        "breakdown": "扣分明细",
        "time": "时间",
        "speaker": "说话人",
        "rule": "规则",
        "severity": "严重程度",
        "quote": "原话",
        "why": "原因",
        "rephrase": "建议说法",
        "item": "检查项",
        "result": "结果",
        "evidence": "证据",
        "detail": "说明",
        "signal": "信号",
        "handled": "已回应",
        "handled_by": "坐席回应",
        "stage": "阶段",
        "text": "内容",
        "yes": "是",
        "no": "否",
        "pass": "通过",
        "fail": "未通过",
        "not_applicable": "不适用",
        "agent_s": "坐席",
        "customer_s": "客户",
        "none": "无。",
        "by": "抢话方",
        "overlap": "重叠",
        "after": "之前说话",
        "silence": "沉默",
        "points": "分数",
        "reason": "原因",
    },
}
NAMES: Mapping[str, Mapping[str, str]] = {
    "zh": {
        "agent": "坐席",
        "customer": "客户",
        "opening": "开场",
        "empathy": "共情",
        "inquiry": "询问",
        "proposal": "方案",
        "confirmation": "确认",
        "critical": "严重",
        "major": "较重",
        "minor": "轻微",
        "confirm_identity": "确认身份",
        "hardship": "经济困难",
        "request_plan": "请求方案",
        "promise_to_pay": "承诺还款",
        "dispute": "异议",
        "cease_contact": "要求停止联系",
        "third_party": "第三方",
        "lawyer": "律师",
        "hostile": "敌对",
        "threat_violence": "暴力威胁",
        "abusive_language": "辱骂",
        "false_criminal_threat": "虚假刑事威胁",
        "impersonation": "冒充",
        "third_party_disclosure": "向第三方披露",
        "harassment": "骚扰",
        "misrepresentation": "虚假陈述",
        "overbearing": "态度强势",
        "ended": "已结束",
        "interrupted": "中断",
        "error": "错误",
        "live": "进行中",
    },
    "en": {"not_applicable": "n/a"},
}

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",
 sans-serif;margin:0;padding:24px;color:#1b1b1b;background:#f6f7f9;line-height:1.45}
main{max-width:1100px;margin:0 auto}
h1{margin:0 0 4px;font-size:1.6em}
h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #ccd;padding-bottom:4px}
.card{background:#fff;border:1px solid #dde;border-radius:8px;padding:16px}
.head{display:flex;gap:24px;align-items:flex-start;justify-content:space-between;flex-wrap:wrap}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0 0}
dl.meta dt{color:#556}
dl.meta dd{margin:0}
.score{width:120px;height:120px;border-radius:50%;display:flex;flex-direction:column;align-items:center;
 justify-content:center;color:#fff;font-weight:700}
.score .n{font-size:2.6em;line-height:1}
.score .l{font-size:.85em;opacity:.9}
.good{background:#2a9d5c}.fair{background:#e09f1f}.poor{background:#c1121f}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #dde;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums}
td.nw{white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;white-space:nowrap;color:#fff}
.pass{background:#2a9d5c}.fail{background:#c1121f}.not_applicable{background:#8a8f98}
.sev-critical{background:#c1121f}.sev-major{background:#f77f00}.sev-minor{background:#b8860b}
.tag{display:inline-block;border:1px solid #bbc;border-radius:4px;padding:0 5px;margin:1px 2px;font-size:.8em;
 color:#334;background:#f3f4f7}
.tag.rule{border-color:#c1121f;color:#c1121f}
tr.flag td{background:#fff1f1}
tr.customer td.who{color:#2a9d8f}tr.agent td.who{color:#1d4e89}
.muted{color:#667}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:.85em;margin-top:6px}
.legend span{display:inline-flex;align-items:center;gap:4px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px}
.bar{display:flex;height:18px;border-radius:4px;overflow:hidden;max-width:520px}
.bar div{height:100%}
svg{display:block;width:100%;height:auto}
svg text{font-family:inherit;font-size:12px;fill:#333}
@media print{body{background:#fff;padding:0}.card{border:none}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _clock(seconds: Any) -> str:
    t = max(0.0, _num(seconds))
    return f"{int(t // 60):02d}:{t % 60:04.1f}"


def _list(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = report.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [v for v in value if isinstance(v, Mapping)]


class _Page:
    def __init__(self, report: Mapping[str, Any]) -> None:
        self.r = report
        call = report.get("call")
        self.call: Mapping[str, Any] = call if isinstance(call, Mapping) else {}
        self.lang = "zh" if str(self.call.get("language", "")).startswith("zh") else "en"
        self.L = LABELS[self.lang]

    def name(self, ident: Any) -> str:
        """Display name of an id (stage, signal, rule...): translated for Mandarin, the id otherwise."""
        text = str(ident) if ident is not None else ""
        return NAMES[self.lang].get(text, text.replace("_", " "))

    def none(self) -> str:
        return f'<p class="muted">{_e(self.L["none"])}</p>'

    # -- sections

    def header(self) -> str:
        score = int(_num(self.r.get("score")))
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
            value = self.call.get(key)
            if value in (None, ""):
                continue
            if key == "duration":
                value = _clock(value)
            elif key == "status":
                value = self.name(value)
            rows.append(f"<dt>{_e(self.L[key])}</dt><dd>{_e(value)}</dd>")
        return (
            '<div class="card head"><div>'
            f"<h1>{_e(self.L['title'])}</h1>"
            f'<div class="muted">{_e(self.L["call"])} {_e(self.call.get("id", ""))}</div>'
            f'<dl class="meta">{"".join(rows)}</dl></div>'
            f'<div class="score {grade}" role="img" aria-label="{_e(self.L["score"])} {score}">'
            f'<span class="n">{score}</span><span class="l">{_e(self.L["score"])}</span></div></div>'
        )

    def timeline(self) -> str:
        utterances = _list(self.r, "utterances")
        duration = max(
            [_num(self.call.get("duration"), 0.0), 1.0]
            + [_num(u.get("end")) for u in utterances]
            + [_num(s.get("end")) for s in _list(self.r, "stage_timeline")]
        )
        plot_w = SVG_WIDTH - SVG_LABEL_W - SVG_RIGHT_PAD

        def x(t: Any) -> float:
            return round(SVG_LABEL_W + max(0.0, min(_num(t), duration)) / duration * plot_w, 2)

        rows = {"stage": (8, 22), "agent": (38, 26), "customer": (72, 26), "finding": (104, 16)}
        axis_y = 132
        height = 152
        parts = [
            f'<svg viewBox="0 0 {SVG_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{_e(self.L["timeline"])}">'
        ]
        for key, label in (
            ("stage", self.L["stages"]),
            ("agent", self.L["agent"]),
            ("customer", self.L["customer"]),
            ("finding", self.L["findings"]),
        ):
            y, h = rows[key]
            parts.append(f'<text x="4" y="{y + h / 2 + 4}">{_e(label)}</text>')
            parts.append(
                f'<rect x="{SVG_LABEL_W}" y="{y}" width="{plot_w}" height="{h}" '
                'fill="#f4f5f8" stroke="#e2e4ea"/>'
            )
        talk_top = rows["agent"][0]
        talk_bottom = rows["customer"][0] + rows["customer"][1]
        for s in _list(self.r, "silences"):
            x0, x1 = x(s.get("start")), x(s.get("end"))
            parts.append(
                f'<rect x="{x0}" y="{talk_top}" width="{max(0.5, x1 - x0)}" '
                f'height="{talk_bottom - talk_top}" '
                f'fill="#9aa0aa" fill-opacity="0.25"><title>{_e(self.L["silence"])} {_clock(s.get("start"))}-'
                f"{_clock(s.get('end'))}</title></rect>"
            )
        for s in _list(self.r, "stage_timeline"):
            x0, x1 = x(s.get("start")), x(s.get("end"))
            stage = str(s.get("stage", ""))
            color = STAGE_COLORS.get(stage, OTHER_STAGE_COLOR)
            y, h = rows["stage"]
            parts.append(
                f'<rect x="{x0}" y="{y}" width="{max(0.5, x1 - x0)}" height="{h}" fill="{color}">'
                f"<title>{_e(self.name(stage))} {_clock(s.get('start'))}-{_clock(s.get('end'))}"
                "</title></rect>"
            )
            if x1 - x0 > 60:
                parts.append(f'<text x="{x0 + 4}" y="{y + 15}">{_e(self.name(stage))}</text>')
        for u in utterances:
            speaker = "agent" if u.get("speaker") == "agent" else "customer"
            y, h = rows[speaker]
            x0, x1 = x(u.get("start")), x(u.get("end"))
            flagged = bool(u.get("rules"))
            stroke = ' stroke="#c1121f" stroke-width="2"' if flagged else ""
            text = str(u.get("text", ""))
            short = text if len(text) <= 120 else text[:117] + "..."
            parts.append(
                f'<a href="#u{_e(u.get("index"))}"><rect x="{x0}" y="{y + 2}" width="{max(1.0, x1 - x0)}" '
                f'height="{h - 4}" rx="3" fill="{SPEAKER_COLORS[speaker]}"{stroke}>'
                f"<title>{_clock(u.get('start'))} {_e(self.name(speaker))}: {_e(short)}</title></rect></a>"
            )
        taken: dict[int, int] = {}  # findings on the same spot are fanned out, not drawn on top of each other
        for f in _list(self.r, "findings"):
            cx = x(f.get("start"))
            slot = round(cx / 14)
            cx += 14 * taken.get(slot, 0)
            taken[slot] = taken.get(slot, 0) + 1
            y, h = rows["finding"]
            color = SEVERITY_COLORS.get(str(f.get("severity")), SEVERITY_COLORS["minor"])
            target = f.get("utterance")
            points = f"{cx - 7},{y + h} {cx + 7},{y + h} {cx},{y}"
            marker = (
                f'<polygon points="{points}" fill="{color}" stroke="#fff" stroke-width="1">'
                f"<title>{_clock(f.get('start'))} {_e(self.name(f.get('severity')))} "
                f"{_e(self.name(f.get('rule')))}: {_e(f.get('quote'))}</title></polygon>"
            )
            parts.append(f'<a href="#u{_e(target)}">{marker}</a>' if target is not None else marker)
        for i in _list(self.r, "interruptions"):
            cx = x(i.get("time"))
            parts.append(
                f'<line x1="{cx}" y1="{talk_top}" x2="{cx}" y2="{talk_bottom}" stroke="#c1121f" '
                f'stroke-dasharray="3 2"><title>{_e(self.L["interruptions"])} {_clock(i.get("time"))}'
                "</title></line>"
            )
        step = next((s for s in TICK_STEPS_S if duration / s <= MAX_TICKS), TICK_STEPS_S[-1])
        parts.append(
            f'<line x1="{SVG_LABEL_W}" y1="{axis_y}" x2="{SVG_LABEL_W + plot_w}" y2="{axis_y}" '
            'stroke="#888"/>'
        )
        t = 0
        while t <= duration + 1e-9:
            tx = x(t)
            parts.append(f'<line x1="{tx}" y1="{axis_y}" x2="{tx}" y2="{axis_y + 5}" stroke="#888"/>')
            parts.append(
                f'<text x="{tx}" y="{axis_y + 17}" text-anchor="middle">'
                f"{int(t // 60)}:{int(t % 60):02d}</text>"
            )
            t += step
        parts.append("</svg>")
        legend = "".join(
            f'<span><i class="sw" style="background:{c}"></i>{_e(self.name(s))}</span>'
            for s, c in STAGE_COLORS.items()
        ) + "".join(
            f'<span><i class="sw" style="background:{c}"></i>{_e(self.name(s))}</span>'
            for s, c in SEVERITY_COLORS.items()
        )
        return f'<div class="card">{"".join(parts)}<div class="legend">{legend}</div></div>'

    def checklist(self) -> str:
        items = _list(self.r, "checklist")
        if not items:
            return self.none()
        rows = []
        for c in items:
            status = str(c.get("status", ""))
            ev = c.get("evidence")
            evidence = ""
            if isinstance(ev, Mapping):
                evidence = f'<span class="muted">{_clock(ev.get("time"))}</span> “{_e(ev.get("quote"))}”'
            rows.append(
                f"<tr><td>{_e(c.get('n'))}</td><td>{_e(c.get('title'))}</td>"
                f'<td><span class="badge {_e(status)}">{_e(self.L.get(status, status))}</span></td>'
                f"<td>{_e(c.get('detail'))}</td><td>{evidence}</td></tr>"
            )
        head = "<th>#</th>" + "".join(
            f"<th>{_e(self.L[k])}</th>" for k in ("item", "result", "detail", "evidence")
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def findings(self) -> str:
        items = _list(self.r, "findings")
        if not items:
            return self.none()
        rows = []
        for f in items:
            sev = str(f.get("severity", ""))
            target = f.get("utterance")
            when = _clock(f.get("start"))
            when_html = f'<a href="#u{_e(target)}">{when}</a>' if target is not None else when
            rows.append(
                f'<tr><td class="t">{when_html}</td><td>{_e(self.name(f.get("speaker")))}</td>'
                f"<td>{_e(self.name(f.get('rule')))}</td>"
                f'<td><span class="badge sev-{_e(sev)}">{_e(self.name(sev))}</span></td>'
                f"<td>“{_e(f.get('quote'))}”</td><td>{_e(f.get('why'))}</td><td>{_e(f.get('rephrase'))}</td></tr>"
            )
        keys = ("time", "speaker", "rule", "severity", "quote", "why", "rephrase")
        head = "".join(f"<th>{_e(self.L[k])}</th>" for k in keys)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def signals(self) -> str:
        items = _list(self.r, "signals")
        if not items:
            return self.none()
        rows = []
        for s in items:
            handled = bool(s.get("handled"))
            badge = "pass" if handled else "fail"
            rows.append(
                f'<tr><td class="t">{_clock(s.get("time"))}</td><td>{_e(self.name(s.get("signal")))}</td>'
                f"<td>“{_e(s.get('quote'))}”</td>"
                f'<td><span class="badge {badge}">{_e(self.L["yes" if handled else "no"])}</span></td>'
                f"<td>{_e(s.get('handled_by') or '')}</td></tr>"
            )
        keys = ("time", "signal", "quote", "handled", "handled_by")
        head = "".join(f"<th>{_e(self.L[k])}</th>" for k in keys)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def talk(self) -> str:
        tt = self.r.get("talk_time")
        tt = tt if isinstance(tt, Mapping) else {}
        agent, customer = _num(tt.get("agent_s")), _num(tt.get("customer_s"))
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
            f"<p>{_e(self.L['agent_s'])} {agent:.1f} s ({share * 100:.0f}%) · "
            f"{_e(self.L['customer_s'])} {customer:.1f} s ({(1 - share) * 100 if total else 0:.0f}%)</p>"
        )
        inter = _list(self.r, "interruptions")
        inter_html = (
            "<ul>"
            + "".join(
                f'<li><span class="muted">{_clock(i.get("time"))}</span> {_e(self.L["by"])} '
                f"{_e(self.name(i.get('by')))}, {_e(self.L['overlap'])} {_num(i.get('overlap')):.1f} s: "
                f"“{_e(i.get('quote'))}”</li>"
                for i in inter
            )
            + "</ul>"
            if inter
            else self.none()
        )
        sil = _list(self.r, "silences")
        sil_html = (
            "<ul>"
            + "".join(
                f'<li><span class="muted">{_clock(s.get("start"))}-{_clock(s.get("end"))}</span> '
                f"{_num(s.get('duration')):.1f} s"
                + (f" ({_e(self.L['after'])}: {_e(self.name(s.get('after')))})" if s.get("after") else "")
                + "</li>"
                for s in sil
            )
            + "</ul>"
            if sil
            else self.none()
        )
        return (
            f'<div class="card">{text}{bar}<h3>{_e(self.L["interruptions"])}</h3>{inter_html}'
            f"<h3>{_e(self.L['silences'])}</h3>{sil_html}</div>"
        )

    def transcript(self) -> str:
        items = _list(self.r, "utterances")
        if not items:
            return self.none()
        rows = []
        for u in items:
            speaker = "agent" if u.get("speaker") == "agent" else "customer"
            rules = [str(r) for r in u.get("rules") or []]
            tags = "".join(f'<span class="tag">{_e(self.name(s))}</span>' for s in u.get("signals") or [])
            tags += "".join(f'<span class="tag rule">{_e(self.name(r))}</span>' for r in rules)
            cls = f"{speaker} flag" if rules else speaker
            rows.append(
                f'<tr id="u{_e(u.get("index"))}" class="{cls}"><td class="t">{_clock(u.get("start"))}</td>'
                f'<td class="who nw">{_e(self.name(speaker))}</td>'
                f'<td class="nw">{_e(self.name(u.get("stage") or ""))}</td>'
                f"<td>{_e(u.get('text'))} {tags}</td></tr>"
            )
        keys = ("time", "speaker", "stage", "text")
        head = "".join(f"<th>{_e(self.L[k])}</th>" for k in keys)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def breakdown(self) -> str:
        items = _list(self.r, "score_breakdown")
        if not items:
            return self.none()
        rows = "".join(f"<tr><td>{self.reason(b)}</td><td>{_e(b.get('points'))}</td></tr>" for b in items)
        return (
            f"<table><thead><tr><th>{_e(self.L['reason'])}</th><th>{_e(self.L['points'])}</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )

    def reason(self, item: Mapping[str, Any]) -> str:
        """A score deduction in words; a finding is named by severity and rule in the page's language."""
        if item.get("kind") == "finding" and item.get("severity"):
            when = f'<span class="muted">{_clock(item.get("time"))}</span> '
            return f"{when}{_e(self.name(item.get('severity')))} · {_e(self.name(item.get('id')))}"
        return _e(item.get("reason"))

    def page(self) -> str:
        lang_attr = "zh-CN" if self.lang == "zh" else "en"
        title = f"{self.L['title']} · {self.call.get('id', '')}"
        sections = [
            self.header(),
            f"<h2>{_e(self.L['timeline'])}</h2>{self.timeline()}",
            f"<h2>{_e(self.L['checklist'])}</h2>{self.checklist()}",
            f"<h2>{_e(self.L['findings'])}</h2>{self.findings()}",
            f"<h2>{_e(self.L['signals'])}</h2>{self.signals()}",
            f"<h2>{_e(self.L['talk'])}</h2>{self.talk()}",
            f"<h2>{_e(self.L['transcript'])}</h2>{self.transcript()}",
            f"<h2>{_e(self.L['breakdown'])}</h2>{self.breakdown()}",
        ]
        return (
            f'<!DOCTYPE html>\n<html lang="{lang_attr}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(sections)}</main></body></html>\n"
        )


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page for a review report (see the module docstring)."""
    return _Page(report).page()
