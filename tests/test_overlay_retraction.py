"""The overlay withdraws a provisional warning when ``compliance.retracted`` arrives.

Which warnings a real call retracts depends on what the recogniser hears mid-sentence, so
here the page (the real overlay.html and its scripts, in Debian's Chromium) is fed a
scripted event stream by a small websocket server on port 0, in the wire form of
assist/events.py: a partial transcript that trips a critical rule, its provisional warning,
then the final transcript that does not bear it out and the retraction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from playwright.async_api import Browser

from assist.events import (
    CallStarted,
    ComplianceRetracted,
    ComplianceWarning,
    Event,
    EventBody,
    TranscriptFinal,
    TranscriptPartial,
)
from stream.web.pages import STATIC_DIR

CALL_ID = "retract-1"
PAGE_WAIT_MS = 15_000
UTT = "agent-0001"

FIRST: list[EventBody] = [
    CallStarted("en", 16000, "pcm_s16le", ("agent", "customer"), {"agent_name": "Kim"}),
    TranscriptPartial("agent", UTT, "If you don't pay we will have you arrested", "en", 1.0, 3.0),
    ComplianceWarning(
        UTT,
        "agent",
        "false_criminal_threat",
        "critical",
        "have you arrested",
        "why",
        "rephrase",
        "pattern",
        1.0,
        partial=True,
    ),
    ComplianceWarning(
        "agent-0000", "agent", "abusive_language", "critical", "deadbeat", "why", "rephrase", "pattern", 1.0
    ),
]
THEN: list[EventBody] = [
    TranscriptFinal(
        "agent", UTT, "If you don't pay by Friday, we will have to add the late fee.", "en", 1.0, 4.0, 300.0
    ),
    ComplianceRetracted(UTT, "false_criminal_threat", "critical", "not in the final transcript"),
]


def frames(bodies: list[EventBody], first_seq: int) -> list[str]:
    return [Event(CALL_ID, first_seq + i, 1_764_331_200.0 + i, b).to_json() for i, b in enumerate(bodies)]


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """Serves the overlay page and a call socket that sends FIRST, waits, then sends THEN."""
    go_on = asyncio.Event()

    async def page(_: web.Request) -> web.Response:
        return web.Response(body=(STATIC_DIR / "overlay.html").read_bytes(), content_type="text/html")

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        since = int(request.query.get("since", "0"))
        script = frames(FIRST, 1) + frames(THEN, 1 + len(FIRST))
        for frame in script[since : len(FIRST)]:
            await ws.send_str(frame)
        await go_on.wait()
        for frame in script[max(since, len(FIRST)) :]:
            await ws.send_str(frame)
        async for msg in ws:  # hold the socket open until the page goes
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        return ws

    app = web.Application()
    app.router.add_get("/overlay/{call_id}", page)
    app.router.add_get("/v1/calls/{call_id}/events", events)
    app.router.add_static("/static/", STATIC_DIR)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", go_on
    finally:
        go_on.set()
        await runner.cleanup()


async def test_a_retracted_warning_leaves_the_overlay(
    scripted: tuple[str, asyncio.Event], browser: Browser
) -> None:
    base, go_on = scripted
    page = await browser.new_page(locale="en-US")
    await page.goto(f"{base}/overlay/{CALL_ID}?token=t&lang=en")
    cards = page.locator("[data-testid=warning]")
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=warning]').length === 2", timeout=PAGE_WAIT_MS
    )
    provisional = page.locator('[data-testid=warning][data-rule="false_criminal_threat"]')
    assert await provisional.get_attribute("data-partial") == "true"
    line = page.locator(f'[data-testid=transcript-line][data-utterance="{UTT}"]')
    assert "flagged" in (await line.get_attribute("class") or "")

    go_on.set()
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=warning]').length === 1", timeout=PAGE_WAIT_MS
    )
    remaining: list[dict[str, Any]] = await cards.evaluate_all(
        "els => els.map(e => ({rule: e.dataset.rule, utterance: e.dataset.utterance}))"
    )
    assert remaining == [{"rule": "abusive_language", "utterance": "agent-0000"}]
    assert await line.get_attribute("data-final") == "true"
    assert "flagged" not in (await line.get_attribute("class") or "")  # nothing else flags it
    count = await page.locator("#warning-count").inner_text()
    assert count.endswith(" 1") and "·" not in count, count  # one critical warning left
    await page.close()
