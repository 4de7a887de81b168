"""Numbers in one display form per language: a table of spoken and Whisper-written forms, the
words and identifiers that must never change, and the bench's quantity extraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.asr.numbers import normalise_numbers, parse_zh, quantities

FIXTURES = Path(__file__).parent / "fixtures"

ZH_FORMS = [
    ("一千零五十元", "1050元"),
    ("两万", "20000"),
    ("六十天", "60天"),
    ("十二期", "12期"),
    ("两千九", "2900"),
    ("三千二一分不少", "3200一分不少"),  # 三千二 = 3200; 一分 (not a cent) is a word
    ("一万二千六百元", "12600元"),
    ("八千七百块一分都没还", "8700块一分都没还"),
    ("一百零五", "105"),
    ("十万", "100000"),
    ("一亿二千万", "120000000"),
    ("七天宽限期", "7天宽限期"),
    ("逾期十天了", "逾期10天了"),
    ("这个月二十号之前", "这个月20号之前"),
    ("三个工作日内", "3个工作日内"),
    ("四个月", "4个月"),
    ("两期了", "2期了"),
    ("下个月十五号", "下个月15号"),
    ("一千出头", "1000出头"),
    # Whisper's mixed and grouped forms
    ("1万2", "12000"),
    ("3千2", "3200"),
    ("2万", "20000"),
    ("分12,000", "分12000"),
    ("分12,000,每期", "分12000,每期"),  # Whisper's ASCII comma after the number (dev_zh_01 t11, 8 kHz)
    ("１２６００元", "12600元"),
    # 期 heard as 七 right before an amount (dev_zh_01 t11 and dev_zh_02 t10, 16 kHz)
    ("每71050元。", "每期1050元。"),
    ("先款第一七两千九百远", "先款第一七2900远"),  # dev_zh_02 t12 at 8 kHz: 第一期 heard as 第一七
    ("挫2千9,但", "挫2900,但"),
    ("最多给你分三七环款,每七两千九百块", "最多给你分三七环款,每期2900块"),
]

ZH_UNTOUCHED = [
    "最后四位是三七零八",  # ID digits read one by one
    "幺三八零零一三八零零零",  # a phone number
    "我的号码是1333",
    "十分感谢",  # 十分 = very
    "千万不要",
    "万一他不还",
    "百分之五十",
    "第一期从下个月开始",  # ordinal
    "一次性我真拿不出来",  # a bare 一
    "宽限期过了就算这一期",
    "一分都没还",
    "三十",  # no unit: not known to be a quantity
    "分三七环款",  # 期 misheard in 分三期: not repaired (分三七 has other readings)
    "本期还款3200元已经于70天冷",  # Whisper's 逾期十天 -> 于70天: a mishearing, not a form
]

EN_FORMS = [
    ("sixty days", "60 days"),
    ("one thousand fifty dollars", "$1,050"),
    ("two hundred", "200"),
    ("You're ninety days behind on two thousand four hundred dollars.", "You're 90 days behind on $2,400."),
    ("a thirty day deferral", "a 30 day deferral"),
    ("a thirty-day deferral", "a 30-day deferral"),
    ("one hundred and fifty dollars", "$150"),
    ("three hundred and two hundred", "300 and 200"),
    ("twenty-five dollars", "$25"),
    ("Three hundred by Friday, then two hundred on the first", "300 by Friday, then 200 on the first"),
    ("It's March third, nineteen eighty six.", "It's March 3, 1986."),
    ("It's March 3rd, 1986.", "It's March 3, 1986."),  # Whisper's form of the same date
    ("a balance of $1840.", "a balance of $1,840."),
    ("2400 dollars", "$2,400"),
    ("2,400 dollars", "$2,400"),
    ("put down 300 dollars by Friday", "put down $300 by Friday"),
    ("1 thousand 50", "1,050"),
    ("two days", "2 days"),
    ("twelve monthly payments", "twelve monthly payments"),  # "monthly" is no unit
    ("twelve payments", "12 payments"),
]

EN_UNTOUCHED = [
    "five five five one two three four",  # digits read one by one
    "My number is 1333.",
    "I have 1986 things",
    "one morning you might find",
    "one day",  # a bare "one"
    "I've had three calls this week.",
    "on the first of every month",
    "$100 and $3",  # ambiguous split amount: left alone
    "someone often attends",  # number words inside other words
    "May I speak with Rebecca",
    "nine nine nine days",  # digits read one by one, even before a unit
    "a hundred dollars",  # "a" for one is not read
    "hundreds of dollars",
    "one and two days",
]


@pytest.mark.parametrize(("said", "shown"), ZH_FORMS)
def test_mandarin_forms(said: str, shown: str) -> None:
    assert normalise_numbers(said, "zh") == shown


@pytest.mark.parametrize("text", ZH_UNTOUCHED)
def test_mandarin_words_and_ids_untouched(text: str) -> None:
    assert normalise_numbers(text, "zh") == text


@pytest.mark.parametrize(("said", "shown"), EN_FORMS)
def test_english_forms(said: str, shown: str) -> None:
    assert normalise_numbers(said, "en") == shown


@pytest.mark.parametrize("text", EN_UNTOUCHED)
def test_english_words_and_ids_untouched(text: str) -> None:
    assert normalise_numbers(text, "en") == text


def test_idempotent_and_other_languages_untouched() -> None:
    for said, _ in ZH_FORMS:
        once = normalise_numbers(said, "zh")
        assert normalise_numbers(once, "zh") == once
    for said, _ in EN_FORMS:
        once = normalise_numbers(said, "en")
        assert normalise_numbers(once, "en") == once
    assert normalise_numbers("sixty days 六十天", "fr") == "sixty days 六十天"


def test_parse_reads_the_spoken_abbreviations() -> None:
    parsed = parse_zh("两千九百块")
    assert parsed is not None and (parsed.value, parsed.length, parsed.scaled) == (2900, 4, True)
    assert parse_zh("百分之") is None  # a place word cannot start a number (十 aside)


def test_quantities_compare_reference_and_hypothesis() -> None:
    ref = "您目前欠款一共是一万二千六百元，我帮您申请分成十二期，每期一千零五十元，第一期从下个月十五号开始。"
    hyp = "刻意登。您目前建款一共是12600元,我帮您申请分成12000,每期1050元,第一期从下个月15号开始。"
    assert quantities(ref, "zh") == ["12600", "12", "1050", "15"]
    assert quantities(hyp, "zh") == ["12600", "12000", "1050", "15"]
    assert quantities("a balance of one thousand eight hundred forty dollars.", "en") == ["1840"]
    assert quantities("a balance of $1840.", "en") == ["1840"]
    assert quantities("It's March third, nineteen eighty six.", "en") == ["3", "1986"]


def test_reference_words_survive_on_every_fixture_turn() -> None:
    """Only numbers change: with the digits taken out, every reference turn reads as before."""
    for path in sorted(FIXTURES.glob("*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        for turn in meta["turns"]:
            text = turn["text"]
            shown = normalise_numbers(text, meta["language"])
            if meta["language"] == "zh":
                kept = [ch for ch in shown if not ch.isdigit()]
                assert "".join(kept) in text or set(kept) <= set(text), (text, shown)
            else:
                letters = [w for w in shown.replace(",", " ").split() if w.isalpha()]
                assert all(w in text for w in letters), (text, shown)
