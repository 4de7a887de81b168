"""Learned line models: violation or not, which rule, which stage, from words and meaning.

Nearest-example similarity and the playbook's patterns are precise on wordings the playbook
foresaw, but measured on batches of lines written after the playbook (bench/data/guidance_dev.md)
they missed the paraphrases nobody wrote an example for.  A
linear model over two views of the whole line generalises better there:

* the sentence embedding (what the line means, across languages), and
* hashed word / character n-grams (which words it uses: "征信", "warrant", "你妈", "every
  hour"), which the embedding blurs on short, domain-heavy lines.

It is trained at start-up from the playbook's examples plus its labelled lines
(``labelled.jsonl``, call lines reviewed by people), deterministically (L-BFGS from zero,
no sampling), in about ten seconds on two cores, then kept in the caller's cache
(assist/caching.py).  Plain logistic regression: few parameters to calibrate, probabilities
that mean something for the thresholds, and weights small enough (about 2 MB) to keep in
memory once per playbook.
``bench/guidance_cv.py`` cross-validates the models over the labelled lines by batch.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from assist.caching import ArrayCache

NGRAM_DIMS = 1 << 15  # hashed n-gram buckets (some collide; the embedding view covers for them)
NGRAM_MAX_N = 3  # character n-grams (Mandarin) and word n-grams (English) up to this length
LINE_MODEL_L2 = 0.1  # ridge penalty against the summed loss; swept 0.03..1 by cross-validation
LINE_MODEL_MAX_ITER = 300  # L-BFGS iterations; converges well before this on the playbook
LINE_MODEL_FTOL = 1e-7  # relative loss change at which L-BFGS stops
NGRAM_MIN_LINES = 2  # an n-gram bucket must occur in this many training lines to get a weight

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9']+")


def ngrams(text: str, language: str) -> list[str]:
    """Mandarin: characters and their 2- and 3-grams (no word segmenter needed, and ASR's
    homophone errors change one character, not a whole word).  English: words and word pairs
    and triples, lower-cased, so "pay meant" and "payment" differ only in a few features."""
    t = text.lower()
    if language == "zh":
        t = _SPACE.sub("", t)
        return [t[i : i + n] for n in range(1, NGRAM_MAX_N + 1) for i in range(len(t) - n + 1)]
    w = _WORD.findall(t)
    return [" ".join(w[i : i + n]) for n in range(1, NGRAM_MAX_N + 1) for i in range(len(w) - n + 1)]


def ngram_matrix(texts: Sequence[str], languages: Sequence[str]) -> sp.csr_matrix:
    """One L2-normalised row per text, square-rooted counts in ``NGRAM_DIMS`` hashed buckets.

    crc32 rather than ``hash()``: Python salts string hashes per process, and the features
    must be the same in every process that shares a trained model.
    """
    data: list[float] = []
    cols: list[int] = []
    indptr = [0]
    for text, lang in zip(texts, languages, strict=True):
        counts: dict[int, int] = {}
        for g in ngrams(text, lang):
            h = zlib.crc32(g.encode("utf-8")) % NGRAM_DIMS
            counts[h] = counts.get(h, 0) + 1
        values = np.sqrt(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        norm = float(np.linalg.norm(values)) or 1.0
        data.extend((values / norm).tolist())
        cols.extend(counts)
        indptr.append(len(cols))
    return sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(cols, dtype=np.int64), np.asarray(indptr)),
        shape=(len(texts), NGRAM_DIMS),
    )


@dataclass(frozen=True)
class LineFeatures:
    """Embedding and n-gram views side by side; both are unit length, so neither dominates.

    Kept as two blocks so the dense one multiplies through BLAS rather than being stored as
    a sparse matrix with every entry set.
    """

    dense: np.ndarray  # (rows, embedding dim)
    sparse: sp.csr_matrix  # (rows, NGRAM_DIMS)

    @property
    def rows(self) -> int:
        return int(self.dense.shape[0])

    def take(self, rows: Sequence[int] | np.ndarray) -> LineFeatures:
        idx = np.asarray(rows, dtype=np.int64)
        return LineFeatures(self.dense[idx], self.sparse[idx])

    def dot(self, weights: np.ndarray) -> np.ndarray:
        d = self.dense.shape[1]
        out: np.ndarray = np.asarray(self.dense @ weights[:d]) + np.asarray(self.sparse @ weights[d:])
        return out

    def tdot(self, g: np.ndarray, sparse_t: sp.csr_matrix) -> np.ndarray:
        """Features transposed times ``g`` (the gradient's shape), ``sparse_t`` precomputed."""
        return np.concatenate([np.asarray(self.dense.T @ g), np.asarray(sparse_t @ g)])


def _fit_lbfgs(
    loss: Callable[[np.ndarray], tuple[float, np.ndarray]], size: int, max_iter: int
) -> np.ndarray:
    res = scipy.optimize.minimize(
        loss,
        np.zeros(size),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": LINE_MODEL_FTOL},
    )
    return np.asarray(res.x)


def _active(x: LineFeatures) -> tuple[LineFeatures, np.ndarray]:
    """The features restricted to n-gram buckets seen in at least ``NGRAM_MIN_LINES`` training
    lines, and those buckets' indices.  Unseen buckets would get zero weight anyway and one-line
    n-grams mostly memorise their line; leaving both out roughly halves the optimiser's work."""
    df = np.diff(x.sparse.tocsc().indptr)
    cols = np.flatnonzero(df >= NGRAM_MIN_LINES)
    return LineFeatures(x.dense, x.sparse[:, cols].tocsr()), cols


def _expand(w: np.ndarray, dense_dim: int, cols: np.ndarray) -> np.ndarray:
    """Weights over the active columns back to the full feature space (zeros elsewhere)."""
    full = np.zeros((dense_dim + NGRAM_DIMS, w.shape[1]), dtype=np.float32)
    full[:dense_dim] = w[:dense_dim]
    full[dense_dim + cols] = w[dense_dim:]
    return full


def line_features(texts: Sequence[str], languages: Sequence[str], vectors: np.ndarray) -> LineFeatures:
    return LineFeatures(np.asarray(vectors, dtype=np.float64), ngram_matrix(texts, languages))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large logits cannot overflow."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, written with tanh so large |z| cannot overflow."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


@dataclass(frozen=True)
class LinearModel:
    """Multinomial logistic regression; ``probabilities`` is (rows, classes)."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def probabilities(self, features: LineFeatures) -> np.ndarray:
        return softmax(features.dot(self.weights) + self.bias)


@dataclass(frozen=True)
class MultiLabelModel:
    """Independent yes/no outputs sharing one fit (a line can break several rules at once);
    ``probabilities`` is (rows, classes), each column its own sigmoid."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def probabilities(self, features: LineFeatures) -> np.ndarray:
        return sigmoid(features.dot(self.weights) + self.bias)


def _softmax_loss(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed cross-entropy of one-hot ``y`` under softmax(z), and its gradient in z."""
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -float((y * logp).sum()), np.exp(logp) - y


def _sigmoid_loss(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed log-loss of 0/1 ``y`` under sigmoid(z) per column, and its gradient in z."""
    # log(1 + e^z) - y z, written so large |z| cannot overflow
    return float((np.logaddexp(0.0, z) - y * z).sum()), sigmoid(z) - y


def _fit(
    features: LineFeatures,
    y: np.ndarray,
    output_loss: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    l2: float,
    max_iter: int,
    min_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) minimising ``output_loss`` plus ``l2 / 2 * |W|^2`` (the bias is not
    penalised), by L-BFGS from zero over the active n-gram columns; all zeros when there are
    no rows or fewer than ``min_classes`` outputs (nothing to learn)."""
    x, cols = _active(features)
    n, k = y.shape
    dim = x.dense.shape[1] + x.sparse.shape[1]
    xt = x.sparse.T.tocsr()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: dim * k].reshape(dim, k)
        value, g = output_loss(x.dot(w) + theta[dim * k :], y)
        grad_w = x.tdot(g, xt) + l2 * w
        return value + 0.5 * l2 * float((w * w).sum()), np.concatenate([grad_w.ravel(), g.sum(axis=0)])

    theta = _fit_lbfgs(loss, dim * k + k, max_iter) if n and k >= min_classes else np.zeros(dim * k + k)
    return _expand(theta[: dim * k].reshape(dim, k), x.dense.shape[1], cols), theta[dim * k :]


def fit_multilabel(
    classes: Sequence[str],
    features: LineFeatures,
    targets: np.ndarray,
    *,
    l2: float = LINE_MODEL_L2,
    max_iter: int = LINE_MODEL_MAX_ITER,
) -> MultiLabelModel:
    """One logistic regression per column of ``targets`` (rows x classes, 0/1), fitted together:
    the summed losses are independent, so one L-BFGS run costs about what one model would."""
    y = np.asarray(targets, dtype=np.float64)
    return MultiLabelModel(tuple(classes), *_fit(features, y, _sigmoid_loss, l2, max_iter, min_classes=1))


def fit_linear(
    classes: Sequence[str],
    features: LineFeatures,
    labels: Sequence[str],
    *,
    l2: float = LINE_MODEL_L2,
    max_iter: int = LINE_MODEL_MAX_ITER,
) -> LinearModel:
    """Fit on the rows whose label is one of ``classes`` (others are ignored); summed
    cross-entropy plus ``l2 / 2 * |W|^2``."""
    ids = tuple(classes)
    keep = np.array([i for i, lab in enumerate(labels) if lab in ids], dtype=np.int64)
    y = np.zeros((keep.size, len(ids)))
    y[np.arange(keep.size), [ids.index(labels[i]) for i in keep]] = 1.0
    return LinearModel(ids, *_fit(features.take(keep), y, _softmax_loss, l2, max_iter, min_classes=2))


# --------------------------------------------------------------------------- the engine's models

VIOLATION_CLASS = "violation"  # column 0 of the violation model: breaks any rule at all


@dataclass(frozen=True)
class TrainingLine:
    """One labelled line for the line models: a playbook example or a reviewed call line."""

    language: str
    text: str  # as the engine sees it (after ASR normalisation)
    vector: np.ndarray  # its sentence embedding
    stage: str | None  # stage id, the no-stage id, or None when the line teaches no stage
    rules: tuple[str, ...]  # the rules it breaks (empty: compliant)


@dataclass(frozen=True)
class LineJudgement:
    violation: float  # probability the line breaks some rule
    rules: dict[str, float]  # each rule's own probability
    stage: str
    stage_probability: float


@dataclass(frozen=True)
class LineModels:
    violations: MultiLabelModel  # classes: VIOLATION_CLASS, then the rule ids
    stages: LinearModel

    def judge(self, text: str, language: str, vector: np.ndarray) -> LineJudgement:
        f = line_features([text], [language], vector[None, :])
        p = self.violations.probabilities(f)[0]
        s = self.stages.probabilities(f)[0]
        j = int(np.argmax(s))
        rules = {c: float(v) for c, v in zip(self.violations.classes[1:], p[1:], strict=True)}
        return LineJudgement(float(p[0]), rules, self.stages.classes[j], float(s[j]))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "violation_classes": np.array(self.violations.classes),
            "violation_weights": self.violations.weights,
            "violation_bias": self.violations.bias,
            "stage_classes": np.array(self.stages.classes),
            "stage_weights": self.stages.weights,
            "stage_bias": self.stages.bias,
        }

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> LineModels:
        return cls(
            MultiLabelModel(
                tuple(str(c) for c in a["violation_classes"]), a["violation_weights"], a["violation_bias"]
            ),
            LinearModel(tuple(str(c) for c in a["stage_classes"]), a["stage_weights"], a["stage_bias"]),
        )


def train_line_models(
    rule_ids: Sequence[str], stage_ids: Sequence[str], lines: Sequence[TrainingLine]
) -> LineModels:
    """Both models from the same lines: every line teaches violation-or-not and its rules;
    lines with a stage label also teach the stage (violation examples from the playbook have
    none, so they do not teach that threats are some stage)."""
    x = line_features(
        [t.text for t in lines], [t.language for t in lines], np.stack([t.vector for t in lines])
    )
    targets = np.array(
        [[1.0 if t.rules else 0.0] + [1.0 if r in t.rules else 0.0 for r in rule_ids] for t in lines]
    )
    violations = fit_multilabel((VIOLATION_CLASS, *rule_ids), x, targets)
    stages = fit_linear(tuple(stage_ids), x, [t.stage or "" for t in lines])
    return LineModels(violations, stages)


def line_models_key(encoder_name: str, playbook_version: str, lines: Sequence[TrainingLine]) -> str:
    """Names the trained weights: the inputs and every setting that shapes them."""
    h = hashlib.sha256()
    for part in (
        encoder_name,
        playbook_version,
        NGRAM_DIMS,
        NGRAM_MAX_N,
        NGRAM_MIN_LINES,
        LINE_MODEL_L2,
        LINE_MODEL_MAX_ITER,
        LINE_MODEL_FTOL,
    ):
        h.update(f"{part}\x1f".encode())
    for t in lines:
        h.update(f"{t.language}\x1f{t.text}\x1f{t.stage}\x1f{','.join(t.rules)}\x1e".encode())
    return h.hexdigest()[:20]


def cached_line_models(key: str, cache: ArrayCache, train: Callable[[], LineModels]) -> LineModels:
    """Train once per key and keep the weights (a few seconds saved at every start-up)."""
    name = f"linemodels_{key}"
    arrays = cache.load(name)
    if arrays is not None:
        try:
            return LineModels.from_arrays(arrays)
        except KeyError:
            pass  # from another layout: retrain and overwrite
    models = train()
    cache.save(name, models.arrays())
    return models
