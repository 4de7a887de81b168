"""Where the engine keeps arrays that are slow to compute, without touching storage itself.

Embedding a full playbook and training the line models cost seconds at every start-up.  assist
names those arrays and checks what comes back; the process that builds the engine chooses where
they live (stream/live/caches.py keeps them on disk), so assist stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np


class ArrayCache(Protocol):
    def load(self, name: str) -> Mapping[str, np.ndarray] | None:
        """The arrays kept under ``name``; None when there are none or they cannot be read."""
        ...

    def save(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Keep ``arrays`` under ``name``; failing to keep them must only cost time later."""
        ...


class NoCache:
    """Keeps nothing: every engine computes its arrays afresh (tests, one-off tools)."""

    def load(self, name: str) -> Mapping[str, np.ndarray] | None:
        return None

    def save(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        return None
