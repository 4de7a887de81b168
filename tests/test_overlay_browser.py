"""The agent overlay and the supervisor view in a real browser (Playwright driving Debian's
Chromium, headless) while a fixture call with known violations streams through the real
service (real Whisper, real guidance).

What the page shows is checked against what the service emitted on the call's event
stream (the websocket subscriber of `stream_call`), not against a script: the lines,
warnings and suggestions in the page must be exactly the service's.  Midway the
overlay's socket is dropped and reconnecting is held off for a few seconds while the
call goes on, so the page has to catch up from its last sequence number; afterwards
there must be nothing missing and nothing twice.

Chromium comes from Debian (`apt-get install chromium`; `make test` installs it), never
from `playwright install`: without /usr/bin/chromium this test fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.async_api import Browser, Page

from stream.audio.wavfile import read_wav
from stream.auth import Role, issue_token
from stream.cli.simulate import stream_call
from tests.fakes import FIXTURES, load_script
from tests.service import RunningService, standing_warnings

pytestmark = pytest.mark.model

CALL = "dev_en_02"  # English; the agent impersonates a lawyer and threatens violence
STREAM_SPEED = 3.0
CUT_OFF_S = 4.0  # the overlay is disconnected this long (~12 s of call audio)
PAGE_WAIT_MS = 60_000
RULES_FILE = Path(__file__).parent.parent / "prompts" / "rules.yaml"

# Predicates are functions, not expression strings: Playwright evaluates strings with eval(),
# which the pages' Content-Security-Policy forbids (and the test keeps that policy on).

# While set, the page cannot open a socket: its constructor throws, as for a network
# failure, and the overlay keeps retrying with backoff.
BLOCK_SOCKETS = """() => {
  window.__realWebSocket = window.WebSocket;
  window.WebSocket = function () { throw new Error("network down (test)"); };
}"""
UNBLOCK_SOCKETS = "() => { window.WebSocket = window.__realWebSocket; }"

LINES_JS = """els => els.map(e => ({utterance: e.dataset.utterance, final: e.dataset.final,
  speaker: e.dataset.speaker, text: e.querySelector('.text').textContent}))"""
WARNINGS_JS = """els => els.map(e => ({utterance: e.dataset.utterance, rule: e.dataset.rule,
  severity: e.dataset.severity, partial: e.dataset.partial,
  quote: (e.querySelector('.quote') || {}).textContent || ''}))"""


def critical_rules() -> set[str]:
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["rules"]
    return {r["id"] for r in rules if r["severity"] == "critical"}


def expected_cards(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """One card per utterance and rule; a final warning replaces a provisional one, a
    provisional card stops being provisional once its utterance's final transcript is in, and
    a retraction removes the card."""
    cards: dict[tuple[str, str], dict[str, Any]] = {}
    finished: set[str] = set()
    for w in events:
        if w["type"] == "transcript.final":
            finished.add(w["utterance_id"])
            for key, card in cards.items():
                if key[0] == w["utterance_id"]:
                    cards[key] = {**card, "partial": False}
            continue
        if w["type"] == "compliance.retracted":
            cards.pop((w["utterance_id"], w["rule"]), None)
            continue
        if w["type"] != "compliance.warning":
            continue
        key = (w["utterance_id"], w["rule"])
        if key not in cards or (cards[key]["partial"] and not w["partial"]):
            cards[key] = {**w, "partial": w["partial"] and w["utterance_id"] not in finished}
    return cards


async def screenshot(page: Page, path: Path) -> None:
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


async def test_overlay_follows_the_call_and_catches_up(
    live_service: RunningService, browser: Browser, tmp_path: Path
) -> None:
    svc = live_service
    call_id = f"ov-{uuid.uuid4().hex[:8]}"
    script = load_script(CALL)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")

    # Links that must not work say so in the page.
    refused = await context.new_page()
    resp = await refused.goto(f"{svc.http}/overlay/{call_id}?token=garbage")
    assert resp is not None and resp.status == 401
    assert "malformed token" in await refused.locator("[data-testid=refusal]").inner_text()
    resp = await refused.goto(f"{svc.http}/overlay/{call_id}?token={svc.token('agent', ['some-other-call'])}")
    assert resp is not None and resp.status == 403
    await refused.close()

    supervisor = await context.new_page()
    await supervisor.goto(f"{svc.http}/supervisor?token={svc.token('supervisor')}&lang=en")
    call = asyncio.create_task(
        stream_call(
            svc.ws,
            read_wav(FIXTURES / f"{CALL}.wav"),
            language="en",
            call_id=call_id,
            speed=STREAM_SPEED,
            metadata={"agent_name": "Kevin Shaw", "customer_name": "Marcus Bell"},
            token=svc.token("ingest"),
        )
    )
    row = supervisor.locator(f'[data-testid=call-row][data-call-id="{call_id}"]')
    await row.wait_for(timeout=PAGE_WAIT_MS)
    assert "Kevin Shaw" in await row.inner_text() and "Marcus Bell" in await row.inner_text()

    overlay = await context.new_page()
    await overlay.goto(f"{svc.http}/overlay/{call_id}?token={svc.token('agent', [call_id])}")
    await overlay.wait_for_function(
        "() => document.querySelectorAll('[data-testid=transcript-line][data-final=true]').length >= 2",
        timeout=PAGE_WAIT_MS,
    )
    await overlay.locator("[data-testid=suggestion]").first.wait_for(timeout=PAGE_WAIT_MS)
    shown_suggestions = await overlay.locator("[data-testid=suggestion] .text").all_inner_texts()

    # Cut the overlay off mid-call, keep it off while the call goes on, then let it back.
    await overlay.evaluate(BLOCK_SOCKETS)
    await overlay.evaluate("window.callassist.dropConnection()")
    cut_at, seq_at_cut = time.time(), await overlay.evaluate("window.callassist.lastSeq")
    await asyncio.sleep(CUT_OFF_S)
    assert await overlay.evaluate("window.callassist.lastSeq") == seq_at_cut, "events leaked past the cut"
    assert await overlay.evaluate("window.callassist.connection") == "reconnecting"
    await overlay.evaluate(UNBLOCK_SOCKETS)
    back_at = time.time()

    result = await asyncio.wait_for(call, 300)
    events = [e.data for e in result.events]
    assert events[-1]["type"] == "call.ended"
    missed = [e for e in events if e["seq"] > seq_at_cut and cut_at <= e["ts"] <= back_at]
    assert missed, "nothing happened while the overlay was cut off: the catch-up was not exercised"
    await overlay.wait_for_function(
        "seq => window.callassist.lastSeq >= seq", arg=events[-1]["seq"], timeout=PAGE_WAIT_MS
    )
    assert await overlay.evaluate("window.callassist.connection") == "ended"
    await screenshot(overlay, tmp_path / "overlay.png")

    # Transcript: every final of the event stream, once, with its text and speaker.
    lines = await overlay.locator("[data-testid=transcript-line]").evaluate_all(LINES_JS)
    utterances = [line["utterance"] for line in lines]
    assert len(utterances) == len(set(utterances)), "a transcript line appears twice"
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) >= len(script["turns"]) // 2
    assert sorted((x["utterance"], x["speaker"], x["text"]) for x in lines if x["final"] == "true") == sorted(
        (f["utterance_id"], f["speaker"], f["text"]) for f in finals
    )

    # Warnings: exactly the service's, once each, final severity; the known critical ones among them.
    cards = await overlay.locator("[data-testid=warning]").evaluate_all(WARNINGS_JS)
    keys = [(c["utterance"], c["rule"]) for c in cards]
    assert len(keys) == len(set(keys)), "a warning card appears twice"
    expected = expected_cards(events)
    assert set(keys) == set(expected)
    for c in cards:
        want = expected[(c["utterance"], c["rule"])]
        assert (c["severity"], c["partial"], c["quote"]) == (
            want["severity"],
            "true" if want["partial"] else "false",
            want["quote"],
        )
    labelled = {rule for turn in script["turns"] for rule in turn["rules"]} & critical_rules()
    found = {w["rule"] for w in expected.values() if w["severity"] == "critical"}
    assert found & labelled, f"no labelled critical violation ({sorted(labelled)}) was flagged"
    assert {c["rule"] for c in cards if c["severity"] == "critical"} == found

    # Suggestions: what the page offered came from the service's suggestion events.
    offered = {item["text"] for e in events if e["type"] == "suggestion" for item in e["items"]}
    assert shown_suggestions and set(shown_suggestions) <= offered

    # Supervisor: the row ends with the call's final summary.
    await supervisor.wait_for_function(
        "id => window.callassistSupervisor.calls.some(c => c.call_id === id && c.status === 'ended')",
        arg=call_id,
        timeout=PAGE_WAIT_MS,
    )
    summary = await supervisor.evaluate(
        "id => window.callassistSupervisor.calls.find(c => c.call_id === id)", call_id
    )
    warnings = standing_warnings(events)
    assert summary["warnings"]["critical"] == sum(w["severity"] == "critical" for w in warnings)
    assert summary["last_warning"]["rule"] == warnings[-1]["rule"]
    await supervisor.check("#show-ended")
    await screenshot(supervisor, tmp_path / "supervisor.png")
    await context.close()


SHORT_TTL_S = 12  # runs out while its page is open; long enough for a loaded CI box to open the page first
STATE_IS = "state => document.getElementById('conn').dataset.state === state"
STATE_NOW = "() => document.getElementById('conn').dataset.state"


async def test_pages_stop_retrying_once_their_token_has_run_out(
    live_service: RunningService, browser: Browser
) -> None:
    """A reconnect refused with close code 1008 (here: the token expired while the page was
    open) leaves the page saying so, instead of retrying for ever against the server.

    The supervisor page is live when its token runs out and its socket drops; the overlay is
    opened before its call exists, so it keeps retrying (404) until the refusal stops it."""
    svc = live_service
    call_id = f"exp-{uuid.uuid4().hex[:8]}"
    context = await browser.new_context(locale="en-US")
    issued = time.time()

    def short_token(role: Role, calls: list[str]) -> str:
        return issue_token(
            svc.secret,
            role=role,
            tenant=svc.tenant,
            sub=f"short-{role}",
            calls=calls,
            ttl_s=SHORT_TTL_S,
            now=issued,
        )

    supervisor = await context.new_page()
    await supervisor.goto(f"{svc.http}/supervisor?token={short_token('supervisor', [])}&lang=en")
    await supervisor.wait_for_function(STATE_IS, arg="live", timeout=PAGE_WAIT_MS)
    overlay = await context.new_page()
    resp = await overlay.goto(f"{svc.http}/overlay/{call_id}?token={short_token('agent', [call_id])}&lang=en")
    assert resp is not None and resp.status == 200
    assert time.time() < issued + SHORT_TTL_S, "the pages took longer to open than the token lives"
    assert await overlay.evaluate(STATE_NOW) in ("connecting", "reconnecting")
    await asyncio.sleep(issued + SHORT_TTL_S + 1.0 - time.time())

    await supervisor.evaluate("() => window.callassistSupervisor.dropConnection()")
    for page in (supervisor, overlay):
        await page.wait_for_function(STATE_IS, arg="denied", timeout=PAGE_WAIT_MS)
        assert "expired" in (await page.locator("#banner").inner_text()).lower()
    await asyncio.sleep(1.5)  # longer than the first backoff step: no retry may follow a refusal
    for page in (supervisor, overlay):
        assert await page.evaluate(STATE_NOW) == "denied"
    await context.close()
