"""The guidance engine's array cache on disk: exemplar embeddings and trained line-model weights.

Kept in stream/ because it is file I/O and reads the environment (``XDG_CACHE_HOME``); assist
only sees the small ``ArrayCache`` protocol (assist/caching.py).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

CACHE_SUFFIX = ".npz"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/callassist/embeddings``, else ``~/.cache/callassist/embeddings``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callassist" / "embeddings"


class DiskArrayCache:
    """One ``.npz`` file per name in one folder, written atomically (rename into place), so a
    process killed mid-write or two processes starting together never leave a torn file."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()

    def path(self, name: str) -> Path:
        return self.directory / f"{name}{CACHE_SUFFIX}"

    def load(self, name: str) -> Mapping[str, np.ndarray] | None:
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                return None  # a bare array from some other layout: recompute and overwrite
            with data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None  # corrupt or truncated: recompute and overwrite

    def save(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        path = self.path(name)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp{CACHE_SUFFIX}")
            np.savez(tmp, allow_pickle=False, **arrays)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs start-up time
