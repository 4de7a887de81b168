"""A Genesys AudioHook (protocol v2) client, as Genesys Cloud behaves.

Written from the protocol's published message shapes: the handshake headers
(``Audiohook-Organization-Id``, ``-Session-Id``, ``-Correlation-Id``,
``X-API-KEY``, and ``Signature``/``Signature-Input`` when a client secret is
configured), client messages ``{version, id, type, seq, serverseq, position,
parameters}``, binary audio frames in the media format the server chose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from stream.audio import codecs
from stream.cli.wsclient import open_ws

SIGNED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)


def stereo_offers(fmt: str = "PCMU") -> list[dict[str, Any]]:
    """What Genesys offers for a stereo stream: both channels, then each alone."""
    return [
        {"type": "audio", "format": fmt, "channels": channels, "rate": 8000}
        for channels in (["external", "internal"], ["external"], ["internal"])
    ]


def sign(
    url: str, headers: dict[str, str], api_key: str, secret: bytes, *, created: int | None = None
) -> dict[str, str]:
    """``Signature-Input`` and ``Signature`` over the AudioHook components (HMAC-SHA256)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    values = {"@request-target": target, "@authority": parts.netloc.lower()}
    values.update({k.lower(): v for k, v in headers.items()})
    created = int(time.time()) if created is None else created
    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    inner = " ".join(f'"{c}"' for c in SIGNED_COMPONENTS)
    params = f'({inner});keyid="{api_key}";nonce="{nonce}";alg="hmac-sha256"'
    params += f";created={created};expires={created + 30}"
    lines = [f'"{c}": {values[c]}' for c in SIGNED_COMPONENTS]
    lines.append(f'"@signature-params": {params}')
    mac = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    return {"Signature-Input": f"sig1={params}", "Signature": f"sig1=:{base64.b64encode(mac).decode()}:"}


@dataclass
class AudioHookClient:
    url: str
    api_key: str = "replay-api-key-0123456789"
    client_secret: bytes | None = None
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    serverseq: int = 0
    samples_sent: int = 0  # per channel, at 8 kHz
    position_extra: float = 0.0  # discarded seconds the position includes
    received: list[dict[str, Any]] = field(default_factory=list)
    ws: ClientConnection | None = None
    selected: dict[str, Any] | None = None
    _inbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None

    # -- connection ------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        headers = {
            "Audiohook-Organization-Id": self.organization_id,
            "Audiohook-Session-Id": self.session_id,
            "Audiohook-Correlation-Id": self.correlation_id,
            "X-API-KEY": self.api_key,
        }
        if self.client_secret is not None:
            headers.update(sign(self.url, headers, self.api_key, self.client_secret))
        return headers

    async def connect(self, headers: dict[str, str] | None = None) -> None:
        self.ws = await open_ws(self.url, headers=headers or self.headers(), max_size=None)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if not isinstance(message, str):
                    break
                data = json.loads(message)
                self.serverseq = max(self.serverseq, int(data.get("seq", 0)))
                self.received.append(data)
                await self._inbox.put(data)
        await self._inbox.put(None)

    async def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next server message (``None`` once the socket closed)."""
        return await asyncio.wait_for(self._inbox.get(), timeout)

    async def expect(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Skip ``event`` and ``pong`` messages until a message of ``kind`` arrives."""
        while True:
            msg = await self.next(timeout)
            assert msg is not None, f"socket closed while waiting for {kind!r}"
            if msg["type"] == kind:
                return msg
            assert msg["type"] in ("event", "pong"), f"expected {kind!r}, got {msg}"

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        assert self.ws is not None
        with contextlib.suppress(TimeoutError):
            while await self.next(timeout) is not None:
                pass
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return self.ws.close_code

    # -- messages --------------------------------------------------------------------------------

    @property
    def position(self) -> str:
        seconds = self.samples_sent / 8000 + self.position_extra
        return f"PT{seconds:.4f}".rstrip("0").rstrip(".") + "S"

    def message(self, kind: str, parameters: dict[str, Any], **override: Any) -> dict[str, Any]:
        self.seq += 1
        msg = {
            "version": "2",
            "id": self.session_id,
            "type": kind,
            "seq": self.seq,
            "serverseq": self.serverseq,
            "position": self.position,
            "parameters": parameters,
        }
        msg.update(override)
        return msg

    async def send(self, kind: str, parameters: dict[str, Any], **override: Any) -> dict[str, Any]:
        assert self.ws is not None
        msg = self.message(kind, parameters, **override)
        await self.ws.send(json.dumps(msg))
        return msg

    async def open(
        self,
        *,
        media: Sequence[dict[str, Any]] | None = None,
        conversation_id: str | None = None,
        language: str | None = "en-US",
        supported_languages: bool | None = None,
        custom_config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send ``open`` and return the server's answer (``opened`` or ``disconnect``)."""
        params: dict[str, Any] = {
            "organizationId": self.organization_id,
            "conversationId": conversation_id or str(uuid.uuid4()),
            "participant": {
                "id": str(uuid.uuid4()),
                "ani": "+15555550100",
                "aniName": "",
                "dnis": "+18005550199",
            },
            "media": list(media if media is not None else stereo_offers()),
        }
        if language is not None:
            params["language"] = language
        if supported_languages is not None:
            params["supportedLanguages"] = supported_languages
        if custom_config is not None:
            params["customConfig"] = custom_config
        await self.send("open", params)
        answer = await self.next()
        assert answer is not None, "socket closed instead of answering open"
        if answer["type"] == "opened" and answer["parameters"]["media"]:
            self.selected = answer["parameters"]["media"][0]
        return answer

    async def audio(self, data: bytes, samples: int) -> None:
        assert self.ws is not None
        await self.ws.send(data)
        self.samples_sent += samples

    async def stream_legs(
        self,
        customer: np.ndarray,
        agent: np.ndarray,
        *,
        frame_ms: int = 20,
        ping_every_s: float = 5.0,
    ) -> None:
        """Stream the two legs (int16, 8 kHz) in the selected format and channel order, pinging
        every ``ping_every_s`` of audio as Genesys does."""
        assert self.selected is not None, "no media selected"
        legs = {"external": customer, "internal": agent}
        channels = self.selected["channels"]
        step = 8000 * frame_ms // 1000
        next_ping = ping_every_s
        for i in range(0, len(customer), step):
            frame = np.stack([legs[ch][i : i + step] for ch in channels], axis=1).reshape(-1)
            n = len(frame) // len(channels)
            data = (
                codecs.encode_mulaw(frame)
                if self.selected["format"] == "PCMU"
                else frame.astype("<i2").tobytes()
            )
            await self.audio(data, n)
            if self.samples_sent / 8000 >= next_ping:
                await self.send("ping", {})
                next_ping += ping_every_s

    async def close(self, reason: str = "end", timeout: float = 30.0) -> dict[str, Any]:
        """``close``, then wait for ``closed`` (transcript events may come first), then disconnect."""
        await self.send("close", {"reason": reason})
        closed = await self.expect("closed", timeout)
        assert self.ws is not None
        await self.ws.close()
        return closed

    def transcripts(self) -> list[dict[str, Any]]:
        return [
            entity["data"]
            for msg in self.received
            if msg["type"] == "event"
            for entity in msg["parameters"]["entities"]
            if entity["type"] == "transcript"
        ]
