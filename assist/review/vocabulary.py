"""The review's bilingual vocabulary: short keyword lists that stand for what the checklist looks for.

Deliberately small and named here, so a reviewer can see why a turn counted as mentioning the debt,
naming the agent, or answering a customer signal (see the checklist in :mod:`assist.review.report`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


DEBT_WORDS = _rx(
    r"欠款|欠费|欠钱|欠的钱|欠债|债务|逾期|还款|还钱|贷款|借款|账单|催收|结清|还清|未还|应还|滞纳金|罚息|本金",
    r"\b(debts?|owe[ds]?|owing|overdue|past[- ]due|balance|loans?|arrears|delinquent|outstanding amount)\b",
    r"\b(missed|late) payments?\b",
)
AGENT_VERIFIED = _rx(
    r"(谢谢|感谢)(您|你)?的?(确认|配合核实|核实)|身份(已经?|已)?(核实|确认)|核实(无误|完毕|通过)",
    r"thanks? (you )?for (confirming|verifying)|(you've|you have) been verified|identity (is |has been )?"
    r"(confirmed|verified)",
)
MINI_MIRANDA = _rx(
    r"debt collector|attempt to collect (a|the|this) debt|collect(ing)? (a|the|this) debt",
    r"债务催收|催收(机构|公司|人员|电话)|用于催收|目的是催收",
)
_ZH_SELF = re.compile(r"我(?:是|叫|姓)([^，。,.！？!?；;：:\s]{1,24})")
_ZH_COMPANY_SUFFIX = r"(?:公司|中心|银行|平台|机构|集团|事务所|金融|资产|小贷|保险|部门?)"
_ZH_COMPANY = re.compile(r"[\u4e00-\u9fffA-Za-z]{2,}" + _ZH_COMPANY_SUFFIX)
_ZH_ROLE = re.compile(r"的|客服|专员|经理|顾问|主管|催收员|工作人员|调解员|法务|坐席|业务员|贷后")
_ZH_WORK_ID = re.compile(r"工号")
_EN_SELF = re.compile(
    r"\b(?:[Tt]his is|[Mm]y name is|[Mm]y name's|I am|I'm|[Ii]t's)\s+"
    r"(?:(?:[Aa]ttorney|[Aa]gent|[Oo]fficer|Mr\.?|Ms\.?|Mrs\.?|Miss)\s+)?([A-Z][a-z]+)"
)
_EN_COMPANY = re.compile(
    r"(?<!speak )(?<!talk )(?<!speaking )(?<!talking )(?<!meet )"  # "may I speak with Rebecca" is no company
    r"\b(?:with|from|at|on behalf of)\s+(?:the\s+)?([A-Z][\w&'.-]*(?:\s+[A-Z][\w&'.-]*)*)"
    r"|\b(?:[A-Z][\w&'.-]*\s+)+(?:Services|Collections?|Bank|Financial|Finance|Recovery|Credit|Associates|"
    r"LLC|Inc|Group|Capital|Lending)\b"
)
EMPATHY_WORDS = _rx(
    r"理解|明白|不容易|辛苦|压力|抱歉|遗憾|体谅|别着急|不着急|难处|难为",
    r"\bunderstand|\bsorry\b|must be (hard|difficult|tough|stressful|frustrating)|"
    r"sounds (like )?(hard|difficult|tough|stressful)|\bthat's (hard|tough|difficult)|i hear you",
    r"hard time|difficult time|frustrating",
)
OPTION_WORDS = _rx(
    r"分期|分[一二三四五六七八九十两\d]+期|延期|宽限|减免|部分还款|先还一部分|还款方案|方案",
    r"instal?lments?|payment plan|\bdefer|deferral|extension|grace period|settle|settlement|reduced|"
    r"partial payment|monthly payments?|a month\b|per month",
)
PLAN_WORDS = _rx(
    r"分期|延期|宽限|方案|每月|每期|多少|能还|首付|先还",
    r"\bplan\b|instal?lments?|monthly|"
    r"per month|\bdefer|extension|grace|how much|afford",
)
RECAP_WORDS = _rx(
    r"核对|确认|复述|再说一遍|对吗|是吗|没问题吧|就是说|总结一下",
    r"\bconfirm|to recap|just to be clear|let me repeat|\bcorrect\?|\bright\?|agreement|in writing",
)
AFFIRM_WORDS = _rx(
    r"对|是的|好的?|可以|行|没问题|同意|嗯|按这个",
    r"\b(yes|yeah|yep|okay|ok|sure|fine|agreed|correct|that works|sounds good|deal|will do)\b",
)
ACK_WORDS: Mapping[str, re.Pattern[str]] = {
    "dispute": _rx(
        r"核实|核查|核对|记录|备注|登记|异议|争议|查一下|查询|调查|反馈|撤销|更正",
        r"disput|verif|validat|investigat|look into|\breview|\bnoted\b|on hold|\brecord|removed|"
        r"correct(ed|ion)",
    ),
    "cease_contact": _rx(
        r"记录|备注|登记|不再|不会再|书面|短信|邮件|信函|不打扰",
        r"\bnoted\b|\bnote that\b|won't call|will not call|no more (phone )?calls|stop calling|in writing|"
        r"written|by mail|mail you|email you|\brecord",
    ),
    "lawyer": _rx(r"律师", r"\blawyer|attorney|counsel|legal representative"),
    "hostile": _rx(
        r"理解|抱歉|对不起|不好意思|冷静|别生气|稍后|改天|再联系|体谅",
        r"\bunderstand|\bsorry\b|apolog|\bcalm\b|\blater\b|another time|call you back|i hear you",
    ),
}
EXPECTED_STAGES: Mapping[str, tuple[str, ...]] = {
    "hardship": ("empathy",),
    "request_plan": ("inquiry", "proposal", "confirmation"),
    "promise_to_pay": ("confirmation",),
    "hostile": ("empathy",),
}
SIGNAL_WORDS: Mapping[str, re.Pattern[str]] = {
    "hardship": EMPATHY_WORDS,
    "request_plan": PLAN_WORDS,
    "promise_to_pay": RECAP_WORDS,
    **ACK_WORDS,
}


def names_self(text: str, agent_name: str) -> bool:
    """Whether an agent turn gives the agent's own name (metadata ``agent_name``, "我是/我叫/工号",
    "this is <Name>")."""
    name = agent_name.strip()
    if name:
        parts = [name] + [p for p in name.split() if len(p) >= 2]
        if re.fullmatch(r"[\u4e00-\u9fff]{3,4}", name):
            parts.append(name[1:])  # given name alone: 雨桐
        if any(p.lower() in text.lower() for p in parts):
            return True
    if _ZH_WORK_ID.search(text) or _EN_SELF.search(text):
        return True
    for m in _ZH_SELF.finditer(text):
        phrase = m.group(1)
        tail = re.split(_ZH_COMPANY_SUFFIX + "的?", phrase)[-1]
        if _ZH_ROLE.sub("", tail):
            return True
    return False


def names_company(text: str, company: str) -> bool:
    """Whether an agent turn names the company (metadata ``company`` or a company-like phrase)."""
    company = company.strip()
    if company and company.lower() in text.lower():
        return True
    return bool(_ZH_COMPANY.search(text) or _EN_COMPANY.search(text))
