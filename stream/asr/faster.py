"""faster-whisper (CTranslate2) backend, driven below faster-whisper's own transcribe().

faster-whisper's transcribe() pads every utterance to Whisper's 30 s window; on
a 2-core box the encoder alone then costs 1.5-2.2 s per utterance whatever its
length.  CTranslate2's encoder accepts shorter mel inputs, so by default the
features cover only the utterance plus ``window_padding_s`` of silence, which
cuts per-utterance latency about fourfold for a small accuracy loss (measured
on the Mandarin fixtures: CER ~0.17 -> ~0.21).  ``full_window=True`` restores the
standard 30 s window, e.g. for like-for-like comparisons with openai-whisper.

Decoding is one greedy (or beam) pass at temperature 0: the usual temperature
fallback re-decodes a hard clip several times and made single utterances take
7-9 s, which is worse for live guidance than an imperfect transcript.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stream.asr.base import SAMPLE_RATE, AsrRequest, AsrResult, Audio

MAX_WINDOW_S = 30.0  # Whisper's receptive field; longer audio is clipped (the endpointer splits at 20 s)
WHISPER_MAX_LENGTH = 448  # decoder context: prompt + generated tokens must fit in it
MAX_PROMPT_TOKENS = 100  # prompt + hotwords; a longer prompt starts to steer Whisper into repeating it
PROMPT_OVERHEAD_TOKENS = 5  # sot_prev, sot, language, task, no_timestamps
MAX_NEW_TOKENS_LIMIT = WHISPER_MAX_LENGTH - MAX_PROMPT_TOKENS - PROMPT_OVERHEAD_TOKENS
FRAME_ALIGN_SAMPLES = 320  # mel hop (160) x encoder conv stride (2): the encoder needs an even frame count
PROMPT_CACHE_SIZE = 64  # distinct (language, prompt, hotwords) combinations kept tokenised
CHINESE_LANGUAGES = ("zh",)  # outputs folded to simplified characters when simplify_chinese is on


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware), for cpu_threads=0."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def bounded_prompt_text(
    prompt: str, hotwords: str, count_tokens: Callable[[str], int], max_tokens: int = MAX_PROMPT_TOKENS
) -> str:
    """The prompt with as many hotwords appended as fit in ``max_tokens``.

    Hotwords are cut at word boundaries (never mid-character); the prompt
    itself is kept whole because for Mandarin it carries the simplified-script
    hint, and is only token-truncated later if it alone is too long.
    """
    text = prompt.strip()
    for word in hotwords.split():
        candidate = f"{text} {word}" if text else word
        if count_tokens(" " + candidate) > max_tokens:
            break
        text = candidate
    return text


TOKENS_PER_SECOND = 12.0  # fast Mandarin is ~6 characters/s, ~1.5 tokens each; English far fewer
TOKEN_BUDGET_SLACK = 16


class ChineseFolder:
    """Folds traditional characters to simplified; Whisper drifts into traditional even when prompted."""

    def __init__(self) -> None:
        import opencc

        self._converter = opencc.OpenCC("t2s")

    def __call__(self, text: str) -> str:
        return str(self._converter.convert(text))


def clip_audio(audio: Audio) -> Audio:
    """Mono float32 of at most one Whisper window."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    limit = int(MAX_WINDOW_S * SAMPLE_RATE)
    return samples[:limit] if samples.shape[0] > limit else samples


