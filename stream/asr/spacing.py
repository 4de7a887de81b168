"""Mandarin finals without spaces between words.

Written Chinese has no spaces, but Whisper, prompted with the playbook's space-separated hotword
list, copies that style and marks each pause with a space instead of a comma: whisper-base on
dev_zh_01 wrote "对 我就是周明辉 你说吧" and "稍后会有短信发给您确认 祝您早日找到合适的工作 再见".
Dropping those spaces would run the clauses together ("对我就是周明辉你说吧"), so:

* a space between two Chinese characters becomes "，" -- the pause it stands for, written the way
  the scripts (and the guidance exemplars, which split clauses at "，") write it;
* a space next to CJK punctuation, or next to the ASCII punctuation Whisper puts after a character
  ("态度? 查清楚"), is removed: the pause is already marked;
* a space between a Chinese character and a digit is removed ("还款 3200 元" -> "还款3200元", the
  way Whisper writes amounts most of the time);
* a space next to a Latin letter is kept ("用 iPhone 转的"), since Latin words run together would be
  unreadable, and so is a space between two digits ("1 3 3 8": a number read out digit by digit).
"""

from __future__ import annotations

import re

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_PUNCT = r"\u3001-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
_SPACE = r"[ \t\u3000\u00a0]+"
PAUSE_MARK = "，"
_PAUSE = re.compile(rf"(?<=[{_HAN}]){_SPACE}(?=[{_HAN}])")
_REDUNDANT = re.compile(
    rf"(?:(?<=[{_HAN}{_CJK_PUNCT}])|(?<=[{_HAN}][,.?!:;])){_SPACE}(?=[{_HAN}{_CJK_PUNCT}]|\d)"
    rf"|(?<=\d){_SPACE}(?=[{_HAN}{_CJK_PUNCT}])"
)
# Languages whose finals are written without spaces; everything else keeps its spaces.
JOINED_LANGUAGES = ("zh",)


def join_cjk(text: str) -> str:
    """``text`` without spaces around Chinese characters: pauses between them become "，"."""
    return _REDUNDANT.sub("", _PAUSE.sub(PAUSE_MARK, text))


def display_spacing(text: str, language: str) -> str:
    return join_cjk(text) if language in JOINED_LANGUAGES else text
