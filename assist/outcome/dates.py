"""Due dates and callback times said in a call, resolved to calendar dates.

"周五", "the 20th" or "月底" mean nothing without the day of the call in the
*borrower's* time zone: a call at 23:30 UTC on the 31st is already the 1st in
Shanghai, and "tomorrow" moves with it.  So resolution takes that local date
(``local_today``) and never reads the clock.

Conventions (what a borrower means when they say it during the call):
- a bare weekday ("周五", "Friday", "this Friday") is its next occurrence, today included;
  "下周五" / "next Friday" is the one in the next Monday-based week;
- a bare day of the month ("15号", "the 20th") is this month's if it has not passed, else
  next month's; a day past the month's end is the month's last day;
- "每月十五号" / "the first of every month" is recurring: its next occurrence, flagged so a
  plan keeps an earlier, explicit first due date;
- an hour without am/pm from 1 to 7 is afternoon or evening (nobody asks for a 3 a.m. call).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from assist.numbers import EN_ORDINALS, EN_UNITS, parse_zh_number

WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
WEEKDAYS_EN = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
MONTHS_EN = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
DAYS_IN_WEEK = 7
PM_ASSUMED_UNTIL = 7  # "at 3" or "三点" during a call means 15:00; "at 8" stays 08:00
NOON = 12

_ZN = r"[0-9零〇一二两三四五六七八九十]+"
_EN_MONTH = "|".join(MONTHS_EN)
_EN_WEEKDAY = "|".join(WEEKDAYS_EN)


@dataclass(frozen=True)
class DateMention:
    """A date said in the text, already resolved, with its span."""

    value: date
    start: int
    end: int
    recurring: bool = False  # "每月十五号", "the first of every month"
    weekday: bool = False  # "周五", "Friday": yields to an explicit date right after it


def local_today(call_time: datetime, timezone: str) -> date:
    """The calendar day of the call where the borrower is (a naive time is taken as UTC)."""
    if call_time.tzinfo is None:
        call_time = call_time.replace(tzinfo=ZoneInfo("UTC"))
    return call_time.astimezone(ZoneInfo(timezone)).date()


def add_months(d: date, months: int, day: int | None = None) -> date:
    """``d`` moved by whole months, on ``day`` (default: the same day), clamped to the month's end."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day if day is not None else d.day, last))


def month_end(today: date, months_ahead: int = 0) -> date:
    return add_months(today, months_ahead, day=31)


def weekday_on_or_after(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % DAYS_IN_WEEK)


def weekday_next_week(today: date, weekday: int) -> date:
    monday = today - timedelta(days=today.weekday()) + timedelta(days=DAYS_IN_WEEK)
    return monday + timedelta(days=weekday)


def day_of_month(today: date, day: int, months_ahead: int | None = None) -> date:
    """The ``day``-th: this month's unless passed (then next month's), or ``months_ahead`` fixed."""
    if months_ahead is not None:
        return add_months(today, months_ahead, day=day)
    this = add_months(today, 0, day=day)
    return this if this >= today else add_months(today, 1, day=day)


def month_day(today: date, month: int, day: int) -> date:
    """A named month and day: this year's, or next year's once it has passed."""
    d = date(today.year, month, min(day, calendar.monthrange(today.year, month)[1]))
    return (
        d
        if d >= today
        else date(today.year + 1, month, min(day, calendar.monthrange(today.year + 1, month)[1]))
    )


_WEEKDAY_JOIN = re.compile(r"[,，\s]*(the\s*|也就是|即)?")


def _zh(tok: str) -> int | None:
    v = parse_zh_number(tok)
    return int(v) if v is not None else None


def _en_day(num: str | None, word: str | None) -> int | None:
    if num:
        return int(num)
    return EN_ORDINALS.get((word or "").lower())


def find_dates(text: str, language: str, today: date) -> list[DateMention]:
    """Every date said in ``text``, in order; overlapping phrases keep the longest."""
    found = _zh_dates(text, today) if language == "zh" else _en_dates(text, today)
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    out: list[DateMention] = []
    for d in found:
        if out and d.start < out[-1].end:
            continue
        prev = out[-1] if out else None
        if prev is not None and prev.weekday and _WEEKDAY_JOIN.fullmatch(text[prev.end : d.start]):
            out[-1] = replace(d, start=prev.start)  # "Friday, February 6th" / "周五，也就是6号"
            continue
        out.append(d)
    return out


