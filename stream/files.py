"""Writing a file so that a reader never sees half of it, and a crash never leaves half of it.

Reports, summaries, model files and caches are read by other processes (a QA reviewer's browser, the
next service start, another node sharing a folder), so every such write goes to a temporary file
beside the target (``.<name>.<random>.tmp``, a name readers and clean-ups recognise), is synced, and
is renamed over the target in one step; the folder is synced too, so the rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
NEW_FILE_MODE = 0o666  # before the umask, as open() would create the file


@functools.cache
def _umask() -> int:
    """The process umask, read once: os.umask can only be read by setting it."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content to; renamed in only once complete and synced.

    ``mode``: the file's permissions (default: the usual mode of a new file under the umask; mkstemp
    alone would make it 0600, unreadable to the other users of a shared folder).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, NEW_FILE_MODE & ~_umask() if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8, line endings as given)."""
    with atomic_writer(path, mode=mode) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
