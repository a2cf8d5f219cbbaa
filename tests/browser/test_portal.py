"""The citizen portal on a phone (390x844, Chromium) against the real engine.

One person reports a burglary with a pin on the map and gets the receipt (reference and
secret, the 999 notice). In a second browser (another context: nothing shared) they
open their case with the reference and the secret: the timeline and the next-contact
estimate show, and when an officer is assigned (an incident ``assigned`` event linked to
the report's call, as the desk's assignment makes it) the timeline changes live over
the websocket. They give a witness statement, then amend it: two versions are kept.
Screenshots go to artifacts/screenshots/portal-*.png (copied to docs/screenshots).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.browser.browsing import PAGES_MARKS, OpenPage, browser_pages, fits_width, shot
from tests.conftest import make_incident
from tests.engine import Engine

pytestmark = PAGES_MARKS

PHONE_390: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
_addresses = itertools.count(1)


def phone() -> dict[str, Any]:
    """A phone of its own, at its own client address (the portal's rate limits are per
    address: uvicorn takes X-Forwarded-For from a proxy on 127.0.0.1)."""
    n = next(_addresses)
    return {**PHONE_390, "extra_http_headers": {"X-Forwarded-For": f"10.77.0.{n}"}}


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


async def test_report_receipt_track_live_and_a_statement_amended(
    engine: Engine, open_page: OpenPage
) -> None:
    # ---- report, on the first phone ----
    page = await open_page("/portal", None, **phone())
    await page.get_by_role("heading", name="Report a crime").wait_for()
    rf = page.locator("#report-form")
    assert await page.get_by_text("call 999").first.is_visible()
    await rf.get_by_label("What happened?").select_option("burglary")
    await rf.get_by_label("Describe what happened").fill(
        "Someone forced the shed door overnight and took two bicycles."
    )
    svg = page.locator("#r-map svg")
    await svg.wait_for()
    box = await svg.bounding_box()
    assert box is not None
    await svg.click(position={"x": box["width"] * 0.45, "y": box["height"] * 0.5})
    await page.get_by_text("Place chosen (from the map)").wait_for()
    await rf.get_by_label("Address or place (if you know it)").fill("12 Example Street")
    await rf.get_by_label("Your name").fill("Sam Jones")
    await rf.get_by_label("Email address").fill("sam@example.org")
    assert await fits_width(page)
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, "portal-report.png")
    await page.get_by_role("button", name="Send report").click()

    # ---- the receipt ----
    await page.get_by_role("heading", name="Your report has been sent").wait_for()
    ref = (await page.locator("#receipt-ref").text_content() or "").strip()
    secret = (await page.locator("#receipt-secret").text_content() or "").strip()
    assert ref.startswith(f"{engine.settings.force_code}-") and len(secret) == 19
    assert "999" in (await page.locator("#receipt-notice").text_content() or "")
    assert await page.get_by_text("Keep this.").is_visible()
    assert await fits_width(page)
    await shot(page, "portal-receipt.png")
    stored = await page.evaluate("sessionStorage.getItem('rtic.portal.case_ref')")
    assert stored == ref

    # ---- track, in a second browser, with the reference and the secret ----
    other = await open_page("/portal", None, **phone())
    await other.get_by_role("button", name="Track my case").click()
    await other.get_by_label("Case reference").fill(ref.lower())
    await other.get_by_label("Secret").fill(secret.replace("-", " ").lower())
    await other.get_by_role("button", name="Show my case").click()
    await other.locator("#c-ref", has_text=ref).wait_for()
    await other.locator("#case-view[data-live='true']").wait_for(timeout=10_000)
    await other.locator("#c-timeline li[data-kind='received']").wait_for(timeout=30_000)
    assert "estimate" in (await other.locator("#c-next-basis").text_content() or "")
    assert "between" in (await other.locator("#c-next-range").text_content() or "")
    await shot(other, "portal-track.png")

    # An officer is assigned to the report's incident: the timeline changes live.
    async with engine.producer() as producer:
        incident = make_incident(
            incident_id=f"INC-{ref}",
            event="assigned",
            at=datetime.now(UTC).isoformat(),
            call_ids=[f"online-{ref}"],
            units=["OFF-PORTAL-B1"],
        )
        await engine.send(producer, engine.topics.incidents, incident["incident_id"], incident)
    assigned = other.locator("#c-timeline li[data-kind='officer_assigned']")
    await assigned.wait_for(timeout=30_000)
    assert "An officer has been assigned" in (await assigned.text_content() or "")
    assert "Just now" in (await other.locator("#c-live").text_content() or "")
    first = await other.locator("#c-timeline li").first.get_attribute("data-kind")
    assert first == "officer_assigned"  # newest first
    assert "on your case since" in (await other.locator("#c-next-basis").text_content() or "")
    assert await fits_width(other)
    await shot(other, "portal-track-live.png")

    # ---- a witness statement, then an amendment ----
    form = other.locator("#statement-form")
    await form.get_by_label("Your name").fill("Sam Jones")
    await form.get_by_label("How you know about it").select_option("victim")
    await form.get_by_label("What you saw or heard").fill("I saw a man in a grey hoodie.")
    await form.get_by_label("When it happened").fill("2026-11-30T23:15")
    await form.get_by_label("Where it happened").fill("The back garden of 12 Example Street")
    await form.get_by_role("button", name="Send statement").click()
    assert "declaration" in (await other.locator("#s-errors").text_content() or "")
    await form.get_by_label("This statement is true").check()
    await form.get_by_role("button", name="Send statement").click()
    await other.get_by_text("your statement has been saved").wait_for()
    await other.get_by_role("button", name="Amend this statement").click()
    await form.get_by_label("What you saw or heard").fill("I saw two men in grey hoodies.")
    await form.get_by_label("This statement is true").check()
    await shot(other, "portal-statement.png")
    await form.get_by_role("button", name="Send amendment").click()
    await other.get_by_text("saved as version 2").wait_for()
    await other.locator("#c-timeline li[data-kind='statement_taken']").first.wait_for(
        timeout=30_000
    )
    token = await other.evaluate("sessionStorage.getItem('rtic.portal.token')")
    async with httpx.AsyncClient(base_url=engine.base_url) as http:
        listed = await http.get(
            f"/api/cases/{ref}/statements", headers={"Authorization": f"Bearer {token}"}
        )
    versions = [(s["version"], s["body"]["what_i_saw"]) for s in listed.json()["statements"]]
    assert versions == [(1, "I saw a man in a grey hoodie."), (2, "I saw two men in grey hoodies.")]

    # Signing out ends the session in this browser.
    await other.get_by_role("button", name="Sign out").click()
    await other.get_by_role("button", name="Show my case").wait_for()
    assert await other.evaluate("sessionStorage.getItem('rtic.portal.token')") is None
