"""Customer signals (hardship, request for a plan, dispute, ...), multi-label.

A customer often says two things at once ("I lost my job, can I pay in parts?"),
so each signal is scored on the whole utterance and on each clause, taking the
best.  The score is the mean similarity to the signal's nearest examples plus a
keyword prior for words that settle it on their own ("律师", "stop calling"):
short replies like "是我" or "Yeah, who's asking?" carry too little for
similarity alone.  Every signal close enough to the best one is reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from assist.encoders import ExemplarSet


def any_of(*alternatives: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), flags)


IGNORECASE = re.IGNORECASE
SIGNAL_KEYWORDS: Mapping[str, Mapping[str, re.Pattern[str]]] = {
    "zh": {
        "confirm_identity": any_of(
            r"^\s*(是的|是我|对，是我|对，我是|嗯，是我)",
            r"我就是|就是我|我本人|是本人|本人[。，！,.!]?$",
            r"(身份证|后四位|尾号|出生).{0,8}[0-9零一二三四五六七八九]",
        ),
        "hardship": any_of(
            r"失业|下岗|生病|住院|手术|倒闭|裁员|降薪|没钱|拿不出|困难|家里出|看病|病了|车祸|离婚|欠薪|破产",
            r"医院|医药费|积蓄|中风",
            r"生意.{0,4}(不好|赔|亏|黄)|亏了|赔了",
            r"没(了)?工作|工作.{0,2}(丢|没)了",
            r"(工资|收入).{0,6}(少|降|发不出|拖欠|没发|不够|刚够)",
        ),
        "request_plan": any_of(
            r"分期|宽限|延期|少还|先还一部分|分七|分几次",
            r"分.{0,3}(次|期|个月)",
            r"缓.{0,2}(几天|一下|些|一段)",
            r"晚.{0,3}(几天|点还|一段)",
            r"能不能.{0,10}(慢慢|少|晚|分|减)",
            r"多给.{0,4}时间",
            r"每(个)?月(还|先还|只能还).{0,8}(行不行|可以吗|可不可以|行吗)",
            r"(一个月|每个月|每月).{0,4}还(一点|一些|点)",
        ),
        "promise_to_pay": any_of(
            r"我.{0,6}(会|就|先|一定|马上|保证).{0,8}(还|环款|转|打过去|付)",
            r"(号|天|周.|月底|发工资|晚上|明天|今天|下午).{0,6}(就|会|先)?(还上|还|环款|转给|转|付)",
            r"凑.{0,4}(钱|齐|够)",
            r"就按.{0,12}(来|办|还)|我(同意|确认|答应)",
        ),
        "dispute": any_of(
            r"不是我(的|借)|没借过|没有借|金额不对|已经还(了|清)|还过了|已经结清|搞错|弄错|不认",
            r"我没.{0,4}(借|欠|收到)|没(有)?收到.{0,6}(钱|款|放款)",
            r"数(目|字)不对|不对.{0,4}(金额|数)|(流水|记录)里没有|不认识.{0,6}公司",
            r"从来没.{0,8}(注册|借|申请|办)|没(有)?(注册|申请|办)过|冒用|盗用|报(过)?案",
            r"转过去了|已经转|早就(还|转|付)|数.{0,2}不对|^不对吧",
        ),
        "cease_contact": any_of(
            r"别再.{0,2}打|不要再.{0,2}打|别打了|不要打了|不能再.{0,6}打",
            r"不要(再)?(联系|骚扰)|别(再)?(联系|骚扰)",
            r"停止.{0,4}(联系|打电话|催)",
            r"以后.{0,6}(别|不要|只).{0,4}(打|联系|发短信|写信|邮件)",
        ),
        "third_party": any_of(
            r"(他|她)不在|不是(他|她)本人|我不是(他|她)|打错了|没(有)?这个人|找错人|转告|帮(他|她)接",
            r"我是(他|她)(的)?(爸|妈|爸爸|妈妈|爱人|老婆|老公|妻子|丈夫|儿子|女儿|哥|姐|弟|妹|朋友|同事|领导|老板|室友|邻居)",
            r"(他|她)(出去|出门|上班|出差|在开车|在忙|睡了|不方便)",
        ),
        "lawyer": any_of(r"律师|律司|法律援助"),
        "hostile": any_of(
            r"投诉|你敢|滚|闭嘴|什么态度|放干净|有病|神经病|烦不烦|烦死|骗子|暴力催收|去死|他妈|(?<!多)少来|凭什么",
            r"(我|我在|我已经|我都)[^，。！？]{0,3}录音|录(下来|了音)|吓唬谁|有本事|不怕你们|报警|举报",
            r"破公司|曝光|客气点|混蛋|无耻|流氓|黑社会|吸血|垃圾",
            r"还有脸|怎么(做|搞)的",
        ),
    },
    "en": {
        "confirm_identity": any_of(
            r"^\s*(yes|yeah|yep|speaking|this is (he|she|him|her|me))\b(?!.*\b(his|her|not)\b)",
            r"\bthat's me\b|\bit's me\b|\bspeaking\b|right person|account holder",
            r"\b(last four|date of birth|born on|zip)\b[^.?!]{0,20}\d",
        ),
        "hardship": any_of(
            r"lost my job|laid off|\bsick\b|hospital|surgery|medical|hours (got )?cut|money'?s tight",
            r"business (failed|closed|went under)|out of work|between jobs",
            r"(shop|store|plant|factory|company) (closed|shut down)|odd jobs|can'?t find work|savings",
            r"can't afford|\bbroke\b|struggling|barely|no income|unemployed|divorce|funeral|bills",
            flags=IGNORECASE,
        ),
        "request_plan": any_of(
            r"instal?lments?|payment plan|more time|extension|\bextend\b|smaller payments|more months",
            r"pay (it )?(in parts|monthly|over time|a little)|(a|per) month\b[^.!]*\?",
            r"spread (it|the payments?) out|can i pay (part|some|less)|lowest you'?d accept|settle for",
            flags=IGNORECASE,
        ),
        "promise_to_pay": any_of(
            r"\bi('ll| will| can| am going to|'m going to|ll)\b[^.?!]{0,24}"
            r"\b(pay|send|transfer|mail|make (a|the) payment|do)\b(?![^.?!]*\?)",
            r"\bpromise\b|\bi'll have (it|the money)\b|\b(deal|agreed)\b",
            flags=IGNORECASE,
        ),
        "dispute": any_of(
            r"not (even )?my (debt|loan|account)|isn'?t (even )?my|never (borrowed|took out|had|received)",
            r"already (paid|settled)|paid (it|that) off|went through|shouldn'?t owe|don'?t owe",
            r"wrong (amount|person)|\bdispute\b|identity theft|statute of limitations|returned",
            r"never (opened|applied|signed)|in my name|police report",
            flags=IGNORECASE,
        ),
        "cease_contact": any_of(
            r"stop calling|don'?t call|do not call|quit calling|never call|stop contacting|directly anymore",
            r"take me off|remove (me|my number)|only (contact|write|email|text|mail)|in writing only",
            flags=IGNORECASE,
        ),
        "third_party": any_of(
            r"(he|she)('s| is|s) not (here|home|available|in)|wrong number|no one (by|with) that name",
            r"\b(i'?m|this is) (his|her) \w+|(he|she)('s| is|s) (my|away|out|at work|on a break|asleep)",
            r"take a message|front desk|reception",
            flags=IGNORECASE,
        ),
        "lawyer": any_of(
            r"\blawyer\b|\battorney\b(?! general)|a turney",
            r"legal (counsel|representation|aid)|represented by|retained counsel|\bcounsel\b",
            flags=IGNORECASE,
        ),
        "hostile": any_of(
            r"\bcomplain|\breport you\b|how dare|shut up|go to hell|\bdamn\b|\bsick of\b|harass|\bscam",
            r"you people|recording this|\bidiot|leave me alone|crooks?\b|bloodsucker|screw you|ashamed",
            r"\bscum\b|vultures?|ripping (me|people) off|attorney general",
            r"who do you think you are|get off my back|thieves|\bbbb\b|better business bureau|\bcfpb\b",
            r"you can'?t (take|do that)|without a court order",
            flags=IGNORECASE,
        ),
    },
}

NO_SIGNAL = "none"
# Back-channels and neutral questions: a customer turn closer to these than to
# any signal carries no signal ("mm-hmm", "sorry, who's calling?").
NEUTRAL_CUSTOMER: Mapping[str, tuple[str, ...]] = {
    "zh": (
        "嗯嗯。",
        "你继续说。",
        "哦，这样啊。",
        "请问你是哪位？",
        "你们是什么机构？",
        "等一下，我找个地方说话。",
        "刚才信号不好，你再说一遍。",
        "好，我在听。",
        "你说的是哪笔？",
        "知道了。",
        "你们的通话是会被记录的吧？",
        "你们公司总部电话多少，我要核实一下。",
    ),
    "en": (
        "Mm-hmm.",
        "Okay, keep going.",
        "Oh, I see.",
        "Sorry, who's calling?",
        "What's this regarding?",
        "Hold on a second, let me step outside.",
        "You broke up there, can you repeat that?",
        "Alright, I'm listening.",
        "Which account is this about?",
        "Got it.",
        "Are your calls monitored or taped?",
        "What's your company's main phone line?",
    ),
}


@dataclass(frozen=True)
class SignalHit:
    signal: str
    score: float
    quote: str


class SignalDetector:
    def __init__(
        self,
        signal_ids: tuple[str, ...],
        exemplars: dict[str, ExemplarSet],
        *,
        top_k: int,
        min_score: float,
        multi_gap: float,
        second_min: float,
        keyword_boost: float,
        none_margin: float,
    ) -> None:
        self.signal_ids = signal_ids
        self.exemplars = exemplars
        self.top_k = top_k
        self.min_score = min_score
        self.multi_gap = multi_gap
        self.second_min = second_min
        self.keyword_boost = keyword_boost
        self.none_margin = none_margin
        self._rows = {
            lang: {
                sid: np.array([i for i, lab in enumerate(ex.labels) if lab == sid], dtype=np.int64)
                for sid in (*signal_ids, NO_SIGNAL)
            }
            for lang, ex in exemplars.items()
        }

    def scores(
        self, texts: Sequence[str], vectors: np.ndarray, language: str
    ) -> dict[str, tuple[float, str]]:
        """Per signal: best score over the units (whole utterance and clauses) and that unit's text."""
        ex = self.exemplars[language]
        sims = vectors @ ex.vectors.T  # (units, exemplars)
        keywords = SIGNAL_KEYWORDS.get(language, {})
        out: dict[str, tuple[float, str]] = {}
        for sid in (*self.signal_ids, NO_SIGNAL):
            rows = self._rows[language][sid]
            if rows.size == 0:
                continue
            s = sims[:, rows]
            k = min(self.top_k, rows.size)
            unit_scores = np.sort(s, axis=1)[:, -k:].mean(axis=1)
            kw = keywords.get(sid)
            if kw is not None:
                unit_scores = unit_scores + np.array(
                    [self.keyword_boost if kw.search(t) else 0.0 for t in texts], dtype=np.float32
                )
            u = int(np.argmax(unit_scores))
            out[sid] = (float(unit_scores[u]), texts[u])
        return out

    def detect(self, texts: Sequence[str], vectors: np.ndarray, language: str) -> list[SignalHit]:
        if language not in self.exemplars or not texts:
            return []
        scores = self.scores(texts, vectors, language)
        if not scores:
            return []
        neutral = scores.pop(NO_SIGNAL, (-1.0, ""))[0]
        if not scores:
            return []
        best = max(v[0] for v in scores.values())
        if best < neutral + self.none_margin:
            return []
        hits = [
            SignalHit(sid, round(min(1.0, score), 3), quote)
            for sid, (score, quote) in scores.items()
            if score >= self.min_score and (score >= best - self.multi_gap or score >= self.second_min)
        ]
        return sorted(hits, key=lambda h: -h.score)
