"""Softmax regression over sentence embeddings, trained from the playbook at start-up: the rule
selector and the violation detector (assist/compliance.py) and the stage model (assist/stages.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assist.linemodel import softmax

# Which rule a paraphrase breaks.  Nearest-example similarity is good at telling a violation
# from compliant speech (the margin over look-alikes) but poor at telling one rule from
# another: the nearest single example is often a threat when the line is an insult, because
# both talk about the same debt.  A softmax regression over the sentence embeddings of every
# violation example learns what each rule's examples have in common; on our own dev set it
# chose the right rule for 92% of violating lines against 84% for the nearest example.
# Trained on the playbook alone, deterministically (full-batch gradient descent from zero),
# once per engine: a few hundred rows x 512 dimensions train in a fraction of a second.
SELECTOR_L2 = 1e-3  # ridge penalty on the weights (mean loss); swept 1e-4..1e-2 on dev
SELECTOR_STEPS = 500  # gradient steps; the loss is flat well before this
SELECTOR_LEARNING_RATE = 2.0  # rows are unit vectors, so the loss is smooth enough for a large step
SELECTOR_MOMENTUM = 0.9


@dataclass(frozen=True)
class SoftmaxModel:
    """Softmax regression over class ids: rules (the selector), violation/compliant (the
    detector), stages (assist/stages.py).  ``probabilities`` is (units, classes)."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (dim, classes)
    bias: np.ndarray  # (classes,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(vectors, dtype=np.float64) @ self.weights + self.bias)

    def best(self, vector: np.ndarray) -> tuple[str, float]:
        p = self.probabilities(vector[None, :])[0]
        j = int(np.argmax(p))
        return self.classes[j], float(p[j])


def train_softmax(
    classes: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    l2: float = SELECTOR_L2,
    steps: int = SELECTOR_STEPS,
    learning_rate: float = SELECTOR_LEARNING_RATE,
) -> SoftmaxModel:
    """Fit the model on labelled rows (rows whose label is not in ``classes`` are ignored)."""
    ids = tuple(classes)
    keep = [i for i, lab in enumerate(labels) if lab in ids]
    x = np.asarray(vectors, dtype=np.float64)[keep]
    n, dim = x.shape
    y = np.zeros((n, len(ids)))
    y[np.arange(n), [ids.index(labels[i]) for i in keep]] = 1.0
    w = np.zeros((dim, len(ids)))
    b = np.zeros(len(ids))
    vw = np.zeros_like(w)
    vb = np.zeros_like(b)
    for _ in range(steps):
        # Nesterov momentum: the gradient is taken at the look-ahead point.
        wl, bl = w + SELECTOR_MOMENTUM * vw, b + SELECTOR_MOMENTUM * vb
        g = (softmax(x @ wl + bl) - y) / max(n, 1)
        vw = SELECTOR_MOMENTUM * vw - learning_rate * (x.T @ g + l2 * wl)
        vb = SELECTOR_MOMENTUM * vb - learning_rate * g.sum(axis=0)
        w, b = w + vw, b + vb
    return SoftmaxModel(ids, w, b)
