"""The RTIC dashboard in a real headless Chromium, against the real engine.

Opens the page served by the real gateway, sees a live event on the map and a
live alert in the list (both produced to the input topics while the page is
open), opens the alert's detail, and saves a screenshot to artifacts/.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rtic.settings import PROJECT_ROOT
from tests.conftest import make_call, make_hotlist_change, make_incident, make_read
from tests.engine import Engine

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


@pytest.fixture
async def page() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = await browser.new_context(viewport={"width": 1600, "height": 1000})
        pg = await context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        await browser.close()
        assert not errors, f"page raised: {errors}"


async def test_dashboard_shows_live_events_and_alerts(engine: Engine, page) -> None:  # type: ignore[no-untyped-def]
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    await page.goto(f"{engine.base_url}/?ticket={engine.ticket('rtic_analyst', 'browser-analyst')}")
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.wait_for_selector("#map svg path", timeout=15_000)

    now = datetime.now(UTC).isoformat()
    async with engine.producer() as producer:
        change = make_hotlist_change(vrm="BR0W 5ER", reason="firearms")
        await engine.send(producer, engine.topics.reference, change["id"], change)
        here = {"lat": 52.41, "lon": -1.51, "address": "Browser Test, Coventry"}
        earlier = make_incident(at=now, location=here, category="criminal_damage")
        await engine.send(producer, engine.topics.incidents, earlier["incident_id"], earlier)
        # On the map, so enriched and in the incident log: the call below will see it.
        await page.locator(
            f"circle.event-dot[data-id='{earlier['incident_id']}:created']"
        ).wait_for(timeout=10_000)
        call = make_call(received_at=now, caller=None, location=here)
        await engine.send(producer, engine.topics.calls, call["call_id"], call)
        await asyncio.sleep(1.0)
        read = make_read(vrm="BROW5ER", read_at=now, camera_id="CAM-BROWSER")
        await engine.send(producer, engine.topics.anpr, read["camera_id"], read)

    dot = page.locator(f"circle.event-dot[data-id='{call['call_id']}']")
    await dot.wait_for(timeout=10_000)
    await dot.dispatch_event("click")
    event_detail = page.locator("#detail")
    await event_detail.wait_for(state="visible", timeout=5_000)
    text = await event_detail.inner_text()
    assert "Coventry" in text and "District" in text and "Nearest school" in text
    assert "Incidents at address\n1 in 28 days" in text
    assert "Incidents within 50 m\n1 in 28 days: 1 criminal damage" in text
    # The incident's and the plate read's own enrichment, in their detail views.
    await page.locator(
        f"circle.event-dot[data-id='{earlier['incident_id']}:created']"
    ).dispatch_event("click")
    await page.wait_for_selector(f"#detail:has-text('{earlier['incident_id']}')")
    text = await event_detail.inner_text()
    assert "District" in text and "Nearest school" in text
    assert "Incidents within 50 m\nnone in 28 days" in text
    assert "Calls within 50 m\nnone in 28 days" in text
    read_dot = page.locator(f"circle.event-dot[data-id='{read['read_id']}']")
    await read_dot.wait_for(timeout=10_000)
    await read_dot.dispatch_event("click")
    await page.wait_for_selector("#detail:has-text('CAM-BROWSER')")
    text = await event_detail.inner_text()
    assert "District" in text and "Hotlist\nBR0W 5ER: firearms (misread)" in text
    alert_item = page.locator("li.alert[data-severity='critical']").first
    await alert_item.wait_for(timeout=10_000)
    assert "BR0W 5ER" in (await alert_item.inner_text())
    await alert_item.click()
    detail = page.locator("#detail")
    await detail.wait_for(state="visible", timeout=5_000)
    assert "misread" in (await detail.inner_text()).lower()
    # The same car past a second camera updates the open alert: still one item, now 2 hits.
    async with engine.producer() as producer:
        again = make_read(
            vrm="BR0W5ER", read_at=datetime.now(UTC).isoformat(), camera_id="CAM-BROWSER-2"
        )
        await engine.send(producer, engine.topics.anpr, again["camera_id"], again)
    updated = page.locator("li.alert[data-severity='critical']", has_text="2 hits")
    await updated.wait_for(timeout=10_000)
    assert await page.locator("li.alert", has_text="BR0W 5ER").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=False)
    outside = [
        u
        for u in requests
        if not u.startswith(engine.base_url)
        and not u.startswith("ws://")
        and not u.startswith("data:")
    ]
    assert outside == [], f"the page fetched from outside the gateway: {outside}"


async def test_an_analyst_snoozes_an_alerts_plate_from_its_detail(engine: Engine, page) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{engine.base_url}/?ticket={engine.ticket('rtic_analyst', 'browser-snoozer')}")
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    async with engine.producer() as producer:
        change = make_hotlist_change(vrm="SN0Z 3ME", reason="stolen")
        await engine.send(producer, engine.topics.reference, change["id"], change)
        await engine.until_listed(change["id"])
        read = make_read(
            vrm="SN0Z3ME", read_at=datetime.now(UTC).isoformat(), camera_id="CAM-BROWSER-SNZ"
        )
        await engine.send(producer, engine.topics.anpr, read["camera_id"], read)
    item = page.locator("li.alert", has_text="SN0Z 3ME").first
    await item.wait_for(timeout=10_000)
    await item.click()
    plate = page.locator("#detail button[data-action='snooze-plate']")
    await plate.wait_for(timeout=5_000)
    assert "SN0Z 3ME" in await plate.inner_text()
    assert await page.locator("#detail button[data-action='snooze-area']").count() == 1
    await plate.click()
    state = page.locator("#snooze-state")
    await state.filter(has_text="Snoozed").wait_for(timeout=5_000)
    assert "anpr hotlist hit" in (await state.inner_text())
    await page.locator("#snooze-state button[data-action='unsnooze']").click()
    await state.filter(has_text="lifted").wait_for(timeout=5_000)
