"""How the service says no on the wire: websocket close codes and reasons, HTTP refusals.

Defined once here and imported by every ingest transport and by :mod:`stream.web` (web may import
ingest, never the reverse), so a close code or a reason's format cannot drift between endpoints.
"""

from __future__ import annotations

import json
from typing import Final

from aiohttp import hdrs, web

from stream.auth import AuthError

# Websocket close codes (RFC 6455 section 7.4.1 and the IANA registry).
CLOSE_NORMAL: Final = 1000
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_MESSAGE_TOO_BIG: Final = 1009
CLOSE_TRY_AGAIN_LATER: Final = 1013

CLOSE_REASON_BYTES: Final = 120  # RFC 6455 caps a close reason at 123 bytes

WS_MAX_MESSAGE_FACTOR: Final = 4
"""aiohttp's own hard cap on a message is this multiple of our named limits, so a frame a little
over a limit still reaches the protocol core and gets the protocol's own error, not aiohttp's."""


def truncated_reason(text: str) -> bytes:
    """``text`` as a close reason: UTF-8, cut to what a close frame can carry."""
    return text.encode()[:CLOSE_REASON_BYTES]


def close_reason(code: str, message: str) -> bytes:
    """``"<code>: <message>"``: what clients that read nothing else (Twilio, FreeSWITCH, browsers) log."""
    return truncated_reason(f"{code}: {message}")


def refusal_code(err: AuthError) -> str:
    return "unauthorized" if err.status == 401 else "forbidden"


def http_refusal(err: AuthError) -> web.HTTPException:
    body = json.dumps({"error": refusal_code(err), "message": err.reason})
    if err.status == 401:
        challenge = 'Bearer realm="callassist"'
        if err.reason != "missing token":  # RFC 6750 3.1: no error code when no token was sent
            challenge += ', error="invalid_token"'
        return web.HTTPUnauthorized(
            text=body, content_type="application/json", headers={hdrs.WWW_AUTHENTICATE: challenge}
        )
    return web.HTTPForbidden(text=body, content_type="application/json")


def is_websocket_upgrade(request: web.Request) -> bool:
    return web.WebSocketResponse().can_prepare(request).ok
