"""Streaming band-limited resampling of call audio to the 16 kHz the models expect.

Telephone legs arrive at 8 kHz in 20 ms frames.  Repeating samples (or any
per-chunk resampling) puts images of the 0-4 kHz band at 4-8 kHz and clicks at
every chunk edge; both hurt Whisper and the VAD.  :class:`StreamResampler`
upsamples by an integer factor with one linear-phase Kaiser-windowed-sinc FIR,
run polyphase (one short filter per output phase) with the last input samples
carried across calls, so feeding a signal in chunks of any size gives exactly
the output of feeding it in one piece.

Filter (8 -> 16 kHz): passband flat (+-0.003 dB) to 3.5 kHz, which covers the
300-3400 Hz telephone band; stopband from 4 kHz (the source Nyquist) at
>= 69 dB, so every image lands at least 69 dB down.  141 taps at 16 kHz.

Group delay: a linear-phase FIR of N taps delays by (N - 1) / 2 output samples
(70 samples = 4.375 ms here).  The resampler compensates: it drops the first
``delay_samples`` outputs and :meth:`StreamResampler.flush` supplies the last
ones, so output sample *i* is the signal at time *i* / dst_rate of the input's
own clock and timestamps downstream need no correction.  The price is that the
most recent ``delay_samples`` of output are held back until the next chunk (or
the flush), so a live stream lags by 4.4 ms.  After flush the output length is
exactly ``input_samples * dst_rate // src_rate``.

Equal rates are a pass-through (conversion to float32 only).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

FloatArray = npt.NDArray[np.float32]

PASSBAND_FRACTION: Final = 0.875  # passband edge as a fraction of the source Nyquist (3.5 kHz of 4 kHz)
STOPBAND_ATTENUATION_DB: Final = 70.0  # Kaiser design target; the realised minimum is ~69.5 dB
INT16_SCALE: Final = 32768.0  # int16 full scale -> float [-1, 1)


def design_interpolation_filter(src_rate: int, dst_rate: int) -> npt.NDArray[np.float64]:
    """Lowpass FIR at dst_rate, gain ``dst_rate / src_rate`` to make up for zero-stuffing.

    The stopband starts exactly at the source Nyquist so no image survives; the
    transition band sits just below it, where telephone audio has no content.
    """
    nyquist = src_rate / 2
    passband = PASSBAND_FRACTION * nyquist
    width = (nyquist - passband) / (dst_rate / 2)
    numtaps, beta = signal.kaiserord(STOPBAND_ATTENUATION_DB, width)
    numtaps |= 1  # odd length: integer group delay
    taps = signal.firwin(numtaps, (passband + nyquist) / 2, window=("kaiser", beta), fs=dst_rate)
    factor = dst_rate // src_rate
    result: npt.NDArray[np.float64] = np.asarray(taps, dtype=np.float64) * factor
    return result


class StreamResampler:
    """Integer-factor upsampler (or pass-through) with state carried across chunks.

    One instance per audio leg; it is not thread-safe and holds a few hundred
    bytes of history.
    """

    def __init__(self, src_rate: int, dst_rate: int = 16000) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        if dst_rate % src_rate:
            raise ValueError(f"only integer upsampling is supported, not {src_rate} -> {dst_rate}")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self.factor = dst_rate // src_rate
        if self.factor == 1:
            self._phases = np.ones((1, 1))
            self.delay_samples = 0
        else:
            taps = design_interpolation_filter(src_rate, dst_rate)
            self.delay_samples = (len(taps) - 1) // 2
            padded = np.zeros(-(-len(taps) // self.factor) * self.factor)
            padded[: len(taps)] = taps
            # Row p holds the taps that produce output phase p (every factor-th tap).
            self._phases = padded.reshape(-1, self.factor).T.copy()
        self._history_len = self._phases.shape[1] - 1
        self._reset()

    def _reset(self) -> None:
        self._history = np.zeros(self._history_len)
        self._to_skip = self.delay_samples
        self._inputs = 0  # input samples since the last flush
        self._outputs = 0  # output samples returned since the last flush

    @property
    def pending_samples(self) -> int:
        """Output samples owed for input already received (returned by the next call or flush)."""
        return self._inputs * self.factor - self._outputs

    def process(self, chunk: npt.NDArray[np.int16] | npt.NDArray[np.float32]) -> FloatArray:
        """Resample one chunk; int16 is scaled to [-1, 1), float32 is taken as already scaled."""
        x = _as_float(chunk)
        self._inputs += len(x)
        return self._emit(self._filter(x))

    def flush(self) -> FloatArray:
        """Return the held-back tail and reset, ready for a new stream."""
        owed = self.pending_samples
        out = np.zeros(0, dtype=np.float32)
        if owed > 0 and self.factor > 1:
            zeros = np.zeros(-(-self._to_skip // self.factor) + -(-owed // self.factor))
            out = self._emit(self._filter(zeros))[:owed]
        self._reset()
        return out

    def _filter(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.factor == 1 or len(x) == 0:
            # Empty input must not reach np.convolve: "valid" mode swaps operands when
            # the signal is shorter than the filter.
            return x
        xx = np.concatenate((self._history, x))
        if self._history_len:
            self._history = xx[-self._history_len :].copy()
        y = np.empty(len(x) * self.factor)
        for phase, taps in enumerate(self._phases):
            y[phase :: self.factor] = np.convolve(xx, taps, mode="valid")
        return y

    def _emit(self, y: npt.NDArray[np.float64]) -> FloatArray:
        if self._to_skip:
            skip = min(self._to_skip, len(y))
            self._to_skip -= skip
            y = y[skip:]
        self._outputs += len(y)
        return y.astype(np.float32)


def _as_float(chunk: npt.NDArray[np.int16] | npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    a = np.asarray(chunk)
    if a.ndim != 1:
        raise ValueError(f"expected a mono 1-D chunk, got shape {a.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float64) / INT16_SCALE
    if a.dtype in (np.float32, np.float64):
        return a.astype(np.float64)
    raise TypeError(f"expected int16 or float32 samples, got {a.dtype}")
