"""What the live service and the offline commands share: the process-wide models
(one Whisper model, one guidance engine) and how a transcription request is made.
The utterance -> events step is :mod:`stream.live.utterance`.

Built once at start-up from the validated settings and passed down; nothing
here loads a model at import time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stream.asr.base import AsrRequest, Audio, Transcriber
from stream.settings import Settings

if TYPE_CHECKING:
    from assist.engine import GuidanceEngine

log = logging.getLogger(__name__)

MANDARIN_PROMPT = "以下是普通话的句子，使用简体中文。"
"""Without it Whisper often writes Mandarin in traditional characters."""

WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class AsrPlan:
    """Per-language prompt and hotwords handed to every transcription request."""

    prompts: dict[str, str] = field(default_factory=lambda: {"zh": MANDARIN_PROMPT, "en": ""})
    hotwords: dict[str, str] = field(default_factory=dict)

    def request(self, audio: Audio, language: str, *, partial: bool = False) -> AsrRequest:
        return AsrRequest(
            audio=audio,
            language=language,
            prompt=self.prompts.get(language, ""),
            hotwords=self.hotwords.get(language, ""),
            partial=partial,
        )


def playbook_dir(settings: Settings) -> Path:
    from assist.playbook import default_playbook_dir

    if settings.playbook:
        return Path(settings.playbook)
    return default_playbook_dir()


def load_transcriber(settings: Settings) -> Transcriber:
    """Resolve the configured model from the installed wheels and load the backend once."""
    from stream.asr.models import resolve_model

    cache = settings.model_cache_dir()
    asr = settings.asr
    if asr.backend == "faster-whisper":
        from stream.asr.faster import FasterWhisperTranscriber

        return FasterWhisperTranscriber(
            resolve_model(asr.model, cache),
            compute_type=asr.compute_type,
            cpu_threads=asr.cpu_threads,
            beam_size=asr.beam_size,
            max_new_tokens=asr.max_new_tokens,
            window_padding_s=asr.window_padding_s,
            full_window=asr.full_window,
            simplify_chinese=asr.simplify_chinese,
        )
    from stream.asr.export import cached_openai_checkpoint
    from stream.asr.openai_backend import OpenAIWhisperTranscriber

    checkpoint = cached_openai_checkpoint(asr.model, cache)
    return OpenAIWhisperTranscriber(checkpoint, max_new_tokens=asr.max_new_tokens)


def warm_up(transcriber: Transcriber, languages: Sequence[str] = ("zh",)) -> float:
    """Run one throw-away transcription so the first real utterance is not slow."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(int(16000 * WARMUP_SECONDS)) * 1e-3).astype(np.float32)
    for lang in languages:
        transcriber.transcribe(AsrRequest(audio=noise, language=lang))
    return time.perf_counter() - t0


def load_engine(settings: Settings) -> GuidanceEngine:
    from assist.engine import GuidanceEngine
    from assist.playbook import load_playbook
    from stream.live.caches import DiskArrayCache
    from stream.live.encoders import make_encoder

    playbook = load_playbook(playbook_dir(settings))
    return GuidanceEngine(playbook, make_encoder(settings.guidance_encoder), cache=DiskArrayCache())


def asr_plan_for(engine: GuidanceEngine | None) -> AsrPlan:
    if engine is None:
        return AsrPlan()
    hot = engine.playbook.hotwords
    return AsrPlan(hotwords={"zh": " ".join(hot.get("zh")), "en": english_hotword_prompt(hot.get("en"))})


def english_hotword_prompt(words: Sequence[str]) -> str:
    """Hotwords as a cased, punctuated sentence.

    Whisper copies the style of its prompt: a bare lowercase word list made every
    English transcript lowercase and unpunctuated.
    """
    if not words:
        return ""
    return "Topics: " + ", ".join(words) + "."


@dataclass
class SharedModels:
    """Process-wide heavy objects, built once at start-up and shared by all calls.

    (Not to be confused with :class:`stream.web.server.Service`, the web service that uses them.)
    """

    transcriber: Transcriber
    engine: GuidanceEngine | None
    plan: AsrPlan


def load_shared_models(settings: Settings) -> SharedModels:
    """Load the model and the playbook once; slow (seconds), so done before listening."""
    t0 = time.perf_counter()
    transcriber = load_transcriber(settings)
    engine = load_engine(settings) if settings.guidance else None
    languages = ("zh", "en")
    warm = warm_up(transcriber, languages)
    log.info("models ready in %.1f s (warm-up %.1f s)", time.perf_counter() - t0, warm)
    return SharedModels(transcriber=transcriber, engine=engine, plan=asr_plan_for(engine))