class FasterWhisperTranscriber:
    """One CTranslate2 Whisper model; not meant to be called from several threads at once (the scheduler
    gives it one worker thread, and CTranslate2 uses the cores itself)."""

    name = "faster-whisper"

    def __init__(
        self,
        model_dir: Path,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        beam_size: int = 1,
        max_new_tokens: int = 160,
        window_padding_s: float = 1.0,
        full_window: bool = False,
        simplify_chinese: bool = True,
    ) -> None:
        from faster_whisper import WhisperModel

        if beam_size < 1:
            raise ValueError("beam_size must be >= 1")
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(f"max_new_tokens must be 1..{MAX_NEW_TOKENS_LIMIT}")
        if window_padding_s < 0:
            raise ValueError("window_padding_s must be >= 0")
        self._model: Any = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads or available_cores(),
            num_workers=1,
        )
        self._ct2: Any = self._model.model
        self._features: Any = self._model.feature_extractor
        self.multilingual: bool = bool(self._ct2.is_multilingual)
        self._beam_size = beam_size
        self._max_new_tokens = max_new_tokens
        self._padding_samples = round(window_padding_s * SAMPLE_RATE)
        self._full_window = full_window
        self._fold = ChineseFolder() if simplify_chinese else None
        self._tokenizers: dict[str, Any] = {}
        self._prompts: OrderedDict[tuple[str, str, str], list[int]] = OrderedDict()

    def _tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        if not self.multilingual and language != "en":
            raise ValueError(f"this Whisper model is English-only; cannot transcribe language {language!r}")
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = Tokenizer(self._model.hf_tokenizer, self.multilingual, task="transcribe", language=language)
            self._tokenizers[language] = tok
        return tok

    def prompt_tokens(self, request: AsrRequest) -> list[int]:
        """[sot_prev] + prompt (+ hotwords) + sot sequence + [no_timestamps], cached per combination."""
        key = (request.language, request.prompt, request.hotwords)
        cached = self._prompts.get(key)
        if cached is not None:
            self._prompts.move_to_end(key)
            return list(cached)
        tok = self._tokenizer(request.language)
        text = bounded_prompt_text(request.prompt, request.hotwords, lambda s: len(tok.encode(s)))
        tokens: list[int] = []
        if text:
            tokens = [tok.sot_prev, *tok.encode(" " + text)[-MAX_PROMPT_TOKENS:]]
        tokens += [*tok.sot_sequence, tok.no_timestamps]
        self._prompts[key] = tokens
        if len(self._prompts) > PROMPT_CACHE_SIZE:
            self._prompts.popitem(last=False)
        return list(tokens)

    def features(self, audio: Audio) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Log-mel of the utterance plus trailing silence (or of the full 30 s window)."""
        samples = clip_audio(audio)
        window = int(MAX_WINDOW_S * SAMPLE_RATE)
        if self._full_window:
            length = window
        else:
            wanted = samples.shape[0] + self._padding_samples
            aligned = -(-max(wanted, FRAME_ALIGN_SAMPLES) // FRAME_ALIGN_SAMPLES) * FRAME_ALIGN_SAMPLES
            length = min(window, aligned)
        padded = np.zeros(length, dtype=np.float32)
        padded[: samples.shape[0]] = samples
        mel = self._features(padded, padding=0)
        return np.ascontiguousarray(mel[:, : length // self._features.hop_length], dtype=np.float32)

    def token_budget(self, samples: int) -> int:
        """New tokens allowed for this much audio.

        Real speech needs at most ~TOKENS_PER_SECOND tokens a second; a short clip
        that loops ("Hello, is this Marcus Bell?" x 12 was seen with the short window)
        is cut off early instead of burning the whole budget, which bounds its latency.
        """
        seconds = samples / SAMPLE_RATE
        return max(1, min(self._max_new_tokens, int(TOKENS_PER_SECOND * seconds + TOKEN_BUDGET_SLACK)))

    def transcribe(self, request: AsrRequest) -> AsrResult:
        import ctranslate2

        started = time.perf_counter()
        tok = self._tokenizer(request.language)
        prompt = self.prompt_tokens(request)
        mel = self.features(request.audio)
        result = self._ct2.generate(
            ctranslate2.StorageView.from_array(mel[np.newaxis]),
            [prompt],
            beam_size=self._beam_size,
            max_length=min(len(prompt) + self.token_budget(len(request.audio)), WHISPER_MAX_LENGTH),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens: list[int] = result.sequences_ids[0]
        # CTranslate2 reports the length-normalised score; undo it the way faster-whisper does so
        # avg_logprob means what it means in openai-whisper (sum over tokens + end-of-text, / (n + 1)).
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        text = tok.decode(tokens).strip()
        if self._fold is not None and request.language in CHINESE_LANGUAGES:
            text = self._fold(text)
        return AsrResult(
            text=text,
            no_speech_prob=float(result.no_speech_prob),
            avg_logprob=avg_logprob,
            compute_ms=(time.perf_counter() - started) * 1000.0,
        )
