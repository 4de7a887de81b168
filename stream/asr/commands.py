"""`callassist models list|verify|export-openai-whisper`: the registry and the exporter as
text for an operator.  Kept apart from models.py so the registry does not depend on the
exporter (which itself builds on the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TextIO

from stream.asr.export import ExportError, cached_openai_checkpoint, export_openai_whisper
from stream.asr.models import ModelError, list_models, model_kind, resolve_model, verify_models


def _human_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def run_models_command(action: Literal["list", "verify"], cache_dir: Path, out: TextIO) -> int:
    """`callassist models list|verify`: print a table; 0 when every installed model checks out."""
    rows: list[tuple[str, ...]]
    if action == "list":
        infos = list_models(cache_dir)
        rows = [("NAME", "KIND", "INSTALLED", "SIZE", "PATH", "PACKAGES")]
        for info in infos:
            where = str(info.path) if info.path else ("(assembled on first use)" if info.installed else "-")
            rows.append(
                (
                    info.name,
                    info.kind,
                    "yes" if info.installed else "no",
                    _human_size(info.size),
                    where,
                    " + ".join(info.source_packages),
                )
            )
        _table(rows, out)
        return 0 if any(i.installed for i in infos) else 1
    results = verify_models(cache_dir)
    rows = [("NAME", "STATUS", "PATH", "DETAIL")]
    for r in results:
        rows.append((r.name, r.status, str(r.path) if r.path else "-", r.detail))
    _table(rows, out)
    installed = [r for r in results if r.status != "not installed"]
    return 0 if installed and all(r.ok for r in installed) else 1


def run_export_command(model: str, out_path: Path | None, cache_dir: Path, out: TextIO) -> int:
    """`callassist models export-openai-whisper`: an openai-whisper checkpoint of a CTranslate2 model."""
    try:
        if out_path is None:
            dest = cached_openai_checkpoint(model, cache_dir)
        else:
            ct2_dir = resolve_model(model, cache_dir)
            if model_kind(ct2_dir) != "ctranslate2":
                raise ModelError(f"{model} is already an openai-whisper checkpoint")
            dest = export_openai_whisper(ct2_dir, out_path)
    except (ModelError, ExportError) as exc:
        out.write(f"error: {exc}\n")
        return 1
    out.write(f"{dest} ({_human_size(dest.stat().st_size)}): load with whisper.load_model({str(dest)!r})\n")
    return 0
