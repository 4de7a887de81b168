"""Last line of defence against Whisper's hallucinations before text reaches guidance.

Whisper was trained on subtitled video, so on silence, line noise or a
clipped word it confidently writes subtitle credits ("字幕由Amara.org社区提供"),
sign-offs ("Thanks for watching"), echoes of its prompt, or loops one phrase
until the token limit.  A phantom sentence fed to the compliance and
suggestion engines would raise false alarms in a live call, so such output is
dropped or cleaned here.  Everything is text/score based and cheap (well under
a millisecond), because it runs on every partial as well as every final.

Thresholds were checked against the fixtures: real speech through
whisper-base scored no_speech_prob <= 0.54 (dynamic window) / 0.42 (30 s
window), while 2 s of -60 dBFS line noise or white noise scored >= 0.63.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from stream.asr.base import SAMPLE_RATE, AsrRequest, AsrResult
from stream.asr.numbers import normalise_numbers
from stream.asr.spacing import display_spacing

# Whisper's own silence rule (transcribe.py defaults): both must hold.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
# Above this the no-speech token alone is decisive; utterances reaching the ASR already passed
# the VAD, so real speech scoring this high has not been seen (max 0.54 on the fixtures).
NO_SPEECH_CERTAIN = 0.8
# Short phantoms ("you", "thank you", "谢谢") are also real answers; they are dropped only
# when the model itself doubts there was speech.
UNSURE_PHANTOM_NO_SPEECH = 0.5

# A unit (character, word or phrase) repeated back to back this many times is a decoding loop.
LOOP_MIN_REPEATS_SHORT = 6  # units of <= LOOP_SHORT_UNIT_CHARS ("对对对对" and "行了行了" are real speech)
LOOP_MIN_REPEATS_LONG = 3  # longer units: nobody says the same phrase three times running
LOOP_MIN_REPEATS_DIGITS = 16  # "1000000" is a number, not a loop
# A digit or a single character written as separate tokens ("3 3 3 3", "1, 1, 1, 1", "a a a a") is
# no number and no word: four copies are a loop.  Three survive: "1 3 3 3" is a phone number read out.
LOOP_MIN_REPEATS_TOKENS = 4
# What separates the copies of a token loop; a bare "," or "." between digits groups a number instead.
TOKEN_SEPARATORS = frozenset(" \t，、；;")
LOOP_SHORT_UNIT_CHARS = 3
LOOP_MAX_UNIT_CHARS = 40  # bounds the regex work; Whisper's loops are short phrases
# A looped unit this long is a real sentence the decoder failed to stop after (seen on a 1.8 s
# "Hello, is this Marcus Bell?"), so one copy is kept even when nothing else remains.
LOOP_SENTENCE_MIN_CHARS = 12
# A Mandarin character is a syllable, so a sentence is shorter: whisper-base at 8 kHz looped the
# customer's "最后四位是三七零八" (9 characters) three times and the whole answer was lost, and with
# the service window it looped "行，就这样吧" (5) on a 1.6 s clip.  One copy is kept when the model is
# sure there was speech and the unit is long enough to be what the clip said: at least
# LOOP_UNIT_CHARS_PER_S characters per second of clip (Mandarin is spoken at 3-6), or, when the clip
# length is not known, LOOP_SENTENCE_MIN_CHARS_CJK characters.  A word looped on noise ("账单", 2
# characters on a 2 s clip) stays below both.
LOOP_SENTENCE_MIN_CHARS_CJK = 6
LOOP_UNIT_MIN_CHARS_CJK = 4
LOOP_UNIT_CHARS_PER_S = 2.5
CJK_LANGUAGES = ("zh",)
# On a clip this short (a word or two: "Hi", "喂") Whisper, handed the clip padded with silence,
# often fails to stop after the word and loops it ("hi hi hi hi ..." on a 0.66 s "Hi"): one copy is
# kept when the model is sure there was speech.  Longer clips keep the rule above.
SHORT_CLIP_MAX_S = 1.2
PROMPT_ECHO_MIN_WORDS = 2  # a lone domain word ("逾期?") can be a real answer; two or more echoed is not
PROMPT_ECHO_MIN_CHARS = 4  # shorter fragments of the prompt occur in real speech by chance

DROP_EMPTY = "empty"
DROP_NO_SPEECH = "no_speech"
PHANTOM = "phantom_phrase"
REPETITION = "repetition"
PROMPT_ECHO = "prompt_echo"
NORMALISE_CACHE = 4096  # hotwords and phrases recur on every call; the script fold is pure Python

# Clauses containing any of these (after normalisation) never come from a phone call:
# subtitle credits, channel sign-offs and subscribe requests from Whisper's training videos.
PHANTOM_MARKERS = (
    "amara.org",
    "字幕由",
    "字幕提供",
    "字幕制作",
    "字幕志愿者",
    "中文字幕",
    "字幕组",
    "明镜与点点栏目",
    "请不吝点赞",
    "点赞订阅",
    "订阅我的频道",
    "订阅频道",
    "欢迎订阅",
    "谢谢观看",
    "感谢观看",
    "谢谢收看",
    "感谢收看",
    "谢谢大家观看",
    "下期再见",
    "我们下期见",
    "优优独播剧场",
    "yoyo television",
    "词曲 李宗盛",
    "以上言论不代表本台立场",
    "thanks for watching",
    "thank you for watching",
    "thank you so much for watching",
    "see you in the next video",
    "see you next time",
    "subtitles by",
    "subtitled by",
    "captions by",
    "transcription by",
    "transcribed by",
    "castingwords",
    "please subscribe",
    "like and subscribe",
    "subscribe to my channel",
    "subscribe to our channel",
    "don't forget to subscribe",
    "ご視聴ありがとうございました",
    "チャンネル登録",
    "시청해주셔서 감사합니다",
    "구독과 좋아요",
)

# Whole-utterance phantoms that are also ordinary words; dropped only with a doubtful no-speech score.
UNSURE_PHANTOMS: dict[str, tuple[str, ...]] = {
    "en": ("you", "thank you", "thanks", "thank you very much", "bye", "bye bye", "the", "and", "i'm", "so"),
    "zh": ("谢谢", "谢谢大家", "谢谢你", "嗯", "好", "拜拜", "再见"),
}

_SENTENCE_END = "。！？!?；;…\n"
_SEPARATORS = r"[\s,，、。.!！?？;；:：…\-—~～]*"


@dataclass(frozen=True)
class GuardVerdict:
    keep: bool
    text: str  # the text to use: cleaned when kept, "" when dropped
    reason: str | None  # why it was dropped or cleaned; None when it passed untouched

    @property
    def changed(self) -> bool:
        return self.keep and self.reason is not None


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=NORMALISE_CACHE)
def normalise(text: str) -> str:
    """Compare form: NFKC, simplified script, lower case, without punctuation, symbols or spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = str(_t2s().convert(text))
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


