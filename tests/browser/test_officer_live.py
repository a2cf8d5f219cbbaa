"""The officer's phone page (/officer) in a real headless Chromium, against the real engine.

A phone viewport (390x844) with geolocation granted, on the engine of
``tests/engine.py`` (worker, case worker and gateway as processes on the session's
Tansu and Redis): a plate read becomes an alert on the page within a second;
Acknowledge, Verify and Not a match go back through the gateway and reach the desk's
socket; a job assigned from the desk is worked from the page (en route, arrived, log,
closed); updates made offline wait in IndexedDB, the page says how many, and each
reaches ``rtic.incidents.v1`` once when the signal returns; the page loads with no
network from its service worker; it survives a gateway restart and resumes without
showing an alert twice; and an officer never sees an alert for a place outside the
radius around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import ClientConnection

from rtic.settings import PROJECT_ROOT
from tests.browser.browsing import PAGES_MARKS, OpenPage, browser_pages, shot
from tests.conftest import BIRMINGHAM_CENTRE, COVENTRY_CENTRE, make_hotlist_change, make_read
from tests.engine import Engine, next_message

pytestmark = PAGES_MARKS

DOCS_SHOTS = PROJECT_ROOT / "docs" / "screenshots"
PHONE_390: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "permissions": ["geolocation"],
}
needs_jobs = pytest.mark.skipif(
    importlib.util.find_spec("push.jobs") is None,
    reason="the gateway's jobs part (push/jobs.py) is not in this tree",
)
needs_verify = pytest.mark.skipif(
    importlib.util.find_spec("push.verify") is None,
    reason="the gateway's verify part (push/verify.py) is not in this tree",
)


def to_docs(name: str) -> None:
    """Copy a screenshot the test took to docs/screenshots/ (the README shows it)."""
    shutil.copy(PROJECT_ROOT / "artifacts" / "screenshots" / name, DOCS_SHOTS / name)


def at(point: tuple[float, float]) -> dict[str, Any]:
    """A phone context standing at ``point`` (lat, lon)."""
    return {**PHONE_390, "geolocation": {"latitude": point[0], "longitude": point[1]}}


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


async def open_officer(open_page: OpenPage, sub: str, point: tuple[float, float]) -> Any:
    """The officer's page, live (subscribed, with its position)."""
    page = await open_page("/officer", "officer", sub, **at(point))
    await page.wait_for_selector("#link[data-state='live']", timeout=20_000)
    await page.wait_for_selector("#link[data-near='yes']", timeout=10_000)  # alerts near me
    return page


def plates(unique: Callable[[str], str]) -> tuple[str, str]:
    """A listed plate of this test's own and the same plate as a camera reads it."""
    digits = unique("P")[-4:]
    return f"OF{digits[:2]} F{digits[2:]}X", f"OF{digits[:2]}F{digits[2:]}X"


async def list_plate(engine: Engine, producer: Any, listed: str) -> str:
    """List the plate; the change's id (``engine.until_listed`` waits for it to land)."""
    change = make_hotlist_change(vrm=listed, reason="stolen")
    await engine.send(producer, engine.topics.reference, change["id"], change)
    return str(change["id"])


async def card_for(page: Any, text: str, timeout: float = 15_000) -> Any:
    card = page.locator("#alerts li.alert", has_text=text)
    await card.first.wait_for(timeout=timeout)
    return card.first


async def alert_ids(page: Any) -> list[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "#alerts li[data-alert-id]", "nodes => nodes.map(n => n.dataset.alertId)"
    )
    return ids


@contextlib.asynccontextmanager
async def incidents_from_now(engine: Engine) -> AsyncIterator[AIOKafkaConsumer]:
    async with engine.tail(engine.topics.incidents) as consumer:
        yield consumer


