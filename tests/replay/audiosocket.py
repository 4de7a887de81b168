"""An Asterisk AudioSocket client: ``type u8 | length u16 BE | payload`` over TCP, one leg per connection.

As ``AudioSocket(<uuid>,host:port)`` behaves: the UUID message (16 bytes) first,
then 20 ms audio messages (0x10, 320 bytes of 8 kHz signed 16-bit little-endian),
then a hangup (0x00) or just the socket closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct(">BH")
UUID, AUDIO, HANGUP, ERROR = 0x01, 0x10, 0x00, 0xFF


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def leg_uuids(base: uuid.UUID | None = None) -> tuple[uuid.UUID, uuid.UUID, str]:
    """The dialplan convention: one UUID ending in ``a`` (agent) and ``c`` (customer); the call id."""
    text = str(base or uuid.uuid4())[:-1]
    return uuid.UUID(text + "a"), uuid.UUID(text + "c"), text + "0"


@dataclass
class Leg:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, port: int, stream: uuid.UUID | None = None) -> Leg:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        leg = cls(reader, writer)
        if stream is not None:
            await leg.send(frame(UUID, stream.bytes))
        return leg

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def audio(self, samples: np.ndarray) -> None:
        await self.send(frame(AUDIO, samples.astype("<i2").tobytes()))

    async def hangup(self) -> None:
        await self.send(frame(HANGUP))

    async def replies(self, timeout: float = 10.0) -> list[tuple[int, bytes]]:
        """Read what the server sends until it closes: [(type, payload)]."""
        data = await asyncio.wait_for(self.reader.read(), timeout)
        out: list[tuple[int, bytes]] = []
        while len(data) >= HEADER.size:
            kind, length = HEADER.unpack_from(data)
            out.append((kind, data[HEADER.size : HEADER.size + length]))
            data = data[HEADER.size + length :]
        return out

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def stream_pair(
    port: int,
    agent: np.ndarray,
    customer: np.ndarray,
    *,
    frame_samples: int = 160,
    joined: Callable[[str], Awaitable[None]] | None = None,
) -> str:
    """Two connections, the legs' 20 ms frames interleaved (agent first); returns the call id.

    ``joined(call_id)``, if given, is awaited once both UUIDs are sent (tests wait there until the
    server has both legs attached, so neither leg can finish the call before the other joined).
    """
    a_id, c_id, call_id = leg_uuids()
    agent_leg = await Leg.connect(port, a_id)
    customer_leg = await Leg.connect(port, c_id)
    if joined is not None:
        await joined(call_id)
    for i in range(0, len(agent), frame_samples):
        await agent_leg.audio(agent[i : i + frame_samples])
        await customer_leg.audio(customer[i : i + frame_samples])
    await agent_leg.hangup()
    await customer_leg.hangup()
    await agent_leg.replies()
    await customer_leg.replies()
    await agent_leg.close()
    await customer_leg.close()
    return call_id
