"""The README's Python client, run as written against a real service, so the example cannot rot.

The code is taken from README.md itself (the python block after the marker
comment), not copied here: editing the README is what this test checks.  The
service is the replay harness's (port 0, energy VAD, a fake transcriber that
says how long each utterance was), with access control on as ``serve`` has it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from stream.auth import issue_token
from tests.replay.harness import TEST_SECRET, DurationTranscriber, running_service

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- tests/test_readme_client.py runs the next python block"
RATE = 16000


def readme_client() -> Any:
    """``send_call`` as defined by the README's block."""
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, "the README lost the marker of its tested client"
    block = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert block is not None, "no python block after the marker"
    namespace: dict[str, Any] = {"__name__": "readme_client"}
    exec(compile(block.group(1), f"{README}:send_call", "exec"), namespace)
    return namespace["send_call"]


def stereo_pcm(agent_s: float, pause_s: float) -> bytes:
    """The agent speaks (a tone) for ``agent_s``, then both legs are silent for ``pause_s``."""
    t = np.arange(int(agent_s * RATE)) / RATE
    agent = np.concatenate([0.2 * np.sin(2 * np.pi * 440 * t), np.zeros(int(pause_s * RATE))])
    frames = np.stack([agent, np.zeros_like(agent)], axis=1)
    return (frames * 32767).astype("<i2").tobytes()


async def test_the_readme_client_sends_a_call_and_reads_its_events() -> None:
    send_call = readme_client()
    overrides = {"auth.enabled": True, "auth.tenant": "t1"}
    async with running_service(DurationTranscriber(), overrides=overrides, guidance=False) as h:
        token = issue_token(TEST_SECRET, role="ingest", tenant="t1", sub="readme", calls=["*"], ttl_s=600)
        events = await send_call(h.url, token, "readme-1", stereo_pcm(1.0, 0.6))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "call.started" and events[0]["metadata"] == {"agent_name": "Ann"}
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert [f["speaker"] for f in finals] == ["agent"]
    assert re.fullmatch(r"utterance of 1\.\d seconds", finals[0]["text"]), "the second of tone, padded"
    assert kinds[-1] == "call.ended" and events[-1]["reason"] == "stop"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
