"""Which stage of the call an agent utterance belongs to.

Nearest-exemplar scoring: each stage's score is the mean similarity to its
closest few examples (the playbook's example utterances plus its own suggested
lines, which are agent speech of that stage too).  An utterance that fits no
stage well gets none; so does one that breaks a rule without clearly doing a
stage's job (the engine decides that, since it holds the findings).  Treating
the violation examples as one more class was tried and measured worse: calm
reassurances ("我们不会上门") sit close to the threats they deny.  Light
keyword priors break near-ties where the wording is a giveaway ("分期",
"to confirm"), which similarity on short sentences often is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from assist.encoders import ExemplarSet


def _any(*alternatives: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), flags)


_I = re.IGNORECASE
STAGE_KEYWORDS: Mapping[str, Mapping[str, re.Pattern[str]]] = {
    "zh": {
        "opening": _any(
            r"您好|你好|喂",
            r"我是.{0,12}(公司|的|专员)",
            r"请问(您|你)?是",
            r"是.{1,4}(先生|女士|本人)吗",
            r"核实.{0,4}身份",
            r"身份证.{0,6}(后|尾)",
        ),
        "empathy": _any(
            r"理解|不容易|辛苦|难为|抱歉|难过|别着急|慢慢说|听起来|遗憾|放心|别怕|别担心|不用担心",
            r"不会(去|派|上门|找|报警|联系|打|告诉|公开|曝光)",
            r"确实.{0,4}难",
            r"压力.{0,4}大",
        ),
        "inquiry": _any(
            r"(什么时候|多少|怎么|哪些|哪里|是什么原因|大概|收入|工资)[^。！？]{0,24}[？?]",
            r"方便.{0,4}(说|问|了解)",
            r"想了解",
            r"请问.{0,20}[？?]",
        ),
        "proposal": _any(
            r"分期|延期|宽限|减免|方案|可以选择|选一个|先还一部分|一次性结清",
            r"分.{1,2}期",
            r"每(期|月)",
        ),
        "confirmation": _any(
            r"确认一下|跟您确认|再确认|核对一下|总结一下|也就是说|那就这样|书面|就这么定",
            r"短信.{0,6}(发|确认)",
            r"确认(函|书)",
        ),
    },
    "en": {
        "opening": _any(
            r"\b(hello|hi|good (morning|afternoon|evening))\b",
            r"\bthis is \w+( \w+)? (from|with|at)\b",
            r"\bcalling (from|on behalf)",
            r"\bam i speaking (to|with)\b",
            r"\bis this (mr|ms|mrs)?\.?\s*\w+",
            r"verify (your|who)|last (four|4) digits|date of birth",
            flags=_I,
        ),
        "empathy": _any(
            r"\bi (completely |really )?understand\b",
            r"sorry to hear|\bsounds (like|really)",
            r"must (be|have been) (hard|tough|difficult|stressful)",
            r"that's (hard|tough|a lot)|take your time|\bi hear you\b",
            r"appreciate you (telling|sharing)",
            r"don't worry|rest assured|(nobody|no one) is (going|coming)|you're safe",
            r"we (won't|will not|do not|don't) ",
            flags=_I,
        ),
        "inquiry": _any(
            r"\b(what|when|how|which|where)\b[^.!?]{0,60}\?",
            r"can you tell me|could you tell me|help me understand",
            flags=_I,
        ),
        "proposal": _any(
            r"\binstal?lments?\b|\bpayment plan\b|\boptions?\b|\bdefer|grace period",
            r"\bmonthly payments?\b|\bsettle(ment)?\b|\bwaive\b",
            r"would (either|that|this) work",
            r"we (can|could) (set up|offer|split)",
            flags=_I,
        ),
        "confirmation": _any(
            r"\bto confirm\b|\bconfirm(ing)? (the|that|what|our)\b|\brecap\b",
            r"\bso (that's|we('ve| have) agreed)",
            r"\bi'll (email|send|mail)\b",
            r"in writing|written confirmation|\bagreed\b|\bsummar",
            flags=_I,
        ),
    },
}


NO_STAGE = "none"
# Agent lines that serve no stage: holding, line trouble, small talk, bare goodbyes,
# offers to call back.  They compete with the stages as one more class, so such a
# line is not forced into the stage it happens to be least far from.
NEUTRAL_AGENT: Mapping[str, tuple[str, ...]] = {
    "zh": (
        "请您稍候，系统正在加载。",
        "麻烦等我一下，我调一下记录。",
        "喂？这边有点杂音，您听得到吗？",
        "电话好像断断续续的。",
        "今天天气挺热的哈。",
        "好的，那就先不打扰了，再见。",
        "行，您先忙，拜拜。",
        "那我改天再给您打过来。",
        "您要是现在不方便，我晚点再联系您。",
        "嗯嗯，好的好的。",
        "您稍等，我打开一下您的档案。",
        "抱歉，刚才没听清楚，麻烦您重复一下。",
        "喂，您那边还能听到我吗？",
    ),
    "en": (
        "Bear with me while the system loads.",
        "Give me a second to bring up the file.",
        "Hello? You're breaking up a little.",
        "Can you hear me okay?",
        "Crazy weather we're having, huh?",
        "Alright then, take care. Bye.",
        "Thanks, have a nice day.",
        "I'll give you a ring another day.",
        "If now isn't good, I can try you later this week.",
        "Uh-huh, sure, sure.",
        "One moment, I'm opening up your file.",
        "Hello? Are you still on the line?",
        "Sorry, I missed that. Could you say it again?",
    ),
}


class StageClassifier:
    def __init__(
        self,
        stage_ids: tuple[str, ...],
        exemplars: dict[str, ExemplarSet],
        *,
        top_k: int,
        min_score: float,
        keyword_boost: float,
    ) -> None:
        self.stage_ids = stage_ids
        self.exemplars = exemplars
        self.top_k = top_k
        self.min_score = min_score
        self.keyword_boost = keyword_boost
        self._rows = {
            lang: {
                sid: np.array([i for i, lab in enumerate(ex.labels) if lab == sid], dtype=np.int64)
                for sid in (*stage_ids, NO_STAGE)
            }
            for lang, ex in exemplars.items()
        }

    def _topk(self, sims: np.ndarray) -> float:
        if sims.size == 0:
            return -1.0
        k = min(self.top_k, sims.size)
        return float(np.partition(sims, sims.size - k)[sims.size - k :].mean())

    def scores(self, vector: np.ndarray, text: str, language: str) -> dict[str, float]:
        """Per-stage score: mean similarity to the nearest examples, plus the keyword prior."""
        ex = self.exemplars[language]
        sims = ex.vectors @ vector
        out: dict[str, float] = {}
        keywords = STAGE_KEYWORDS.get(language, {})
        for sid in self.stage_ids:
            score = self._topk(sims[self._rows[language][sid]])
            kw = keywords.get(sid)
            if kw is not None and kw.search(text):
                score += self.keyword_boost
            out[sid] = score
        out[NO_STAGE] = self._topk(sims[self._rows[language][NO_STAGE]])
        return out

    def classify(self, vector: np.ndarray, text: str, language: str) -> tuple[str | None, float]:
        """(stage id, confidence); None when the utterance fits no stage well."""
        if language not in self.exemplars:
            return None, 0.0
        scores = self.scores(vector, text, language)
        best = max(scores, key=lambda k: scores[k])
        confidence = max(0.0, min(1.0, scores[best]))
        if best == NO_STAGE or scores[best] < self.min_score:
            return None, round(confidence, 3)
        return best, round(confidence, 3)
