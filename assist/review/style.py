"""The review page's look: inline CSS and the colours shared by the page and its SVG timeline (no
external asset or web font, so the page renders wherever it is opened)."""

from __future__ import annotations

from collections.abc import Mapping

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
