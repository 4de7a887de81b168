"""Customer turns read in the call's context, not one line at a time.

A short "yes" means nothing on its own and everything after "am I speaking with Tom Becker?";
"好的" after an offer is an agreement; a relative saying "hang on, let me get him" is still a third
party, and "Hi, this is Tom" after it is the borrower.  The detector (assist/signals.py) scores the
words; this module adjusts its hits with the agent line before the turn and the call state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from assist.signals import IGNORECASE, SIGNAL_KEYWORDS, SignalHit


def cues(zh: str | tuple[str, ...], en: str | tuple[str, ...]) -> Mapping[str, re.Pattern[str]]:
    """One pattern per language from alternatives; English ignores case."""

    def join(alts: str | tuple[str, ...]) -> str:
        return alts if isinstance(alts, str) else "|".join(alts)

    return {"zh": re.compile(join(zh)), "en": re.compile(join(en), IGNORECASE)}


# everything after "am I speaking with Tom Becker?"; a turn is judged with the agent line before it
# and the call state (who is on the line, what the customer last signalled).

_NUM_ZH = "0-9零〇一二三四五六七八九十两幺"
_NUM_EN = (
    r"\d|\b(zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|twenty|thirty"
    r"|forty|fifty|sixty|seventy|eighty|ninety|hundred|first|second|third|fifth|twelfth|nineteen)\b"
)
_MONTHS_EN = r"\b(january|february|march|april|may|june|july|august|september|october|november|december)\b"
# Agent lines that ask who is on the line, or for a detail that proves it.
ASKS_IDENTITY = cues(
    zh=(
        r"请问.{0,12}(吗|本人)|是.{1,8}(先生|女士|本人)吗|(身份证|证件).{0,8}(后四位|号码|尾号)|后四位|尾号",
        r"出生(日期|年月)|核(对|实)一下",
    ),
    en=(
        r"am i speaking (with|to)|may i speak (with|to)|is this \w+|speaking with \w+",
        r"date of birth|last (four|4)",
        r"zip|confirm your (name|identity|address|birth|social)|is \w+ (there|available|home|in)",
        r"(can|could) i speak (with|to)|is that you",
    ),
)
# Agent lines that put an option to the customer and ask for a yes.
OFFERS = cues(
    zh=r"(可以吗|行吗|您看(行|可以|怎么样|如何|呢)|好不好|能接受吗|合适吗|行不行|可不可以)[？?。]?\s*$",
    en=(
        r"(would|does|will) (that|this|it) work|how does (that|this) sound|can you do that",
        r"is that (ok|okay|alright)",
        r"would you (be able|agree|like to)|shall we|sound (ok|okay|good)\?",
    ),
)
# A bare yes / okay, nothing else said.
AFFIRMS: Mapping[str, re.Pattern[str]] = {
    "zh": re.compile(
        r"^(嗯+|对|是|是的|对的|对对+|好|好的|行|行吧|可以|没问题|没错|好吧|成)([，,。！!…\s]*"
        r"(嗯+|对|是的|好的|行|可以|没问题|是我|我是|我就是|本人|就这么办|就这样))*[。！!…\s]*$"
    ),
    "en": re.compile(
        r"^(yes|yeah|yep|yup|sure|ok|okay|right|correct|that's right|uh-huh|alright|all right|fine|deal"
        r"|that works|sounds good)([,.! ]+(yes|yeah|sure|ok|okay|that's me|it's me|speaking|fine|"
        r"that works|sounds good|let's do (that|it)))*[.! ]*$",
        IGNORECASE,
    ),
}
# Digits or a date read out: the proof an identity question asked for.
IDENTITY_DATA: Mapping[str, re.Pattern[str]] = {
    "zh": re.compile(rf"^[^，。？！?]{{0,6}}[{_NUM_ZH}]{{2,}}|[{_NUM_ZH}]+(年|月|号|日)"),
    "en": re.compile(rf"({_NUM_EN}).*({_NUM_EN})|{_MONTHS_EN}", IGNORECASE),
}
# "喂，我是林晓雯" / "Hi, this is Tom": a person naming themselves (not "I'm his wife").
SELF_NAME: Mapping[str, re.Pattern[str]] = {
    "zh": re.compile(
        r"^(喂[，,。]?\s*)?(你好[，,。]?\s*)?我(就)?是(?![他她你我])[\u4e00-\u9fff]{2,3}[。！!]?$"
    ),
    "en": re.compile(
        r"^(?i:((hi|hello|hey|yes|yeah)[,.! ]+)?(this is|it's|it is) (?!(his|her|my|the)\b))[A-Z][a-z]+\b"
    ),
}
# A relative going to fetch the borrower.
FETCHING = cues(
    zh=r"稍等|等一下|等会|等一会|我去叫|叫(他|她)|(他|她).{0,4}回来了|来接",
    en=(
        r"let me get (him|her)|hang on|hold on|i'?ll get (him|her)|one (sec|second|moment|minute)",
        r"(he|she)('s| is) (coming|here|right here)|(he|she) just (walked|came) in",
    ),
)
# A question about what happens if the check goes one way or the other: in an open dispute, it is
# still about the dispute ("那要是你们查了半天，还说没收到呢？").
WHAT_IF = cues(
    zh=r"要是|如果|万一|假如",
    en=r"\bwhat (happens )?if\b|\bwhat about if\b|\band if\b",
)
# Agent lines asking for contact details, and for how someone is.
ASKS_DETAILS = cues(
    zh=r"(姓名|名字|联系|电话|号码|地址|邮箱).{0,8}(联系电话|联系方式|电话|号码|地址|邮箱)",
    en=r"(name|phone|number|address|email|contact)\b.{0,20}\b(number|address|email|details)\b",
)
ASKS_WELLBEING = cues(
    zh=r"(好些|好点|好一点|怎么样|还好)了?吗",
    en=r"(doing|feeling|getting) better|how is (he|she|your)|how are (you|they) (doing|holding up)",
)
RECOVERED = cues(
    zh=r"^(嗯|哦)?[，,]?(好多了|好些了|好点了|没事了|已经好了|恢复)",
    en=(
        r"^((yes|yeah|oh)[, ]+)?(much |a lot |a bit )?better",
        r"^(he|she|they)('s| is| are) (doing )?(better|fine|ok)",
    ),
)
# Short turns only: a long one says more than yes.
SHORT_REPLY_CHARS = {"zh": 14, "en": 60}
# When both signals of a pair are given and only one's keyword is in the text, the other goes:
# a customer who contests the debt is not committing to it or asking to spread it, and a line
# that names a court or the police without the words "lawyer"/"律师" is not about a lawyer.
CONTRADICTIONS: tuple[tuple[str, str], ...] = (
    ("dispute", "promise_to_pay"),
    ("dispute", "request_plan"),
    ("dispute", "lawyer"),
    ("hostile", "lawyer"),
    ("hostile", "request_plan"),
    ("third_party", "confirm_identity"),
)
# Pairs where the first wins even when both keywords are there ("我十号就转过去了" reads as a
# promise by its words, but paying already is a dispute).
FIRST_WINS_TIE: frozenset[tuple[str, str]] = frozenset(
    {("dispute", "promise_to_pay"), ("dispute", "request_plan"), ("third_party", "confirm_identity")}
)
# Signals that need their own words: similarity alone confuses them with their neighbours.
NEEDS_KEYWORD: frozenset[str] = frozenset({"lawyer"})
CONTEXT_SCORE = 0.8  # the score given to a signal the context alone supplies


@dataclass(frozen=True)
class TurnContext:
    """What the call says about the customer turn being read."""

    previous_agent_line: str = ""
    third_party_on_line: bool = False
    identity_confirmed: bool = False
    last_signal: str | None = None
    signals_seen: frozenset[str] = frozenset()


def read_in_context(
    hits: Sequence[SignalHit], text: str, language: str, context: TurnContext
) -> list[SignalHit]:
    """The signals of one customer turn once the agent line before it and the call state are read."""
    keywords = SIGNAL_KEYWORDS.get(language, {})
    said = text.strip()

    def kw(sid: str) -> bool:
        pat = keywords.get(sid)
        return pat is not None and pat.search(said) is not None

    out = {h.signal: h for h in hits if h.signal not in NEEDS_KEYWORD or kw(h.signal)}
    for a, b in CONTRADICTIONS:
        if a in out and b in out:
            if kw(a) and (not kw(b) or (a, b) in FIRST_WINS_TIE):
                del out[b]
            elif kw(b) and not kw(a):
                del out[a]

    def add(sid: str) -> None:
        if sid not in out:
            out[sid] = SignalHit(sid, CONTEXT_SCORE, said)

    prev = context.previous_agent_line
    short = len(said) <= SHORT_REPLY_CHARS.get(language, SHORT_REPLY_CHARS["en"])
    affirm = AFFIRMS.get(language)
    is_affirm = affirm is not None and affirm.match(said) is not None

    def matches(table: Mapping[str, re.Pattern[str]], value: str) -> bool:
        pat = table.get(language)
        return pat is not None and pat.search(value) is not None

    if matches(ASKS_DETAILS, prev) or (matches(ASKS_WELLBEING, prev) and matches(RECOVERED, said)):
        # An answer to "your lawyer's name and number?" or "is he better now?" is data, not a
        # signal, unless the customer also says one in so many words.
        out = {sid: h for sid, h in out.items() if kw(sid)}
    names_self = matches(SELF_NAME, said) and not context.identity_confirmed
    if "third_party" not in out and (
        names_self or (short and matches(ASKS_IDENTITY, prev) and (is_affirm or matches(IDENTITY_DATA, said)))
    ):
        for sid in ("promise_to_pay", "request_plan", "hardship"):
            out.pop(sid, None)
        add("confirm_identity")
    elif is_affirm and matches(OFFERS, prev):
        out.pop("confirm_identity", None)
        add("promise_to_pay")
    if (
        context.third_party_on_line
        and not context.identity_confirmed
        and "confirm_identity" not in out
        and matches(FETCHING, said)
    ):
        add("third_party")
    if (
        "dispute" in (context.signals_seen | {context.last_signal})
        and matches(WHAT_IF, said)
        and said.endswith(("?", "？"))
    ):
        # A question about the check under way keeps the dispute open: it is no promise or plan
        # ("查了半天，还说..." has a promise's words), and what similarity alone read into it goes.
        out = {sid: h for sid, h in out.items() if kw(sid) and sid not in ("promise_to_pay", "request_plan")}
        add("dispute")
    return sorted(out.values(), key=lambda h: -h.score)
