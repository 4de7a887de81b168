"""Numbers in one display form per language, so an agent reads an amount or a date the same way
whether Whisper wrote it in digits or in words.

The deal is in the numbers (amount, instalments, day counts, dates), and Whisper writes them
inconsistently: "12600元" next to "两千九百块", "$1840" next to "2,400 dollars".  This module is
pure text in, text out (no model), applied to every kept transcript, and is the yardstick of the
accuracy bench's numbers-right rate (both sides go through it).

Display forms:

* Mandarin: plain Arabic digits, no thousands separators, the unit kept as spoken:
  "一千零五十元" -> "1050元", "两万" -> "20000", "六十天" -> "60天", "十二期" -> "12期",
  "两千九" -> "2900", "1万2" -> "12000", "12,000" -> "12000".
* English: digits; dollar amounts as "$1,050" (commas from four digits on), other numbers said
  in words with a scale as "2,400"; "sixty days" -> "60 days", "two hundred" -> "200",
  "March third, nineteen eighty six" -> "March 3, 1986"; "300 dollars" -> "$300".

What is never touched, because it is not a quantity or is not safe to rewrite:

* digit-by-digit readings ("三七零八", "幺三八…", "five five five one"): ID and phone digits stay
  exactly as said, so masking still sees them and nothing turns into a different number;
* Arabic digit runs without a unit or scale ("1333", "1986" said as digits): left as written;
* a bare 一 / "one" without a scale (一次性, 一分都没还, 这一期, "one morning"), "a hundred",
  Chinese ordinals (第一期), 十分 (very), 千万 / 万一 / 百分之 (they start with a place word, not a
  digit), numbers said without a scale and without a unit after them ("三十", "three calls": not
  known to be a quantity) and English ordinals outside a date ("the first of every month");
* Whisper's split amounts and misheard numbers: "$100 and $3" may be $103, $130 or two amounts, and
  "分12000" (分十二期) or "于70天" (逾期十天) are mishearings, not forms; no rule tells them apart from
  real amounts, so they stay.  The one repair made is 每期 heard as 每七 right before an amount ("每71050元",
  "每七两千九百块"): 期 and 七 are both qī, and "每7" directly followed by a currency amount has no
  other reading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# ----------------------------------------------------------------------------------------- Mandarin

ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}  # fmt: skip
ZH_PLACES = {"十": 10, "百": 100, "千": 1000}
ZH_BIG = {"万": 10**4, "亿": 10**8}
# What may follow a number said without 百/千/万 ("六十天", "三期") for it to count as a quantity.
ZH_UNITS = ("元", "块", "天", "期", "号", "日", "月", "个月", "年", "周", "个星期", "个礼拜", "岁",
            "个工作日", "工作日", "小时", "分钟")  # fmt: skip
ZH_ORDINAL_MARK = "第"  # 第一期 / 第二期 stay words: an ordinal, not a count
ZH_BARE_ONE = "一"  # alone it is "a"/"one whole" far more often than the number
ZH_CURRENCY = "元块"

_ZH_RUN = re.compile(r"(?:[零〇一二两三四五六七八九十百千万亿]|\d+)+")
_ZH_GROUPED = re.compile(r"(?<!\d)(?<!\d,)\d{1,3}(?:,\d{3})+(?!\d|,\d)")
_ZH_EACH_QI = re.compile(
    r"每[7七](?=(?:\d+|[一二两三四五六七八九][零〇一二两三四五六七八九十百千万]*)[元块])"
)


@dataclass(frozen=True)
class _Parsed:
    value: int
    length: int  # characters consumed
    scaled: bool  # a 百/千/万/亿 was part of it (an amount, whatever follows)
    placed: bool  # any place word, 十 included


def _zh_tokens(run: str) -> list[tuple[str, int]]:
    return [(m.group(0), len(m.group(0))) for m in re.finditer(r"\d+|.", run)]


def parse_zh(run: str) -> _Parsed | None:
    """The longest numeral at the start of ``run``, with 百/千/万 read the spoken way
    ("两千九" = 2900, "一万二" = 12000, "一千零五十" = 1050); None when it does not start with one."""
    total = section = 0
    current: int | None = None
    last_place = last_big = 0
    abbreviable = zero = scaled = placed = False
    length = 0
    for tok, size in _zh_tokens(run):
        if tok.isdigit() or (tok in ZH_DIGITS and ZH_DIGITS[tok] > 0):
            if current is not None:
                break
            current = int(tok) if tok.isdigit() else ZH_DIGITS[tok]
            abbreviable = bool(last_place or last_big) and not zero
        elif tok in ZH_DIGITS:  # 零: a gap inside the number ("一千零五十")
            if current is not None or not (section or total):
                break
            zero = True
        elif tok in ZH_PLACES:
            place = ZH_PLACES[tok]
            if current is None and place == 10 and length == 0:
                current = 1  # "十二" = 12
            if current is None or (last_place and place >= last_place):
                break
            section += current * place
            current, last_place, zero, abbreviable = None, place, False, False
            placed = True
            scaled = scaled or place > 10
        elif tok in ZH_BIG:
            big = ZH_BIG[tok]
            if (current is None and not section) or (last_big and big >= last_big):
                break
            section += current or 0
            total += section * big
            section, current, last_place, last_big, zero, abbreviable = 0, None, 0, big, False, False
            placed = scaled = True
        else:  # pragma: no cover - the run regex admits nothing else
            break
        length += size
    if length and run[length - 1] in "零〇" and current is None:
        length -= 1  # "一千零" + something else: the 零 is not part of the number
    if current is not None:
        unit = last_place or last_big
        section += current * (unit // 10) if abbreviable and unit >= 100 else current
    if not length:
        return None
    return _Parsed(total + section, length, scaled, placed)


def _zh_follows_unit(text: str, pos: int) -> bool:
    return any(text.startswith(unit, pos) for unit in ZH_UNITS)


def _digit_by_digit_prefix(run: str) -> int:
    """Length of the digits read one by one at the start of ``run``, left as said: all of
    "三七零八", "一七" of "一七两千九百" (Whisper's 第一期两千九百: the last digit before a place
    word starts the amount), nothing of "三千二"."""
    bare = 0
    while bare < len(run) and run[bare] in ZH_DIGITS:
        bare += 1
    if bare < 2:
        return 0
    if bare == len(run) or (run[bare] not in ZH_PLACES and run[bare] not in ZH_BIG):
        return len(run)  # digits (and maybe Arabic ones) with no place word after them
    return bare - 1


def _zh_number(text: str, match: re.Match[str]) -> str:
    run, start = match.group(0), match.start()
    out: list[str] = []
    pos = _digit_by_digit_prefix(run)
    out.append(run[:pos])
    while pos < len(run):
        parsed = parse_zh(run[pos:])
        if parsed is None:  # a run starting with 零 or a place word: as said
            out.append(run[pos:])
            break
        word = run[pos : pos + parsed.length]
        end = start + pos + parsed.length
        after_unit = _zh_follows_unit(text, end)
        ordinal = start + pos > 0 and text[start + pos - 1] == ZH_ORDINAL_MARK
        if word.isdigit():
            keep = True  # Arabic digits are already the display form
        elif parsed.scaled:
            keep = False
        elif parsed.placed:  # 十 forms ("六十", "十二"): a quantity only before a unit (十分 = very)
            keep = not after_unit
        else:  # a single digit word
            keep = not after_unit or ordinal or word == ZH_BARE_ONE
        out.append(word if keep else str(parsed.value))
        pos += parsed.length
    return "".join(out)


def normalise_zh(text: str) -> str:
    text = text.translate(_FULLWIDTH_DIGITS)
    text = _ZH_GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _ZH_EACH_QI.sub("每期", text)
    return _ZH_RUN.sub(lambda m: _zh_number(text, m), text)


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# ----------------------------------------------------------------------------------------- English

EN_ONES = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9}  # fmt: skip
EN_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
            "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}  # fmt: skip
EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
           "ninety": 90}  # fmt: skip
EN_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
# What may follow a number said without a scale ("sixty days") for it to count as a quantity.
EN_UNITS = ("day", "days", "week", "weeks", "month", "months", "year", "years", "dollar", "dollars",
            "cent", "cents", "percent", "payment", "payments", "instalment", "instalments",
            "installment", "installments", "hour", "hours")  # fmt: skip
EN_DOLLARS = ("dollar", "dollars")
EN_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
             "october", "november", "december")  # fmt: skip
_EN_ORDINAL_BASE = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
                    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
                    "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
                    "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
                    "thirtieth": 30}  # fmt: skip
EN_ORDINALS = dict(_EN_ORDINAL_BASE)
for _tens_word, _tens in (("twenty", 20), ("thirty", 30)):
    for _word, _day in _EN_ORDINAL_BASE.items():
        if _day < 10 and _tens + _day <= 31:
            EN_ORDINALS[f"{_tens_word}-{_word}"] = _tens + _day
            EN_ORDINALS[f"{_tens_word} {_word}"] = _tens + _day
COMMA_FROM = 1000  # "$1,050" but "$300"

_EN_WORD = "|".join(sorted([*EN_ONES, *EN_TEENS, *EN_TENS, *EN_SCALES], key=len, reverse=True))
_EN_NUM_TOKEN = rf"(?:{_EN_WORD}|\d+)"
_EN_RUN = re.compile(
    rf"(?<![\w$,.]){_EN_NUM_TOKEN}(?:(?:,? and |[ -]){_EN_NUM_TOKEN})*(?![\w])", re.IGNORECASE
)
_EN_UNIT_AFTER = re.compile(rf"[ -](?:{'|'.join(EN_UNITS)})\b", re.IGNORECASE)
_EN_ORDINAL_WORDS = "|".join(sorted(EN_ORDINALS, key=len, reverse=True))
_EN_DATE = re.compile(
    rf"\b(?P<month>{'|'.join(EN_MONTHS)}) "
    rf"(?:(?P<word>{_EN_ORDINAL_WORDS})|(?P<num>\d{{1,2}})(?:st|nd|rd|th))\b",
    re.IGNORECASE,
)
_EN_YEAR = re.compile(
    rf"(?P<head>\b(?:{'|'.join(EN_MONTHS)}) \d{{1,2}}, )(?P<hi>{'|'.join([*EN_TEENS, *EN_TENS])})"
    rf" (?P<lo>(?:{'|'.join(EN_TENS)})(?:[ -](?:{'|'.join(w for w in EN_ONES if w != 'zero')}))?"
    rf"|{'|'.join(EN_TEENS)})\b",
    re.IGNORECASE,
)
_EN_DOLLAR_DIGITS = re.compile(r"(?<![\w$.,])(\d[\d,]*)(?:\.(\d{2}))?[ -](?:dollars?|bucks)\b", re.IGNORECASE)
_EN_DOLLAR_SIGN = re.compile(r"\$(\d{4,})(?![\d,])")


def _en_kind(tok: str) -> str:
    low = tok.lower()
    if low.isdigit():
        return "digits"
    if low in EN_ONES:
        return "ones"
    if low in EN_TEENS:
        return "teens"
    if low in EN_TENS:
        return "tens"
    return "scale"


def parse_en(tokens: list[str]) -> tuple[int, int, bool]:
    """(value, tokens consumed, a scale word was used) for the longest number at the start."""
    total = current = 0
    last = ""
    scaled = False
    used = 0
    for tok in tokens:
        kind, low = _en_kind(tok), tok.lower()
        if kind == "digits":  # Whisper's mixed "1 thousand 50"
            if last and last != "scale":
                break
            current += int(low)
        elif kind == "ones":
            if last in ("ones", "teens", "digits") or (last == "tens" and low == "zero"):
                break
            current += EN_ONES[low]
        elif kind == "teens":
            if last in ("ones", "teens", "tens", "digits"):
                break
            current += EN_TEENS[low]
        elif kind == "tens":
            if last in ("ones", "teens", "tens", "digits"):
                break
            current += EN_TENS[low]
        else:
            scale = EN_SCALES[low]
            if current == 0 or (scale == 100 and current % 100 == current and current >= 100):
                break
            if scale == 100:
                if current >= 100:
                    break
                current *= 100
            else:
                total += current * scale
                current = 0
            scaled = True
        last = kind
        used += 1
    return total + current, used, scaled


def _grouped(value: int) -> str:
    return f"{value:,}" if value >= COMMA_FROM else str(value)


def _en_number(text: str, match: re.Match[str]) -> str:
    run = match.group(0)
    pieces = re.split(r"(,? and |[ -])", run)
    tokens, seps = pieces[0::2], pieces[1::2]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        value, used, scaled = parse_en(tokens[i:])
        if used == 0 or (i == 0 and not scaled and used < len(tokens)):
            # Not a number ("hundred days", "a" comes before it) or digits read one by one
            # ("nine nine nine days"): the rest of the run stays as said.
            out.append("".join(w + s for w, s in zip(tokens[i:], [*seps[i:], ""], strict=True)))
            break
        joins = [k for k in range(i, i + used - 1) if seps[k].strip(" ,") == "and"]
        stopped_at_scale = i + used < len(tokens) and _en_kind(tokens[i + used]) == "scale"
        if joins and (stopped_at_scale or _en_kind(tokens[joins[0]]) != "scale"):
            # "and" joins only right after a scale and when the number ends there ("one hundred and
            # fifty"); "three hundred and two hundred" is two amounts.
            used = joins[0] - i + 1
            value, _, scaled = parse_en(tokens[i : i + used])
        words = tokens[i : i + used]
        said = "".join(w + (seps[i + k] if k < used - 1 else "") for k, w in enumerate(words))
        end_here = i + used == len(tokens)
        unit_next = end_here and bool(_EN_UNIT_AFTER.match(text, match.end()))
        plain = all(w.isdigit() for w in words)
        single_one = used == 1 and words[0].lower() == "one"
        if plain or not (scaled or (unit_next and not single_one)):
            out.append(said)
        else:
            out.append(_grouped(value) if scaled else str(value))
        if i + used < len(tokens):
            out.append(seps[i + used - 1])
        i += used
    return "".join(out)


def _en_date(match: re.Match[str]) -> str:
    word = match.group("word")
    day = EN_ORDINALS[word.lower()] if word else int(match.group("num"))
    return f"{match.group('month')} {day}"


def _en_year(match: re.Match[str]) -> str:
    hi = EN_TEENS.get(match.group("hi").lower()) or EN_TENS[match.group("hi").lower()]
    lo_words = re.split(r"[ -]", match.group("lo").lower())
    lo = sum(EN_TEENS.get(w) or EN_TENS.get(w) or EN_ONES[w] for w in lo_words)
    return f"{match.group('head')}{hi * 100 + lo}"


def _en_dollars(match: re.Match[str]) -> str:
    value = int(match.group(1).replace(",", ""))
    cents = f".{match.group(2)}" if match.group(2) else ""
    return f"${_grouped(value)}{cents}"


def normalise_en(text: str) -> str:
    text = _EN_DATE.sub(_en_date, text)
    text = _EN_YEAR.sub(_en_year, text)
    text = _EN_RUN.sub(lambda m: _en_number(text, m), text)
    text = _EN_DOLLAR_DIGITS.sub(_en_dollars, text)
    return _EN_DOLLAR_SIGN.sub(lambda m: f"${_grouped(int(m.group(1)))}", text)


# ----------------------------------------------------------------------------------------- both

_NORMALISERS: dict[str, Callable[[str], str]] = {"zh": normalise_zh, "en": normalise_en}
_QUANTITY = re.compile(r"\d[\d,]*(?:\.\d+)?")


def normalise_numbers(text: str, language: str) -> str:
    """``text`` with its numbers in the display form of ``language`` (other languages: unchanged)."""
    normaliser = _NORMALISERS.get(language)
    return normaliser(text) if normaliser else text


def quantities(text: str, language: str) -> list[str]:
    """The numbers in ``text`` after normalisation, as plain digit strings ("$1,050" -> "1050")."""
    found = _QUANTITY.findall(normalise_numbers(text, language))
    return [q.rstrip(",.").replace(",", "") for q in found]
