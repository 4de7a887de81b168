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

import aiohttp
import numpy as np


async def connect(
    http: aiohttp.ClientSession, url: str, query: Mapping[str, str] | None = None
) -> aiohttp.ClientWebSocketResponse:
    return await http.ws_connect(url, params=dict(query or {}))


async def send_metadata(ws: aiohttp.ClientWebSocketResponse, metadata: Mapping[str, Any]) -> None:
    await ws.send_str(json.dumps(dict(metadata)))


async def stream(
    ws: aiohttp.ClientWebSocketResponse, channels: list[np.ndarray], rate: int, frame_ms: int = 20
) -> None:
    """Interleave ``channels`` (int16) and send them as ``frame_ms`` frames of L16."""
    step = rate * frame_ms // 1000
    interleaved = np.stack(channels, axis=1)
    for i in range(0, len(interleaved), step):
        await ws.send_bytes(interleaved[i : i + step].astype("<i2").tobytes())


async def closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10.0) -> tuple[int | None, str]:
    msg = await ws.receive(timeout=timeout)
    while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        msg = await ws.receive(timeout=timeout)
    return ws.close_code, msg.extra if isinstance(msg.extra, str) else ""
