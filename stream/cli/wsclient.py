"""How the project's own clients open a websocket to the service (simulate, replay tools, benches).

The service is aiohttp; its clients use the ``websockets`` library.  The options
are set in one place so every client behaves as the softphone connectors the
service was written for, and as the aiohttp clients these replaced did:

- no permessage-deflate: audio does not compress, and the service's frame
  limits are meant for the bytes a connector actually sends;
- no client keepalive pings: the service pings its event subscribers itself
  (``websockets`` answers those), and an ingest connection is kept alive by
  its audio;
- no proxy from the environment: the service is reached directly, as the
  aiohttp clients (which ignore proxy variables) reached it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import connect

OPEN_TIMEOUT_S = 30.0  # handshake, generous: a loaded service (Whisper on 2 cores) answers late
EVENT_MAX_BYTES = 4 * 1024 * 1024  # largest event frame accepted (an event is a few kB of JSON)


def ws_url(url: str, params: Mapping[str, str] | None = None) -> str:
    """``url`` as a websocket address (``http``/``https`` become ``ws``/``wss``) with ``params`` added."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = "&".join(q for q in (parts.query, urlencode(dict(params or {}))) if q)
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


def open_ws(
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    max_size: int | None = EVENT_MAX_BYTES,
) -> connect:
    """A connection to ``url``: ``await`` it, or use it as ``async with``.  ``max_size`` bounds
    incoming messages (``None``: no bound)."""
    return connect(
        ws_url(url, params),
        additional_headers=dict(headers or {}),
        compression=None,
        ping_interval=None,
        proxy=None,
        open_timeout=OPEN_TIMEOUT_S,
        max_size=max_size,
    )
