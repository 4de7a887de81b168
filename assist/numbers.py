"""Numbers and money amounts as Whisper writes them, in Mandarin and English.

Whisper is inconsistent about numbers: the same call gives "两千九百", "2900",
"2,900元", "两千九" or "1万2"; in English "two hundred", "200", "$200" or
"$1.2k".  Outcome extraction needs the value, and needs to know whether a
number is money at all ("二十号" is a date, "三期" a count, "三七零八" an ID
read digit by digit), so each number comes back with its span and the word
after it.  Pure functions, no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ZH_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
ZH_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
ZH_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
_ZH_CHARS = "".join(ZH_DIGITS) + "".join(ZH_SMALL_UNITS) + "".join(ZH_BIG_UNITS)
_ZH_TOKEN = re.compile(rf"[0-9{_ZH_CHARS}](?:[0-9{_ZH_CHARS}]|[.,](?=[0-9]))*")

EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
EN_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
EN_SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000, "million": 1_000_000}
EN_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_EN_WORD = "|".join(sorted([*EN_UNITS, *EN_TENS, *EN_SCALES, "and", "a"], key=len, reverse=True))
_EN_TOKEN = re.compile(
    rf"(?P<cur>\$|¥|￥)?\s?(?P<num>\d[\d,]*(?:\.\d+)?)\s?(?P<k>k\b|(?:hundred|thousand|grand|million)\b)?"
    rf"|\b(?P<words>(?:(?:{_EN_WORD})(?:[\s-]+|\b))+)",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<![\d$.,])\+?\d{2,4}(?:[- ]\d{2,4}){2,}(?![\d.,])")
_SUFFIX_WINDOW = 12  # characters after a number kept to judge what it counts

ZH_CURRENCY = re.compile(r"^\s*(元|块钱|块|圆|人民币)")
EN_CURRENCY_AFTER = re.compile(r"^\s*(dollars?|bucks|usd|yuan|rmb)\b", re.IGNORECASE)
ZH_NOT_MONEY = re.compile(r"^\s*(号|日|期|个月|月|天|年|点|次|岁|分钟|小时|个|%|周|号码|位|遍|趟|笔)")
EN_NOT_MONEY = re.compile(
    r"^(\s*(days?|months?|years?|weeks?|percent|%|calls?|hours?|minutes?|times|payments?|instal+ments?)\b"
    r"|(st|nd|rd|th)\b|\s*(am|pm|a\.m\.|p\.m\.|o'clock)|:\d)",
    re.IGNORECASE,
)
ZH_APPROX = re.compile(r"^\s*(出头|左右|多块|来块|多)")
EN_APPROX_BEFORE = re.compile(
    r"\b(about|around|roughly|maybe|over|more than|something like)\s*$", re.IGNORECASE
)
CLOCK_BEFORE = re.compile(r"\b(at|around|after|before|by)\s*$", re.IGNORECASE)
MONEY_FLOOR = 100  # a bare number below this is a count or a day, never money without a currency word


@dataclass(frozen=True)
class Number:
    """A number found in text: value, where it was, and what followed it."""

    value: float
    start: int
    end: int
    currency: str | None  # "CNY"/"USD" when the text names one next to the number
    digits_only: bool  # read digit by digit ("三七零八"): an ID or phone number, not a quantity
    approximate: bool  # "一千出头", "about 500": a rough figure, not terms
    after: str  # the text right after the number (lower-cased), to judge what it counts

    def is_money(self) -> bool:
        """True when the number reads as an amount of money rather than a day, count or ID."""
        if self.digits_only:
            return False
        if self.currency is not None:
            return True
        if ZH_NOT_MONEY.match(self.after) or EN_NOT_MONEY.match(self.after):
            return False
        return self.value >= MONEY_FLOOR


def parse_zh_number(token: str) -> float | None:
    """Value of a Mandarin or mixed numeral: "一千零五十" 1050, "两千九" 2900, "1万2" 12000.

    A trailing digit after a unit with no unit of its own is one unit lower (两千九 = 2900,
    一万二 = 12000) except after 零 (一千零五 = 1005), which is how the numbers are spoken.
    """
    token = token.replace(",", "")
    if not token or (token[0] in ZH_SMALL_UNITS and token[0] != "十") or token[0] in ZH_BIG_UNITS:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", token):
        return float(token)
    if all(c in ZH_DIGITS for c in token) and len(token) > 1:
        return float("".join(str(ZH_DIGITS[c]) for c in token))
    total = 0.0  # completed 万/亿 groups
    section = 0.0  # within the current group
    digit: float | None = None
    last_unit = 0
    after_zero = False
    i = 0
    while i < len(token):
        m = re.match(r"\d+(\.\d+)?", token[i:])
        if m:
            digit = float(m.group())
            i += len(m.group())
            continue
        c = token[i]
        i += 1
        if c in "零〇":
            digit, after_zero = None, True
        elif c in ZH_DIGITS:
            digit = float(ZH_DIGITS[c])
        elif c in ZH_SMALL_UNITS:
            unit = ZH_SMALL_UNITS[c]
            section += (1.0 if digit is None else digit) * unit
            digit, last_unit, after_zero = None, unit, False
        else:
            unit = ZH_BIG_UNITS[c]
            section += digit or 0.0
            total = (total + section) * unit if unit > 10_000 else total + section * unit
            section, digit, last_unit, after_zero = 0.0, None, unit, False
    if digit is not None:
        implied = last_unit // 10 if last_unit >= 10 and not after_zero else 1
        section += digit * max(implied, 1)
    return total + section


def _hundreds_said_short(parts: list[str]) -> bool:
    first = EN_UNITS.get(parts[0], 0)
    second = EN_TENS.get(parts[1], EN_UNITS.get(parts[1], 0)) if len(parts) > 1 else 0
    return len(parts) in (2, 3) and 1 <= first <= 9 and 10 <= second <= 90


def parse_en_words(words: str) -> float | None:
    """Value of an English number in words: "one thousand eight hundred forty" 1840.

    Returns None when the words do not make one number ("nineteen eighty six" reads as
    two; a year is not an amount, and the caller only needs to know it is not one).
    """
    parts = [w for w in re.split(r"[\s-]+", words.lower()) if w and w != "and"]
    if not parts or parts == ["a"]:
        return None
    if _hundreds_said_short(parts):  # "one fifty" = 150, "two twenty five" = 225, as prices are said
        rest = parse_en_words(" ".join(parts[1:]))
        return None if rest is None else EN_UNITS[parts[0]] * 100 + rest
    total = 0
    current = 0
    last_small = 0  # last unit/tens word in the current group, to reject "nineteen eighty"
    for w in parts:
        if w == "a":
            current = current or 1
            continue
        if w in EN_UNITS or w in EN_TENS:
            v = EN_UNITS.get(w, EN_TENS.get(w, 0))
            if last_small and not (last_small in EN_TENS.values() and v < 10):
                return None
            current += v
            last_small = v
        elif w in EN_SCALES:
            scale = EN_SCALES[w]
            current = current or 1
            if scale == 100:
                current *= 100
            else:
                total += current * scale
                current = 0
            last_small = 0
        else:
            return None
    return float(total + current)


def find_numbers(text: str, language: str) -> list[Number]:
    """Every number in ``text``, in order, with currency and whether it can be money."""
    out = _find_zh(text) if language == "zh" else []
    return out + _find_en(text, taken=[(n.start, n.end) for n in out])


def _find_zh(text: str) -> list[Number]:
    out: list[Number] = []
    for m in _ZH_TOKEN.finditer(text):
        tok = m.group()
        if re.fullmatch(r"[\d.,]+", tok):
            continue  # plain digits: the English scanner handles them (and "$" before them)
        value = parse_zh_number(tok)
        if value is None:
            continue
        after = text[m.end() : m.end() + _SUFFIX_WINDOW]
        before = text[max(0, m.start() - 3) : m.start()]
        currency = "CNY" if ZH_CURRENCY.match(after) or re.search(r"(¥|￥|人民币)\s*$", before) else None
        digits_only = len(tok) > 2 and all(c in ZH_DIGITS for c in tok)
        out.append(
            Number(value, m.start(), m.end(), currency, digits_only, bool(ZH_APPROX.match(after)), after)
        )
    return out


def _find_en(text: str, taken: list[tuple[int, int]]) -> list[Number]:
    out: list[Number] = []
    for m in _PHONE.finditer(text):  # "555-201-3344": one ID, not three numbers
        if not any(s <= m.start() < e for s, e in taken):
            digits = re.sub(r"\D", "", m.group())
            out.append(Number(float(digits), m.start(), m.end(), None, True, False, ""))
            taken = [*taken, (m.start(), m.end())]
    for m in _EN_TOKEN.finditer(text):
        at = m.start("num") if m.group("num") else m.start("words")
        if any(s <= at < e for s, e in taken):
            continue
        if m.group("num"):
            raw = m.group("num").rstrip(",")
            if re.search(r",\d{1,2}$|,\d{4,}", raw):  # "3,200" is a thousands comma; "10,20" is a list
                raw = raw.split(",")[0]
            scale = (m.group("k") or "").lower()  # "2k", "3 hundred", "1.5 thousand"
            value = float(raw.replace(",", "")) * EN_SCALES.get(scale, 1000 if scale == "k" else 1)
            end = m.end("k") if m.group("k") else m.start("num") + len(raw)
            digits_only = len(raw) >= 7 and "," not in raw and "." not in raw
        else:
            words = re.sub(r"(?:[\s-]+(?:a|and))+$", "", m.group("words").strip(" -"), flags=re.IGNORECASE)
            parsed = parse_en_words(words)
            if parsed is None:
                continue
            value, end, digits_only = parsed, m.start("words") + len(words), False
            if CLOCK_BEFORE.search(text[: m.start("words")]):
                continue  # "at three twenty" is a time
        start = m.start("cur") if m.group("cur") else m.start()
        after = text[end : end + _SUFFIX_WINDOW].lower()
        before = text[max(0, start - 20) : start]
        currency = _en_currency(m.group("cur"), after)
        out.append(
            Number(value, start, end, currency, digits_only, bool(EN_APPROX_BEFORE.search(before)), after)
        )
    return sorted(out, key=lambda n: n.start)


def _en_currency(symbol: str | None, after: str) -> str | None:
    if symbol == "$":
        return "USD"
    if symbol in ("¥", "￥"):
        return "CNY"
    m = EN_CURRENCY_AFTER.match(after) or ZH_CURRENCY.match(after)
    if not m:
        return None
    return "CNY" if m.group(1).lower() in ("yuan", "rmb", "元", "块", "块钱", "圆", "人民币") else "USD"


def money(text: str, language: str) -> list[Number]:
    """The numbers in ``text`` that read as money."""
    return [n for n in find_numbers(text, language) if n.is_money()]
