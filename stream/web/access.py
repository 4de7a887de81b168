"""The access gate every endpoint uses, and how a websocket refusal and the access log look.

Who may do what (tokens from :mod:`stream.auth`, one tenant per service: ``auth.tenant``):

- read one call (its events, overlay, review): an ``agent`` token listing the call, or a
  ``supervisor`` of the tenant.  The event stream also admits the ``ingest`` token that
  sent the call's audio (same ``sub``): whoever streams a call already hears all of it,
  and a connector (or ``callassist simulate``) follows its own call with the one token it
  has.  An ingest token never reads calls it did not send, ``*`` or not.
- list calls, the supervisor page and feed: a ``supervisor`` of the tenant.
- send audio: an ``ingest`` token covering the call id of the ``start`` frame.

An agent token asking for a call it does not list gets the same 403 whether or not that
call exists, because the scope is checked before the call is looked up.

How refusals look:

- HTTP (and plain, non-upgrade requests to websocket endpoints): 401 (missing, malformed,
  forged or expired token; with ``WWW-Authenticate: Bearer``) or 403 (valid token, wrong
  role, tenant or call), JSON ``{"error": "unauthorized"|"forbidden", "message": ...}``.
- pages: the same statuses with a short HTML page saying why, so a bad link explains itself.
- websocket upgrades are accepted and then closed with 1008 and the reason
  (``"forbidden: token does not cover this call"``); ingest first sends an ``error`` frame
  like every other ingest refusal.  A browser cannot read the status of a refused
  handshake -- it reports 1006, indistinguishable from a network drop -- so an overlay
  whose token expired would retry forever; 1008 is what the pages treat as "stop, show
  the reason".  Programmatic clients get the same reason in the close frame.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from aiohttp import WSCloseCode, hdrs, web
from aiohttp.abc import AbstractAccessLogger

from stream.auth import Action, AuthError, Claims, authorize, token_from, verify_token
from stream.ingest.refusal import close_reason, http_refusal, is_websocket_upgrade, refusal_code
from stream.settings import Settings


class Gate:
    """The one place a request's token is read and judged, for every endpoint of a service."""

    def __init__(self, settings: Settings, secret: bytes | None) -> None:
        self.enabled = settings.auth.enabled
        self.tenant = settings.auth.tenant
        if self.enabled and secret is None:
            raise ValueError("auth is enabled but no token secret was given")
        self.secret = secret or b""
        # call id -> subs of the ingest tokens that opened or joined it; bounded by the calls the
        # registry can still serve (live plus kept ended), so it never outlives their logs.
        self._ingesters: OrderedDict[str, set[str]] = OrderedDict()
        self._ingesters_kept = settings.limits.max_concurrent_calls + settings.limits.ended_calls_kept

    def claims(self, request: web.Request) -> Claims | None:
        """The request's verified claims (``None`` with auth off); ``AuthError(401)`` if bad."""
        if not self.enabled:
            return None
        token = token_from(request.headers.get(hdrs.AUTHORIZATION), request.query.get("token"))
        return verify_token(self.secret, token)

    def require(
        self, request: web.Request, action: Action, call_id: str | None = None, *, follow_ingest: bool = False
    ) -> Claims | None:
        """Raise ``AuthError`` unless the request may do ``action`` (on ``call_id``).

        ``follow_ingest`` admits, for ``read_call``, the ingest token that sent this call.
        """
        claims = self.claims(request)
        if claims is None:
            return None
        if (
            follow_ingest
            and action == "read_call"
            and call_id is not None
            and claims.role == "ingest"
            and claims.tenant == self.tenant
            and claims.sub in self._ingesters.get(call_id, ())
        ):
            return claims
        authorize(claims, action=action, tenant=self.tenant, call_id=call_id)
        return claims

    def may_send_audio(self, claims: Claims | None) -> None:
        """What can be judged before the ``start`` frame names the call: role and tenant."""
        if claims is None:
            return
        if claims.tenant != self.tenant:
            raise AuthError(403, "token is not valid for this tenant")
        if claims.role != "ingest":
            raise AuthError(403, "token may not send audio")

    def may_ingest_call(self, claims: Claims | None, call_id: str) -> None:
        if claims is not None:
            authorize(claims, action="ingest", tenant=self.tenant, call_id=call_id)

    def note_ingest(self, claims: Claims | None, call_id: str, *, new_call: bool) -> None:
        """Remember who sends ``call_id`` so that token may follow the call's events."""
        if claims is None:
            return
        subs = set() if new_call else self._ingesters.pop(call_id, set())
        subs.add(claims.sub)
        self._ingesters[call_id] = subs
        self._ingesters.move_to_end(call_id)
        while len(self._ingesters) > self._ingesters_kept:
            self._ingesters.popitem(last=False)


async def refuse_websocket(request: web.Request, err: AuthError) -> web.StreamResponse:
    """Refuse a websocket request: HTTP status for a plain request, else accept and close 1008."""
    if not is_websocket_upgrade(request):
        raise http_refusal(err)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=close_reason(refusal_code(err), err.reason))
    return ws


async def drain_client(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what a subscriber sends so its close is noticed."""
    async for _msg in ws:
        pass


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log lines without the query string.

    Tokens travel in ``?token=`` (browsers cannot put headers on a websocket), and a
    token in a log file is a credential anyone with the log can replay.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %.1f ms',
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