_MARKERS = tuple(dict.fromkeys(normalise(m) for m in PHANTOM_MARKERS))
_UNSURE = {lang: frozenset(normalise(p) for p in phrases) for lang, phrases in UNSURE_PHANTOMS.items()}
_SEP_RE = re.compile(_SEPARATORS)
_LOOP_RE = re.compile(
    # A digit copy never starts or ends inside a longer number ("13 3 3 3", "3 3 3 32000").
    rf"(?P<unit>(?!(?<=\d)\d)\S.{{0,{LOOP_MAX_UNIT_CHARS - 1}}}?)"
    rf"(?:{_SEPARATORS}(?P=unit)(?!(?<=\d)\d)){{2,}}",
    re.DOTALL,
)


def _clauses(text: str) -> list[str]:
    """Split after sentence-ending punctuation; a '.' ends one only before a space ('Amara.org' stays)."""
    clauses: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        ends = ch in _SENTENCE_END or (ch == "." and (i + 1 == len(text) or text[i + 1].isspace()))
        if ends:
            clauses.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        clauses.append(text[start:])
    return clauses


def _strip_phantoms(text: str) -> str:
    kept = [c for c in _clauses(text) if not any(m in normalise(c) for m in _MARKERS)]
    return "".join(kept).strip()


def _is_digits(core: str) -> bool:
    return core.replace(",", "").replace(".", "").isdigit()  # ",000" of "1,000,000,000" too


