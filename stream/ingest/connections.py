"""The two kinds of connection the driver runs: an aiohttp server websocket and an asyncio TCP stream."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from aiohttp import WSMsgType, web

from stream.ingest.context import Credentials, IngestContext
from stream.ingest.core import IngestCore
from stream.ingest.driver import Ended, Frame, Oversize, no_credentials, run_connection
from stream.ingest.events import Outgoing, SendClose
from stream.ingest.refusal import CLOSE_NORMAL

READ_BYTES: Final = 16_384  # one TCP read; a message may span several


async def accept_websocket(request: web.Request, *, max_msg_size: int) -> web.WebSocketResponse:
    """Upgrade ``request`` (HTTP 400 if it is not a websocket request)."""
    ws = web.WebSocketResponse(max_msg_size=max_msg_size)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="websocket upgrade required")
    await ws.prepare(request)
    return ws


async def run_websocket(
    ctx: IngestContext,
    request: web.Request,
    core: IngestCore,
    name: str,
    *,
    max_msg_size: int,
    credentials: Credentials = no_credentials,
) -> web.WebSocketResponse:
    """Accept ``request`` as a websocket and run it through the driver; returns it closed."""
    ws = await accept_websocket(request, max_msg_size=max_msg_size)
    await run_connection(WebSocketConnection(ws), core, ctx, name, credentials=credentials)
    return ws


class WebSocketConnection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def receive(self, timeout: float) -> Frame:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == WSMsgType.TEXT:
            return str(msg.data)
        if msg.type == WSMsgType.BINARY:
            return bytes(msg.data)
        if msg.type == WSMsgType.ERROR:  # over aiohttp's own size cap (or a broken frame)
            return Oversize(str(self.ws.exception() or "bad frame"))
        return Ended(self.ws.close_code)  # the peer closed the socket, or it dropped

    async def send(self, item: Outgoing) -> None:
        if self.ws.closed:
            return
        if isinstance(item, SendClose):
            await self.ws.close(code=item.code, message=item.reason)
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            if isinstance(item.data, str):
                await self.ws.send_str(item.data)
            else:
                await self.ws.send_bytes(item.data)

    async def aclose(self) -> None:
        if not self.ws.closed:
            await self.ws.close()


class StreamConnection:
    """A TCP connection: every read is binary data, a clean end is :data:`CLOSE_NORMAL`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def receive(self, timeout: float) -> Frame:
        try:
            data = await asyncio.wait_for(self.reader.read(READ_BYTES), timeout)
        except ConnectionError:
            return Ended(None)
        return data if data else Ended(CLOSE_NORMAL)

    async def send(self, item: Outgoing) -> None:
        if isinstance(item, SendClose):
            self.writer.close()
            return
        data = item.data.encode() if isinstance(item.data, str) else item.data
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.write(data)
            await self.writer.drain()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
