"""The desk's trends panel in headless Chromium against the real engine: calls, an
incident and an ANPR hit produced to the input topics are counted by the worker's
windowed tables, written to Redis, read by the gateway (``GET /api/desk/trends``) and
drawn: the last 24 hours against the same hours of earlier weeks, by ward."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from enrichers.geo import GeoIndex
from rtic.schemas import AlertV1, AudienceV1, Role, Severity
from tests.browser.browsing import PAGES_MARKS, PHONE, OpenPage, browser_pages, fits_width, shot
from tests.browser.test_desk import eventually, get_json
from tests.conftest import make_call, make_incident
from tests.engine import Engine

pytestmark = PAGES_MARKS

WALSALL = "E08000030"


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


def quiet_ward(geo: GeoIndex) -> tuple[str, str, tuple[float, float]]:
    """A Walsall ward (other tests call from Birmingham): its code, name and a point in it."""
    layer = geo.levels["ward"]
    for code, name, poly in sorted(
        zip(layer.codes, layer.names, layer.geoms, strict=True), key=lambda w: w[0]
    ):
        pt = poly.representative_point()
        found = geo.areas([pt.y], [pt.x])[0]
        if found.get("district", {}).get("code") == WALSALL and found["ward"]["code"] == code:
            return str(code), str(name), (pt.y, pt.x)
    raise AssertionError("no Walsall ward")


async def test_the_trends_panel_draws_the_last_24_hours_against_earlier_weeks(
    engine: Engine, open_page: OpenPage, geo: GeoIndex, unique: Callable[[str], str]
) -> None:
    ward, name, point = quiet_ward(geo)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    week_ago = now - timedelta(days=7)
    camera = unique("CAM")
    calls = [make_call(at_point=point, received_at=now.isoformat(), grade=2) for _ in range(8)]
    calls += [make_call(at_point=point, received_at=week_ago.isoformat()) for _ in range(2)]
    inc = make_incident(at_point=point, grade=1)
    steps = [("created", 10), ("assigned", 8), ("arrived", 1)]
    hit = AlertV1(
        alert_id=unique("HIT"),
        rule_id="anpr_hotlist_hit",
        severity=Severity.HIGH,
        title="Check the plate: a trends test",
        summary="a hotlist hit for the trends panel",
        created_at=now,
        source_event_ids=[unique("READ")],
        location=None,
        area=[WALSALL],
        audience=AudienceV1(roles=[Role.RTIC_ANALYST, Role.SUPERVISOR]),
        details={"camera_id": camera, "read_at": now.isoformat()},
    ).model_dump(mode="json")
    async with engine.producer() as producer:
        for call in calls:
            await engine.send(producer, engine.topics.calls, call["call_id"], call)
        for event, minutes in steps:
            at = (now - timedelta(minutes=minutes)).isoformat()
            body = {
                **inc,
                "event": event,
                "at": at,
                "units": ["OFF-T1"] if event != "created" else [],
            }
            await engine.send(producer, engine.topics.incidents, inc["incident_id"], body)
        await engine.send(producer, engine.topics.alerts, hit["alert_id"], hit)

    sub = unique("sup").lower()

    async def counted() -> dict[str, Any] | None:
        panel = await get_json(engine, "/api/desk/trends?level=ward&top=200", "supervisor", sub)
        row = next((a for a in panel["areas"] if a["code"] == ward), None)
        cams = {c["camera"]: c["total"] for c in panel["anpr_hits_by_camera"]}
        attended = panel["attend_by_grade"]["1"]["last_24h_mean_s"]
        if row and row["last_24h"][-1] >= 8 and cams.get(camera) == 1 and attended is not None:
            return panel
        return None

    panel = await eventually(counted, timeout=45)
    assert panel["hours"][-1] == hour.isoformat()
    row = next(a for a in panel["areas"] if a["code"] == ward)
    assert row["last_24h"][-1] == 8  # this ward's calls this hour: these eight
    weeks = panel["weeks"][-1]
    assert weeks >= 1 and row["baseline"][-1] * weeks >= 2  # the two calls a week ago
    assert panel["observed_since"] is not None

    page = await open_page("/", "supervisor", sub)
    await page.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await page.get_by_role("button", name="Trends").click()
    await page.locator("svg#trend-force").wait_for(timeout=10_000)
    await page.get_by_role("button", name="Wards").click()
    item = page.locator(f"li.trend-area[data-code='{ward}']")
    await item.wait_for(timeout=10_000)
    assert name in await item.inner_text()  # named from the map's boundaries
    drawn = await item.locator("rect.now").evaluate_all(
        "rs => rs.map(r => [r.dataset.hour, +r.dataset.count])"
    )
    assert [n for h, n in drawn if h == hour.isoformat()] == [8]
    assert await item.locator("path.baseline").count() == 1
    assert await page.locator(f"#trends-body li[data-camera='{camera}']").count() == 1
    assert "Counting since" in await page.locator("#trends-state").inner_text()
    await shot(page, "desk-trends.png")

    phone = await open_page("/", "supervisor", sub, **PHONE)
    await phone.wait_for_selector("#status:has-text('live')", timeout=15_000)
    await phone.get_by_role("button", name="Trends").click()
    await phone.locator("svg#trend-force").wait_for(timeout=10_000)
    assert await fits_width(phone)
