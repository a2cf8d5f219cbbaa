"""The desk's audit pane and history search, and the /cases page, against the real engine.

The engine of ``tests/engine.py`` (the worker, the case worker and the gateway as
processes, on the session's Tansu and Redis and a database of their own): what a
page does travels the whole way. The desk's ``open`` goes to the gateway, its audit
record over ``rtic.audit.v1`` to the case worker's audit writer and into the
database, and comes back in the supervisor's audit pane; a burglary call, its
incident and an assignment make a case the officer opens on /cases, and the
officer's arrival comes in live as a ``case_update`` frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.browser.browsing import PAGES_MARKS, OpenPage, browser_pages, shot
from tests.conftest import COVENTRY_CENTRE, make_call, make_hotlist_change, make_incident, make_read
from tests.engine import Engine

pytestmark = PAGES_MARKS


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


async def cases_of(engine: Engine, role: str, sub: str) -> list[dict[str, Any]]:
    """``GET /api/cases`` as that person."""
    async with httpx.AsyncClient(base_url=engine.base_url) as http:
        answer = await http.get(
            "/api/cases", headers={"Authorization": f"Bearer {engine.token(role, sub)}"}
        )
    answer.raise_for_status()
    cases: list[dict[str, Any]] = answer.json()["cases"]
    return cases


async def eventually(probe: Callable[[], Any], timeout: float = 30.0, every: float = 0.5) -> Any:
    """The first truthy answer of ``await probe()`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing within {timeout} s")
        await asyncio.sleep(every)


async def test_a_supervisor_reads_the_audit_history_the_engine_kept(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("sup").lower()
    digits = unique("P")[-4:]
    listed, read_as = f"AU{digits[:2]} D{digits[2:]}T", f"AU{digits[:2]}D{digits[2:]}T"
    page = await open_page("/", "supervisor", sub)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    async with engine.producer() as producer:
        change = make_hotlist_change(vrm=listed, reason="stolen")
        await engine.send(producer, engine.topics.reference, change["id"], change)
        await engine.until_listed(change["id"])
        read = make_read(vrm=read_as, read_at=datetime.now(UTC).isoformat(), camera_id="CAM-AUDIT")
        await engine.send(producer, engine.topics.anpr, read["camera_id"], read)
    item = page.locator("li.alert", has_text=listed).first
    await item.wait_for(timeout=15_000)
    await item.click()
    pane = page.locator("#audit")
    await page.get_by_role("heading", name="Audit history").wait_for(timeout=5_000)
    refresh = page.get_by_role("button", name="Refresh audit history")

    async def opened_by_me() -> bool:
        await refresh.click()
        await asyncio.sleep(0.3)  # the page's fetch of /api/audit
        mine = pane.locator("li.audit-item[data-action='alert_opened']", has_text=sub)
        sent = pane.locator(
            "li.audit-item[data-action='alert_delivered'] b.recipient", has_text=sub
        )
        return await mine.count() == 1 and await sent.count() >= 1

    await eventually(opened_by_me, timeout=90.0, every=1.0)
    text = await pane.inner_text()
    assert f"{sub} (supervisor) opened the alert from 127.0.0.1" in text
    assert f"{sub} (supervisor) at 127.0.0.1" in text  # in the list the delivery names

    # The same supervisor searches the plate's history: the hotlist and the read come back.
    await page.get_by_role("button", name="Search history").click()
    await page.get_by_label("Plate", exact=True).fill(listed)
    await page.get_by_label("Reason for this search", exact=True).fill(
        "Stolen car seen on CAM-AUDIT, checking where it went"
    )
    await page.get_by_label("Reference", exact=True).fill("OP-AUDIT-1")
    await page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#search-results")
    await results.locator("li").first.wait_for(timeout=10_000)
    text = await results.text_content() or ""
    assert "Hotlist entries (1)" in text and f"{listed} · stolen · exact match" in text
    assert "CAM-AUDIT" in text
    assert "recorded" in await page.locator("#search-state").inner_text()


async def test_an_officer_follows_her_case_live_on_the_cases_page(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    officer = unique("OFF")
    address = f"{unique('No')} Live Test Road, Coventry CV1 2AA"
    here = {"lat": COVENTRY_CENTRE[0], "lon": COVENTRY_CENTRE[1], "address": address}
    now = datetime.now(UTC).isoformat()
    call = make_call(
        received_at=now, channel="999", category="burglary", grade=2, location=here, caller=None
    )
    async with engine.producer() as producer:
        await engine.send(producer, engine.topics.calls, call["call_id"], call)

        async def the_case() -> dict[str, Any] | None:
            found = await cases_of(engine, "supervisor", "sup-live")
            return next((c for c in found if c.get("address") == address), None)

        case = await eventually(the_case)
        ref = case["case_ref"]
        incident = unique("INC")
        for event, units in (("created", []), ("assigned", [officer])):
            message = make_incident(
                incident_id=incident,
                event=event,
                at=datetime.now(UTC).isoformat(),
                category="burglary",
                grade=2,
                location=here,
                call_ids=[call["call_id"]],
                units=units,
                persons=None,
            )
            await engine.send(producer, engine.topics.incidents, incident, message)

    async def hers() -> bool:
        return any(c["case_ref"] == ref for c in await cases_of(engine, "case_officer", officer))

    await eventually(hers)
    page = await open_page("/cases", "case_officer", officer)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.get_by_role("link", name=ref).click()
    await page.locator("#timeline li.entry[data-kind='officer_assigned']").wait_for(timeout=10_000)
    assert await page.locator("#case-status").inner_text() == "Under investigation"
    assert address in await page.locator("#case-facts").inner_text()
    links = await page.locator("#links").inner_text()
    assert call["call_id"] in links and incident in links

    # The officer arrives: the entry comes in at the top while the page is open.
    async with engine.producer() as producer:
        arrived = make_incident(
            incident_id=incident,
            event="arrived",
            at=datetime.now(UTC).isoformat(),
            category="burglary",
            grade=2,
            location=here,
            units=[officer],
            persons=None,
        )
        await engine.send(producer, engine.topics.incidents, incident, arrived)
    first = page.locator("#timeline li.entry").first
    await page.locator("#timeline li.entry[data-kind='officer_attended']").wait_for(timeout=15_000)
    assert await first.get_attribute("data-kind") == "officer_attended"
    assert "Just now:" in await page.locator("#case-live").inner_text()
    await shot(page, "cases-live-engine.png")
