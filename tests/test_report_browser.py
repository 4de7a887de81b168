"""The HTML review report in a real browser: headless Debian Chromium driven by Playwright.

The call is dev_zh_02 as the live service would have stored it, written from its label file (scripted
text and times, labelled stages, signals and violations as guidance events), so the page shows a full,
realistic call without running a model.  The report is opened twice: as the file `callassist review
--format html -o FILE` writes, and as the service's review route serves it (with its
Content-Security-Policy, which would turn any inline script or external asset into a console error).
Both must load without console errors, page errors or network requests, and show the SVG timeline
with every utterance and every finding, and the findings table.

Chromium comes from Debian (`apt-get install chromium`; `make test` installs it), never from
`playwright install`: without /usr/bin/chromium this test fails, it does not skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from assist.events import (
    CallEnded,
    CallStarted,
    ComplianceWarning,
    CustomerSignal,
    Event,
    EventBody,
    Speaker,
    StageChanged,
    Suggestion,
    SuggestionItem,
    TranscriptFinal,
)
from assist.review.html import LABELS
from stream.cli.main import main
from stream.settings import load_settings
from stream.store import Store, open_store
from stream.web.review import review_format, review_response
from tests.fakes import load_script

CALL = "dev_zh_02"
CALL_ID = "review-zh-02"
T0 = 1_764_331_200.0  # 2025-11-28 12:00 UTC = 20:00 in Asia/Shanghai
SEVERITY = {
    "threat_violence": "critical",
    "abusive_language": "critical",
    "false_criminal_threat": "critical",
    "impersonation": "critical",
    "third_party_disclosure": "critical",
    "harassment": "major",
    "misrepresentation": "major",
    "overbearing": "minor",
}
PAGE_TIMEOUT_MS = 30_000


def store_labelled_call(store: Store, call: str) -> None:
    """The labelled call as the service's StoreSink would have written it, event by event."""
    script = load_script(call)
    language = script["language"]
    meta = {"agent_name": "林雨桐", "customer_name": "赵丽萍", "borrower_timezone": "Asia/Shanghai"}
    store.create_call(CALL_ID, tenant="default", started_at=T0, language=language, metadata=meta, node="n1")
    bodies: list[tuple[float, EventBody]] = [
        (0.0, CallStarted(language, 16000, "pcm_s16le", ("agent", "customer"), meta))
    ]
    stage: str | None = None
    for i, turn in enumerate(script["turns"]):
        uid = f"u{i}"
        speaker: Speaker = "agent" if turn["speaker"] == "agent" else "customer"
        end = float(turn["end"])
        bodies.append((end, TranscriptFinal(speaker, uid, turn["text"], language, turn["start"], end, 150.0)))
        if speaker == "agent" and turn["stage"] not in ("*", "-") and turn["stage"] != stage:
            bodies.append((end, StageChanged(turn["stage"], stage, 0.8, uid)))
            stage = turn["stage"]
        for rule in turn["rules"]:
            warning = ComplianceWarning(
                uid,
                "agent",
                rule,
                SEVERITY[rule],
                turn["text"][:10],
                f"{rule} (labelled)",
                "请换一种说法",
                "label",
                1.0,
            )
            bodies.append((end, warning))
        if speaker == "customer" and turn["intent"] != "-":
            bodies.append((end, CustomerSignal(uid, turn["intent"], 0.9, turn["text"][:10])))
        bodies.append((end, Suggestion(uid, stage, (SuggestionItem("建议话术", "reason", 0.5),))))
    duration = float(script["turns"][-1]["end"]) + 0.5
    bodies.append((duration, CallEnded("stop", duration)))
    for seq, (at, body) in enumerate(bodies, start=1):
        store.append_events([Event(CALL_ID, seq, T0 + at, body)])
    store.end_call(CALL_ID, status="ended", ended_at=T0 + duration, duration=duration)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/calls.db"
    with open_store(url) as store:
        store_labelled_call(store, CALL)
    return url


class Watched:
    """A page with its console errors, uncaught errors and every request it made recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        page.on("request", lambda r: self.requests.append(r.url))


async def check_page(browser: Browser, url: str, report: dict[str, Any], shot: Path) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    watched = Watched(page)
    try:
        response = await page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        assert response is not None and response.ok
        await page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        assert watched.errors == [], watched.errors
        assert watched.requests == [url], f"the page loaded something besides itself: {watched.requests}"

        svg = page.locator("main svg").first
        assert await svg.is_visible()
        box = await svg.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 60, box
        # one bar per utterance (linked to its transcript row), one marker per finding
        bars = svg.locator('a[href^="#u"] > rect')
        assert await bars.count() == len(report["utterances"])
        markers = svg.locator("polygon")
        assert await markers.count() == len(report["findings"]) > 0
        titles = await markers.evaluate_all("els => els.map(e => e.querySelector('title').textContent)")
        for f, title in zip(report["findings"], titles, strict=True):
            assert f["quote"] in title

        heading = LABELS[report["call"]["language"]]["findings"]
        table = page.locator(f"xpath=//h2[normalize-space(.)='{heading}']/following-sibling::*[1]")
        rows = table.locator("tbody tr")
        assert await rows.count() == len(report["findings"])
        text = await table.inner_text()
        for f in report["findings"]:
            assert f["quote"] in text
        # clicking a finding's time jumps to its utterance in the transcript
        first = report["findings"][0]
        await rows.first.locator("a").click()
        assert page.url.endswith(f"#u{first['utterance']}")
        assert await page.locator(f"#u{first['utterance']}").is_visible()
    finally:
        await page.close()


async def test_review_file_renders_in_chromium(
    browser: Browser, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html_path = tmp_path / "review.html"
    json_path = tmp_path / "review.json"
    assert main(["review", CALL_ID, "--store", store_url, "--format", "html", "-o", str(html_path)]) == 0
    assert main(["review", CALL_ID, "--store", store_url, "--format", "json", "-o", str(json_path)]) == 0
    capsys.readouterr()
    report = json.loads(json_path.read_text(encoding="utf-8"))
    labelled = sum(len(t["rules"]) for t in load_script(CALL)["turns"])
    assert len(report["findings"]) == labelled
    await check_page(browser, html_path.as_uri(), report, tmp_path / "review-file.png")


async def test_review_route_renders_in_chromium(browser: Browser, store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    service = SimpleNamespace(store=store, settings=load_settings())

    async def handler(request: web.Request) -> web.Response:
        return await review_response(service.store, request.match_info["call_id"], review_format(request))

    app = web.Application()
    app.router.add_get("/v1/calls/{call_id}/review", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url(f"/v1/calls/{CALL_ID}/review"))
        page = await browser.new_page()
        try:
            resp = await page.goto(f"{base}?format=json")
            assert resp is not None and resp.ok
            report = json.loads(await resp.text())
        finally:
            await page.close()
        await check_page(browser, base, report, tmp_path / "review-route.png")
    finally:
        await server.close()
        store.close()
