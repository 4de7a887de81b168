"""Transcript scoring: Mandarin CER and English WER, normalised the way the shared
corpus' baseline was (so our figures compare with it).

Mandarin: traditional -> simplified, Arabic numbers in the hypothesis read out as
Chinese numerals (2900 -> 两千九百; long or zero-led digit strings digit by
digit), 两 folded to 二 on both sides, punctuation and spaces removed.
English: Whisper's EnglishTextNormalizer on both sides ('two hundred' == '200').
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_DIGITS = "零一二三四五六七八九"
_UNITS = ["", "十", "百", "千"]
_DIGIT_BY_DIGIT_MIN_LEN = 5  # 5+ digit runs are ids / phone numbers, read digit by digit


def _four(n: int) -> str:
    out = ""
    zero = False
    for pos in range(3, -1, -1):
        d = (n // 10**pos) % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[d] + _UNITS[pos]
    return out


def number_to_chinese(n: int) -> str:
    if n == 0:
        return "零"
    parts: list[str] = []
    for unit, size in (("亿", 10**8), ("万", 10**4)):
        if n >= size:
            parts.append(_four(n // size) + unit)
            n %= size
            if 0 < n < size // 10:
                parts.append("零")
    if n:
        parts.append(_four(n))
    text = "".join(parts)
    if text.startswith("一十"):
        text = text[1:]
    return text


def _read_number(match: re.Match[str]) -> str:
    digits = match.group(0)
    if len(digits) >= _DIGIT_BY_DIGIT_MIN_LEN or (len(digits) > 1 and digits.startswith("0")):
        return "".join(_DIGITS[int(d)] for d in digits)
    return number_to_chinese(int(digits))


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def normalize_zh(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _t2s().convert(text)
    text = re.sub(r"\d+", _read_number, text)
    text = text.replace("两", "二")
    return re.sub(r"[\W_]+", "", text)


@lru_cache(maxsize=1)
def _en_normalizer() -> Any:
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_en(text: str) -> list[str]:
    return str(_en_normalizer()(text)).split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def units(text: str, language: str) -> list[str]:
    """The tokens errors are counted over: characters for Mandarin, words for English."""
    return list(normalize_zh(text)) if language == "zh" else normalize_en(text)


def error_counts(reference: str, hypothesis: str, language: str) -> tuple[int, int]:
    """(errors, reference length) -- pool these over turns for a corpus CER/WER."""
    ref = units(reference, language)
    hyp = units(hypothesis, language)
    return edit_distance(ref, hyp), len(ref)
