"""Words that settle an outcome field, per language.

Kept apart from the logic so a missed phrasing is a one-line fix.  Each table
maps a label to the pattern that signals it; tables whose order matters (the
first match wins) are tuples, most specific first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_I = re.IGNORECASE


def _re(*alternatives: str, flags: int = _I) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), flags)


PROMISE = {
    "zh": _re(
        r"我.{0,8}(会|就|先|一定|马上|保证|能|可以|争取|打算).{0,10}(还|转|打过去|付|凑|交|打给|存)",
        r"(号|天|周.|月底|工资|晚上|明天|今天|今晚|下午|之前|以前|前).{0,6}(就|会|先)?(还上|还|转给|转|付|凑|交)",
        r"凑.{0,4}(钱|齐|够|上|出)|先凑|能凑",
        r"(我|那)?(先)?(还|付|转|交)(你们)?[0-9零一二两三四五六七八九十百千万]",
        # "我先凑两千九" even when the verb is misheard ("我先错两千九")
        r"我(先|就|会)[^，。,.？?]{0,2}[0-9零一二两三四五六七八九十百千万]",
    ),
    "en": _re(
        r"\bI('ll| will| can| could| am going to|'m going to| promise to| should be able to)\b.{0,30}"
        r"\b(pay|do|send|make|transfer|get you|put down|manage|cover|have)\b",
        r"\bI promise\b|\byou'?ll have (it|the money|\$)",
        r"\b(can|could) I (pay|do|send|make)\b",
    ),
}
PAST_OR_DISPUTED = {
    "zh": _re(r"(已经|早就|上个?月|上周).{0,8}(还|转|付)|转过去了|还过了|还了的"),
    "en": _re(r"\balready (paid|sent|made)|\bI paid\b|\bI sent\b"),
}
PLAN_INSTALMENTS = {
    "zh": _re(
        r"分(成|为)?[0-9零一二两三四五六七八九十]+(期|次|个月)|每(一)?期|每(个)?月(还|交|付)?|分期|第一期"
    ),
    "en": _re(
        r"\binstal+ments?\b|\bmonthly\b|\b(a|per|every|each) month\b|\bpayment plan\b",
        r"\b\w+ (payments|instal+ments) of\b|\bsplit\b",
    ),
}
PLAN_DEFERRAL = {
    "zh": _re(r"延期|延后|推迟|缓[0-9零一二两三四五六七八九十]+个?月|停[0-9零一二两三四五六七八九十]+个?月"),
    "en": _re(
        r"\bpush (it |this |that |the payments? )?back\b|\bdefer(ral|red|ring)?\b|\bpostpone",
        r"\bpause (the )?payments\b|\bskip\b.{0,20}\bmonths?\b",
    ),
}
PLAN_SETTLEMENT = {
    "zh": _re(r"减免|一次性.{0,6}(结清|还清|付清)|打.{0,2}折|结清.{0,6}(减|免|优惠)|只要还|只需(要)?还"),
    "en": _re(r"\bsettle(ment)?\b|\blump[- ]sum\b|\bdiscount\b|\b\d+ ?(%|percent) off\b|\bwaive"),
}
PLAN_GRACE = {
    "zh": _re(r"宽限"),
    "en": _re(r"\bgrace\b"),
}
ALTERNATIVES = {
    "zh": _re(r"(或者|还是).{0,12}(分期|延期|宽限|结清|减免)|(分期|延期|宽限|结清|减免).{0,12}(或者|还是)"),
    "en": _re(
        r"\b(plan|instal+ments?|deferral|settlement|grace period)\b.{0,25}\bor\b.{0,25}"
        r"\b(plan|instal+ments?|deferral|settlement|grace period)\b"
    ),
}
RECURRING = {"zh": _re(r"每(一|个)?(期|月)"), "en": _re(r"\b(a|per|every|each) month\b|\bmonthly\b|\beach\b")}
FIRST_INSTALMENT = {
    "zh": _re(r"第一期|首期|开始|起"),
    "en": _re(r"\bfirst (payment|instal+ment)\b|\bstarting\b|\bthe first (one )?(on|by|due|is)\b"),
}

Ordered = tuple[tuple[str, re.Pattern[str]], ...]


def _ordered(table: Mapping[str, str]) -> Ordered:
    """A first-match-wins table: labels in the order written, patterns compiled."""
    return tuple((label, _re(pattern)) for label, pattern in table.items())


DISPUTE: Mapping[str, Ordered] = {
    "zh": _ordered(
        {
            "identity": r"冒用|盗用|冒名|被人(用|借|办)|身份证.{0,6}(丢|被盗|被人)|不是我本人(办|借)",
            "not_my_debt": r"不是我(的|借)|没借过|没有借过|从来没(有)?借|不认识.{0,6}(公司|平台)|找错人|打错",
            "amount": r"金额不对|数(目|字)不对|已经还(了|清)|还过了|转过去了|一分不少|不对吧|多算|算错|算多"
            r"|怎么会(算)?逾期|搞错|弄错|没那么多|不是这个数|利息.{0,4}不对",
        }
    ),
    "en": _ordered(
        {
            "identity": r"identity (theft|was stolen)|stole my identity"
            r"|someone (used|opened).{0,20}(name|identity)"
            r"|\bfraud(ulent)?\b.{0,20}\b(account|card|loan)\b|wasn't me who",
            "not_my_debt": r"not my (debt|account|loan|card)|never (had|opened|took out|borrowed|signed)"
            r"|(don't|do not) (know|recognise|recognize) (this|that|the|any) (account|company|loan|debt)"
            r"|wrong person",
            "amount": r"(don't|do not) owe (that|this|that much|you)|already paid"
            r"|paid (it|that|this) (off|already)"
            r"|wrong amount|amount is wrong|balance is wrong|overcharg|\breturned\b|refund|reversed"
            r"|that's not (right|correct)|too high",
        }
    ),
}
CEASE = {
    "zh": _re(
        r"(不要|别|不准|不许|请勿|不用)再?(打|给)我(的)?(电话|打电话|打了)",
        r"(不要|别|不准|不许)再(打|来)电话|(不要|别)再(联系|骚扰)我|别(打|再打)了|不要再打了",
    ),
    "en": _re(
        r"\bstop (calling|contacting)\b|\b(don't|do not|never) (call|contact) me\b|\bquit calling\b"
        r"|\bno more (phone )?calls\b|\btake me off\b|\b(don't|do not) call (here|again|anymore)"
    ),
}
CHANNEL: Mapping[str, Ordered] = {
    "zh": _ordered(
        {"sms": r"短信|发消息|信息", "email": r"邮件|邮箱", "mail": r"寄|信件|邮寄", "written": r"书面"}
    ),
    "en": _ordered(
        {
            "sms": r"\btexts?\b|\bsms\b",
            "email": r"\be-?mail",
            "mail": r"\bmail\b|\bby post\b|\bletter",
            "written": r"\bin writing\b|\bwritten\b",
        }
    ),
}
LAWYER = {
    "zh": _re(r"律师"),
    "en": _re(r"\b(lawyer|attorney|legal counsel|represented by)\b"),
}
LAWYER_NEGATED = {
    "zh": _re(r"没(有)?(请)?律师"),
    "en": _re(r"\b(don't|do not) have (a|an) (lawyer|attorney)"),
}
CALLBACK = {
    "zh": _re(
        r"(晚点|晚些|改天|回头|等会|待会|明天|下午|晚上|上午|点|小时后|一会儿?)(儿)?.{0,6}(再打|打过来|打给我|再联系|回电|再来电)",
        r"再打(过来|来)?吧|回(个)?电话给我|给我回电",
    ),
    "en": _re(
        r"\bcall (me |him |her )?back\b|\bcall (me|him|her) (later|tomorrow|after|at|in|on|this)\b"
        r"|\btry (me |him |her )?(again )?(later|tomorrow|after|this)\b|\bcall again\b"
    ),
}
RELATIONS = {  # relation -> how a relative names themself, zh then en
    "spouse": ("丈夫|老公|妻子|老婆|爱人|媳妇", "wife|husband|partner"),
    "parent": ("妈妈|妈|母亲|爸爸|爸|父亲", "mother|mom|mum|father|dad"),
    "child": ("儿子|女儿|孩子", "son|daughter"),
    "sibling": ("哥哥|姐姐|弟弟|妹妹|哥|姐", "brother|sister"),
    "friend": ("朋友|室友", "friend|roommate"),
    "colleague": ("同事", "colleague|coworker|co-worker|boss"),
    "relative": ("家人|亲戚", "cousin|aunt|uncle|relative|niece|nephew"),
}
THIRD_PARTY: Mapping[str, Ordered] = {
    "zh": _ordered(
        {
            **{rel: rf"我是(他|她)(的)?({zh})" for rel, (zh, _) in RELATIONS.items()},
            "other": r"^(.{0,6})(他|她)(现在)?不在|打错了|不是(他|她)本人|(他|她)(出去|上班)了",
        }
    ),
    "en": _ordered(
        {
            **{rel: rf"\b(I'm|I am|this is) (his|her) ({en})\b" for rel, (_, en) in RELATIONS.items()},
            "other": r"\b(he|she)('s| is) not (here|home|in|available)\b|\b(he|she)('s| is) (out|at work)\b",
        }
    ),
}
HARDSHIP: Mapping[str, Ordered] = {
    "zh": _ordered(
        {
            "job_loss": r"失业|下岗|裁员|被辞|辞退|开除|没(了)?工作|工作.{0,2}(丢|没)了|找不到工作",
            "business_failure": r"倒闭|破产|生意.{0,4}(不好|赔|亏|黄|垮)"
            r"|(店|厂|公司).{0,4}(赔|亏|倒|关)|赔了|亏了",
            "illness": r"生病|住院|手术|看病|病了|车祸|受伤|化疗|癌",
            "income_cut": r"降薪|欠薪|(工资|收入).{0,6}(少|降|减|发不出|拖欠|没发|不够|刚够)|减薪|停工",
            "family": r"离婚|家里出(了)?事|去世|过世|丧事|家人.{0,4}(病|出事)",
        }
    ),
    "en": _ordered(
        {
            "job_loss": r"\blost my job\b|\blaid off\b|\bgot fired\b|\bunemployed\b"
            r"|\bbetween jobs\b|\bout of work\b",
            "business_failure": r"\bbusiness (failed|closed|went under)"
            r"|\b(shop|store|restaurant) (failed|closed)"
            r"|\bwent bankrupt\b|\bbankruptcy\b",
            "illness": r"\b(sick|illness|hospital|surgery|cancer|injur\w*|accident|medical bills?)\b",
            "income_cut": r"\bhours (got |were )?cut\b|\bcut my hours\b|\bpay cut\b|\breduced hours\b"
            r"|\b(salary|wages|pay) (got |was )?(cut|reduced)\b|\bbarely covering\b",
            "family": r"\bdivorce|\bfamily emergency\b|\bpassed away\b|\bfuneral\b",
        }
    ),
}
OVERDUE = {  # an agent line stating the debt, not offering terms
    "zh": _re(r"已经逾期|逾期了|到期|没还|欠款|应还|未还|账单"),
    "en": _re(r"\bwas due\b|\bwere due\b|\boverdue\b|\bpast due\b|\bmissed\b|\bowed?\b|\bbalance\b"),
}
AGREE = {
    "zh": _re(r"^\W*(好的?|行|可以|没问题|对|嗯|成|同意|就这样|那就这样|就按|那就按|按这个|OK|ok|好吧|行吧)"),
    "en": _re(
        r"^\W*(ok(ay)?|fine|sure|yes|yeah|yep|deal|alright|all right|agreed|that works|sounds good"
        r"|that's fine|I agree|I can do that|let's do (that|it))\b"
    ),
}
AGREE_ANY = {
    "zh": _re(r"按这个(来|办)|就这么(办|定)|那就这样|就这样吧|没问题|我同意|可以接受|成交"),
    "en": _re(r"\bthat works\b|\bworks for me\b|\bsounds good\b|\bI agree\b|\bdeal\b|\bI can do that\b"),
}
REJECT = {
    "zh": _re(r"不行|不可以|不同意|做不到|太多了|还不起|拿不出|不要|不接受"),
    "en": _re(
        r"\bno\b(?!\s+(later|more than|problem|worries))|\bcan'?t\b|\bcannot\b|\bnot\b|\btoo much\b|\bwon't\b"
    ),
}
ACK: Mapping[str, Mapping[str, re.Pattern[str]]] = {
    "zh": {
        "disputed": _re(
            r"核实|核查|核对一下.{0,6}(转账|记录)|暂停.{0,6}催收|记录.{0,6}(异议|争议)|异议|截图|查一下"
        ),
        "cease_contact": _re(
            r"只用短信|短信联系|不再.{0,4}(打|致电|电话)|不会再打|书面|邮件联系|停止.{0,4}(致电|电话)"
        ),
        "lawyer": _re(r"律师.{0,10}(联系方式|电话|名字|姓名)|和您的律师|跟您的律师|与律师"),
        "callback": _re(r"再(打|联系|致电)|回电|打给您|联系您"),
        "hardship": _re(r"明白|这种情况|理解|不容易|压力|原来是这样|难过|遗憾|抱歉听到|辛苦"),
        "third_party_answered": _re(
            r"回个?电话|转告|本人|请(她|他).{0,6}接|(她|他)(什么时候|几点)|方便.{0,6}(回电|联系)|留个?言"
        ),
    },
    "en": {
        "disputed": _re(r"\bdisputed?\b|\bverif|\bvalidation\b|\binvestigat|\bon hold\b|\breview(ed)?\b"),
        "cease_contact": _re(
            r"\bno more (phone )?calls\b|\bnot (call|contact) you\b|\bstop calling\b|"
            r"don't want any more (phone )?calls|\bin writing\b|\bby (mail|email|text)\b|\bmail you\b"
        ),
        "lawyer": _re(
            r"\b(lawyer|attorney)'?s? (name|number|contact|details|phone)|\byour (lawyer|attorney)\b"
            r"|\brepresented\b"
        ),
        "callback": _re(r"\bcall (you )?back\b|\bcall you (then|at|tomorrow|later|after)\b|\bI'll call\b"),
        "hardship": _re(
            r"\b(understand|sorry to hear|that must|sounds (hard|difficult|tough)|must be hard)\b"
        ),
        "third_party_answered": _re(
            r"\b(when|what time) (would|will|is|might) (he|she)\b|\bleave (a )?message\b"
            r"|\bhave (him|her) call\b|\bspeak (with|to) (him|her|[A-Z]\w+)|\bcall (back|again)\b"
        ),
    },
}
