"""Stand-ins the tests share: scripted transcribers and encoders, synthetic audio, PCM and WAV
helpers, the native protocol's start frame, and a minimal synthetic playbook.

They live here, not in a test module, so no test module imports another; fixtures built from
them live in conftest.py.  Each fake is deterministic and instant, so tests that use them never
load a model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import struct
import tempfile
import threading
import time
import wave
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import yaml

from assist.playbook import RULE_IDS, SIGNAL_IDS, STAGE_IDS
from stream.asr.base import AsrRequest, AsrResult
from stream.live.bus import CallLog

RATE = 16000  # the service's internal sample rate
WAIT_S = 5.0  # generous bound for the worker thread to reach the gate on a loaded 2-core box
ROOT = Path(__file__).resolve().parent.parent
ENGINE_CODE = "assist/**/*.py"  # with HashEncoder: what shapes a test engine's trained weights


# -- transcribers --------------------------------------------------------------------------------


@dataclass
class FakeTranscriber:
    """Says how long each utterance was, so tests can check what audio reached 'Whisper'."""

    name: str = "fake"
    delay_s: float = 0.01
    seen: list[float] = field(default_factory=list)

    def transcribe(self, request: AsrRequest) -> AsrResult:
        time.sleep(self.delay_s)
        seconds = len(request.audio) / RATE
        if not request.partial:
            self.seen.append(seconds)
        return AsrResult(
            text=f"utterance of {seconds:.1f} seconds", no_speech_prob=0.0, avg_logprob=-0.1, compute_ms=1.0
        )


class ScriptedTranscriber:
    """Records the order requests were served in; a cleared gate holds the worker mid-request."""

    name = "scripted"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.served: list[str] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def transcribe(self, request: AsrRequest) -> AsrResult:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(WAIT_S), "test never opened the gate"
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        label = request.prompt
        if label.startswith("boom"):
            raise RuntimeError(label)
        self.served.append(label)
        return AsrResult(text=label, no_speech_prob=0.0, avg_logprob=-0.1, compute_ms=1.0)


@dataclass
class DurationTranscriber(FakeTranscriber):
    """FakeTranscriber without the delay, for the adapter tests (only what audio arrived counts)."""

    name: str = "duration"
    delay_s: float = 0.0


# -- encoders ------------------------------------------------------------------------------------


class HashEncoder:
    """Character-trigram hashing: a deterministic, instant stand-in for USE (similarity is crude;
    the playbook's patterns, which carry the labelled rules, do not depend on it)."""

    name = "test-trigram-hash"
    dim = 256

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            s = f"  {text.lower()}  "
            for j in range(len(s) - 2):
                out[i, zlib.crc32(s[j : j + 3].encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: np.ndarray = out / norms
        return normalised


class CountingEncoder:
    name = "counting/test"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rng = np.random.default_rng(len(texts))
        x = rng.normal(size=(len(texts), 8)).astype(np.float32)
        return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def engine_cache_dir() -> Path:
    """Where engines built on HashEncoder keep their embeddings and trained line models.

    Training the line models costs tens of CPU seconds, so runs share a folder; it is named by
    a digest of the code that trains them (assist/ and HashEncoder), so a change to that code
    never reads weights the old code trained (the engine's own cache keys cover the playbook
    and its settings)."""
    digest = hashlib.sha256(inspect.getsource(HashEncoder).encode())
    for path in sorted(ROOT.glob(ENGINE_CODE)):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return Path(tempfile.gettempdir()) / f"callassist-test-engine-{digest.hexdigest()[:16]}"


# -- audio and the native protocol ---------------------------------------------------------------


def tone(seconds: float, rate: int = RATE, amp: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def stereo(agent: np.ndarray, customer: np.ndarray) -> np.ndarray:
    n = max(len(agent), len(customer))
    out = np.zeros((n, 2), dtype=np.float32)
    out[: len(agent), 0] = agent
    out[: len(customer), 1] = customer
    return out.reshape(-1)


def start_frame(call_id: str, **over: Any) -> str:
    msg = {
        "type": "start",
        "call_id": call_id,
        "language": "en",
        "sample_rate": 16000,
        "encoding": "pcm_s16le",
        "channels": ["agent", "customer"],
        "metadata": {"agent_name": "Ann"},
    }
    msg.update(over)
    return json.dumps(msg)


async def send_audio(ws: aiohttp.ClientWebSocketResponse, data: bytes, frame: int = 3200) -> None:
    for i in range(0, len(data), frame):
        await ws.send_bytes(data[i : i + frame])


# -- WAV files ----------------------------------------------------------------------------------


def read_wav_chunks(path: Path) -> tuple[int, int, int, bytes]:
    """(format tag, channels, rate, data) by walking RIFF chunks; ``wave`` refuses G.711."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    pos, fmt = 12, None
    while pos + 8 <= len(raw):
        cid, size = struct.unpack_from("<4sI", raw, pos)
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHI", raw, pos + 8)
        elif cid == b"data":
            assert fmt is not None
            return fmt[0], fmt[1], fmt[2], raw[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def read_pcm_wav(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    """(rate, samples shaped (frames, channels)) of a 16-bit PCM WAV."""
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        return w.getframerate(), data.reshape(-1, w.getnchannels())


# -- a synthetic playbook ------------------------------------------------------------------------


def _texts(prefix: str, n: int) -> dict[str, list[str]]:
    return {
        "zh": [f"{prefix}中文例句第{i}句" for i in range(n)],
        "en": [f"{prefix} english sentence {i}" for i in range(n)],
    }


def _line(ident: str, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "text": {"zh": f"建议{ident}", "en": f"suggestion {ident}"}, **extra}


def synthetic() -> dict[str, Any]:
    """A minimal valid playbook: every id, exactly the minimum counts."""
    rules = []
    for i, rid in enumerate(RULE_IDS):
        rules.append(
            {
                "id": rid,
                "severity": "critical" if i < 5 else "major",
                "why": {"zh": f"原因{i}", "en": f"why {i}"},
                "grounding": "FDCPA",
                "patterns": {"zh": [f"违规词{i}号"], "en": [rf"\bbadword{i}\b"]},
                "negations": {"zh": ["不会"], "en": [r"\bwon't\b"]},
                "violations": {
                    "zh": [f"你这个违规词{i}号第{k}次" for k in range(15)],
                    "en": [f"you badword{i} number {k}" for k in range(15)],
                },
                "lookalikes": _texts(f"lookalike {rid}", 10),
                "rephrase": {"zh": f"改说{i}", "en": f"say {i} instead"},
            }
        )
    return {
        "playbook.yaml": {
            "version": "t1",
            "name": "synthetic",
            "languages": ["zh", "en"],
            "defaults": {
                "company": {"zh": "测试公司", "en": "Test Co"},
                "agent_name": {"zh": "小王", "en": "Sam"},
            },
            "hotwords": {"zh": ["还款", "分期"], "en": ["instalment"]},
        },
        "stages.yaml": {
            "stages": [
                {
                    "id": sid,
                    "goal": {"zh": f"目标{sid}", "en": f"goal {sid}"},
                    "examples": _texts(f"stage {sid}", 10),
                    "suggestions": [_line(f"{sid}_{k}", needs_identity=k > 0) for k in range(5)],
                }
                for sid in STAGE_IDS
            ]
        },
        "signals.yaml": {
            "signals": [
                {
                    "id": gid,
                    "meaning": {"zh": f"含义{gid}", "en": f"meaning {gid}"},
                    "examples": _texts(f"signal {gid}", 10),
                    "responses": [_line(f"sig_{gid}_{k}", after_signals=[gid]) for k in range(2)],
                }
                for gid in SIGNAL_IDS
            ]
        },
        "rules.yaml": {"rules": rules},
    }


def write(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in data.items():
        (folder / name).write_text(
            yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return folder


# -- live calls -----------------------------------------------------------------------------------


@dataclass
class StubSession:
    """The two things the call registry reads from a CallSession (its id and its event log),
    without the audio pipeline a real session builds."""

    call_id: str
    log: CallLog = field(init=False)

    def __post_init__(self) -> None:
        self.log = CallLog(self.call_id, limit=100)


# -- the fixture calls ------------------------------------------------------------------------------


FIXTURES = Path(__file__).parent / "fixtures"


def load_script(call: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{call}.json").read_text(encoding="utf-8"))
    return data
