"""The RTIC desk in headless Chromium against the real engine (worker, case worker and
gateway as processes, ``tests/engine.py``).

What the desk does travels the whole way: alerts produced to ``rtic.alerts.v1`` come
back sorted and grouped by situation; a second analyst (a Python websocket client)
opening an alert shows on the page as presence, and the audit the engine kept shows
in the detail; calls produced to ``rtic.calls.v1`` come back in the charts through
``GET /api/desk/stats``; an incident produced to ``rtic.incidents.v1`` sits in the
queue with its promise counting down, Assign picks from the candidates API and the
officer's own socket (a Python client) gets the job, whose updates move the queue
live; Verify on a plate check round-trips through the verification worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from rtic.schemas import AlertV1, AudienceV1, LocationV1, Role, Severity
from tests.browser.browsing import PAGES_MARKS, OpenPage, browser_pages, shot
from tests.conftest import (
    BIRMINGHAM_CENTRE,
    make_call,
    make_hotlist_change,
    make_incident,
    make_officer_location,
    make_read,
)
from tests.engine import Engine, next_message

pytestmark = PAGES_MARKS


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


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


def desk_alert(
    alert_id: str, severity: Severity, title: str, minutes_ago: float, situation: str | None
) -> dict[str, Any]:
    lat, lon = BIRMINGHAM_CENTRE
    return AlertV1(
        alert_id=alert_id,
        rule_id="repeat_calls" if situation else "anpr_hotlist",
        severity=severity,
        title=title,
        summary=f"summary of {title}",
        created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        source_event_ids=[f"SRC-{alert_id}"],
        location=LocationV1(lat=lat, lon=lon, address="12 Example Street, Birmingham"),
        area=["E08000025"],
        audience=AudienceV1(roles=[Role.RTIC_ANALYST, Role.SUPERVISOR]),
        details={"situation": situation} if situation else {},
    ).model_dump(mode="json")


async def produce_alerts(engine: Engine, *alerts: dict[str, Any]) -> None:
    async with engine.producer() as producer:
        for a in alerts:
            await engine.send(producer, engine.topics.alerts, a["alert_id"], a)


async def get_json(engine: Engine, path: str, role: str, sub: str) -> Any:
    async with httpx.AsyncClient(base_url=engine.base_url) as http:
        answer = await http.get(
            path, headers={"Authorization": f"Bearer {engine.token(role, sub)}"}
        )
    answer.raise_for_status()
    return answer.json()


# ---- the alert list: severity, then age; one situation, one row --------------------------


async def test_alerts_sort_by_severity_then_age_and_a_situation_is_one_row(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    page = await open_page("/", "rtic_analyst", unique("an").lower())
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    place = f"situation:{unique('addr')}:2026-11-24T21"
    repeat = desk_alert(unique("A"), "medium", "Repeat calls: 5 from one address", 4, place)
    emerging = desk_alert(unique("A"), "high", "Emerging incident: 5 calls within 300 m", 2, place)
    old_high = desk_alert(unique("A"), "high", "Older high alert", 30, None)
    low = desk_alert(unique("A"), "low", "A low alert", 0, None)
    await produce_alerts(engine, old_high, low, repeat)
    row = page.locator(f"li.alert[data-situation='{place}']")
    await row.wait_for(timeout=15_000)
    assert await row.get_attribute("data-count") == "1"
    await produce_alerts(engine, emerging)
    await page.locator(f"li.alert[data-situation='{place}'][data-count='2']").wait_for(
        timeout=15_000
    )
    mine = {old_high["alert_id"], low["alert_id"], emerging["alert_id"]}
    order = await page.locator("li.alert").evaluate_all(
        "items => items.map(i => i.dataset.alertId)"
    )
    assert [a for a in order if a in mine] == [
        emerging["alert_id"],  # high, 2 min old, its situation's most severe alert
        old_high["alert_id"],  # high, 30 min old
        low["alert_id"],
    ]
    assert await page.locator("li.alert", has_text="Repeat calls: 5").count() == 1  # one row
    assert "One situation: 2 alerts" in await row.inner_text()
    await row.click()
    detail = page.locator("#detail")
    await detail.get_by_role("heading", name="One situation: 2 alerts").wait_for(timeout=5_000)
    text = await detail.inner_text()
    assert "Emerging incident: 5 calls within 300 m" in text
    assert "Repeat calls: 5 from one address" in text
    await shot(page, "desk-situation.png")


# ---- the alert detail: audit history and who else is working it -------------------------


async def test_the_detail_shows_the_audit_and_another_analysts_presence(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    me, colleague = unique("an").lower(), unique("colleague").lower()
    page = await open_page("/", "rtic_analyst", me)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    async with engine.client("rtic_analyst", colleague) as other:
        alert = desk_alert(unique("A"), "high", f"Presence test {me}", 1, None)
        await produce_alerts(engine, alert)
        await next_message(other, "alert", alert_id=alert["alert_id"])
        item = page.locator(f"li.alert[data-alert-id='{alert['alert_id']}']")
        await item.wait_for(timeout=15_000)
        await item.click()
        presence = page.locator("#presence-list")
        await presence.wait_for(timeout=5_000)
        assert "Only you" in await presence.inner_text()
        # The colleague opens it too: the page says so at once.
        await other.send(orjson.dumps({"type": "open", "alert_id": alert["alert_id"]}).decode())
        who = presence.locator(f"b.person[data-sub='{colleague}']")
        await who.wait_for(timeout=5_000)
        assert "(RTIC analyst, since" in await presence.inner_text()
        # Both opens come back in the audit history (through rtic.audit.v1 and the database).
        refresh = page.get_by_role("button", name="Refresh audit history")

        async def both_opened() -> bool:
            await refresh.click()
            await asyncio.sleep(0.3)
            pane = page.locator("#audit li.audit-item[data-action='alert_opened']")
            text = " ".join(await pane.all_inner_texts())
            return me in text and colleague in text

        await eventually(both_opened, timeout=60.0, every=1.0)
        await shot(page, "desk-presence.png")
    # The colleague left: the presence goes with them.
    await presence.filter(has_text="Only you").wait_for(timeout=5_000)


# ---- charts from the real stats ----------------------------------------------------------


async def test_charts_are_drawn_from_the_gateways_stats(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("sup").lower()
    before = await get_json(engine, "/api/desk/stats", "supervisor", sub)
    burglaries = sum(before["calls"]["by_category"].get("burglary", [0]))
    now = datetime.now(UTC)
    calls = [
        make_call(received_at=(now - timedelta(minutes=m)).isoformat(), grade=g, category=c)
        for m, g, c in ((1, 1, "burglary"), (2, 2, "burglary"), (70, 3, "theft_from_vehicle"))
    ]
    async with engine.producer() as producer:
        for call in calls:
            await engine.send(producer, engine.topics.calls, call["call_id"], call)

    async def counted() -> dict[str, Any] | None:
        stats = await get_json(engine, "/api/desk/stats", "supervisor", sub)
        got = sum(stats["calls"]["by_category"].get("burglary", [0]))
        return stats if got >= burglaries + 2 else None

    stats = await eventually(counted)
    page = await open_page("/", "supervisor", sub)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.get_by_role("button", name="Charts").click()
    chart = page.locator("svg#chart-grades")
    await chart.wait_for(timeout=10_000)
    drawn = await page.locator("svg#chart-grades rect").evaluate_all(
        "rs => rs.map(r => [r.dataset.series, r.dataset.hour, +r.dataset.count])"
    )
    fresh = await get_json(engine, "/api/desk/stats", "supervisor", sub)
    expected = [
        [grade, hour, n]
        for grade, counts in sorted(fresh["calls"]["by_grade"].items())
        for hour, n in zip(fresh["hours"], counts, strict=True)
        if n
    ]
    assert sorted(drawn) == sorted(expected) and len(drawn) >= 2
    assert sum(n for g, _, n in drawn if g == "1") >= 1
    assert await page.locator("svg#chart-categories rect[data-series='burglary']").count() >= 1
    assert await page.locator("svg#chart-anpr").count() == 1
    ages = page.locator("svg#chart-ages text[data-band-count]")
    assert await ages.count() == len(stats["open_alerts"]["by_age"])
    await shot(page, "desk-charts.png")


# ---- the incident queue, assign, and the job's updates live (the jobs helper's server) ----


async def test_the_queue_orders_counts_down_assigns_and_follows_the_job(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    officer = unique("OFF")
    sub = unique("an").lower()
    page = await open_page("/", "rtic_analyst", sub)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    now = datetime.now(UTC)
    g3, g1, g2 = unique("INC"), unique("INC"), unique("INC")
    async with engine.client("officer", officer, radius_m=5000) as phone:
        async with engine.producer() as producer:
            ping = make_officer_location(
                officer_id=officer, callsign="BW-77", at=now.isoformat(), status="available"
            )
            await engine.send(producer, engine.topics.officer_locations, officer, ping)
            for incident_id, grade, minutes in ((g3, 3, 20), (g1, 1, 1), (g2, 2, 10)):
                inc = make_incident(
                    incident_id=incident_id,
                    grade=grade,
                    at=(now - timedelta(minutes=minutes)).isoformat(),
                    units=[],
                    category="assault",
                )
                await engine.send(producer, engine.topics.incidents, incident_id, inc)
        rows = page.locator("#queue li.incident")
        for incident_id in (g1, g2, g3):
            await page.locator(f"#queue li[data-incident-id='{incident_id}']").wait_for(
                timeout=15_000
            )
        order = await rows.evaluate_all("items => items.map(i => i.dataset.incidentId)")
        mine = [i for i in order if i in (g1, g2, g3)]
        assert mine == [g1, g2, g3]  # unassigned grade 1, then 2 first; grade 3 after
        promise = page.locator(f"#queue .promise[data-incident-id='{g1}']")
        first = await promise.inner_text()
        assert first.startswith("attend within ")
        await page.wait_for_timeout(2_100)
        assert await promise.inner_text() != first  # counting down
        await page.locator(f"g.officer[data-officer-id='{officer}']").wait_for(timeout=10_000)

        # Assign: the picker lists the nearest officers; choosing one sends the job.
        await page.get_by_role("button", name=f"Assign incident {g1}").click()
        choice = page.locator(f"#assign-list button[data-officer-id='{officer}']")
        await choice.wait_for(timeout=10_000)
        label = await choice.inner_text()
        assert "BW-77" in label and "min" in label
        await choice.click()
        await page.locator("#assign-state", has_text="Assigned").wait_for(timeout=10_000)
        job = await next_message(phone, "job", timeout=15.0)
        assert job["job"]["incident_id"] == g1
        row = page.locator(f"#queue li[data-incident-id='{g1}']")
        await page.locator(f"#queue li[data-incident-id='{g1}'][data-status='assigned']").wait_for(
            timeout=15_000
        )
        await shot(page, "desk-queue.png")

        # The officer works the job from the phone: the desk follows it live.
        for event, status in (("en_route", "en_route"), ("arrived", "arrived")):
            update = {
                "type": "job_update",
                "update_id": unique("U"),
                "incident_id": g1,
                "event": event,
                "at": datetime.now(UTC).isoformat(),
            }
            await phone.send(orjson.dumps(update).decode())
            await next_message(phone, "job_update_ack", update_id=update["update_id"])
            await page.locator(
                f"#queue li[data-incident-id='{g1}'][data-status='{status}']"
            ).wait_for(timeout=15_000)
        closing = {
            "type": "job_update",
            "update_id": unique("U"),
            "incident_id": g1,
            "event": "closed",
            "at": datetime.now(UTC).isoformat(),
            "result": "advice given",
        }
        await phone.send(orjson.dumps(closing).decode())
        await row.wait_for(state="detached", timeout=15_000)


# ---- verify before action, from the desk (the verify helper's server) ---------------------


async def test_verify_on_a_plate_check_round_trips(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("an").lower()
    digits = unique("P")[-4:]
    listed, read_as = f"VF{digits[:2]} D{digits[2:]}K", f"VF{digits[:2]}D{digits[2:]}K"
    page = await open_page("/", "rtic_analyst", sub)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    async with engine.producer() as producer:
        change = make_hotlist_change(vrm=listed, reason="stolen")
        await engine.send(producer, engine.topics.reference, change["id"], change)
        await engine.until_listed(change["id"])
        read = make_read(vrm=read_as, read_at=datetime.now(UTC).isoformat(), camera_id="CAM-VF")
        await engine.send(producer, engine.topics.anpr, read["camera_id"], read)
    item = page.locator("li.alert", has_text="Check the plate").filter(has_text=listed).first
    await item.wait_for(timeout=15_000)
    await item.click()
    detail = page.locator("#detail")
    await detail.get_by_role("heading", name="Check the plate", exact=True).wait_for(timeout=5_000)
    assert "CAM-VF" in await detail.inner_text()
    await detail.get_by_role("button", name="Verify", exact=True).click()
    verdict = page.locator("#verify-state[data-outcome='verified']")
    await verdict.wait_for(timeout=20_000)
    assert f"Verified by {sub}" in await verdict.inner_text()
    await shot(page, "desk-verify.png")
