"""Personal data masked before a transcript is stored or shown, in Mandarin and English.

Call transcripts carry what borrowers read out: ID-card and bank-card numbers, phone numbers, e-mail
addresses.  The store and the review report keep only a masked form, so a QA reviewer (or a leaked
database) sees *what kind* of identifier was said and can match it against the account by its last
digits, but never the identifier itself.

Mask format (stable; the README documents it)::

    [<label> ****<last 4>]        e.g. "[phone ****8000]", "[身份证号 ****708X]"
    [<label> ***@<domain>]        e-mail: the local part is hidden, the domain kept ("[email ***@qq.com]")

``<last 4>`` is always written in ASCII digits (plus a final ``X`` for ID cards) even when the digits
were spoken as Chinese numerals or English words, so "幺三八零零一三八零零零" becomes
"[电话 ****8000]".  The label is in the call's language:

    kind          en          zh
    id_card       ID card     身份证号
    bank_card     bank card   银行卡号
    phone         phone       电话
    email         email       邮箱
    long_number   number      号码

Masking is idempotent (a masked text contains at most four digits in a row, below every threshold),
so masking twice -- once by the service, once by the store -- is harmless.

What counts as an identifier.  Amounts, dates, instalment counts and "last four digits 3708" must stay
readable, so only *long digit runs* are masked.  A run is a sequence of digits written as Arabic or
full-width digits, Chinese numerals (零〇一二三四五六七八九幺两) or English digit words (zero/oh/one
... nine, "double five"), possibly mixed, separated by at most a few spaces and one of ``- , ， 、 . ( )
/``.  Numbers with place words (八千七百, "one thousand eight hundred") never form a run.  A run is:

* ``id_card``: 18 characters, 17 digits and a final digit or X (X/x/叉/艾克斯), with a plausible birth
  date at positions 7-14 (an X always qualifies).
* ``phone``: CN mobile ``1[3-9]`` + 9 digits, optionally after 86/+86/0086; CN landline ``0`` + area
  code + number (10-12 digits) or after +86; US ``[2-9]xx [2-9]xx xxxx`` optionally after 1/+1;
  and a 7-8 digit local number when a phone word (电话, 手机, phone, call me ...) comes just before it.
* ``bank_card``: any other run of 13-19 digits (18-digit runs without a birth date included).
* ``long_number``: any other run of 10 or more digits (account and contract numbers), a safety net.

Spoken e-mail addresses ("rebecca dot hale at gmail dot com", "zhangsan艾特qq点com") are masked too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

KINDS = ("id_card", "bank_card", "phone", "email", "long_number")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "id_card": "ID card",
        "bank_card": "bank card",
        "phone": "phone",
        "email": "email",
        "long_number": "number",
    },
    "zh": {
        "id_card": "身份证号",
        "bank_card": "银行卡号",
        "phone": "电话",
        "email": "邮箱",
        "long_number": "号码",
    },
}

KEEP_DIGITS = 4  # trailing digits left visible: enough to match an account, too few to identify anyone
MIN_LONG_NUMBER = 10  # shortest run masked without any other evidence; dates (8) and amounts stay
MIN_CONTEXT_PHONE, MAX_CONTEXT_PHONE = 7, 8  # local numbers masked only right after a phone word
PHONE_CONTEXT_CHARS = 16  # how far before a 7-8 digit run a phone word may be
MAX_GAP_SPACES = 3  # spaces allowed between two digits of one run (on each side of a separator)


@dataclass(frozen=True)
class MaskingPolicy:
    """Which kinds of personal data are masked; every kind is on by default."""

    id_card: bool = True
    bank_card: bool = True
    phone: bool = True
    email: bool = True
    long_number: bool = True

    @classmethod
    def off(cls) -> MaskingPolicy:
        return cls(**{f.name: False for f in fields(cls)})

    @classmethod
    def only(cls, *kinds: str) -> MaskingPolicy:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown masking kind(s): {names}; known: {', '.join(KINDS)}")
        return cls(**{f.name: f.name in kinds for f in fields(cls)})

    def enabled(self, kind: str) -> bool:
        return bool(getattr(self, kind, False))

    @property
    def active(self) -> bool:
        return any(self.enabled(k) for k in KINDS)


@dataclass(frozen=True)
class MaskedSpan:
    """One masked identifier; ``start``/``end`` index the *masked* text (the original is not kept)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class MaskResult:
    text: str
    spans: tuple[MaskedSpan, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds found, each once, in the order of ``KINDS``."""
        found = {s.kind for s in self.spans}
        return tuple(k for k in KINDS if k in found)


DEFAULT_POLICY = MaskingPolicy()

_EN_DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_ZH_DIGITS = {
    "零": "0",
    "〇": "0",
    "幺": "1",
    "一": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_EN_WORD = "|".join(_EN_DIGITS)
_UNIT = re.compile(
    r"(?P<ar>[0-9０-９])"
    r"|(?P<zh>[" + "".join(_ZH_DIGITS) + r"])"
    r"|(?P<mult>\b(?:double|triple)\s+(?:" + _EN_WORD + r")\b)"
    r"|(?P<en>\b(?:" + _EN_WORD + r")\b)",
    re.IGNORECASE,
)
_SPACES = r"[ \t\u3000]{0," + str(MAX_GAP_SPACES) + "}"
_GAP = re.compile(_SPACES + r"[-–—,，、.()（）/]?" + _SPACES)
_X_AFTER = re.compile(r"[ \t]?(?:[XxＸｘ叉](?![A-Za-z])|艾克斯)")
_PHONE_WORDS = re.compile(
    r"(电话|手机|座机|号码是|联系方式|打给|致电|phone|cell|mobile|landline|call me|reach me|text me)",
    re.IGNORECASE,
)
_DATE8 = re.compile(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_TLDS = "com|net|org|edu|gov|cn|io|co|us|uk|hk|tw|info|biz|me"
_SP_DOT = r"(?:\s+dot\s+|\s*点\s*|\s*\.\s*)"
_SP_EMAIL = re.compile(
    r"(?<![A-Za-z0-9'])(?P<local>[a-z0-9_]+(?:(?:\s+(?:dot|underscore)\s+|\s*(?:点|下划线|[._])\s*)[a-z0-9_]+)*)"
    r"(?:\s+at\s+|\s*艾特\s*)"
    r"(?P<domain>[a-z0-9-]+(?:" + _SP_DOT + r"[a-z0-9-]+)*?)" + _SP_DOT + r"(?P<tld>" + _TLDS + r")\b",
    re.IGNORECASE,
)


@dataclass
class _Run:
    start: int
    end: int
    digits: str


@dataclass(frozen=True)
class _Hit:
    kind: str
    start: int
    end: int
    shown: str  # the visible tail: last digits, or "***@domain"


def _unit_digits(m: re.Match[str]) -> str:
    if m.group("ar"):
        c = m.group("ar")
        return chr(ord(c) - 0xFF10 + 0x30) if "０" <= c <= "９" else c
    if m.group("zh"):
        return _ZH_DIGITS[m.group("zh")]
    if m.group("mult"):
        times, word = m.group("mult").lower().split()
        return _EN_DIGITS[word] * (2 if times == "double" else 3)
    return _EN_DIGITS[m.group("en").lower()]


def _runs(text: str) -> list[_Run]:
    runs: list[_Run] = []
    cur: _Run | None = None
    for m in _UNIT.finditer(text):
        d = _unit_digits(m)
        if cur is not None and _GAP.fullmatch(text, cur.end, m.start()):
            cur.end = m.end()
            cur.digits += d
            continue
        cur = _Run(m.start(), m.end(), d)
        runs.append(cur)
    for run in runs:
        if len(run.digits) == 17:
            x = _X_AFTER.match(text, run.end)
            if x:
                run.end = x.end()
                run.digits += "X"
        # "+86 138..." and "(415) 555-...": the prefix belongs to the masked identifier
        if run.start > 0 and text[run.start - 1] in "+＋(（":
            run.start -= 1
            if run.start > 0 and text[run.start - 1] in "+＋":
                run.start -= 1
    return runs


def _nanp(d: str) -> bool:
    return len(d) == 10 and d[0] in "23456789" and d[3] in "23456789"


def _cn_mobile(d: str) -> bool:
    return len(d) == 11 and d[0] == "1" and d[1] in "3456789"


def _plausible_birth(d: str) -> bool:
    year, month, day = int(d[6:10]), int(d[10:12]), int(d[12:14])
    return 1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31


def _classify(d: str, text: str, start: int) -> str | None:
    n = len(d)
    if n == 18 and (d.endswith("X") or _plausible_birth(d)):
        return "id_card"
    if d.endswith("X"):
        return None
    if any(d.startswith(prefix) and _cn_mobile(d[len(prefix) :]) for prefix in ("", "86", "0086")):
        return "phone"
    if d[0] == "0" and 10 <= n <= 12:
        return "phone"  # CN landline: 0 + 2-3 digit area code + 7-8 digit number
    if d.startswith("86") and 11 <= n <= 12 and text[max(0, start) : start + 1] in ("+", "＋"):
        return "phone"  # +86 landline without the trunk 0
    if _nanp(d) or (n == 11 and d[0] == "1" and _nanp(d[1:])):
        return "phone"
    if 13 <= n <= 19:
        return "bank_card"
    if n >= MIN_LONG_NUMBER:
        return "long_number"
    if MIN_CONTEXT_PHONE <= n <= MAX_CONTEXT_PHONE and not _DATE8.fullmatch(d):
        before = text[max(0, start - PHONE_CONTEXT_CHARS) : start]
        if _PHONE_WORDS.search(before):
            return "phone"
    return None


def _hits(text: str, policy: MaskingPolicy) -> list[_Hit]:
    hits: list[_Hit] = []
    if policy.email:
        for m in _EMAIL.finditer(text):
            hits.append(_Hit("email", m.start(), m.end(), "***@" + m.group().rsplit("@", 1)[1].lower()))
        for m in _SP_EMAIL.finditer(text):
            domain = re.sub(_SP_DOT, ".", m.group("domain"), flags=re.IGNORECASE)
            hits.append(_Hit("email", m.start(), m.end(), f"***@{domain}.{m.group('tld')}".lower()))
    for run in _runs(text):
        kind = _classify(run.digits, text, run.start)
        if kind is not None and policy.enabled(kind):
            hits.append(_Hit(kind, run.start, run.end, "****" + run.digits[-KEEP_DIGITS:]))
    # overlaps: an e-mail wins over digits inside it, then the longer span
    hits.sort(key=lambda h: (h.start, h.kind != "email", -(h.end - h.start)))
    kept: list[_Hit] = []
    for h in hits:
        if kept and h.start < kept[-1].end:
            continue
        kept.append(h)
    return kept


def mask_text(text: str, *, language: str, policy: MaskingPolicy = DEFAULT_POLICY) -> MaskResult:
    """Mask every enabled kind of identifier in ``text``.

    Every detector runs whatever the language (borrowers read English e-mail addresses in Mandarin
    calls and digits in either tongue); ``language`` ("zh" or "en", anything else is treated as
    "en") picks the labels.
    """
    if not text or not policy.active:
        return MaskResult(text, ())
    labels = LABELS.get(language[:2].lower(), LABELS["en"])
    out: list[str] = []
    spans: list[MaskedSpan] = []
    pos = 0
    length = 0
    for h in _hits(text, policy):
        out.append(text[pos : h.start])
        length += h.start - pos
        token = f"[{labels[h.kind]} {h.shown}]"
        spans.append(MaskedSpan(h.kind, length, length + len(token)))
        out.append(token)
        length += len(token)
        pos = h.end
    out.append(text[pos:])
    return MaskResult("".join(out), tuple(spans))


def mask(text: str, *, language: str, policy: MaskingPolicy = DEFAULT_POLICY) -> str:
    """Shorthand for the masked text alone."""
    return mask_text(text, language=language, policy=policy).text
