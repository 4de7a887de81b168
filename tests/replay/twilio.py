"""A Twilio Media Streams sender, as Twilio behaves for ``<Start><Stream track="both_tracks">``.

Written from Twilio's published "Media Streams - WebSocket Messages": ``connected``,
``start`` (sids, tracks, customParameters, mediaFormat), ``media`` (base64 mu-law,
20 ms per message and track, string ``sequenceNumber``/``chunk``/``timestamp``),
``stop``.  Twilio sends and never listens; the only answer is the close frame.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from stream.cli.wsclient import open_ws
from tests.replay.closing import until_closed


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class TwilioStream:
    url: str
    call_sid: str = field(default_factory=lambda: sid("CA"))
    stream_sid: str = field(default_factory=lambda: sid("MZ"))
    account_sid: str = field(default_factory=lambda: sid("AC"))
    seq: int = 0
    chunks: dict[str, int] = field(default_factory=dict)
    ws: ClientConnection | None = None

    async def connect(self, params: Mapping[str, str] | None = None) -> None:
        self.ws = await open_ws(self.url, params=params)

    async def send(self, message: Mapping[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    def next_seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def connected(self) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def start(
        self, tracks: tuple[str, ...] = ("inbound", "outbound"), custom: Mapping[str, str] | None = None
    ) -> None:
        await self.send(
            {
                "event": "start",
                "sequenceNumber": self.next_seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": list(tracks),
                    "customParameters": dict(custom or {}),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": self.stream_sid,
            }
        )

    async def media(self, track: str, payload: bytes, *, timestamp_ms: int | None = None) -> None:
        chunk = self.chunks.get(track, 0) + 1
        self.chunks[track] = chunk
        ts = (chunk - 1) * 20 if timestamp_ms is None else timestamp_ms
        await self.send(
            {
                "event": "media",
                "sequenceNumber": self.next_seq(),
                "media": {
                    "track": track,
                    "chunk": str(chunk),
                    "timestamp": str(ts),
                    "payload": base64.b64encode(payload).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )

    async def stream(
        self, tracks: Mapping[str, bytes], frame_bytes: int = 160, *, speed: float | None = None
    ) -> None:
        """Both tracks in 20 ms messages, interleaved per 20 ms (``outbound`` first); ``speed``
        paces them on an absolute schedule at that multiple of real time (``None``: no pacing)."""
        length = max(len(v) for v in tracks.values())
        order = sorted(tracks, key=lambda t: t != "outbound")
        t0 = time.perf_counter()
        for n, i in enumerate(range(0, length, frame_bytes)):
            if speed is not None:
                delay = t0 + n * frame_bytes / 8000 / speed - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            for track in order:
                piece = tracks[track][i : i + frame_bytes]
                if piece:
                    await self.media(track, piece)

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self.next_seq(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Wait for the server to close; (close code, close reason)."""
        assert self.ws is not None
        return await until_closed(self.ws, timeout)
