"""Mandarin finals without spaces between words.

Written Chinese has no spaces, but Whisper, prompted with the playbook's space-separated hotword
list, copies that style and marks each pause with a space instead of a comma: whisper-base on
dev_zh_01 wrote "对 我就是周明辉 你说吧" and "稍后会有短信发给您确认 祝您早日找到合适的工作 再见".
Dropping those spaces would run the clauses together ("对我就是周明辉你说吧"), so:

* a space between two Chinese characters becomes "，" -- the pause it stands for, written the way
  the scripts (and the guidance exemplars, which split clauses at "，") write it -- when the spaced
  chunks average at least ``PAUSE_MIN_MEAN_CHARS`` characters.  Shorter chunks mean Whisper spaced
  words, not pauses (at 8 kHz it wrote "谢谢您 期 捧写师您的消费带 已经 已 期 2期 龙"), and a comma
  after every word would be worse than none, so those spaces are simply removed;
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
# Mean characters per space-separated chunk from which spaces are read as pauses: the pause-spaced
# finals seen average 3.3-9 characters a chunk, the word-spaced ones about 2.
PAUSE_MIN_MEAN_CHARS = 3.0
_HAN_CHAR = re.compile(f"[{_HAN}]")
_PAUSE = re.compile(rf"(?<=[{_HAN}]){_SPACE}(?=[{_HAN}])")
_REDUNDANT = re.compile(
    rf"(?:(?<=[{_HAN}{_CJK_PUNCT}])|(?<=[{_HAN}][,.?!:;])){_SPACE}(?=[{_HAN}{_CJK_PUNCT}]|\d)"
    rf"|(?<=\d){_SPACE}(?=[{_HAN}{_CJK_PUNCT}])"
)
# Languages whose finals are written without spaces; everything else keeps its spaces.
JOINED_LANGUAGES = ("zh",)


def join_cjk(text: str) -> str:
    """``text`` without spaces around Chinese characters; pauses between clauses become "，"."""
    if _PAUSE.search(text) is None:
        return _REDUNDANT.sub("", text)
    chunks = [n for n in (len(_HAN_CHAR.findall(chunk)) for chunk in text.split()) if n]
    pauses = sum(chunks) / len(chunks) >= PAUSE_MIN_MEAN_CHARS
    return _REDUNDANT.sub("", _PAUSE.sub(PAUSE_MARK if pauses else "", text))


def display_spacing(text: str, language: str) -> str:
    return join_cjk(text) if language in JOINED_LANGUAGES else text
