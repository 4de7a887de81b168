"""A FreeSWITCH ``mod_audio_fork`` sender: one JSON metadata text frame, then binary L16 frames.

As ``uuid_audio_fork <uuid> start <url> <mono|mixed|stereo> <8k|16k> <metadata>``
behaves: stereo frames interleave the caller (channel 0) and the callee
(channel 1), signed 16-bit little-endian; the fork ends by closing the socket
(code 1000).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection

from stream.cli.wsclient import open_ws
from tests.replay.closing import until_closed


async def connect(url: str, query: Mapping[str, str] | None = None) -> ClientConnection:
    return await open_ws(url, params=query)


async def send_metadata(ws: ClientConnection, metadata: Mapping[str, Any]) -> None:
    await ws.send(json.dumps(dict(metadata)))


async def stream(ws: ClientConnection, channels: list[np.ndarray], rate: int, frame_ms: int = 20) -> None:
    """Interleave ``channels`` (int16) and send them as ``frame_ms`` frames of L16."""
    step = rate * frame_ms // 1000
    interleaved = np.stack(channels, axis=1)
    for i in range(0, len(interleaved), step):
        await ws.send(interleaved[i : i + step].astype("<i2").tobytes())


async def closed(ws: ClientConnection, timeout: float = 10.0) -> tuple[int | None, str]:
    """Wait for the service to close; (close code, close reason)."""
    return await until_closed(ws, timeout)
