"""The desk's audit pane and history search, and the /cases page, in headless Chromium.

The pages are the real ones (``dashboards/static``) with the real security headers;
the API behind them is the test double in ``gateway_double.py`` (fixtures built from
the contract's models), so these tests pin what the pages send and show. The same
pages against the real engine: ``test_pages_live.py``. Screenshots go to
``artifacts/screenshots/`` (docs/screenshots/ holds the copies the README shows).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from rtic.casework import CaseStatus, TimelineKind
from rtic.settings import PROJECT_ROOT
from tests.browser.browsing import (
    PAGES_MARKS,
    PHONE,
    OpenPage,
    browser_pages,
    fits_width,
    shot,
    until,
)
from tests.browser.gateway_double import (
    CASE_OFFICER,
    HOTLIST_ALERT,
    GatewayDouble,
    serving,
    timeline_entry,
)

pytestmark = PAGES_MARKS


@pytest.fixture
def double() -> GatewayDouble:
    return GatewayDouble(
        data_dir=PROJECT_ROOT / "data", now=datetime.now(UTC).replace(microsecond=0)
    )


@pytest.fixture
async def open_page(double: GatewayDouble) -> AsyncIterator[OpenPage]:
    """``await open_page(path, role, sub, **context)``: a page of the double as that person."""
    async with serving(double) as base, browser_pages(base, double.ticket) as open_:
        yield open_


# ---- the desk: an alert's audit history (supervisors), the `open` it sends ---------------


async def test_a_supervisor_opens_an_alert_and_reads_its_audit_history(
    open_page: OpenPage, double: GatewayDouble
) -> None:
    page = await open_page("/", "supervisor", "sup-khan")
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.wait_for_selector("#map svg path.ward", timeout=15_000)
    item = page.locator(f"li.alert[data-alert-id='{HOTLIST_ALERT}']")
    await item.wait_for(timeout=5_000)
    assert await page.locator("li.alert").count() == 3
    await shot(page, "desk.png")

    await item.click()
    await until(lambda: ("sup-khan", HOTLIST_ALERT) in double.opened)
    pane = page.locator("#audit")
    await page.get_by_role("heading", name="Audit history").wait_for(timeout=5_000)
    await pane.locator("li.audit-item").first.wait_for(timeout=5_000)
    text = await pane.inner_text()
    assert (
        "Sent to analyst-1 (RTIC analyst) at 10.20.4.17, sup-khan (supervisor) at 10.20.4.9" in text
    )
    assert "analyst-1 (RTIC analyst) acknowledged the alert" in text
    # The page's own `open` comes back in the history it reloads a moment later, newest first.
    await page.locator(
        "#audit li.audit-item[data-action='alert_opened']", has_text="sup-khan"
    ).wait_for(timeout=6_000)
    actions = await pane.locator("li.audit-item").evaluate_all(
        "items => items.map(i => i.dataset.action)"
    )
    assert actions[0] == "alert_opened" and actions[-1] == "alert_delivered"
    assert "4 records, newest first." in await page.locator("#audit-state").inner_text()
    # Refresh asks again; every ask is a request with the page's bearer token.
    asked = sum(1 for m, p, s in double.requests if p == "/api/audit" and s == "sup-khan")
    await page.get_by_role("button", name="Refresh audit history").click()
    await until(lambda: sum(1 for _, p, _ in double.requests if p == "/api/audit") > asked)
    await shot(page, "desk-alert-audit.png")
    # Escape closes the detail and gives the keyboard back to the alert.
    await page.keyboard.press("Escape")
    assert await page.locator("#detail").is_hidden()
    assert await page.evaluate("document.activeElement.dataset.alertId") == HOTLIST_ALERT
    # The desk links a supervisor to the cases page, no token in the link: the tab's
    # session goes with it; no socket carried a token in its URL.
    cases = page.get_by_role("link", name="Cases")
    assert await cases.get_attribute("href") == "/cases"
    await cases.click()
    await page.locator("#list-title", has_text="Cases in my areas").wait_for(timeout=10_000)
    assert double.socket_queries and not any(double.socket_queries)


async def test_an_analyst_opening_an_alert_sends_open_and_reads_its_audit(
    open_page: OpenPage, double: GatewayDouble
) -> None:
    page = await open_page("/", "rtic_analyst", "analyst-7")
    item = page.locator(f"li.alert[data-alert-id='{HOTLIST_ALERT}']")
    await item.wait_for(timeout=15_000)
    # By keyboard: the alert list is reachable and Enter opens the detail.
    await item.focus()
    await page.keyboard.press("Enter")
    await page.locator("#detail").wait_for(state="visible", timeout=5_000)
    await until(lambda: ("analyst-7", HOTLIST_ALERT) in double.opened)
    # An analyst reads an alert's audit history too (and nothing else's: tests/unit).
    await page.locator("#audit li.audit-item").first.wait_for(timeout=5_000)
    assert any(p == "/api/audit" and s == "analyst-7" for _, p, s in double.requests)
    assert await page.get_by_role("button", name="Search history").is_visible()
    assert await page.get_by_role("link", name="Cases").count() == 0  # not a case role


# ---- the desk: history search, with a reason and a reference -----------------------------


async def test_a_history_search_needs_a_reason_and_a_reference(
    open_page: OpenPage, double: GatewayDouble
) -> None:
    page = await open_page("/", "rtic_analyst", "analyst-7")
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.wait_for_selector("#map svg path.ward", timeout=15_000)
    await page.get_by_role("button", name="Search history").click()
    await page.get_by_role("heading", name="Search history").wait_for()
    assert await page.evaluate("document.activeElement.id") == "search-subject"

    # Nothing filled in: three clear messages, the first bad field focused, nothing sent.
    await page.get_by_role("button", name="Search", exact=True).click()
    assert "Say what to search for." in await page.locator("#search-value-error").inner_text()
    assert (
        "reason of at least 10 characters"
        in await page.locator("#search-reason-error").inner_text()
    )
    assert "reference" in await page.locator("#search-reference-error").inner_text()
    assert await page.get_by_label("Plate", exact=True).get_attribute("aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.id") == "search-value"
    assert "Not searched" in await page.locator("#search-state").inner_text()

    # A reason too short still stops it.
    await page.get_by_label("Plate", exact=True).fill("BR0W 5ER")
    await page.get_by_label("Reason for this search", exact=True).fill("check")
    await page.get_by_label("Reference", exact=True).fill("INC-2026-40811")
    await page.get_by_role("button", name="Search", exact=True).click()
    assert "reason of at least 10" in await page.locator("#search-reason-error").inner_text()
    assert await page.locator("#search-value-error").inner_text() == ""
    assert double.searches == []

    # Filled in properly, by keyboard alone: Tab from the reason, then Enter in the reference.
    await page.get_by_label("Reason for this search", exact=True).fill(
        "Van seen leaving the burglary at 14 Elm Grove"
    )
    await page.get_by_label("Reason for this search", exact=True).focus()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "search-reference"
    await page.keyboard.press("Enter")
    results = page.locator("#search-results")
    await results.locator("li").first.wait_for(timeout=5_000)
    assert double.searches == [
        {
            "sub": "analyst-7",
            "subject": "plate",
            "value": "BR0W 5ER",
            "reason": "Van seen leaving the burglary at 14 Elm Grove",
            "reference": "INC-2026-40811",
        }
    ]
    text = await results.text_content() or ""
    assert "Hotlist entries (1)" in text and "BR0W 5ER · firearms · exact match" in text
    assert "Plate reads (2)" in text and "CAM-COV-07" in text
    assert "Linked cases (1)" in text
    state = await page.locator("#search-state").inner_text()
    assert "4 found for plate BR0W 5ER" in state and "recorded" in state
    case = results.get_by_role("link", name="WM-2026-0000412")
    assert await case.get_attribute("href") == "/cases#WM-2026-0000412"
    await shot(page, "desk-search.png")

    # Another subject changes the field's label; nothing found is said so.
    await page.get_by_label("Search for", exact=True).select_option("address")
    await page.get_by_label("Address", exact=True).fill("14 Elm Grove, Coventry")
    await page.get_by_role("button", name="Search", exact=True).click()
    await page.locator("#search-state", has_text="Nothing found for address").wait_for(
        timeout=5_000
    )
    assert [s["subject"] for s in double.searches] == ["plate", "address"]


# ---- /cases: my cases, one case, live -------------------------------------------------------


async def test_a_case_officer_opens_her_case_and_sees_it_change_live(
    open_page: OpenPage, double: GatewayDouble
) -> None:
    page = await open_page("/cases", "case_officer", CASE_OFFICER)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.get_by_role("heading", name="My cases").wait_for()
    items = page.locator("#case-list li")
    await items.first.wait_for(timeout=5_000)
    # Her open cases, latest change first; the closed one hidden until asked; never co-jones's.
    refs = await items.evaluate_all("items => items.map(i => i.dataset.caseRef)")
    assert refs == ["WM-2026-0000431", "WM-2026-0000412"]
    assert "1 closed hidden" in await page.locator("#list-message").inner_text()
    await page.get_by_label("Show closed cases", exact=True).check()
    assert await items.count() == 3
    await page.get_by_label("Show closed cases", exact=True).uncheck()
    await shot(page, "cases-list.png")

    # By keyboard: Tab from the filter reaches the cases; Enter opens one and focuses it.
    await page.get_by_label("Find a case", exact=True).fill("elm grove")
    assert await items.count() == 1
    await page.get_by_label("Find a case", exact=True).focus()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    title = page.get_by_role("heading", name="WM-2026-0000412")
    await title.wait_for(timeout=5_000)
    await page.locator("#timeline li.entry").first.wait_for(timeout=5_000)
    assert await page.evaluate("document.activeElement.id") == "case-title"
    assert ("GET", "/api/cases/WM-2026-0000412", CASE_OFFICER) in double.requests
    await page.get_by_label("Find a case", exact=True).fill("")

    # The timeline newest first, staff-only entries marked, evidence and links listed.
    times = await page.locator("#timeline li.entry time").evaluate_all(
        "ts => ts.map(t => t.dateTime)"
    )
    assert len(times) == 8 and times == sorted(times, reverse=True)
    first = page.locator("#timeline li.entry").first
    assert "Evidence received" in await first.inner_text()
    staff = page.locator("#timeline li.staff-only")
    assert await staff.count() == 1
    assert "Staff note: Hotlist hit" in await staff.inner_text()
    assert await page.locator("#case-status").inner_text() == "Under investigation"
    facts = await page.locator("#case-facts").inner_text()
    assert "Sam Patel" in facts and "PC-2211" in facts and "14 Elm Grove" in facts
    assert await page.locator("#evidence li.evidence-item").count() == 2
    links = await page.locator("#links").inner_text()
    assert "Call CALL-2026-118204" in links and "Incident INC-2026-40811" in links
    await page.get_by_role(
        "button", name="Show where PC-2211 body-worn video, 14 Elm Grove.mp4 is stored"
    ).click()
    await page.locator("#evidence", has_text="evidence://bwv/2026/11/EV-2026-00981.mp4").wait_for(
        timeout=5_000
    )
    assert ("GET", "/api/evidence/EV-2026-00981", CASE_OFFICER) in double.requests
    await page.evaluate("document.querySelector('#case').scrollTop = 0")
    await shot(page, "cases-case.png")

    # Live: an arrest on the open case comes in at the top; another case is marked changed.
    view = double.cases["WM-2026-0000412"]
    at = datetime.now(UTC).replace(microsecond=0)
    entry = timeline_entry(
        view.case.case_ref,
        TimelineKind.SUSPECT_IDENTIFIED,
        at,
        "A suspect has been identified.",
        "incident:INC-2026-40811",
        staff_note="Driver of the van arrested in Foleshill",
    )
    sent = double.push_case_update(
        view,
        {
            "case_ref": view.case.case_ref,
            "at": at.isoformat(),
            "change": "timeline",
            "status": "under_investigation",
            "category": view.case.category,
            "officer_in_charge": CASE_OFFICER,
            "entry": entry.model_dump(mode="json"),
        },
    )
    assert sent == 1
    await (
        page.locator("#timeline li.entry")
        .first.filter(has_text="A suspect has been identified.")
        .wait_for(timeout=5_000)
    )
    assert await page.locator("#timeline li.entry").count() == 9
    assert (
        "Just now: A suspect has been identified." in await page.locator("#case-live").inner_text()
    )
    other = double.cases["WM-2026-0000431"]
    double.push_case_update(
        other,
        {
            "case_ref": other.case.case_ref,
            "at": at.isoformat(),
            "change": "status",
            "status": CaseStatus.UNDER_INVESTIGATION.value,
            "category": other.case.category,
            "officer_in_charge": CASE_OFFICER,
        },
    )
    changed = page.locator("li.case-item.changed[data-case-ref='WM-2026-0000431']")
    await changed.wait_for(timeout=5_000)
    assert "Under investigation" in await changed.inner_text()
    # The same entry again (a redelivery) is shown once.
    double.push_case_update(
        view,
        {
            "case_ref": view.case.case_ref,
            "at": at.isoformat(),
            "status": "under_investigation",
            "entry": entry.model_dump(mode="json"),
        },
    )
    await asyncio.sleep(0.5)
    assert await page.locator("#timeline li.entry").count() == 9

    # Another officer's case answers as if it did not exist.
    await page.evaluate("location.hash = '#WM-2026-0000420'")
    await page.locator(
        "#case-summary", has_text="no case WM-2026-0000420 that you may see"
    ).wait_for(timeout=5_000)


async def test_the_cases_page_on_a_phone(open_page: OpenPage, double: GatewayDouble) -> None:
    page = await open_page("/cases", "case_officer", CASE_OFFICER, **PHONE)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.locator("#case-list li").first.wait_for(timeout=5_000)
    assert await fits_width(page)
    assert await page.locator("#case-placeholder").is_hidden()
    await page.get_by_role("link", name="WM-2026-0000412").tap()
    await page.locator("#timeline li.entry").first.wait_for(timeout=5_000)
    # One column: the case alone, with a way back; nothing wider than the phone.
    assert await page.locator("#list-pane").is_hidden()
    back = page.get_by_role("link", name="Back to the list")
    assert await back.is_visible()
    assert await fits_width(page)
    await shot(page, "cases-phone.png")
    await back.tap()
    await page.locator("#list-pane").wait_for(state="visible", timeout=5_000)
    assert await page.locator("#case").is_hidden()


async def test_the_desk_fits_a_phone(open_page: OpenPage) -> None:
    page = await open_page("/", "supervisor", "sup-khan", **PHONE)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.locator("li.alert").first.wait_for(timeout=5_000)
    assert await fits_width(page)
    await page.get_by_role("button", name="Search history").tap()
    await page.get_by_label("Reason for this search", exact=True).wait_for()
    assert await fits_width(page)
    await shot(page, "desk-phone-search.png")


async def test_a_supervisor_sees_every_case_in_her_areas(open_page: OpenPage) -> None:
    page = await open_page("/cases", "supervisor", "sup-khan")
    await page.get_by_role("heading", name="Cases in my areas").wait_for(timeout=15_000)
    await page.locator("#case-list li").first.wait_for(timeout=5_000)
    refs = await page.locator("#case-list li").evaluate_all(
        "items => items.map(i => i.dataset.caseRef)"
    )
    assert "WM-2026-0000420" in refs and len(refs) == 3  # the closed one hidden


async def test_the_cases_page_without_a_fitting_token(open_page: OpenPage) -> None:
    page = await open_page("/cases", None)
    assert "needs a link" in await page.locator("#list-message").inner_text()
    analyst = await open_page("/cases", "rtic_analyst", "analyst-7")
    await analyst.locator(
        "#list-message", has_text="for case officers, officers and supervisors"
    ).wait_for(timeout=5_000)


async def test_refused_tokens_get_a_plain_message(open_page: OpenPage) -> None:
    page = await open_page("/cases?token=not-a-token", None)
    await page.locator("#list-message", has_text="session was refused").wait_for(timeout=5_000)
    assert "token=" not in page.url


async def test_a_ticket_opens_once_and_leaves_the_address(
    open_page: OpenPage, double: GatewayDouble
) -> None:
    ticket = double.ticket("supervisor", "sup-once")
    base = (await open_page("/cases", None)).url.split("/cases")[0]
    page = await open_page(f"/cases?ticket={ticket}", None)
    await page.locator("#list-title", has_text="Cases in my areas").wait_for(timeout=10_000)
    assert page.url == f"{base}/cases"
    assert await page.evaluate("sessionStorage.getItem('rtic.staff.token')")
    # A reload keeps the tab's session (the ticket is gone from the address).
    await page.reload()
    await page.locator("#list-title", has_text="Cases in my areas").wait_for(timeout=10_000)
    # The same ticket again, in another browser: refused, said plainly.
    again = await open_page(f"/cases?ticket={ticket}", None)
    await again.locator("#list-message", has_text="link was refused").wait_for(timeout=5_000)
    assert "ticket=" not in again.url
    assert "rtic token --link" in await again.locator("#list-message").inner_text()


async def test_an_old_link_with_a_token_still_opens_the_page(
    open_page: OpenPage, double: GatewayDouble
) -> None:
    page = await open_page(f"/?token={double.token('rtic_analyst', 'analyst-old')}", None)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    assert "token=" not in page.url  # taken into the tab's session, out of the address
    assert not any(double.socket_queries)
