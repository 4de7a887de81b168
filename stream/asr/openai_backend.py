"""openai-whisper (PyTorch) backend: the reference implementation, kept as a second opinion.

It is slower than CTranslate2 on CPU but is the implementation Whisper's
published behaviour is defined by, so it is the yardstick for the
faster-whisper backend and a fallback if CTranslate2 misbehaves on a host.  Its
checkpoint is exported from the packaged CTranslate2 weights
(stream.asr.export), so both backends run bit-identical parameters.

It decodes exactly like FasterWhisperTranscriber(full_window=True): one
30 s window, greedy at temperature 0, the same prompt tokens, no timestamps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stream.asr.base import AsrRequest, AsrResult
from stream.asr.faster import (
    CHINESE_LANGUAGES,
    MAX_NEW_TOKENS_LIMIT,
    MAX_PROMPT_TOKENS,
    ChineseFolder,
    bounded_prompt_text,
    clip_audio,
)


class OpenAIWhisperTranscriber:
    name = "openai-whisper"

    def __init__(
        self,
        checkpoint: Path,
        *,
        max_new_tokens: int = 160,
        cpu_threads: int = 0,
        simplify_chinese: bool = True,
    ) -> None:
        import torch
        import whisper

        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(f"max_new_tokens must be 1..{MAX_NEW_TOKENS_LIMIT}")
        if not checkpoint.is_file():
            raise FileNotFoundError(f"openai-whisper checkpoint {checkpoint} does not exist")
        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)  # process-wide; there is one model per process
        # An existing file path makes load_model read it directly: no download is ever attempted.
        self._model: Any = whisper.load_model(str(checkpoint), device="cpu").float().eval()
        self.multilingual: bool = bool(self._model.is_multilingual)
        self._max_new_tokens = max_new_tokens
        self._fold = ChineseFolder() if simplify_chinese else None
        self._tokenizers: dict[str, Any] = {}

    def _tokenizer(self, language: str) -> Any:
        from whisper.tokenizer import get_tokenizer

        if not self.multilingual and language != "en":
            raise ValueError(f"this Whisper model is English-only; cannot transcribe language {language!r}")
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = get_tokenizer(
                self.multilingual,
                num_languages=self._model.num_languages,
                language=language if self.multilingual else None,
                task="transcribe",
            )
            self._tokenizers[language] = tok
        return tok

    def prompt_tokens(self, request: AsrRequest) -> list[int]:
        """Prompt text tokens (without sot_prev, which whisper.decode adds), bounded like faster.py's."""
        tok = self._tokenizer(request.language)
        text = bounded_prompt_text(request.prompt, request.hotwords, lambda s: len(tok.encode(s)))
        return list(tok.encode(" " + text))[-MAX_PROMPT_TOKENS:] if text else []

    def transcribe(self, request: AsrRequest) -> AsrResult:
        import torch
        import whisper

        started = time.perf_counter()
        self._tokenizer(request.language)  # rejects a language the model cannot do, before any work
        prompt = self.prompt_tokens(request)
        audio = whisper.pad_or_trim(clip_audio(request.audio))
        mel = whisper.log_mel_spectrogram(audio, n_mels=self._model.dims.n_mels)
        options = whisper.DecodingOptions(
            task="transcribe",
            language=request.language if self.multilingual else "en",
            temperature=0.0,
            sample_len=self._max_new_tokens,
            prompt=prompt or None,
            without_timestamps=True,
            suppress_blank=True,
            suppress_tokens="-1",
            fp16=False,
        )
        with torch.inference_mode():
            result = whisper.decode(self._model, mel, options)
        text = str(result.text).strip()
        if self._fold is not None and request.language in CHINESE_LANGUAGES:
            text = self._fold(text)
        return AsrResult(
            text=text,
            no_speech_prob=float(result.no_speech_prob),
            avg_logprob=float(result.avg_logprob),
            compute_ms=(time.perf_counter() - started) * 1000.0,
        )