def _zh_dates(text: str, today: date) -> list[DateMention]:
    out: list[DateMention] = []

    def add(m: re.Match[str], value: date | None, recurring: bool = False, weekday: bool = False) -> None:
        if value is not None:
            out.append(DateMention(value, m.start(), m.end(), recurring, weekday))

    for m in re.finditer(r"今天|今日|今晚|今儿|当天", text):
        add(m, today)
    for m in re.finditer(r"(大)?后天|明天|明早|明晚|明日|明儿", text):
        add(m, today + timedelta(days=3 if m.group(1) else 2 if "后" in m.group() else 1))
    for m in re.finditer(r"(下下|下|这|本)?个?(?:周|星期|礼拜)([一二三四五六日天末1-7])", text):
        wd = WEEKDAYS_ZH.get(m.group(2), int(m.group(2)) - 1 if m.group(2).isdigit() else 0)
        if m.group(1) == "下下":
            add(m, weekday_next_week(today, wd) + timedelta(days=DAYS_IN_WEEK), weekday=True)
        elif m.group(1) == "下":
            add(m, weekday_next_week(today, wd), weekday=True)
        else:
            add(m, weekday_on_or_after(today, wd), weekday=True)
    for m in re.finditer(r"(下个?月|这个?月|本月)?(?:月)?(底|末)", text):
        if m.group(1) or text[max(0, m.start(2) - 1) : m.start(2)] == "月":
            add(m, month_end(today, 1 if m.group(1) and "下" in m.group(1) else 0))
    for m in re.finditer(r"(下个?月)初", text):
        add(m, add_months(today, 1, day=1))
    for m in re.finditer(rf"(每个?月|下个?月|这个?月|本月|({_ZN})月)?({_ZN})(号|日)", text):
        day = _zh(m.group(3))
        if day is None or not 1 <= day <= 31:
            continue
        prefix = m.group(1) or ""
        if m.group(2):
            month = _zh(m.group(2))
            if month is not None and 1 <= month <= 12:
                add(m, month_day(today, month, day))
        elif prefix.startswith("下"):
            add(m, day_of_month(today, day, months_ahead=1))
        elif prefix.startswith(("这", "本")):
            add(m, day_of_month(today, day, months_ahead=0))
        else:
            add(m, day_of_month(today, day), recurring=prefix.startswith("每"))
    for m in re.finditer(rf"({_ZN})天(内|后|之内|以内|之后|以后)", text):
        n = _zh(m.group(1))
        add(m, today + timedelta(days=n) if n else None)
    for m in re.finditer(r"一(个)?(周|星期|礼拜)(内|之内|以内|后)", text):
        add(m, today + timedelta(days=DAYS_IN_WEEK))
    return out


def _en_dates(text: str, today: date) -> list[DateMention]:
    out: list[DateMention] = []
    flags = re.IGNORECASE

    def add(m: re.Match[str], value: date | None, recurring: bool = False, weekday: bool = False) -> None:
        if value is not None:
            out.append(DateMention(value, m.start(), m.end(), recurring, weekday))

    for m in re.finditer(
        r"\b(tonight|today|this (evening|afternoon|morning)|end of (the )?day)\b", text, flags
    ):
        add(m, today)
    for m in re.finditer(r"\b(the day after )?tomorrow\b", text, flags):
        add(m, today + timedelta(days=2 if m.group(1) else 1))
    for m in re.finditer(rf"\b(next |this |coming )?({_EN_WEEKDAY})\b", text, flags):
        wd = WEEKDAYS_EN[m.group(2).lower()]
        nxt = (m.group(1) or "").strip().lower() == "next"
        add(m, weekday_next_week(today, wd) if nxt else weekday_on_or_after(today, wd), weekday=True)
    for m in re.finditer(
        r"\b(?:the )?end of (?:(the|this) month|(next) month|month)\b|\bmonth[- ]end\b", text, flags
    ):
        add(m, month_end(today, 1 if m.group(2) else 0))
    day_a = r"(?:(?P<n1>\d{1,2})(?:st|nd|rd|th)?|(?P<w1>" + "|".join(EN_ORDINALS) + "))"
    day_b = day_a.replace("n1", "n2").replace("w1", "w2")
    pattern = (
        rf"\b(?P<mon1>{_EN_MONTH}) (?:the )?{day_a}\b"
        rf"|\bthe {day_b}\b(?!\s+(?:on|by|due|is|one|payments?|instal|of (?:the|your|those|them)\b))"
        rf"(?: of (?P<of>next month|this month|every month|each month|the month|(?P<mon2>{_EN_MONTH})))?"
    )
    for m in re.finditer(pattern, text, flags):
        day = _en_day(m.group("n1"), m.group("w1")) or _en_day(m.group("n2"), m.group("w2"))
        if day is None or not 1 <= day <= 31:
            continue
        month_name = (m.group("mon1") or m.group("mon2") or "").lower()
        of = (m.group("of") or "").lower()
        before = text[max(0, m.start() - 16) : m.start()].lower()
        if month_name:
            add(m, month_day(today, MONTHS_EN[month_name], day))
        elif of == "next month" or before.rstrip().endswith("next month on"):
            add(m, day_of_month(today, day, months_ahead=1))
        elif of == "this month":
            add(m, day_of_month(today, day, months_ahead=0))
        else:
            add(m, day_of_month(today, day), recurring=of in ("every month", "each month"))
    for m in re.finditer(
        r"\b(?:in|within) (\d+|" + "|".join(EN_UNITS) + r"|a) (days?|weeks?)\b", text, flags
    ):
        n = (
            1
            if m.group(1).lower() == "a"
            else int(m.group(1))
            if m.group(1).isdigit()
            else EN_UNITS[m.group(1).lower()]
        )
        add(m, today + timedelta(days=n * (DAYS_IN_WEEK if m.group(2).lower().startswith("week") else 1)))
    return out


