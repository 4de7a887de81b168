"""Compliance rules on agent speech: each rule fires on a violation written for this test (not
taken from the playbook) and stays quiet on a compliant look-alike; negation, clause splitting
and partial transcripts behave as the agent needs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from assist.clauses import split_clauses, weight
from assist.events import ComplianceRetracted, ComplianceWarning
from assist.exemplars import stage_taught, train_violation_detector
from assist.playbook import load_playbook
from assist.playbook_content import RULE_IDS, LabelledLine
from assist.stages import NO_STAGE
from tests.engines import GUIDANCE_MARKS, shared_engine

pytestmark = GUIDANCE_MARKS


# (rule, language, violation, compliant look-alike) -- written for these tests.
CASES = [
    (
        "threat_violence",
        "zh",
        "你要是再拖着不还，晚上回家路上可要当心点。",
        "我们绝对不会上门找您麻烦，这一点您放心。",
    ),
    (
        "threat_violence",
        "en",
        "Keep ignoring us and something bad could happen to your car.",
        "Nobody is going to come to your house or hurt anyone.",
    ),
    (
        "abusive_language",
        "zh",
        "你就是个不要脸的老赖，欠钱还有理了？",
        "您不是什么老赖，只是暂时遇到了困难。",
    ),
    (
        "abusive_language",
        "en",
        "You're a worthless deadbeat and everybody knows it.",
        "You're not a deadbeat, you just hit a rough patch.",
    ),
    (
        "false_criminal_threat",
        "zh",
        "你再不还钱，我们就报警让警察把你抓起来。",
        "欠款属于民事纠纷，您不会因为这个坐牢。",
    ),
    (
        "false_criminal_threat",
        "en",
        "If this isn't paid today, you will be arrested and go to jail.",
        "Nobody is going to arrest you; this is a civil matter.",
    ),
    (
        "impersonation",
        "zh",
        "我是市公安局经侦大队的，现在正式通知你还款。",
        "我是资产管理公司的催收专员，不是法院也不是公安。",
    ),
    (
        "impersonation",
        "en",
        "This is Officer Grant from the county sheriff's office calling about your debt.",
        "I'm an account specialist with a collection agency, not a law firm or the police.",
    ),
    (
        "third_party_disclosure",
        "zh",
        "你不还，我们就把你欠钱的事告诉你通讯录里所有人。",
        "这件事我们只跟您本人沟通，不会告诉您的家人或单位。",
    ),
    (
        "third_party_disclosure",
        "en",
        "I'm going to call your boss and tell him you owe us money.",
        "We won't discuss your account with your employer or your family.",
    ),
    (
        "harassment",
        "zh",
        "你不接是吧，那我们每天给你打一百个电话，半夜也打。",
        "我们只在工作日白天联系您，晚上不会打扰您。",
    ),
    (
        "harassment",
        "en",
        "We'll keep calling you every hour, day and night, until you pay.",
        "Tell me what time works best and we'll stick to it.",
    ),
    (
        "misrepresentation",
        "zh",
        "今天不还，明天利息就翻倍，而且你一辈子都会上黑名单。",
        "逾期会按合同产生罚息，逾期记录会报送征信。",
    ),
    (
        "misrepresentation",
        "en",
        "If you don't pay by tonight, the interest doubles and the balance triples.",
        "Late fees apply as your contract sets out, and late payments are reported to the credit bureaus.",
    ),
    (
        "overbearing",
        "zh",
        "没得商量，今天必须全部还清，别跟我讲理由。",
        "我理解您的难处，咱们一起商量一个您能接受的方案。",
    ),
    (
        "overbearing",
        "en",
        "I don't care about your excuses, it's your own fault, so pay it all today.",
        "I hear you, and I'd like to work out something that fits your budget.",
    ),
]


def test_every_rule_has_cases_in_both_languages() -> None:
    assert {(r, lang) for r, lang, _, _ in CASES} == {(r, lang) for r in RULE_IDS for lang in ("zh", "en")}


@pytest.mark.parametrize(("rule", "language", "violation", "lookalike"), CASES)
def test_rule_fires_on_violation(rule: str, language: str, violation: str, lookalike: str) -> None:
    findings = shared_engine().judge_agent(violation, language).findings
    assert rule in {f.rule for f in findings}, findings
    f = next(f for f in findings if f.rule == rule)
    assert f.quote and f.quote in violation
    assert f.why and f.rephrase
    assert f.severity in ("critical", "major", "minor")
    assert f.evidence.startswith(("pattern: ", "example: "))


@pytest.mark.parametrize(("rule", "language", "violation", "lookalike"), CASES)
def test_lookalike_stays_quiet(rule: str, language: str, violation: str, lookalike: str) -> None:
    assert shared_engine().judge_agent(lookalike, language).findings == ()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我们不会上门，您放心。", "zh"),
        ("nobody is going to arrest you", "en"),
        ("You're not going to jail over this, it's a civil debt.", "en"),
        ("我们不会给您单位打电话，也不会联系您的家人。", "zh"),
        ("按合同约定，逾期会产生罚息，也会影响您的征信记录。", "zh"),
        ("If the balance stays unpaid, we may file a civil lawsuit as the contract allows.", "en"),
        ("I can hear how much pressure you're under right now.", "en"),
    ],
)
def test_negation_reassurance_and_calm_facts_do_not_fire(text: str, language: str) -> None:
    assert shared_engine().judge_agent(text, language).findings == ()


# Compliant sentences the prompts/ content used to flag; fixed by a negation (abusive_language en)
# and call-schedule look-alikes (harassment en) in rules.yaml.
CONTENT_GAPS = [
    ("I don't see you as a deadbeat at all; things just got hard.", "en"),
    ("We'll only call during business hours, and you can tell us a better time.", "en"),
]


@pytest.mark.parametrize(("text", "language"), CONTENT_GAPS)
def test_known_content_gaps(text: str, language: str) -> None:
    assert shared_engine().judge_agent(text, language).findings == ()


def test_each_clause_is_judged_on_its_own() -> None:
    text = "我们不会上门找您，但是你再不还钱，我们就报警把你抓起来。"
    rules = {f.rule for f in shared_engine().judge_agent(text, "zh").findings}
    assert "false_criminal_threat" in rules


def test_clause_splitting() -> None:
    clauses = split_clauses("好的。你不还就是诈骗，我们马上报警！Balance is 2,400.50 dollars, OK?")
    texts = [c.text for c in clauses]
    assert texts[0] == "好的。你不还就是诈骗"  # a two-character fragment joins its neighbour
    assert "我们马上报警" in texts
    assert any("2,400.50" in t for t in texts)  # no split inside a number
    full = "好的。你不还就是诈骗，我们马上报警！Balance is 2,400.50 dollars, OK?"
    for c in clauses:
        assert full[c.start : c.end] == c.text
    assert weight("你好 hello") == 4


def test_partial_raises_critical_once_and_final_does_not_repeat() -> None:
    guide = shared_engine().new_call("zh", {})
    partial = guide.on_partial("agent", "你不还就是诈骗，我们马上报警抓", "u7")
    assert [(w.rule, w.partial) for w in partial if isinstance(w, ComplianceWarning)] == [
        ("false_criminal_threat", True)
    ]
    assert guide.on_partial("agent", "你不还就是诈骗，我们马上报警抓你", "u7") == []
    final = guide.on_final("agent", "你不还就是诈骗，我们马上报警抓你。", "u7")
    assert "false_criminal_threat" not in {e.rule for e in final if isinstance(e, ComplianceWarning)}
    assert not any(isinstance(e, ComplianceRetracted) for e in final)  # borne out: it stands
    assert guide.state()["warnings"]["critical"] >= 1


def test_a_partial_warning_the_final_does_not_bear_out_is_retracted() -> None:
    """The recogniser heard a threat mid-sentence, the final transcript says otherwise."""
    guide = shared_engine().new_call("en", {})
    early = guide.on_partial("agent", "If you don't pay we will have you arrested", "u3")
    assert [(w.rule, w.partial) for w in early if isinstance(w, ComplianceWarning)] == [
        ("false_criminal_threat", True)
    ]
    assert guide.state()["warnings"]["critical"] == 1
    final = guide.on_final(
        "agent", "If you don't pay by Friday, we will have to add the late fee your contract allows.", "u3"
    )
    assert final[0] == ComplianceRetracted(
        "u3", "false_criminal_threat", "critical", "not in the final transcript"
    ), final
    assert not any(isinstance(e, ComplianceWarning) for e in final)
    assert guide.state()["warnings"]["critical"] == 0


def test_partial_ignores_customers_and_non_critical_rules() -> None:
    guide = shared_engine().new_call("zh", {})
    assert guide.on_partial("customer", "你们再打我就报警抓你们", "c1") == []
    assert guide.on_partial("agent", "没得商量，今天必须全部还清", "a1") == []


def test_suggestions_never_trip_a_rule() -> None:
    engine = shared_engine()
    from assist.playbook_content import SAMPLE_SLOT_VALUES, fill_slots

    for line in engine.playbook.lines():
        if line.id in engine.excluded_lines:
            continue
        for lang in engine.playbook.languages:
            text = fill_slots(line.text.get(lang), SAMPLE_SLOT_VALUES[lang])
            if text:
                assert engine.judge_agent(text, lang).findings == (), (line.id, lang)


def test_rule_selector_is_deterministic_and_names_the_rule() -> None:
    """The selector is trained from the playbook alone: two trainings give the same weights."""
    from assist.softmax_model import train_softmax

    engine = shared_engine()
    vio = engine.compliance.violations["en"]
    a = train_softmax(RULE_IDS, vio.vectors, vio.labels)
    b = train_softmax(RULE_IDS, vio.vectors, vio.labels)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    probs = a.probabilities(vio.vectors)
    assert probs.shape == (len(vio), len(RULE_IDS))
    assert np.allclose(probs.sum(axis=1), 1.0)
    # it fits its own training examples: the right rule for nearly all of them
    hits = sum(a.classes[int(np.argmax(p))] == lab for p, lab in zip(probs, vio.labels, strict=True))
    assert hits >= 0.9 * len(vio)


@pytest.mark.parametrize(
    ("text", "language", "rule"),
    [
        # written for this test: paraphrases the patterns do not cover, named by the selector
        ("你这种人连自己的账都管不好，活得真窝囊。", "zh", "abusive_language"),
        ("We'll ring your phone from sunrise till midnight, every single day.", "en", "harassment"),
    ],
)
def test_paraphrase_gets_the_selected_rule(text: str, language: str, rule: str) -> None:
    findings = shared_engine().judge_agent(text, language).findings
    assert rule in {f.rule for f in findings}, findings


def test_a_reassurance_elsewhere_in_the_line_quiets_similarity() -> None:
    """Similarity (the weaker evidence) honours a rule's negation anywhere in the utterance."""
    text = "Our company does work with a law firm, but I'm not a lawyer myself."
    assert shared_engine().judge_agent(text, "en").findings == ()