async def drain(consumer: AIOKafkaConsumer, seconds: float) -> list[dict[str, Any]]:
    """Everything the consumer reads for ``seconds``."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=300)
        for records in batches.values():
            out.extend(orjson.loads(r.value) for r in records if r.value)
    return out


async def test_an_alert_reaches_the_officer_within_a_second_and_acknowledge_round_trips(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("PC")
    listed, read_as = plates(unique)
    page = await open_officer(open_page, sub, COVENTRY_CENTRE)
    assert "ticket=" not in page.url  # exchanged, its token in localStorage, stripped
    assert await page.evaluate("localStorage.getItem('rtic.officer.token')")
    async with engine.client("rtic_analyst", unique("desk")) as desk, engine.producer() as p:
        await engine.until_listed(await list_plate(engine, p, listed))  # the worker loads it
        read = make_read(
            vrm=read_as,
            read_at=datetime.now(UTC).isoformat(),
            camera_id="CAM-OFFICER",
            at_point=(COVENTRY_CENTRE[0] + 0.004, COVENTRY_CENTRE[1] + 0.004),
        )
        sent_ms = time.time() * 1000
        await engine.send(p, engine.topics.anpr, read["camera_id"], read)
        card = await card_for(page, listed)
        received_ms = float(await card.get_attribute("data-received-at") or 0)
        assert received_ms - sent_ms < 1000, f"{received_ms - sent_ms:.0f} ms from read to page"
        text = await card.inner_text()
        assert "of you" in text and "north-east" in text  # distance and direction from me
        assert "CAM-OFFICER" in text
        await shot(page, "officer-alert.png")

        await card.get_by_role("button", name="Acknowledge", exact=True).click()
        await card.locator("p.done", has_text="Acknowledged at").wait_for(timeout=10_000)
        alert_id = await card.get_attribute("data-alert-id")
        ack = await next_message(desk, "alert_ack", timeout=20, alert_id=alert_id)
        assert ack["by"] == sub and ack["role"] == "officer" and ack["action"] == "ack"


async def test_an_officer_never_sees_an_alert_for_a_place_outside_her_radius(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    coventry = await open_officer(open_page, unique("PC"), COVENTRY_CENTRE)
    birmingham = await open_officer(open_page, unique("PC"), BIRMINGHAM_CENTRE)
    far, far_read = plates(unique)
    near, near_read = plates(unique)
    async with engine.producer() as p:
        await engine.until_listed(
            await list_plate(engine, p, far), await list_plate(engine, p, near)
        )
        now = datetime.now(UTC).isoformat()
        for vrm, point in ((far_read, BIRMINGHAM_CENTRE), (near_read, COVENTRY_CENTRE)):
            read = make_read(vrm=vrm, read_at=now, camera_id="CAM-RADIUS", at_point=point)
            await engine.send(p, engine.topics.anpr, read["camera_id"], read)
    await card_for(coventry, near)
    await card_for(birmingham, far)
    await asyncio.sleep(1.0)  # the read sent first had every chance to arrive
    assert await coventry.locator("#alerts li", has_text=far).count() == 0
    assert await birmingham.locator("#alerts li", has_text=near).count() == 0


async def test_the_page_loads_with_no_network_from_its_service_worker(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("PC")
    listed, read_as = plates(unique)
    page = await open_officer(open_page, sub, COVENTRY_CENTRE)
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
    async with engine.producer() as p:
        await engine.until_listed(await list_plate(engine, p, listed))
        read = make_read(
            vrm=read_as, read_at=datetime.now(UTC).isoformat(), at_point=COVENTRY_CENTRE
        )
        await engine.send(p, engine.topics.anpr, read["camera_id"], read)
    await card_for(page, listed)
    await page.context.set_offline(True)
    await page.wait_for_selector("#link[data-state='offline']", timeout=5_000)
    response = await page.reload()
    assert response is not None and response.from_service_worker
    await page.get_by_role("heading", name="My alerts").wait_for(timeout=5_000)
    assert await page.locator("#link").get_attribute("data-state") == "offline"
    assert "offline" in (await page.locator("#link").inner_text()).lower()
    await card_for(page, listed, 5_000)  # what it had, kept on the phone
    await page.context.set_offline(False)
    await page.wait_for_selector("#link[data-state='live']", timeout=20_000)


async def test_the_page_survives_a_gateway_restart_and_never_shows_an_alert_twice(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("PC")
    first, first_read = plates(unique)
    second, second_read = plates(unique)
    page = await open_officer(open_page, sub, COVENTRY_CENTRE)
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
    async with engine.producer() as p:
        await engine.until_listed(
            await list_plate(engine, p, first), await list_plate(engine, p, second)
        )
        read = make_read(
            vrm=first_read, read_at=datetime.now(UTC).isoformat(), at_point=COVENTRY_CENTRE
        )
        await engine.send(p, engine.topics.anpr, read["camera_id"], read)
        await card_for(page, first)

        # The gateway goes away: the page says so, and reloads from its service worker.
        gateway = engine.processes["gateway"]
        gateway.terminate()
        await asyncio.to_thread(gateway.wait, 30)
        await page.wait_for_selector("#link[data-state='reconnecting']", timeout=10_000)
        response = await page.reload()
        assert response is not None and response.from_service_worker
        await card_for(page, first, 5_000)

        # A read while the gateway is down, and the gateway back: the page resumes.
        read = make_read(
            vrm=second_read, read_at=datetime.now(UTC).isoformat(), at_point=COVENTRY_CENTRE
        )
        await engine.send(p, engine.topics.anpr, read["camera_id"], read)
        engine._spawn("gateway", f"-officer-{len(engine.log_files)}")
        await engine._wait_ready(90)
    await page.wait_for_selector("#link[data-state='live']", timeout=30_000)
    await card_for(page, second, 20_000)
    await asyncio.sleep(1.5)  # anything resumed twice has arrived
    ids = await alert_ids(page)
    assert len(ids) == len(set(ids))
    assert await page.locator("#alerts li", has_text=first).count() == 1
    assert await page.locator("#alerts li", has_text=second).count() == 1


@needs_verify
async def test_verify_and_not_a_match_round_trip_to_the_desk(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("PC")
    good, good_read = plates(unique)
    bad, bad_read = plates(unique)
    page = await open_officer(open_page, sub, COVENTRY_CENTRE)
    async with engine.client("rtic_analyst", unique("desk")) as desk, engine.producer() as p:
        await engine.until_listed(
            await list_plate(engine, p, good), await list_plate(engine, p, bad)
        )
        now = datetime.now(UTC).isoformat()
        for vrm, camera in ((good_read, "CAM-VERIFY-1"), (bad_read, "CAM-VERIFY-2")):
            read = make_read(
                vrm=vrm,
                read_at=now,
                camera_id=camera,
                at_point=COVENTRY_CENTRE,
                confidence=0.91,
                image_url=f"/static/officer-icon-192.png?{camera}",
            )
            await engine.send(p, engine.topics.anpr, camera, read)
        # By id: once verified, the actionable alert names the plate too.
        good_id = await (await card_for(page, good)).get_attribute("data-alert-id")
        bad_id = await (await card_for(page, bad)).get_attribute("data-alert-id")
        good_card = page.locator(f"#alerts li[data-alert-id='{good_id}']")
        bad_card = page.locator(f"#alerts li[data-alert-id='{bad_id}']")
        text = await good_card.inner_text()
        for expected in ("Read plate", good_read, "Listed plate", good, "CAM-VERIFY-1", "91 %"):
            assert expected in text, expected
        assert await good_card.get_by_role("link", name="Open the plate image").count() == 1
        await good_card.evaluate("card => card.scrollIntoView({block: 'start'})")
        await shot(page, "officer-plate-check.png")
        to_docs("officer-plate-check.png")

        await good_card.get_by_role("button", name="Verify", exact=True).click()
        seen = await next_message(desk, "verification", timeout=30, alert_id=good_id)
        assert seen["outcome"] == "verified" and seen["by"] == sub
        await good_card.locator("[data-outcome='verified']").wait_for(timeout=10_000)

        await bad_card.get_by_role("button", name="Not a match", exact=True).click()
        seen = await next_message(desk, "verification", timeout=30, alert_id=bad_id)
        assert seen["outcome"] == "not_a_match" and seen["by"] == sub
        await bad_card.locator("[data-outcome='not_a_match']").wait_for(timeout=10_000)


async def make_job(
    engine: Engine, desk: ClientConnection, officer: str, unique: Callable[[str], str]
) -> str:
    """A grade 2 incident near Coventry's centre, assigned to ``officer`` from the desk."""
    from tests.conftest import make_incident

    incident_id = unique("INC")
    here = {
        "lat": COVENTRY_CENTRE[0],
        "lon": COVENTRY_CENTRE[1],
        "address": f"{unique('No')} Jobs Road, Coventry",
    }
    created = make_incident(
        incident_id=incident_id,
        at=datetime.now(UTC).isoformat(),
        grade=2,
        category="burglary",
        location=here,
        persons=None,
    )
    async with engine.producer() as p:
        await engine.send(p, engine.topics.incidents, incident_id, created)
    await next_message(desk, "incident", timeout=30)  # on the desk's board
    assign_id = str(uuid.uuid4())
    for _ in range(30):  # until the board has it
        await desk.send(
            orjson.dumps(
                {
                    "type": "assign",
                    "assign_id": assign_id,
                    "incident_id": incident_id,
                    "officer_id": officer,
                }
            ).decode()
        )
        reply = orjson.loads(await desk.recv())
        while reply.get("type") not in ("assigned", "error"):
            reply = orjson.loads(await desk.recv())
        if reply["type"] == "assigned":
            return incident_id
        await asyncio.sleep(0.5)
    raise AssertionError(f"the desk could not assign {incident_id}: {reply}")


