"""``stream.files``: a file is replaced whole or not at all, with the usual permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stream.files import atomic_writer, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, "{}\n")
    write_atomic(target, "欠款\r\n")  # text is UTF-8, line endings as given
    assert target.read_bytes() == "欠款\r\n".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    write_atomic(target, b"\x00\x01", mode=0o640)
    assert target.read_bytes() == b"\x00\x01" and target.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