def _token_loop(core: str, looped: str) -> bool:
    """A digit or single character repeated as separate tokens ("3 3 3 3", "1, 1, 1", "a a a")."""
    separators = set(looped.replace(core, ""))
    return bool(separators & TOKEN_SEPARATORS) and (core.isdigit() or len(core) == 1)


def _min_repeats(unit: str, looped: str) -> int:
    """Copies of ``unit`` in ``looped`` (the matched run) that make it a loop."""
    core = unit.strip()
    if _token_loop(core, looped):
        return LOOP_MIN_REPEATS_TOKENS
    if _is_digits(core):
        return LOOP_MIN_REPEATS_DIGITS
    return LOOP_MIN_REPEATS_SHORT if len(core) <= LOOP_SHORT_UNIT_CHARS else LOOP_MIN_REPEATS_LONG


def collapse_loops(text: str) -> tuple[str, str, str]:
    """(text with every loop cut to one unit, text with loops removed entirely, longest looped unit).

    A looped digit token ("3 3 3 3") is removed from the first text too, not cut to one copy.
    """
    collapsed: list[str] = []
    removed: list[str] = []
    longest = ""
    pos = 0
    while True:
        match = _LOOP_RE.search(text, pos)
        if match is None:
            break
        unit = match.group("unit")
        repeats = len(re.findall(re.escape(unit), match.group(0)))
        if repeats < _min_repeats(unit, match.group(0)):
            collapsed.append(text[pos : match.start() + 1])
            removed.append(text[pos : match.start() + 1])
            pos = match.start() + 1
            continue
        end = match.end()
        # A loop cut off by the token limit ends in a fragment of its unit ("金 利息 金 利"): swallow it.
        rest = normalise(text[end:])
        if rest and normalise(unit).startswith(rest):
            end = len(text)
        # Keep the punctuation that closed the first occurrence ("smell? smell? ..." -> "smell?").
        closing = _SEP_RE.match(text, match.start() + len(unit))
        punct = closing.group(0).strip() if closing else ""
        kept = unit + punct
        if unit.strip().isdigit() and _token_loop(unit.strip(), match.group(0)):
            # Not even one copy of a looped digit is kept: shown as an amount it could change the deal.
            kept, punct = "", ""
            trailing = _SEP_RE.match(text, end)
            end = trailing.end() if trailing and text[: match.start()].endswith(" ") else end
        after = _SEP_RE.match(text, end)
        if punct and after and after.group(0):  # don't double it with the loop's trailing separator
            end = after.end()
            kept += " " if any(ch.isspace() for ch in after.group(0)) and end < len(text) else ""
        collapsed.append(text[pos : match.start()] + kept)
        removed.append(text[pos : match.start()])
        longest = max(longest, unit.strip(), key=len)
        pos = end
    collapsed.append(text[pos:])
    removed.append(text[pos:])
    return "".join(collapsed).strip(), "".join(removed).strip(), longest


def _prompt_echo(text: str, prompt: str, hotwords: str) -> bool:
    """True when the text is only the prompt, or only (two or more of) the hotwords, played back."""
    norm = normalise(text)
    if not norm:
        return False
    norm_prompt = normalise(prompt)
    if len(norm) >= PROMPT_ECHO_MIN_CHARS and norm_prompt and norm in norm_prompt:
        return True
    words = sorted({normalise(w) for w in hotwords.split()} - {""}, key=len, reverse=True)
    if not words:
        return False
    rest, count = norm, 0
    for word in words:
        count += rest.count(word)
        rest = rest.replace(word, "")
    return not rest and count >= PROMPT_ECHO_MIN_WORDS