def test_stage_wording_widens_the_similarity_margin() -> None:
    """A calm line that plainly does a stage's job is not read as a violation on topic alone."""
    engine = shared_engine()
    for text, language in [
        ("您好，这里是华信银行信用卡中心，请问是马先生本人吗？", "zh"),
        ("Between your credit cards and your other loans, what do you pay each month?", "en"),
    ]:
        assert engine.judge_agent(text, language).findings == (), text


def test_asr_homophones_are_judged_as_the_intended_words() -> None:
    from assist.clauses import normalize_asr

    assert normalize_asr("你正信就花了，于期记录一辈子", "zh") == "你征信就花了，逾期记录一辈子"
    assert normalize_asr("talk to a turney about the pay meant", "en") == (
        "talk to an attorney about the payment"
    )
    assert normalize_asr("we wont call, dont worry, im not a lawyer", "en") == (
        "we won't call, don't worry, I'm not a lawyer"
    )
    # written for this test: a false claim about the credit record, heard with ASR errors
    findings = shared_engine().judge_agent("你这个于期记录在正信上一辈子都消不掉", "zh").findings
    assert "misrepresentation" in {f.rule for f in findings}


def test_a_refusal_in_a_condition_is_not_a_reassurance() -> None:
    """'If you won't answer, ...' is the borrower's refusal: the rule's negation does not quiet it."""
    from assist.patterns import reassures

    neg = shared_engine().compliance.by_id["third_party_disclosure"].negations.get("en")[0]
    assert not reassures(neg, "If you won't answer, I'll have a chat with your landlord.")
    assert reassures(neg, "We won't be talking to your landlord about any of this.")
    # written for this test: the threat to tell the employer still fires
    text = "If you won't return my calls, your office manager will hear about this loan from me."
    assert "third_party_disclosure" in {f.rule for f in shared_engine().judge_agent(text, "en").findings}


