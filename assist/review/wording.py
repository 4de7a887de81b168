"""What the report says in words, in the call's language (``en`` or ``zh``): checklist titles, the
one-line details and score reasons, and the names they use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TITLES: Mapping[str, tuple[str, str]] = {
    "identity_before_debt": ("Identity confirmed before the debt was mentioned", "提及欠款前已核实身份"),
    "agent_identified": ("Agent identified self and company", "坐席已说明本人姓名和公司"),
    "allowed_hours": (
        "Call placed in allowed hours (borrower's local time)",
        "在允许时段内致电（借款人当地时间）",
    ),
    "hardship_handled": (
        "Hardship met with empathy; options offered; plan recapped and confirmed",
        "困难时先共情；提供方案；复述并确认还款计划",
    ),
    "requests_acknowledged": (
        "Disputes, stop-calling requests and lawyer representation acknowledged",
        "异议、停止来电要求和律师代理已确认并记录",
    ),
    "no_violations": ("No compliance rule fired", "未触发任何合规规则"),
}
DETAILS: Mapping[str, tuple[str, str]] = {
    "debt_never": ("The debt was never mentioned.", "通话中未提及欠款。"),
    "debt_after_id": (
        "Identity confirmed at {t1}; debt first mentioned at {t2}.",
        "{t1} 核实身份，{t2} 首次提及欠款。",
    ),
    "debt_before_id": (
        "Debt mentioned at {t2} before identity was confirmed.",
        "{t2} 在核实身份前提及欠款。",
    ),
    "debt_no_id": (
        "Debt mentioned at {t2}; identity was never confirmed.",
        "{t2} 提及欠款，但始终未核实身份。",
    ),
    "third_party_told": (
        "Debt mentioned at {t2} after a third party answered.",
        "{t2} 在第三方接听后提及欠款。",
    ),
    "third_party_only": (
        "A third party answered; self and company need not be named.",
        "第三方接听，无需说明身份和公司。",
    ),
    "ident_ok": ("Agent named self and company.", "坐席说明了本人姓名和公司。"),
    "ident_ok_us": (
        "Agent named self and company and gave the debt-collector disclosure.",
        "坐席说明了本人姓名和公司，并告知催收身份。",
    ),
    "ident_missing": ("Missing: {what}.", "缺少：{what}。"),
    "no_tz": ("No borrower time zone in the call metadata.", "通话元数据中没有借款人时区。"),
    "bad_tz": ("Unknown time zone {tz!r}.", "未知时区 {tz!r}。"),
    "hours": (
        "Placed at {local} {tz} ({j}: allowed {lo:02d}:00-{hi:02d}:00).",
        "致电时间 {local} {tz}（{j}：允许 {lo:02d}:00-{hi:02d}:00）。",
    ),
    "no_hardship": (
        "No hardship, plan request or promise to pay in this call.",
        "本通话无困难、协商或还款承诺。",
    ),
    "hardship_ok": ("Every step was taken.", "各步骤均已完成。"),
    "no_empathy": ("No empathy after the hardship at {t}.", "{t} 客户表示困难后坐席未表达共情。"),
    "no_options": ("No repayment options offered after {t}.", "{t} 之后未提供还款方案。"),
    "no_recap": ("The agreed plan was not recapped after {t}.", "{t} 达成约定后未复述还款计划。"),
    "no_yes": ("The recap at {t} got no explicit yes.", "{t} 复述计划后未得到客户明确确认。"),
    "no_requests": (
        "No dispute, stop-calling request or lawyer in this call.",
        "本通话无异议、停止来电或律师代理。",
    ),
    "requests_ok": ("Acknowledged: {what}.", "已确认：{what}。"),
    "request_missed": ("Not acknowledged: {what} at {t}.", "未确认：{t} 的{what}。"),
    "clean": ("No findings.", "无违规。"),
    "findings": ("{counts}.", "{counts}。"),
    "lost_finding": ("{sev} finding: {rule}", "{sev}违规：{rule}"),
    "lost_check": ("Checklist failed: {title}", "检查项未通过：{title}"),
    "lost_cap": ("A critical finding caps the score at {cap}", "存在严重违规，得分上限 {cap}"),
}
WORDS: Mapping[str, tuple[str, str]] = {
    "agent name": ("the agent's name", "坐席姓名"),
    "company": ("the company", "公司名称"),
    "disclosure": ('the "attempt to collect a debt" disclosure', "催收身份告知"),
    "dispute": ("dispute", "异议"),
    "cease_contact": ("stop-calling request", "停止来电要求"),
    "lawyer": ("lawyer representation", "律师代理"),
    "critical": ("critical", "严重"),
    "major": ("major", "较重"),
    "minor": ("minor", "轻微"),
}


def say(table: Mapping[str, tuple[str, str]], key: str, lang: str, **kw: Any) -> str:
    en, zh = table[key]
    return (zh if lang == "zh" else en).format(**kw)


def mmss(t: float) -> str:
    t = max(0.0, t)
    return f"{int(t // 60):02d}:{int(t % 60):02d}"
