"""The AudioHook endpoint: the handshake checks (headers, API key, signature), then the one driver.

See the package docstring (:mod:`stream.ingest.audiohook`) for what a refused client gets.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from typing import Final

from aiohttp import web

from stream.ingest.audiohook.messages import MAX_TEXT_CHARS, UUID_PATTERN, Handshake
from stream.ingest.audiohook.protocol import AudioHookProtocol
from stream.ingest.connections import run_websocket
from stream.ingest.context import IngestContext
from stream.ingest.httpsig import SignatureVerifier, SignedRequest, canonical_header
from stream.ingest.refusal import WS_MAX_MESSAGE_FACTOR
from stream.settings import Settings

log = logging.getLogger(__name__)

PATH: Final = "/v1/adapters/audiohook"
AUTH_FAILURE_DELAY_S: Final = 0.5  # a refused handshake is answered no sooner than this


def handshake_of(request: web.Request) -> Handshake | None:
    values = [
        request.headers.get(name, "").strip()
        for name in ("Audiohook-Session-Id", "Audiohook-Organization-Id", "Audiohook-Correlation-Id")
    ]
    if not all(UUID_PATTERN.fullmatch(v) for v in values):
        return None
    return Handshake(session_id=values[0], organization_id=values[1], correlation_id=values[2])


def signed_request(request: web.Request) -> SignedRequest:
    headers = {name.lower(): canonical_header(request.headers.getall(name)) for name in set(request.headers)}
    return SignedRequest(method=request.method, target=request.raw_path, headers=headers)


def check_client(settings: Settings, request: web.Request, verifier: SignatureVerifier | None) -> str | None:
    """Why this client is refused (API key, then signature), or ``None``."""
    keys = settings.adapters.audiohook_api_keys
    api_key = request.headers.get("X-API-KEY", "").strip()
    if keys:
        if not api_key:
            return "missing X-API-KEY header"
        # Compare with every key, so the time taken does not say how close a guess was.
        matches = [hmac.compare_digest(api_key.encode(), k.encode()) for k in keys]
        if not any(matches):
            return "unknown API key"
    elif settings.auth.enabled:
        return "no AudioHook API keys are configured on this service"
    signed = signed_request(request)
    if verifier is not None:
        if not api_key:
            return "missing X-API-KEY header"
        return verifier.verify(signed, api_key)
    if keys and signed.is_signed():
        return "request is signed but no client secret is configured on this service"
    return None


class AudioHookEndpoint:
    """The aiohttp handler; one per service (it owns the nonce memory of the signature checks)."""

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        secret = ctx.settings.adapters.audiohook_client_secret
        self.verifier = SignatureVerifier(base64.b64decode(secret)) if secret else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        settings = self.ctx.settings
        handshake = handshake_of(request)
        if handshake is None:
            raise web.HTTPBadRequest(
                text=json.dumps(
                    {
                        "error": "bad_request",
                        "message": "Audiohook-Session-Id, Audiohook-Organization-Id and "
                        "Audiohook-Correlation-Id headers (UUIDs) are required",
                    }
                ),
                content_type="application/json",
            )
        refused = check_client(settings, request, self.verifier)
        if refused is not None:
            log.warning("audiohook: refusing session %s: %s", handshake.session_id, refused)
            await asyncio.sleep(AUTH_FAILURE_DELAY_S)
        limits = settings.limits
        core = AudioHookProtocol(
            handshake, limits=limits, default_language=settings.default_language, unauthorized=refused
        )
        size = max(MAX_TEXT_CHARS, limits.max_frame_bytes) * WS_MAX_MESSAGE_FACTOR
        return await run_websocket(self.ctx, request, core, "audiohook", max_msg_size=size)


def add_route(app: web.Application, ctx: IngestContext) -> None:
    endpoint = AudioHookEndpoint(ctx)
    app.router.add_get(PATH, endpoint.handle)
