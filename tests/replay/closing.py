"""How a replay client learns that the service closed its connection, and with what code and reason."""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed


async def until_closed(ws: ClientConnection, timeout: float = 10.0) -> tuple[int | None, str]:
    """Discard what the service still sends until it closes; (close code, close reason).

    Reading on is what lets the close frame through: ``websockets`` stops reading
    from the socket while unread messages pile up.  ``TimeoutError`` if the
    service keeps the connection open past ``timeout``.
    """

    async def drain() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    await asyncio.wait_for(drain(), timeout)
    return ws.close_code, ws.close_reason or ""