def find_time(text: str, language: str) -> str | None:
    """The first clock time said ("下午三点", "after 6", "at 3:30 pm") as "HH:MM"."""
    if language == "zh":
        m = re.search(rf"(早上|上午|中午|下午|晚上|傍晚|今晚|明晚)?({_ZN})点(半|({_ZN})分)?", text)
        if not m:
            return None
        hour = _zh(m.group(2))
        minute = 30 if m.group(3) == "半" else (_zh(m.group(4)) or 0) if m.group(4) else 0
        pm = m.group(1) in ("下午", "晚上", "傍晚", "今晚", "明晚") or (
            m.group(1) is None and hour is not None and hour <= PM_ASSUMED_UNTIL
        )
    else:
        words = "|".join(list(EN_UNITS)[1:13])
        clock = rf"(?P<h>\d{{1,2}}|{words})(?::(?P<m>\d\d))?"
        m = re.search(rf"\b{clock}\s?(?P<suf>a\.?m\.?|p\.?m\.?|o'clock)", text, re.IGNORECASE) or re.search(
            rf"\b(?:at|after|around)\s{clock}\b(?P<suf>)", text, re.IGNORECASE
        )
        if not m:
            return None
        g = m.group("h").lower()
        hour = int(g) if g.isdigit() else EN_UNITS[g]
        minute = int(m.group("m")) if m.group("m") else 0
        suffix = (m.group("suf") or "").lower()
        evening = re.search(r"\b(tonight|evening|afternoon)\b", text, re.IGNORECASE)
        pm = suffix.startswith("p") or (
            not suffix.startswith("a") and (hour <= PM_ASSUMED_UNTIL or bool(evening))
        )
    if hour is None or not 0 <= hour <= 24 or not 0 <= minute < 60:
        return None
    if pm and hour < NOON:
        hour += NOON
    return f"{hour:02d}:{minute:02d}"


def hours_from_now(text: str, language: str, call_time: datetime, timezone: str) -> datetime | None:
    """ "in two hours" / "半小时后": the local time that is, from the call's start."""
    if language == "zh":
        m = re.search(rf"(半|{_ZN})(个)?(半)?(小时|钟头)(后|以后|之后)", text)
        if not m:
            return None
        n = 0.5 if m.group(1) == "半" else float(_zh(m.group(1)) or 0) + (0.5 if m.group(3) else 0)
    else:
        m = re.search(r"\bin (an?|half an|\d+|" + "|".join(EN_UNITS) + r") hours?\b", text, re.IGNORECASE)
        if not m:
            return None
        g = m.group(1).lower()
        n = 1 if g in ("a", "an") else 0.5 if g == "half an" else int(g) if g.isdigit() else EN_UNITS[g]
    if call_time.tzinfo is None:
        call_time = call_time.replace(tzinfo=ZoneInfo("UTC"))
    return call_time.astimezone(ZoneInfo(timezone)) + timedelta(hours=n)
