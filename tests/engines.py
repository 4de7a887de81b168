"""The real guidance engine (Universal Sentence Encoder + the repository's playbook), built once
for every test module that judges text with it; those modules carry GUIDANCE_MARKS."""

from __future__ import annotations

import functools
import os
import tempfile

import pytest

from assist.engine import GuidanceEngine
from assist.playbook import default_playbook_dir, load_playbook
from stream.live.caches import DiskArrayCache
from stream.live.encoders import make_encoder

GUIDANCE_MARKS = [
    pytest.mark.model,
    pytest.mark.skipif(
        not (default_playbook_dir() / "rules.yaml").is_file(), reason="prompts/ not written yet"
    ),
]


@functools.cache
def shared_engine() -> GuidanceEngine:
    """One engine for all guidance tests: loading USE and embedding the playbook takes seconds."""
    cache = os.environ.get("CALLASSIST_TEST_EMBED_CACHE") or tempfile.mkdtemp(prefix="callassist-emb-")
    return GuidanceEngine(load_playbook(), make_encoder("use"), cache=DiskArrayCache(cache))
