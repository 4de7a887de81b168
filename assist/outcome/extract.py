"""What one utterance says about the outcome, on its own (the tracker adds the call's memory).

Terms live in clauses: "三百块周五前，然后每月两百" is a one-off payment and a plan
in one breath, so amounts are tied to the date in their own clause, and a clause
with a "每月 / a month / 第一期" word belongs to the plan.  A one-off clause needs a
date to count as an agent offer (a balance quoted by the agent is not one), but a
customer's own commitment may leave the date open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from assist.numbers import Number, find_numbers, parse_en_words, parse_zh_number
from assist.outcome import cues
from assist.outcome.dates import DateMention, find_dates, find_time, hours_from_now
from assist.outcome.model import (
    Callback,
    Channel,
    DisputeWhat,
    HardshipReason,
    Plan,
    PlanKind,
    Promise,
    Relation,
    Utterance,
)

DEFAULT_CURRENCY = {"zh": "CNY", "en": "USD"}
_CLAUSE_SPLIT = re.compile(
    r"[，。；;！!？?：:]|(?<!\d),|,(?!\d)|\.(?!\d)|\bthen\b|\band\b|然后|但是?|\bbut\b", re.IGNORECASE
)
# Whisper writes 期 (instalment) as its homophone 七/7: "每七两千九百块", "每71050元", "分三七"
_QI_AS_SEVEN = (
    (re.compile(r"每[七7](?=[0-9零一二两三四五六八九十百千万]{2,})"), "每期"),
    # "分三七" but not "分十七" (a real 17): the 七 must follow a digit, not 十
    (
        re.compile(
            r"(分成?[0-9零一二两三四五六八九十]*[0-9一二两三四五六八九])[七7](?![0-9零一二两三四五六七八九十百千万期个天次号])"
        ),
        r"\1期",
    ),
)
_ZN = r"[0-9零〇一二两三四五六七八九十百]+"
_EN_N = r"(?:\d+|[a-z]+(?:-[a-z]+)?)"
_PHONE = re.compile(r"\d[\d\- ]{6,}\d")


@dataclass(frozen=True)
class Clause:
    text: str
    start: int  # offset of the clause in the utterance
    money: tuple[Number, ...]
    dates: tuple[DateMention, ...]
    recurring: bool  # "每月", "a month", "payments of"
    first_instalment: bool  # "第一期 ... 开始", "starting"
    plan_cue: bool


@dataclass(frozen=True)
class Facts:
    """Everything one utterance says that bears on the outcome."""

    utterance: Utterance
    promises: tuple[Promise, ...] = ()  # customer: own commitments; agent: one-off offers with a date
    plan: Plan | None = None
    plan_due_recurring: bool = False  # the plan's only date is "every month on the Nth"
    dispute: DisputeWhat | None = None
    cease: bool = False
    channel: Channel | None = None
    lawyer: bool = False
    phone: str | None = None  # a phone number the customer gave (a lawyer's, when asked for it)
    callback: Callback | None = None
    third_party: Relation | None = None
    hardship: HardshipReason | None = None
    agrees: bool = False
    rejects: bool = False
    amounts: tuple[float, ...] = ()
    dates: tuple[date, ...] = ()
    acks: frozenset[str] = frozenset()


def _first(table: Sequence[tuple[str, re.Pattern[str]]], text: str) -> str | None:
    return next((label for label, pat in table if pat.search(text)), None)


def _int(token: str, language: str) -> int | None:
    v = parse_zh_number(token) if language == "zh" else None
    if v is None:
        v = float(token) if token.isdigit() else parse_en_words(token)
    return int(v) if v is not None else None


def clauses(text: str, language: str, today: date) -> list[Clause]:
    """The line cut at punctuation and "then / 然后"; numbers and dates are found on the whole
    line first (so "Friday, February 6th" stays one date) and go to the clause they start in."""
    money = [n for n in find_numbers(text, language) if n.is_money()]
    dates = find_dates(text, language, today)
    cuts = [0, *(x for m in _CLAUSE_SPLIT.finditer(text) for x in (m.start(), m.end())), len(text)]
    out = []
    for s, e in zip(cuts[::2], cuts[1::2], strict=False):
        part = text[s:e]
        if not part.strip():
            continue
        out.append(
            Clause(
                part,
                s,
                tuple(n for n in money if s <= n.start < e),
                tuple(d for d in dates if s <= d.start < e),
                bool(cues.RECURRING[language].search(part)),
                bool(cues.FIRST_INSTALMENT[language].search(part)),
                any(t[language].search(part) for t in _PLAN_TABLES.values()),
            )
        )
    return out


_PLAN_TABLES: Mapping[PlanKind, Mapping[str, re.Pattern[str]]] = {
    "grace": cues.PLAN_GRACE,
    "settlement": cues.PLAN_SETTLEMENT,
    "deferral": cues.PLAN_DEFERRAL,
    "instalments": cues.PLAN_INSTALMENTS,
}


def _plan_kind(text: str, language: str) -> PlanKind | None:
    return next((k for k, t in _PLAN_TABLES.items() if t[language].search(text)), None)


def _count(text: str, language: str) -> int | None:
    if language == "zh":
        m = re.search(rf"分(?:成|为)?({_ZN})(?:期|次|个月)|({_ZN})期", text)
    else:
        m = re.search(
            rf"\b({_EN_N}) (?:monthly |equal )?(?:payments|instal+ments)\b|\bover ({_EN_N}) months\b"
            rf"|\bsplit (?:it )?into ({_EN_N})\b",
            text,
            re.IGNORECASE,
        )
    if not m:
        return None
    tok = next(g for g in m.groups() if g)
    n = _int(tok, language)
    return n if n and n > 1 else None


def _span(text: str, language: str, zh: str, en: str) -> int | None:
    m = re.search(zh if language == "zh" else en, text, re.IGNORECASE)
    return _int(next(g for g in m.groups() if g), language) if m else None


def _instalment_amount(parts: list[Clause], language: str) -> Number | None:
    """The amount a plan clause names: the one nearest its "每期 / a month" word (after it on a tie,
    as in "每期1050元"), else its first; clauses without such a word only when none has one."""
    for c in sorted(parts, key=lambda c: not c.recurring):
        if not (c.recurring or c.plan_cue or c.first_instalment) or cues.REJECT[language].search(c.text):
            continue  # "I can't do $500 a month, but $200 a month" names 200
        money = [n for n in c.money if not n.approximate]
        cue = cues.RECURRING[language].search(c.text) if c.recurring else None
        if money and cue is not None:
            at, end = c.start + cue.start(), c.start + cue.end()
            return min(money, key=lambda n: (max(at - n.end, n.start - end, 0), n.start < at))
        if money:
            return money[0]
    return None


def _plan(parts: list[Clause], text: str, language: str, today: date) -> tuple[Plan | None, bool]:
    kind = _plan_kind(text, language)
    if kind is None or cues.ALTERNATIVES[language].search(text):
        return None, False
    amount = _instalment_amount(parts, language)
    dates = [d for c in parts if c.plan_cue or c.first_instalment or c.recurring for d in c.dates]
    dates = dates or [d for c in parts if not c.money for d in c.dates]  # "..., the first on May 5th"
    fixed = [d for d in dates if not d.recurring]
    first_due: DateMention | None = (fixed or dates)[0] if fixed or dates else None
    months = days = count = None
    if kind == "deferral":
        months = _span(
            text, language, rf"(?:延期|延后|推迟|缓|停)({_ZN})个?月|({_ZN})个月", rf"\b({_EN_N})[- ]months?\b"
        )
        d = _span(text, language, rf"(?:延期|延后|推迟)({_ZN})天", rf"\b({_EN_N})[- ]days?\b")
        if first_due is None and d:
            first_due = DateMention(date.fromordinal(today.toordinal() + d), 0, 0)
    elif kind == "grace":
        days = _span(
            text, language, rf"({_ZN})天(?:的)?宽限|宽限(?:期)?({_ZN})天", rf"\b({_EN_N})[- ]days?\b"
        )
    elif kind == "settlement":
        count = 1
        amount = amount or next((n for c in parts for n in c.money if not n.approximate), None)
    else:
        count = _count(text, language)
    plan = Plan(
        kind=kind,
        count=count,
        amount_each=amount.value if amount else None,
        currency=(amount.currency or DEFAULT_CURRENCY[language]) if amount else None,
        first_due=first_due.value if first_due else None,
        months_deferred=months,
        days_grace=days,
    )
    if (plan.count if kind != "settlement" else None) is None and not any(
        (plan.amount_each, plan.first_due, months, days)
    ):
        return None, False
    return plan, bool(first_due and first_due.recurring)


def _one_offs(parts: list[Clause], language: str, need_date: bool) -> list[Promise]:
    """Payments named once, each with the date in its clause (or the line's only free date)."""
    plan_dates = {d for c in parts if c.recurring or c.first_instalment or c.plan_cue for d in c.dates}
    # an agent's plan date is not an offer's date; a customer naming one date means that one
    free_dates = [
        d
        for c in parts
        if not (c.money and not (c.recurring or c.first_instalment or c.plan_cue))
        and not cues.REJECT[language].search(c.text)  # "Not today."
        for d in c.dates
        if not d.recurring and (not need_date or d not in plan_dates)
    ]
    out = []
    for c in parts:
        if c.recurring or c.first_instalment or c.plan_cue or cues.REJECT[language].search(c.text):
            continue  # "I can't pay $500 by Friday, but $200 on Monday" promises the 200
        for n in c.money:
            if n.approximate:
                continue
            due = c.dates[0] if c.dates else (free_dates[0] if len(free_dates) == 1 else None)
            if due is None and need_date:
                continue
            out.append(Promise(n.value, n.currency or DEFAULT_CURRENCY[language], due.value if due else None))
    return out


def extract(u: Utterance, today: date, call_time: datetime, timezone: str) -> Facts:
    lang = "zh" if u.language.startswith("zh") else "en"
    text = u.text
    if lang == "zh":
        for pattern, repl in _QI_AS_SEVEN:
            text = pattern.sub(repl, text)
    parts = clauses(text, lang, today)
    plan, recurring_due = _plan(parts, text, lang, today)
    facts = Facts(
        utterance=u,
        plan=plan,
        plan_due_recurring=recurring_due,
        amounts=tuple(n.value for c in parts for n in c.money),
        dates=tuple(d.value for c in parts for d in c.dates),
    )
    if u.speaker == "agent":
        acks = frozenset(k for k, pat in cues.ACK[lang].items() if pat.search(text))
        # "your $300 was due on the 5th" states the debt; "can you pay $300 by Friday?" offers
        states_debt = cues.OVERDUE[lang].search(text)
        offers = [] if states_debt else _one_offs(parts, lang, need_date=True)
        return replace(facts, promises=tuple(offers), acks=acks)
    return _customer(facts, parts, lang, today, call_time, timezone)


def _customer(
    facts: Facts, parts: list[Clause], lang: str, today: date, call_time: datetime, tz: str
) -> Facts:
    text = facts.utterance.text
    dispute: DisputeWhat | None = _first(cues.DISPUTE[lang], text)  # type: ignore[assignment]
    promises: list[Promise] = []
    if dispute is None and cues.PROMISE[lang].search(text) and not cues.PAST_OR_DISPUTED[lang].search(text):
        promises = _one_offs(parts, lang, need_date=False)
    callback = None
    cease = bool(cues.CEASE[lang].search(text))
    if cues.CALLBACK[lang].search(text) and not cease:
        later = hours_from_now(text, lang, call_time, tz)
        if later is not None:
            callback = Callback(later.date(), later.strftime("%H:%M"))
        else:
            dates = find_dates(text, lang, today)
            callback = Callback(dates[0].value if dates else None, find_time(text, lang))
    lawyer = bool(cues.LAWYER[lang].search(text)) and not cues.LAWYER_NEGATED[lang].search(text)
    phone = _PHONE.search(text)
    rejects = bool(cues.REJECT[lang].search(text))
    agree = bool(cues.AGREE[lang].search(text) or cues.AGREE_ANY[lang].search(text)) and not rejects
    return replace(
        facts,
        promises=tuple(promises),
        dispute=dispute,
        cease=cease,
        channel=_first(cues.CHANNEL[lang], text),  # type: ignore[arg-type]
        lawyer=lawyer,
        phone=phone.group() if phone else None,
        callback=callback,
        third_party=_first(cues.THIRD_PARTY[lang], text),  # type: ignore[arg-type]
        hardship=_first(cues.HARDSHIP[lang], text),  # type: ignore[arg-type]
        agrees=agree,
        rejects=rejects,
    )
