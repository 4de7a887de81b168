"""The learned line models' parts: features, fitting, and the cache (on disk here; no speech model)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from assist.linemodel import (
    NGRAM_DIMS,
    LineModels,
    TrainingLine,
    cached_line_models,
    fit_linear,
    fit_multilabel,
    line_features,
    line_models_key,
    ngram_matrix,
    ngrams,
    train_line_models,
)
from stream.live.caches import DiskArrayCache


def test_ngrams_are_characters_for_mandarin_and_words_for_english() -> None:
    assert ngrams("还 款", "zh") == ["还", "款", "还款"]
    assert ngrams("Pay NOW, or else", "en") == [
        "pay",
        "now",
        "or",
        "else",
        "pay now",
        "now or",
        "or else",
        "pay now or",
        "now or else",
    ]


def test_ngram_rows_are_unit_length_and_the_same_in_every_process() -> None:
    m = ngram_matrix(["你要是不还钱", "you will pay", "你要是不还钱"], ["zh", "en", "zh"])
    assert m.shape == (3, NGRAM_DIMS)
    assert np.allclose(np.sqrt(m.multiply(m).sum(axis=1)).A.ravel(), 1.0)
    assert (m[0] != m[2]).nnz == 0
    # crc32 buckets, not Python's salted hash(): a fixed text has fixed columns
    assert sorted(ngram_matrix(["pay"], ["en"]).indices.tolist()) == [zlib.crc32(b"pay") % NGRAM_DIMS]


def _toy(n: int = 60) -> tuple[list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    texts = [("you idiot pay now" if i % 2 else "thank you for your time") + f" {i}" for i in range(n)]
    vectors = rng.normal(size=(n, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, ["en"] * n, vectors


def test_fitted_models_learn_the_words_that_separate_classes() -> None:
    texts, langs, vectors = _toy()
    x = line_features(texts, langs, vectors)
    labels = ["bad" if i % 2 else "ok" for i in range(len(texts))]
    model = fit_linear(("ok", "bad"), x, labels)
    probe = line_features(["idiot pay now", "thank you"], ["en", "en"], vectors[:2])
    p = model.probabilities(probe)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0, 1] > 0.8 and p[1, 0] > 0.8
    targets = np.array([[1.0, 1.0] if i % 2 else [0.0, 0.0] for i in range(len(texts))])
    multi = fit_multilabel(("violation", "abusive_language"), x, targets).probabilities(probe)
    assert multi[0].min() > 0.8 and multi[1].max() < 0.2
    # deterministic: the same inputs give the same weights
    assert np.array_equal(fit_linear(("ok", "bad"), x, labels).weights, model.weights)


def _lines() -> list[TrainingLine]:
    texts, langs, vectors = _toy(40)
    return [
        TrainingLine(lang, text, vec, "none" if i % 2 else "empathy", ("abusive_language",) if i % 2 else ())
        for i, (text, lang, vec) in enumerate(zip(texts, langs, vectors, strict=True))
    ]


def test_line_models_are_trained_once_and_then_read_from_disk(tmp_path: Path) -> None:
    lines = _lines()
    calls: list[int] = []

    def train() -> LineModels:
        calls.append(1)
        return train_line_models(("abusive_language", "harassment"), ("empathy", "none"), lines)

    key = line_models_key("toy", "v1", lines)
    first = cached_line_models(key, DiskArrayCache(tmp_path), train)
    second = cached_line_models(key, DiskArrayCache(tmp_path), train)
    assert calls == [1]
    assert second.violations.classes == ("violation", "abusive_language", "harassment")
    assert np.array_equal(first.stages.weights, second.stages.weights)
    judged = second.judge("you idiot pay now", "en", lines[1].vector)
    assert judged.violation > 0.5 and judged.rules["abusive_language"] > 0.5 and judged.stage == "none"
    # a different line set is a different key; a corrupt file is retrained, not fatal
    assert line_models_key("toy", "v1", lines[:-1]) != key
    (tmp_path / f"linemodels_{key}.npz").write_bytes(b"not a zip")
    cached_line_models(key, DiskArrayCache(tmp_path), train)
    assert calls == [1, 1]


def test_rows_labelled_outside_the_classes_teach_nothing() -> None:
    """Lines that teach no stage carry the label "" and must not move the stage model."""
    texts, langs, vectors = _toy(12)
    x = line_features(texts, langs, vectors)
    labels = ["ok" if i % 2 else "bad" for i in range(12)]
    with_unlabelled = [*labels[:10], "", "x"]
    only = fit_linear(("ok", "bad"), x.take(range(10)), labels[:10])
    mixed = fit_linear(("ok", "bad"), x, with_unlabelled)
    assert np.array_equal(only.weights, mixed.weights) and np.array_equal(only.bias, mixed.bias)
