"""Personal-data masking: every kind in both languages, spoken digits, and what must stay readable."""

from __future__ import annotations

import pytest

from assist.masking import KINDS, MaskingPolicy, mask, mask_text

# (language, text, expected masked text, kinds)
MASKED = [
    # ID cards
    ("zh", "身份证号是110105194912310021。", "身份证号是[身份证号 ****0021]。", ("id_card",)),
    ("zh", "身份证11010519491231002X", "身份证[身份证号 ****002X]", ("id_card",)),
    ("zh", "号码是一一零一零五一九四九一二三一零零二叉", "号码是[身份证号 ****002X]", ("id_card",)),
    ("zh", "幺幺零 幺零五 幺九四九 幺二三幺 零零二X", "[身份证号 ****002X]", ("id_card",)),
    ("en", "My ID number is 11010519491231002x.", "My ID number is [ID card ****002X].", ("id_card",)),
    # bank cards
    ("zh", "卡号6222 0202 0000 1234 567", "卡号[银行卡号 ****4567]", ("bank_card",)),
    ("zh", "卡号是六二二二零二零二零零零零一二三四", "卡号是[银行卡号 ****1234]", ("bank_card",)),
    ("en", "card 4111-1111-1111-1111, exp 12/27", "card [bank card ****1111], exp 12/27", ("bank_card",)),
    (
        "en",
        "it's four one one one, one one one one, one one one one, one one one one",
        "it's [bank card ****1111]",
        ("bank_card",),
    ),
    # phones
    ("zh", "我的手机是幺三八零零一三八零零零", "我的手机是[电话 ****8000]", ("phone",)),
    ("zh", "幺三八，零零一三，八零零零", "[电话 ****8000]", ("phone",)),
    ("zh", "打 138 0013 8000 找我", "打 [电话 ****8000] 找我", ("phone",)),
    ("zh", "+86 138-0013-8000", "[电话 ****8000]", ("phone",)),
    ("zh", "座机010-12345678", "座机[电话 ****5678]", ("phone",)),
    ("zh", "或者 +86 10 1234 5678", "或者 [电话 ****5678]", ("phone",)),
    ("zh", "电话是8765 4321", "电话是[电话 ****4321]", ("phone",)),
    ("en", "Call me at (415) 555-0134.", "Call me at [phone ****0134].", ("phone",)),
    ("en", "or +1 415 555 0134", "or [phone ****0134]", ("phone",)),
    (
        "en",
        "my number is one three eight double oh one three eight triple oh",
        "my number is [phone ****8000]",
        ("phone",),
    ),
    ("en", "it's four one five, five five five, oh one three four", "it's [phone ****0134]", ("phone",)),
    # e-mail
    ("en", "email rebecca.hale@gmail.com please", "email [email ***@gmail.com] please", ("email",)),
    ("en", "it's rebecca dot hale at gmail dot com", "it's [email ***@gmail.com]", ("email",)),
    ("zh", "邮箱是zhangsan艾特qq点com", "邮箱是[邮箱 ***@qq.com]", ("email",)),
    ("zh", "发到13800138000@163.com", "发到[邮箱 ***@163.com]", ("email",)),
    # other long identifiers (account / contract numbers)
    ("en", "account 20231105001", "account [number ****5001]", ("long_number",)),
    ("zh", "合同号二零二三一一零五零零一", "合同号[号码 ****5001]", ("long_number",)),
]

UNMASKED = [
    ("zh", "最后四位是三七零八。"),
    (
        "zh",
        "您目前欠款一共是一万二千六百元，我帮您申请分成十二期，每期一千零五十元，第一期从下个月十五号开始。",
    ),
    ("zh", "你已经逾期四个月了，八千七百块一分都没还"),
    ("zh", "最多给你分三期还款，每期两千九百块，这个月二十号之前交第一期。"),
    ("zh", "二零二四年三月十五号，还款2900元，12期"),
    ("zh", "工号1024，一两个月之内"),
    ("en", "It's March third, nineteen eighty six."),
    ("en", "a balance of one thousand eight hundred forty dollars, or $1,840.00"),
    ("en", "You're ninety days behind on two thousand four hundred dollars."),
    ("en", "the last four digits are 3708, twelve instalments, 12 payments of 150"),
    ("en", "due on 2025-11-28, at 10:30, reference 20251128"),
    ("en", "three hundred by Friday, then two hundred on the first of every month"),
    ("en", "Oh, one more thing: press one, two or three."),
]


@pytest.mark.parametrize(("language", "text", "expected", "kinds"), MASKED)
def test_masks_each_kind(language: str, text: str, expected: str, kinds: tuple[str, ...]) -> None:
    result = mask_text(text, language=language)
    assert result.text == expected
    assert result.kinds == kinds
    for span in result.spans:
        token = result.text[span.start : span.end]
        assert token.startswith("[") and token.endswith("]")


@pytest.mark.parametrize(("language", "text"), UNMASKED)
def test_amounts_dates_and_short_numbers_stay(language: str, text: str) -> None:
    result = mask_text(text, language=language)
    assert result.text == text
    assert result.spans == ()


@pytest.mark.parametrize(("language", "text", "expected", "kinds"), MASKED)
def test_masking_is_idempotent(language: str, text: str, expected: str, kinds: tuple[str, ...]) -> None:
    assert mask(expected, language=language) == expected


def test_several_kinds_in_one_utterance_and_spans_index_the_masked_text() -> None:
    text = "我叫周明辉，电话13800138000，卡号6222020200001234，欠款八千七百元，邮箱zmh@qq.com"
    result = mask_text(text, language="zh")
    assert (
        result.text
        == "我叫周明辉，电话[电话 ****8000]，卡号[银行卡号 ****1234]，欠款八千七百元，邮箱[邮箱 ***@qq.com]"
    )
    assert [s.kind for s in result.spans] == ["phone", "bank_card", "email"]
    assert [result.text[s.start : s.end] for s in result.spans] == [
        "[电话 ****8000]",
        "[银行卡号 ****1234]",
        "[邮箱 ***@qq.com]",
    ]
    assert result.kinds == ("bank_card", "phone", "email")


def test_policy_switches_kinds_off() -> None:
    text = "phone 13800138000, email a@b.com"
    assert mask(text, language="en", policy=MaskingPolicy.off()) == text
    only_email = MaskingPolicy.only("email")
    assert mask(text, language="en", policy=only_email) == "phone 13800138000, email [email ***@b.com]"
    no_phone = MaskingPolicy(phone=False)
    assert mask(text, language="en", policy=no_phone) == "phone 13800138000, email [email ***@b.com]"
    assert MaskingPolicy().active and not MaskingPolicy.off().active
    assert all(MaskingPolicy().enabled(k) for k in KINDS)
    with pytest.raises(ValueError, match="unknown masking kind"):
        MaskingPolicy.only("passport")


def test_labels_follow_the_language_and_unknown_languages_fall_back_to_english() -> None:
    assert mask("13800138000", language="zh") == "[电话 ****8000]"
    assert mask("13800138000", language="en") == "[phone ****8000]"
    assert mask("13800138000", language="fr") == "[phone ****8000]"
    assert mask("", language="zh") == ""
