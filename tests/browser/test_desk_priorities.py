"""Patrol priorities on the real engine (worker, case worker and gateway as processes,
``tests/engine.py``), in headless Chromium.

Burglary calls produced to ``rtic.calls.v1`` in one Coventry LSOA go through the worker's
enrichment to the gateway, which refits the priorities, writes them to
``rtic.priorities.v1`` (read back here with a plain Kafka consumer) and answers them to
the desk: the area is outlined on the map with its rank, and the panel lists it with
those calls' ids as its reasons. An officer's page shows no priorities; the panel fits
a phone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.browser.browsing import PAGES_MARKS, PHONE, OpenPage, browser_pages, fits_width, shot
from tests.conftest import make_call
from tests.engine import Engine

pytestmark = PAGES_MARKS

AREA = "E01009651"  # Coventry 031D, the city centre
POINT = (52.40809, -1.52226)  # inside it, well away from its edges


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


async def priorities_with(consumer: Any, ids: set[str], timeout: float = 60.0) -> dict[str, Any]:
    """The first priorities written to the topic that rank ``AREA`` with every one of our
    calls counted (a refit may come between two of them) and reasons of ours."""
    async with asyncio.timeout(timeout):
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    body = orjson.loads(record.value)
                    for p in body["priorities"]:
                        if (
                            p["area_code"] == AREA
                            and p["events_in_area"] >= len(ids)
                            and {r["event_id"] for r in p["why"]} & ids
                        ):
                            assert record.key == b"force"
                            return body


async def test_calls_become_priorities_on_the_topic_and_the_desks_map(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    now = datetime.now(UTC)
    calls = [
        make_call(
            call_id=unique("PRI-CALL"),
            category="burglary",
            received_at=(now - timedelta(hours=2 * i + 1)).isoformat(),
            at_point=(POINT[0] + 0.0001 * (i % 3), POINT[1] + 0.0001 * (i % 2)),
        )
        for i in range(8)
    ]
    ids = {c["call_id"] for c in calls}
    async with engine.tail(engine.topics.priorities) as consumer:
        async with engine.producer() as producer:
            for call in calls:
                await engine.send(producer, engine.topics.calls, call["call_id"], call)
        written = await priorities_with(consumer, ids)
    ours = next(p for p in written["priorities"] if p["area_code"] == AREA)
    assert ours["area_name"] == "Coventry 031D" and ours["events_in_area"] >= 8
    assert {r["event_id"] for r in ours["why"]} <= ids  # whole ids, only calls of this area
    assert written["categories"] and "burglary" in written["categories"]

    sub = unique("an").lower()
    page = await open_page("/", "rtic_analyst", sub)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    area = page.locator(f"g.priority[data-area='{AREA}']")
    await area.wait_for(timeout=20_000)
    assert await area.locator("path.priority-area").count() == 1  # the LSOA's outline
    assert await area.locator("text.priority-rank").text_content() == str(ours["rank"])
    await page.get_by_role("button", name="Patrol priorities").click()
    item = page.locator(f"#priorities-list li[data-area='{AREA}']")
    await item.wait_for(timeout=10_000)
    assert "Coventry 031D" in await item.inner_text()
    shown = set(
        await item.locator("[data-event-id]").evaluate_all("ls => ls.map(l => l.dataset.eventId)")
    )
    assert shown and shown <= ids
    await page.get_by_role("heading", name="Patrol priorities").wait_for()
    await shot(page, "desk-priorities.png")
    await page.get_by_role("button", name="Close patrol priorities").click()
    assert await page.locator("#priorities").is_hidden()

    # An officer's page: no priorities, and the API refuses them.
    officer = await open_page("/", "officer", unique("off").lower())
    await officer.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await asyncio.sleep(1.0)
    assert await officer.locator("#priorities-open").is_hidden()
    assert await officer.locator("g.priority").count() == 0

    # A phone: the panel opens and fits the width.
    phone = await open_page("/", "supervisor", unique("sup").lower(), **PHONE)
    await phone.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await phone.get_by_role("button", name="Patrol priorities").click()
    await phone.locator(f"#priorities-list li[data-area='{AREA}']").wait_for(timeout=10_000)
    assert await fits_width(phone)
    await shot(phone, "desk-priorities-phone.png")
