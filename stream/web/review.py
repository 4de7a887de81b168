"""The service's review page: a stored call's report as HTML or JSON.

The web module registers ``GET /v1/calls/{call_id}/review`` behind the same access control as the
overlay and calls :func:`review_response`; this module only knows the store and the report.  An
unknown call answers 404 with :func:`not_found_text`, the same text a forbidden call gets, so the
answer never tells an outsider which call ids exist.

The report is built from the durable store, not the in-memory event log, so it works for calls of
earlier runs and of other nodes sharing a PostgreSQL store, and for live calls (a report so far).
Reading the store and building the report are synchronous and take milliseconds to a few hundred
(one SQL read of the call's events, then pure Python), so they run in a worker thread to keep audio
flowing meanwhile.

Transcripts hold personal data the masking may have missed, so responses say ``Cache-Control:
no-store``; the HTML page runs no script and loads nothing, and its Content-Security-Policy says so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from assist.review import Report, build_report, render_html
from stream.store import Store

log = logging.getLogger(__name__)

REVIEW_FORMATS = ("html", "json")
HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def not_found_text(call_id: str) -> str:
    """The 404 body for a call that is unknown or that the caller may not see."""
    return f"no call {call_id}"


def review_format(request: web.Request) -> str:
    """``?format=html|json`` (default html: the link a supervisor clicks); 400 for anything else."""
    fmt = request.query.get("format", "html").lower()
    if fmt not in REVIEW_FORMATS:
        raise web.HTTPBadRequest(text=f"format must be one of {', '.join(REVIEW_FORMATS)}")
    return fmt


async def review_response(store: Store | None, call_id: str, fmt: str) -> web.Response:
    """The review of ``call_id`` from the call store (``fmt``: "html" or "json").

    404 for an unknown call, 503 when the service has no store or the store fails, 400 for a bad
    ``fmt``; the caller has already checked access.
    """
    if fmt not in REVIEW_FORMATS:
        return web.Response(
            status=400, text=f"format must be one of {', '.join(REVIEW_FORMATS)}", headers=_HEADERS
        )
    if store is None:
        return web.Response(
            status=503, text="this service keeps no call store, so there are no reviews", headers=_HEADERS
        )
    try:
        report = await asyncio.to_thread(_build, store, call_id)
    except Exception:
        log.exception("review of %s failed", call_id)
        return web.Response(status=503, text="the call store is unavailable; try again", headers=_HEADERS)
    if report is None:
        return web.Response(status=404, text=not_found_text(call_id), headers=_HEADERS)
    if fmt == "json":
        return web.Response(
            text=report.to_json(),
            content_type="application/json",
            charset="utf-8",
            headers=_HEADERS,
        )
    html = await asyncio.to_thread(render_html, report)
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={**_HEADERS, "Content-Security-Policy": HTML_CSP},
    )


def _build(store: Any, call_id: str) -> Report | None:
    call = store.get_call(call_id)
    if call is None:
        return None
    return build_report(call, store.events(call_id))