def test_public_shaming_is_both_harassment_and_disclosure() -> None:
    engine = shared_engine()
    # written for this test
    for text, language in [
        ("再不还钱，我就把你的借条发到你们公司的工作群里。", "zh"),
        ("We'll post your overdue balance in your building's group chat.", "en"),
    ]:
        rules = {f.rule for f in engine.judge_agent(text, language).findings}
        assert {"harassment", "third_party_disclosure"} <= rules, (text, rules)
    # a doorstep visit alone is harassment only
    rules = {f.rule for f in engine.judge_agent("我们每天都派人去你家门口等你还钱。", "zh").findings}
    assert "third_party_disclosure" not in rules


def test_learned_detector_is_deterministic_and_judges_whole_lines() -> None:
    """The violation-vs-compliant model is trained from the playbook alone, so it is reproducible;
    it fires on attitude-only lines the nearest examples miss, never on a calm line's fragment."""
    engine = shared_engine()
    det = engine.compliance.detector
    assert det is not None and det.classes == ("violation", "compliant")
    again = train_violation_detector(
        engine.playbook, {"violation": engine.compliance.violations, "compliant": engine.compliance.compliant}
    )
    assert np.array_equal(det.weights, again.weights)
    # written for this test: a calm recap whose middle clause alone sounds stern
    text = "您这笔已经逾期两个月了，六千块一直没动，您看这周能先处理一部分吗？"
    assert engine.judge_agent(text, "zh").findings == ()