@needs_jobs
async def test_a_job_goes_assigned_en_route_arrived_log_closed(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("PC")
    page = await open_officer(open_page, sub, COVENTRY_CENTRE)
    async with (
        engine.client("rtic_analyst", unique("desk")) as desk,
        incidents_from_now(engine) as topic,
    ):
        incident_id = await make_job(engine, desk, sub, unique)
        card = page.locator(f"#jobs li[data-incident-id='{incident_id}']")
        await card.wait_for(timeout=15_000)
        assert "Grade 2" in await card.inner_text()
        assert "left" in await card.locator(".promise").inner_text()  # the promise counts down
        await card.get_by_role("button", name="En route", exact=True).click()
        await card.locator(".job-status[data-status='en_route']").wait_for(timeout=10_000)
        await page.wait_for_selector("#outbox[data-waiting='0']", state="attached", timeout=10_000)
        await card.get_by_label("Log entry").fill("Rear door forced, says the caller.")
        await card.evaluate("card => card.scrollIntoView({block: 'start'})")
        await shot(page, "officer.png")
        to_docs("officer.png")
        await card.get_by_label("Log entry").fill("")
        await card.get_by_role("button", name="Arrived", exact=True).click()
        await card.get_by_label("Log entry").fill("Spoke to the caller; rear door forced.")
        await card.get_by_role("button", name="Add log", exact=True).click()
        await card.get_by_role("button", name="Result", exact=True).click()
        await card.get_by_label("Outcome").select_option("Report taken (crime recorded)")
        await card.get_by_label("Result details").fill(
            "Crime report taken, scenes of crime requested."
        )
        await card.get_by_role("button", name="Close job", exact=True).click()
        await card.locator(".job-status[data-status='closed']").wait_for(timeout=15_000)
        await page.wait_for_selector("#outbox[hidden]", state="attached", timeout=15_000)
        events = [e for e in await drain(topic, 4.0) if e.get("incident_id") == incident_id]
    mine = [e for e in events if e.get("update_id")]
    statuses = [e.get("status") or e.get("event") for e in mine]
    assert statuses[:1] == ["en_route"] and "arrived" in statuses and statuses[-1] == "closed", mine
    assert any(e.get("note") == "Spoke to the caller; rear door forced." for e in mine)
    assert mine[-1].get("result") == "Report taken (crime recorded)"
    assert len({e["update_id"] for e in mine}) == len(mine) == 4


@needs_jobs
async def test_updates_made_offline_wait_and_reach_the_topic_once(
    engine: Engine, open_page: OpenPage, unique: Callable[[str], str]
) -> None:
    sub = unique("PC")
    page = await open_officer(open_page, sub, COVENTRY_CENTRE)
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
    async with (
        engine.client("rtic_analyst", unique("desk")) as desk,
        incidents_from_now(engine) as topic,
    ):
        incident_id = await make_job(engine, desk, sub, unique)
        card = page.locator(f"#jobs li[data-incident-id='{incident_id}']")
        await card.wait_for(timeout=15_000)

        await page.context.set_offline(True)
        await page.wait_for_selector("#link[data-state='offline']", timeout=5_000)
        await card.get_by_role("button", name="En route", exact=True).click()
        await card.get_by_label("Log entry").fill("Held up at the lights on the ring road.")
        await card.get_by_role("button", name="Add log", exact=True).click()
        outbox = page.locator("#outbox")
        await page.wait_for_selector("#outbox[data-waiting='2']", timeout=5_000)
        assert "2 updates waiting" in await outbox.inner_text()
        made: list[str] = await page.eval_on_selector_all(
            f"#jobs li[data-incident-id='{incident_id}'] li.waiting",
            "n => n.map(x => x.dataset.updateId)",
        )
        assert len(made) == 2

        # Reloaded with no network: from the service worker, the updates still waiting.
        response = await page.reload()
        assert response is not None and response.from_service_worker
        await page.wait_for_selector("#outbox[data-waiting='2']", timeout=5_000)
        early = [e for e in await drain(topic, 1.0) if e.get("update_id") in made]
        assert early == []  # nothing left the phone while it was offline

        await page.context.set_offline(False)
        await page.wait_for_selector("#link[data-state='live']", timeout=20_000)
        await page.wait_for_selector("#outbox[data-waiting='0']", state="attached", timeout=15_000)
        events = [e for e in await drain(topic, 5.0) if e.get("incident_id") == incident_id]
    sent = [e["update_id"] for e in events if e.get("update_id")]
    assert sorted(sent) == sorted(made), events  # each update once, nothing else from the page
