"""Voice-activity detection: per-frame speech probabilities for the endpointer.

A :class:`Vad` is stateful (Silero carries an LSTM state and a few samples of
audio context from frame to frame), so every call leg gets its own instance.

:class:`SileroVad` runs the Silero VAD v6 ONNX model that faster-whisper ships
in its wheel, so there is nothing to download.  It is fed the way
``faster_whisper.vad.SileroVADModel`` feeds it: 512-sample frames at 16 kHz,
each prefixed with the last 64 samples of the previous frame, with the LSTM
``h``/``c`` state carried across calls.  Feeding one frame per call gives the
same probabilities as faster-whisper's whole-file batch (the model's first
input dimension is the LSTM time axis), which the tests check.

All legs share one ``InferenceSession`` per process: ONNX Runtime sessions are
safe to run from several threads, and the per-leg state lives in the
:class:`SileroVad` instance.  The session is pinned to one intra-op and one
inter-op thread because the cores belong to Whisper; one 32 ms frame costs
about 0.25 ms of one core, i.e. under 1% of a core per leg.

:class:`EnergyVad` maps frame RMS (dBFS) through a logistic around a threshold.
It needs nothing beyond numpy, gives a deterministic answer for tests, and is
the fallback when ONNX Runtime is unavailable (``endpoint.vad = "energy"``);
it cannot tell speech from loud noise.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

VAD_SAMPLE_RATE: Final = 16000
SILERO_FRAME_SAMPLES: Final = 512  # the only frame size the 16 kHz model accepts
SILERO_CONTEXT_SAMPLES: Final = 64  # tail of the previous frame prepended to each frame
SILERO_STATE_SHAPE: Final = (1, 1, 128)  # LSTM h and c
SILERO_MODEL_FILE: Final = "silero_vad_v6.onnx"
SILERO_PACKAGE: Final = "faster_whisper"  # ships the model under <package>/assets/
ORT_LOG_ERRORS_ONLY: Final = 3  # onnxruntime severity: suppress its warnings about unused initialisers

ENERGY_FRAME_SAMPLES: Final = 512  # same cadence as Silero so endpointing timing does not depend on kind
ENERGY_THRESHOLD_DBFS: Final = -45.0  # probability 0.5 here; telephone noise floors sit near -60 dBFS
ENERGY_SLOPE_DB: Final = 2.0  # logistic width: +-4 dB around the threshold spans prob 0.12..0.88
ENERGY_FLOOR_DBFS: Final = -120.0  # RMS of digital silence is clamped here instead of -inf
_LOGIT_CLAMP: Final = 60.0  # keeps math.exp in range; the probability is 0 or 1 to double precision anyway

VAD_KINDS: Final = ("silero", "energy")


class Vad(Protocol):
    """Per-leg speech detector; frames are float32 in [-1, 1] at 16 kHz."""

    frame_samples: int

    def speech_prob(self, frame: FloatArray) -> float: ...

    def reset(self) -> None: ...


class VadUnavailable(RuntimeError):
    """The requested VAD cannot be built here (missing model file or runtime)."""


def silero_model_path() -> Path:
    """Locate the model inside the installed faster-whisper without importing it.

    Importing faster_whisper pulls in ctranslate2 and PyAV; ``find_spec`` only
    resolves the package directory.
    """
    spec = importlib.util.find_spec(SILERO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise VadUnavailable(f"{SILERO_PACKAGE} is not installed; use endpoint.vad = 'energy'")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "assets" / SILERO_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise VadUnavailable(f"{SILERO_MODEL_FILE} not found in {SILERO_PACKAGE}; use endpoint.vad = 'energy'")


@functools.cache
def _silero_session() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise VadUnavailable("onnxruntime is not installed; use endpoint.vad = 'energy'") from exc
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = False  # tiny tensors; the arena would only pin memory
    opts.log_severity_level = ORT_LOG_ERRORS_ONLY
    return onnxruntime.InferenceSession(
        str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )


class SileroVad:
    """Silero VAD v6 over ONNX Runtime, one instance per leg."""

    frame_samples: int = SILERO_FRAME_SAMPLES

    def __init__(self) -> None:
        self._session = _silero_session()
        self._input = np.zeros((1, SILERO_CONTEXT_SAMPLES + SILERO_FRAME_SAMPLES), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        self._input[:] = 0.0

    def speech_prob(self, frame: FloatArray) -> float:
        if frame.shape != (SILERO_FRAME_SAMPLES,):
            raise ValueError(f"SileroVad needs {SILERO_FRAME_SAMPLES}-sample frames, got {frame.shape}")
        # _input is [context | frame]; after the run its last 64 samples become the next context.
        self._input[0, SILERO_CONTEXT_SAMPLES:] = frame
        prob, self._h, self._c = self._session.run(None, {"input": self._input, "h": self._h, "c": self._c})
        self._input[0, :SILERO_CONTEXT_SAMPLES] = self._input[0, -SILERO_CONTEXT_SAMPLES:]
        return float(prob[0])


class EnergyVad:
    """RMS level against a threshold, squashed into a probability."""

    def __init__(
        self,
        threshold_dbfs: float = ENERGY_THRESHOLD_DBFS,
        frame_samples: int = ENERGY_FRAME_SAMPLES,
        slope_db: float = ENERGY_SLOPE_DB,
    ) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.frame_samples = frame_samples
        self.slope_db = slope_db

    def reset(self) -> None:
        """Stateless; present for the protocol."""

    def speech_prob(self, frame: FloatArray) -> float:
        db = rms_dbfs(frame)
        z = (db - self.threshold_dbfs) / self.slope_db
        return 1.0 / (1.0 + math.exp(-max(-_LOGIT_CLAMP, min(_LOGIT_CLAMP, z))))


def rms_dbfs(frame: FloatArray) -> float:
    """RMS level in dB relative to a full-scale square wave (0 dBFS = RMS 1.0)."""
    if len(frame) == 0:
        return ENERGY_FLOOR_DBFS
    power = float(np.mean(np.square(frame, dtype=np.float64)))
    floor_power = 10.0 ** (ENERGY_FLOOR_DBFS / 10.0)
    return 10.0 * math.log10(max(power, floor_power))


def make_vad(kind: str) -> Vad:
    """Build a fresh per-leg VAD from ``EndpointSettings.vad``."""
    if kind == "silero":
        return SileroVad()
    if kind == "energy":
        return EnergyVad()
    raise ValueError(f"unknown VAD kind {kind!r}; expected one of {', '.join(VAD_KINDS)}")
