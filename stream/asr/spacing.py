"""Mandarin finals without spaces between words.

Whisper sometimes writes Mandarin with spaces where the speaker paused or between words
("喂 你好 我是林小文"); written Chinese has none, and the gaps read like missing words on the
agent's screen.  A space is removed when it stands between two Chinese characters (or CJK
punctuation, or the ASCII punctuation Whisper often puts after one: "态度? 查清楚"), or between a
Chinese character and a digit ("还款 3200 元" -> "还款3200元", the way Whisper writes amounts most
of the time).  A space next to a Latin letter is kept ("用 iPhone 转的"), because Latin words run
together would be unreadable, and so is a space between two digits ("1 3 3 8": a number read out
digit by digit).  No punctuation is invented for a removed pause.
"""

from __future__ import annotations

import re

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_PUNCT = r"\u3001-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
_CJK = _HAN + _CJK_PUNCT
_HAN_OR_PUNCT = f"[{_CJK}]"
_SPACE = r"[ \t\u3000\u00a0]+"
_BETWEEN = re.compile(
    rf"(?:(?<={_HAN_OR_PUNCT})|(?<=[{_HAN}][,.?!:;])){_SPACE}(?={_HAN_OR_PUNCT}|\d)"
    rf"|(?<=\d){_SPACE}(?={_HAN_OR_PUNCT})"
)
# CJK languages whose finals are joined; everything else keeps its spaces.
JOINED_LANGUAGES = ("zh",)


def join_cjk(text: str) -> str:
    """``text`` without the spaces between Chinese characters (and between them and digits)."""
    return _BETWEEN.sub("", text)


def display_spacing(text: str, language: str) -> str:
    return join_cjk(text) if language in JOINED_LANGUAGES else text