def check_transcript(
    text: str,
    result: AsrResult,
    *,
    language: str,
    prompt: str = "",
    hotwords: str = "",
    audio_s: float | None = None,
) -> GuardVerdict:
    """Keep, clean or drop one transcript.

    ``prompt``/``hotwords`` are what the ASR request carried; passing them lets
    the guard recognise Whisper reciting its own prompt on silence.  ``audio_s``
    (the clip's length) lets it tell a short word Whisper looped on from a loop
    on noise (:data:`SHORT_CLIP_MAX_S`).
    """
    original = text.strip()
    if not normalise(original):
        return GuardVerdict(False, "", DROP_EMPTY)
    silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob < LOGPROB_THRESHOLD
    if silent or result.no_speech_prob > NO_SPEECH_CERTAIN:
        return GuardVerdict(False, "", DROP_NO_SPEECH)

    reason: str | None = None
    cleaned = _strip_phantoms(original)
    if cleaned != original:
        reason = PHANTOM
        if not normalise(cleaned):
            return GuardVerdict(False, "", PHANTOM)
    unsure = _UNSURE.get(language, frozenset()) | _UNSURE["en"]
    if normalise(cleaned) in unsure and result.no_speech_prob >= UNSURE_PHANTOM_NO_SPEECH:
        return GuardVerdict(False, "", PHANTOM)

    collapsed, remainder, unit = collapse_loops(cleaned)
    if collapsed != cleaned:
        keep_sentence = _looped_sentence(normalise(unit), result, language, audio_s)
        nothing_left = not normalise(remainder) and not keep_sentence and not _looped_word(result, audio_s)
        if nothing_left or not normalise(collapsed):
            return GuardVerdict(False, "", REPETITION)
        cleaned, reason = collapsed, REPETITION

    if _prompt_echo(cleaned, prompt, hotwords):
        return GuardVerdict(False, "", PROMPT_ECHO)
    return GuardVerdict(True, cleaned, reason)


def _looped_sentence(unit: str, result: AsrResult, language: str, audio_s: float | None) -> bool:
    """A looped unit long enough to be a real sentence the decoder failed to stop after."""
    if len(unit) >= LOOP_SENTENCE_MIN_CHARS:
        return True
    if language not in CJK_LANGUAGES or result.no_speech_prob >= UNSURE_PHANTOM_NO_SPEECH:
        return False
    if audio_s is None:
        return len(unit) >= LOOP_SENTENCE_MIN_CHARS_CJK
    return len(unit) >= max(LOOP_UNIT_MIN_CHARS_CJK, audio_s * LOOP_UNIT_CHARS_PER_S)


def _looped_word(result: AsrResult, audio_s: float | None) -> bool:
    """A loop on a clip too short to hold more than a word or two, with the model sure of speech:
    the decoder failed to stop after a real word, so one copy of it is what was said."""
    return (
        audio_s is not None
        and audio_s <= SHORT_CLIP_MAX_S
        and result.no_speech_prob < UNSURE_PHANTOM_NO_SPEECH
    )


def check_request(result: AsrResult, request: AsrRequest) -> GuardVerdict:
    """:func:`check_transcript` with what the request carried: its prompt, hotwords and audio length.

    This is the last text step of the live and offline paths (``accept_text``), so a kept text is
    also put in the language's display form.  Layout and number form only, no word changes, so the
    verdict's reason is not touched: Mandarin without spaces between words (:mod:`stream.asr.spacing`)
    and numbers in one form (:mod:`stream.asr.numbers`), so amounts, day counts and dates read the
    same on screen and in guidance whether Whisper wrote them in digits or in words.
    """
    verdict = check_transcript(
        result.text,
        result,
        language=request.language,
        prompt=request.prompt,
        hotwords=request.hotwords,
        audio_s=len(request.audio) / SAMPLE_RATE,
    )
    if not verdict.keep:
        return verdict
    return GuardVerdict(True, display_form(verdict.text, request.language), verdict.reason)


def display_form(text: str, language: str) -> str:
    """Spacing first, so "下个月 15 号" is one number's context before numbers are rewritten."""
    return normalise_numbers(display_spacing(text, language), language)
