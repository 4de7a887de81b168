"""Customer signals and agent stages on utterances written for these tests (not from the playbook)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assist.encoders import cached_encode
from assist.engine import resolve_language
from stream.live.caches import DiskArrayCache
from stream.live.encoders import make_encoder
from tests.engines import GUIDANCE_MARKS, shared_engine
from tests.fakes import CountingEncoder

pytestmark = GUIDANCE_MARKS

SIGNAL_CASES = [
    ("confirm_identity", "zh", "对，我就是李伟本人。"),
    ("confirm_identity", "en", "Yes, this is David speaking."),
    ("hardship", "zh", "我今年三月被公司裁员了，到现在还没找到工作。"),
    ("hardship", "en", "I was laid off in March and I still haven't found work."),
    ("request_plan", "zh", "能不能让我分六个月慢慢还？"),
    ("request_plan", "en", "Could I pay it off in monthly instalments instead?"),
    ("promise_to_pay", "zh", "我下周五发工资，到时候先还一千。"),
    ("promise_to_pay", "en", "I'll send five hundred dollars on Friday when I get paid."),
    ("dispute", "zh", "这笔钱根本不是我借的，你们搞错了。"),
    ("dispute", "en", "That's not my loan, I never borrowed anything from you."),
    ("cease_contact", "zh", "以后不要再给我打电话了。"),
    ("cease_contact", "en", "Please stop calling me at this number."),
    ("third_party", "zh", "他不在家，我是他老婆，你有什么事？"),
    ("third_party", "en", "He's not home right now, this is his wife."),
    ("lawyer", "zh", "我已经请了律师，有事你们找我的律师谈。"),
    ("lawyer", "en", "I have a lawyer now, please talk to her instead."),
    ("hostile", "zh", "你们这帮人烦不烦啊，我要投诉你们！"),
    ("hostile", "en", "You people are unbelievable, I'm filing a complaint!"),
]

STAGE_CASES = [
    ("opening", "zh", "您好，我是华信资产的小刘，请问是王先生本人吗？"),
    ("opening", "en", "Hi, this is Dana from Summit Recovery. May I speak with Chris Walker?"),
    ("empathy", "zh", "听起来您这段时间真的很不容易，我能理解。"),
    ("empathy", "en", "I'm sorry you're dealing with that, it sounds really stressful."),
    ("inquiry", "zh", "您现在每个月的收入大概有多少？"),
    ("inquiry", "en", "What amount would be realistic for you each month?"),
    ("proposal", "zh", "我们可以帮您申请分十二期还款，每期七百元，您看可以吗？"),
    ("proposal", "en", "We could split the balance into six monthly payments of two hundred dollars."),
    ("confirmation", "zh", "那我跟您确认一下：本月二十号前还两千，之后每月一千，稍后短信发您确认。"),
    (
        "confirmation",
        "en",
        "Just to confirm: two hundred on the first of each month, and I'll email the agreement today.",
    ),
]


@pytest.mark.parametrize(("signal", "language", "text"), SIGNAL_CASES)
def test_signal_detected(signal: str, language: str, text: str) -> None:
    hits = shared_engine().judge_customer(text, language)
    assert hits and hits[0].signal == signal, hits
    assert 0.0 < hits[0].score <= 1.0
    assert hits[0].quote and hits[0].quote in text


def test_two_signals_in_one_turn() -> None:
    hits = shared_engine().judge_customer("我生病住院花了好多钱，能不能让我分几期还？", "zh")
    assert {"hardship", "request_plan"} <= {h.signal for h in hits}, hits


@pytest.mark.parametrize(("text", "language"), [("好的，你说吧。", "zh"), ("Okay, go ahead.", "en")])
def test_back_channel_has_no_signal(text: str, language: str) -> None:
    assert shared_engine().judge_customer(text, language) == []


@pytest.mark.parametrize(("stage", "language", "text"), STAGE_CASES)
def test_stage_classified(stage: str, language: str, text: str) -> None:
    judged = shared_engine().judge_agent(text, language)
    assert judged.stage == stage, judged
    assert 0.0 < judged.confidence <= 1.0


def test_a_bare_threat_has_no_stage() -> None:
    judged = shared_engine().judge_agent("你再不还钱，我们就报警让警察把你抓起来。", "zh")
    assert judged.stage is None and judged.findings


def test_language_follows_the_script() -> None:
    assert resolve_language("OK, fine.", "zh", ("zh", "en")) == "en"
    assert resolve_language("好的", "en", ("zh", "en")) == "zh"
    assert resolve_language("123", "zh", ("zh", "en")) == "zh"


# --------------------------------------------------------------------------- encoders and the cache


def test_exemplar_cache_is_computed_once_per_version(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = DiskArrayCache(tmp_path)
    a = cached_encode(enc, ["一", "two"], playbook_version="v1", cache=cache)
    b = cached_encode(enc, ["一", "two"], playbook_version="v1", cache=cache)
    assert enc.calls == 1 and np.array_equal(a, b)
    cached_encode(enc, ["一", "two"], playbook_version="v2", cache=cache)
    assert enc.calls == 2
    for f in tmp_path.glob("*.npz"):
        f.write_bytes(b"garbage")
    c = cached_encode(enc, ["一", "two"], playbook_version="v1", cache=cache)
    assert enc.calls == 3 and c.shape == (2, 8)


def test_make_encoder_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown encoder"):
        make_encoder("no-such-model")


def test_use_rows_are_normalised() -> None:
    vecs = shared_engine().encoder.encode(["你好", "hello there"])
    assert vecs.shape == (2, 512) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


def test_minilm_loads_offline_from_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    enc = make_encoder("minilm")
    assert enc.name == "minilm"
    vecs = enc.encode(
        ["We will not come to your home.", "Nobody is coming to your house.", "The weather is nice."]
    )
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


@pytest.mark.parametrize(
    ("stage", "language", "text"),
    [
        # written for this test: violating lines that still do a stage's job
        ("opening", "en", "This is Officer Reyes with the county sheriff's office."),
        ("opening", "zh", "您是他女儿吧？他在我们这儿的贷款逾期半年了，您让他赶紧还。"),
        ("proposal", "en", "Just grab a cash advance on another card and pay us today."),
        ("inquiry", "zh", "少跟我啰嗦，你就说几号还。"),
    ],
)
def test_violating_line_keeps_the_stage_its_wording_does(stage: str, language: str, text: str) -> None:
    judged = shared_engine().judge_agent(text, language)
    assert judged.findings, judged
    assert judged.stage == stage, judged


# -- the same turns read in a call (issue 12): what the customer answers decides what it means

WIFE_THEN_DEBTOR = [
    ("agent", "您好，我是安和小额贷款的客服，请问林晓雯女士在吗？", None),
    ("customer", "她在厨房忙呢，我是她丈夫，有什么事跟我说也一样。", "third_party"),
    ("agent", "不好意思，这件事需要跟林女士本人沟通，麻烦您请她来接一下电话。", None),
    ("customer", "行吧，你稍等，我去叫她。", "third_party"),
    ("customer", "喂，你好，我是林晓雯。", "confirm_identity"),
    ("agent", "林女士您好，麻烦报一下身份证后四位核实一下。", None),
    ("customer", "三一零八。", "confirm_identity"),
    ("agent", "我们可以给您分八期，每个月还八百元，您看可以吗？", None),
    ("customer", "好的。", "promise_to_pay"),
]


def test_short_answers_read_in_a_call() -> None:
    guide = shared_engine().new_call("zh", {"customer_name": "林女士"})
    callbacks = {line.id for line in guide.engine.playbook.signal("third_party").responses}
    for i, (speaker, text, signal) in enumerate(WIFE_THEN_DEBTOR):
        result = guide.judge_final("agent" if speaker == "agent" else "customer", text, f"u{i}")
        assert result.suggestions, (i, text)
        if signal is None:
            continue
        assert signal in {h.signal for h in result.signals}, (text, result.signals)
        assert any(p.source.endswith(signal) for p in result.suggestions), (text, result.suggestions)
        if i >= 4:  # the borrower is on the line: no more "please ask her to call back"
            assert not {p.line.id for p in result.suggestions} & callbacks
    assert guide.state()["identity_confirmed"]