# --------------------------------------------------------------------------- learned line models


def test_line_model_catches_a_paraphrase_patterns_and_examples_miss() -> None:
    """Written for this test; no pattern or nearest example flags it, the line model does."""
    engine = shared_engine()
    text = "Keep dodging me and see how long your little shop stays open."
    judged = engine.judge_agent(text, "en")
    assert [(f.rule, f.source) for f in judged.findings] == [("threat_violence", "model")], judged
    assert judged.findings[0].evidence.startswith("line model: ")
    assert judged.findings[0].quote == text
    off = dataclasses.replace(engine.thresholds, line_violation_min=1.01, line_rule_add=1.01)
    saved, engine.thresholds = engine.thresholds, off
    try:
        assert engine.judge_agent(text, "en").findings == ()
    finally:
        engine.thresholds = saved


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Nobody is coming to your shop, and nothing will happen to it; let's just find a plan."),
        ("zh", "我们不会去您店里，也不会找您家人，您放心，咱们就商量个还款办法。"),
    ],
)
def test_line_model_never_flags_a_reassurance(language: str, text: str) -> None:
    assert shared_engine().judge_agent(text, language).findings == ()


def test_line_model_chooses_the_stage_and_violating_lines_serve_none() -> None:
    engine = shared_engine()
    assert (
        engine.judge_agent("我们可以把剩下的八千块分成六期，每期一千三左右，您看行吗？", "zh").stage
        == "proposal"
    )
    assert (
        engine.judge_agent("Keep dodging me and see how long your little shop stays open.", "en").stage
        is None
    )


# Issue 11: collectors' words the way public sources quote them.  Written for these tests in the
# styles the real-world train half showed were missed (not copied from bench/data/realworld.jsonl
# or prompts/labelled.jsonl); each was missed, or given a wrong rule, before the train half and
# batch real1 joined prompts/labelled.jsonl and the court-timeline and fee patterns were added.
REAL_STYLE = [
    ("I don't care how long it takes, I will find you.", "en", "threat_violence"),
    ("Keep hiding and I'll make sure everyone at your job hears about it.", "en", "third_party_disclosure"),
    ("你再躲，我让你这个年过不好。", "zh", "threat_violence"),
    ("让你爸替你把这钱还了，他有退休金。", "zh", "third_party_disclosure"),
    ("12小时内不处理，法院传票马上寄到你单位。", "zh", "misrepresentation"),
]


@pytest.mark.parametrize(("text", "language", "rule"), REAL_STYLE)
def test_real_world_styles_get_their_rule(text: str, language: str, rule: str) -> None:
    findings = shared_engine().judge_agent(text, language).findings
    assert rule in {f.rule for f in findings}, findings


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("下周一前不给答复，后果自负。", "zh"),
        ("Get me an answer by Monday or face the consequences.", "en"),
    ],
)
def test_a_vague_consequence_is_overbearing_not_critical(text: str, language: str) -> None:
    """Severity follows evidence: an ultimatum with no words of harm is `overbearing` (minor)."""
    findings = shared_engine().judge_agent(text, language).findings
    assert {f.rule for f in findings} == {"overbearing"}, findings


@pytest.mark.parametrize(
    ("text", "language"),
    [
        # the borrower's own police report (identity theft) is not a criminal threat
        ("What's your police report number for the stolen identity claim?", "en"),
        ("您报警时派出所给的回执号码方便告诉我吗？我们会暂停催收。", "zh"),
        # look-alikes of invented fees and announced visits
        ("We won't add any fee for paying by card.", "en"),
        ("提前结清不收任何手续费。", "zh"),
        ("我们不会派人上门。", "zh"),
    ],
)  # these held before too: they guard the new lines and patterns against false alarms
def test_real_world_lookalikes_stay_quiet(text: str, language: str) -> None:
    assert shared_engine().judge_agent(text, language).findings == ()


def test_a_quoted_line_teaches_rules_but_no_stage() -> None:
    """Lines quoted from public documents (with a ``source``) train the rule models only."""
    own = LabelledLine("en", "agent", "Would fifty a month work?", "proposal", (), (), "dev9")
    quoted = dataclasses.replace(own, source="en-cfpb-complaint-row1")
    assert stage_taught(own) == "proposal"
    assert stage_taught(quoted) is None
    assert stage_taught(dataclasses.replace(own, batch="real1")) is None  # RULES_ONLY_BATCHES
    assert stage_taught(dataclasses.replace(own, stage="*")) == NO_STAGE
    assert any(x.source for x in load_playbook().labelled)  # the real-world train half is there
