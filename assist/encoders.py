"""What assist needs from a sentence encoder, the labelled sentences it embeds, and the
exemplar-embedding cache key.

The encoders themselves (model weights loaded from local files) live in stream/live/encoders.py;
where the cached embeddings are kept is the caller's ``ArrayCache`` (assist/caching.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from assist.caching import ArrayCache

EMBEDDINGS_KEY = "vectors"  # the array an exemplar-embedding cache entry holds


class TextEncoder(Protocol):
    """Maps texts to L2-normalised float32 rows (one per text), so a dot product is a cosine."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ExemplarSet:
    """Labelled example sentences and their embeddings, for nearest-example scoring."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    vectors: np.ndarray  # (len(texts), dim), L2-normalised

    def __len__(self) -> int:
        return len(self.texts)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def cached_encode(
    encoder: TextEncoder, texts: Sequence[str], *, playbook_version: str, cache: ArrayCache
) -> np.ndarray:
    """Embed the playbook's exemplars once per (playbook version, encoder) and reuse them.

    Embedding a full playbook costs seconds on a shared core; doing it at every
    start-up would delay the first call.  The name also hashes the text list, so
    a change in how exemplars are gathered never reads stale rows.
    """
    digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:12]
    name = f"{playbook_version}_{_slug(encoder.name)}_{digest}"
    cached = (cache.load(name) or {}).get(EMBEDDINGS_KEY)
    if (
        cached is not None
        and cached.ndim == 2
        and cached.shape[0] == len(texts)
        and cached.dtype == np.float32
    ):
        return np.asarray(cached, dtype=np.float32)
    vectors = encoder.encode(texts)
    cache.save(name, {EMBEDDINGS_KEY: vectors})
    return vectors
