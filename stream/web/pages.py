"""Browser pages, the supervisor feed and the review route.

Routes added here (the event-stream routes live in :mod:`stream.web.server`, the ingest routes in
:mod:`stream.ingest.routes`):

- ``GET /overlay/{call_id}?token=``            the agent overlay page (static/overlay.html)
- ``GET /supervisor?token=``                   the supervisor page (static/supervisor.html)
- ``GET /static/...``                          the pages' JS and CSS: open, they hold no call data
- ``WS  /v1/live?token=``                      supervisor feed: ``calls.snapshot`` then ``call.summary``
- ``GET /v1/calls/{call_id}/review?format=html|json``  post-call review (:mod:`stream.web.review`)

Who may do what, and how a refusal looks: :mod:`stream.web.access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, hdrs, web

from assist.events import CallEnded, ComplianceRetracted, ComplianceWarning, Event, WarningsInForce
from stream.auth import AuthError, Role, issue_token
from stream.ingest.refusal import http_refusal
from stream.settings import Settings
from stream.store import Store
from stream.web.access import Gate, drain_client, refuse_websocket
from stream.web.review import review_response

if TYPE_CHECKING:
    from stream.live.session import CallSession

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

MAX_SUMMARY_RATE_HZ = 4.0
"""Per call, at most this many ``call.summary`` frames (and retained MQTT states) a second.
A summary is a state, so skipped intermediate ones lose nothing; the final one (the
call ended) is always sent at once."""

ENDED_SUMMARY_KEEP_S = 30 * 60.0
"""Ended calls stay in the supervisor snapshot this long (the page keeps them as long),
and at most ``limits.ended_calls_kept`` of them."""

LIVE_HEARTBEAT_S = 20.0
SEVERITIES = ("critical", "major", "minor")
REVIEW_FORMATS = ("html", "json")

PAGE_HEADERS = {
    # The page URL carries the token: keep it out of caches and out of Referer headers.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # All text from a call goes through textContent; this is the second line of defence.
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'none'"
    ),
}


# -- supervisor feed and call summaries --------------------------------------------------------------


@dataclass(eq=False)
class _Tracked:
    """A live call as the feed sees it: what a summary needs beyond the session."""

    session: CallSession
    # warnings in force, oldest first, as last_warning shows them: a retraction removes one
    standing: WarningsInForce[dict[str, Any]] = field(default_factory=WarningsInForce)
    last_sent: float = -math.inf
    timer: asyncio.TimerHandle | None = None


class LiveSubscription:
    """One supervisor socket's pending summaries: the newest per call, oldest call first.

    Summaries are states, so a slow socket only ever holds one per call: memory is
    bounded by the number of calls, and no socket is cut off for being slow.
    """

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.closed = False

    def offer(self, call_id: str, frame: str) -> None:
        self.pending.pop(call_id, None)
        self.pending[call_id] = frame
        self.wake.set()

    def take(self) -> list[str]:
        frames = list(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        return frames

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class LiveFeed:
    """Call summaries for the supervisor feed and the retained MQTT state, from call events.

    Fed by ``CallManager.on_change`` (synchronously, inside the call's publish), so it
    never awaits and never raises into the call.  Per call, summaries go out at most
    :data:`MAX_SUMMARY_RATE_HZ` times a second (a change inside the interval is sent at
    its end, with the state of that moment); ``call.ended`` is sent at once.

    The summary (documented with the page in static/supervisor.js)::

        {call_id, tenant, agent_name, customer_name, language, started_at,
         status: live|ended|interrupted, duration, stage, warnings: {critical, major, minor},
         last_warning: {utterance_id, rule, severity, quote, ts} | null}

    plus ``ended_reason`` once ended.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        publish_state: Callable[[str, Mapping[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant = settings.auth.tenant
        self._interval = 1.0 / MAX_SUMMARY_RATE_HZ
        self._ended_kept = settings.limits.ended_calls_kept
        self._publish_state = publish_state
        self._clock = clock
        self._calls: dict[str, _Tracked] = {}
        self._ended: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._subs: set[LiveSubscription] = set()
        self.sent = 0  # summaries broadcast, for tests and the health check

    # -- the call side ------------------------------------------------------------------------------

    def on_change(self, session: CallSession, event: Event | None) -> None:
        try:
            self._on_change(session, event)
        except Exception:  # a bug here must not take the call down
            log.exception("live feed: could not process an event of %s", session.call_id)

    def _on_change(self, session: CallSession, event: Event | None) -> None:
        call_id = session.call_id
        tracked = self._calls.get(call_id)
        if tracked is None or tracked.session is not session:
            tracked = self._calls[call_id] = _Tracked(session)
            self._ended.pop(call_id, None)
        body = event.body if event is not None else None
        if isinstance(body, ComplianceWarning) and event is not None:
            tracked.standing.add(
                body,
                {
                    "utterance_id": body.utterance_id,
                    "rule": body.rule,
                    "severity": body.severity,
                    "quote": body.quote,
                    "ts": event.ts,
                },
            )
        if isinstance(body, ComplianceRetracted):
            # withdrawn: the newest warning still in force takes its place; the counts drop
            # with it (CallGuide state)
            tracked.standing.retract(body)
        if isinstance(body, CallEnded):
            self._end(tracked, body)
            return
        if tracked.timer is not None:
            return  # a send is already due; it will carry this change
        wait = tracked.last_sent + self._interval - self._clock()
        if wait <= 0:
            self._send(tracked)
        else:
            tracked.timer = asyncio.get_running_loop().call_later(wait, self._flush, tracked)

    def _flush(self, tracked: _Tracked) -> None:
        tracked.timer = None
        if self._calls.get(tracked.session.call_id) is tracked:
            try:
                self._send(tracked)
            except Exception:
                log.exception("live feed: could not send a summary")

    def _send(self, tracked: _Tracked) -> None:
        tracked.last_sent = self._clock()
        self._broadcast(self._summary(tracked.session, tracked))

    def _end(self, tracked: _Tracked, body: CallEnded) -> None:
        if tracked.timer is not None:
            tracked.timer.cancel()
            tracked.timer = None
        call_id = tracked.session.call_id
        del self._calls[call_id]
        summary = self._summary(tracked.session, tracked)
        summary.update(
            status="interrupted" if body.reason == "interrupted" else "ended",
            duration=round(body.duration, 1),
            ended_reason=body.reason,
        )
        self._ended[call_id] = (self._clock(), summary)
        self._ended.move_to_end(call_id)
        self._prune()
        self._broadcast(summary)

    def _broadcast(self, summary: dict[str, Any]) -> None:
        call_id = str(summary["call_id"])
        frame = json.dumps({"type": "call.summary", "call": summary}, ensure_ascii=False)
        for sub in self._subs:
            sub.offer(call_id, frame)
        if self._publish_state is not None:
            self._publish_state(call_id, summary)
        self.sent += 1

    def _prune(self) -> None:
        horizon = self._clock() - ENDED_SUMMARY_KEEP_S
        while self._ended and (
            len(self._ended) > self._ended_kept or next(iter(self._ended.values()))[0] < horizon
        ):
            self._ended.popitem(last=False)

    # -- summaries -----------------------------------------------------------------------------------

    def summary(self, session: CallSession) -> dict[str, Any]:
        """The call's current summary (its final one once ``call.ended`` was published)."""
        ended = self._ended.get(session.call_id)
        if ended is not None and session.call_id not in self._calls:
            return dict(ended[1])
        return self._summary(session, self._calls.get(session.call_id))

    def _summary(self, session: CallSession, tracked: _Tracked | None) -> dict[str, Any]:
        state = session.guide_state()
        counts = state.get("warnings") or {}
        md = session.metadata
        return {
            "call_id": session.call_id,
            "tenant": self.tenant,
            "agent_name": md.get("agent_name"),
            "customer_name": md.get("customer_name"),
            "language": session.language,
            "started_at": session.started_at,
            "status": "live",
            "duration": round(session.duration, 1),
            "stage": state.get("stage"),
            "warnings": {sev: int(counts.get(sev, 0)) for sev in SEVERITIES},
            "last_warning": dict(tracked.standing.items()[-1]) if tracked and tracked.standing else None,
        }

    def snapshot(self) -> list[dict[str, Any]]:
        """Live calls (current state) then recently ended ones (final state)."""
        self._prune()
        live = [self._summary(t.session, t) for t in self._calls.values()]
        return live + [dict(summary) for _, summary in self._ended.values()]

    # -- subscribers ---------------------------------------------------------------------------------

    def subscribe(self) -> tuple[LiveSubscription, list[dict[str, Any]]]:
        """Register a subscriber and take the snapshot in one step, so no change falls between."""
        sub = LiveSubscription()
        self._subs.add(sub)
        return sub, self.snapshot()

    def unsubscribe(self, sub: LiveSubscription) -> None:
        self._subs.discard(sub)

    def close(self) -> None:
        for tracked in self._calls.values():
            if tracked.timer is not None:
                tracked.timer.cancel()
                tracked.timer = None
        for sub in self._subs:
            sub.close()
        self._subs.clear()


# -- routes ------------------------------------------------------------------------------------------


class WebRoutes:
    """Handlers for the pages, the supervisor feed and the review route of one service."""

    def __init__(self, gate: Gate, feed: LiveFeed, store: Store | None) -> None:
        self.gate = gate
        self.feed = feed
        self.store = store
        self._pages = {name: (STATIC_DIR / name).read_bytes() for name in ("overlay.html", "supervisor.html")}

    def register(self, app: web.Application) -> None:
        app.router.add_get("/overlay/{call_id}", self.overlay)
        app.router.add_get("/supervisor", self.supervisor)
        app.router.add_get("/v1/live", self.live)
        app.router.add_get("/v1/calls/{call_id}/review", self.review)
        app.router.add_static("/static/", STATIC_DIR)

    # -- pages ---------------------------------------------------------------------------------------

    async def overlay(self, request: web.Request) -> web.Response:
        try:
            self.gate.require(request, "read_call", request.match_info["call_id"])
        except AuthError as err:
            return refusal_page(err)
        return self._page("overlay.html")

    async def supervisor(self, request: web.Request) -> web.Response:
        try:
            self.gate.require(request, "list_calls")
        except AuthError as err:
            return refusal_page(err)
        return self._page("supervisor.html")

    def _page(self, name: str) -> web.Response:
        return web.Response(
            body=self._pages[name], content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    # -- supervisor feed -----------------------------------------------------------------------------

    async def live(self, request: web.Request) -> web.StreamResponse:
        try:
            self.gate.require(request, "list_calls")
        except AuthError as err:
            return await refuse_websocket(request, err)
        ws = web.WebSocketResponse(heartbeat=LIVE_HEARTBEAT_S)
        await ws.prepare(request)
        sub, snapshot = self.feed.subscribe()
        reader = asyncio.create_task(drain_client(ws))
        reader.add_done_callback(lambda _t: sub.close())
        try:
            await ws.send_str(json.dumps({"type": "calls.snapshot", "calls": snapshot}, ensure_ascii=False))
            while not sub.closed:
                await sub.wake.wait()
                for frame in sub.take():
                    await ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.feed.unsubscribe(sub)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping")
        return ws

    # -- post-call review ----------------------------------------------------------------------------

    async def review(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        try:
            self.gate.require(request, "read_call", call_id)
        except AuthError as err:
            raise http_refusal(err) from None
        fmt = request.query.get("format", "html")
        if fmt not in REVIEW_FORMATS:
            raise web.HTTPBadRequest(text=f"format must be one of {', '.join(REVIEW_FORMATS)}")
        return await review_response(self.store, call_id, fmt)


def refusal_page(err: AuthError) -> web.Response:
    """A page saying why a link does not work (both UI languages: the call's is unknown here)."""
    if err.status == 401:
        zh, en = "链接无效或已过期", "This link is not valid or has expired"
    else:
        zh, en = "无权查看", "You are not allowed to view this"
    reason = html.escape(err.reason)
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><title>Call assist</title>'
        '<link rel="stylesheet" href="/static/style.css"></head>'
        f'<body><div class="banner error" role="alert" data-testid="refusal">'
        f'<p>{en} ({err.status}: {reason}).</p><p lang="zh">{zh}（{reason}）。</p>'
        "<p>Ask for a new link: <code>callassist token issue</code>.</p></div></body></html>\n"
    )
    headers = dict(PAGE_HEADERS)
    if err.status == 401:
        headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="callassist"'
    return web.Response(
        text=body, status=err.status, content_type="text/html", charset="utf-8", headers=headers
    )


# -- links ---------------------------------------------------------------------------------------------

DEMO_CALL_ID = "demo"


def base_url(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    """How people reach the service: ``server.public_url``, else the bound address."""
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    host = host or settings.server.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # a wildcard bind is reachable locally; set server.public_url for others
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port if port is not None else settings.server.port}"


def page_link(base: str, role: Role, token: str, call_id: str | None = None) -> str:
    if role == "supervisor":
        return f"{base}/supervisor?token={token}"
    if role == "agent" and call_id:
        return f"{base}/overlay/{call_id}?token={token}"
    raise ValueError("links exist for supervisor tokens and for agent tokens of one call")


def startup_lines(
    settings: Settings, secret: bytes | None, base: str, *, config: str | None = None
) -> list[str]:
    """What ``serve`` prints after its listening line: links that work right away.

    The demo overlay link is for a call id that does not exist yet: the page waits
    (reconnecting) until a call with that id starts, e.g. from the printed simulate line.
    """
    ws_base = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    cli = "callassist" + (f" --config {config}" if config else "")
    if not settings.auth.enabled or secret is None:
        return [
            "auth is OFF (auth.enabled = false): anyone who can reach this port can read every call",
            f"supervisor view: {base}/supervisor?token=-",
            f"agent overlay:   {base}/overlay/CALL_ID?token=-",
        ]
    tenant, ttl = settings.auth.tenant, settings.auth.link_ttl_s

    def mint(role: Role, sub: str, calls: tuple[str, ...] = ()) -> str:
        return issue_token(secret, role=role, tenant=tenant, sub=sub, calls=calls, ttl_s=ttl)

    hours = f"{ttl / 3600:g} h"
    ingest = mint("ingest", "local-ingest")
    return [
        f"supervisor view (valid {hours}): {base}/supervisor?token={mint('supervisor', 'local-supervisor')}",
        f'agent overlay for call "{DEMO_CALL_ID}" (valid {hours}): '
        f"{base}/overlay/{DEMO_CALL_ID}?token={mint('agent', 'local-agent', (DEMO_CALL_ID,))}",
        f'  stream a recording as call "{DEMO_CALL_ID}": {cli} simulate CALL.wav --url {ws_base} '
        f"--call-id {DEMO_CALL_ID} --token {ingest}",
        f"  overlay link for another call: {cli} token issue --role agent --calls CALL_ID --link "
        f"--url {base}",
    ]
