"""End to end on real parts: a call, its incident, an assignment, an arrival and a close
make a case whose timeline is in order, and whose ``case_update`` frames reach the
officer on it, the supervisor of its area and the citizen who reported it, and nobody
else (another officer, a supervisor elsewhere, an analyst, another case officer); and an
alert's audit history (delivered, opened, assigned) reaches the database and the API.

The worker, the case worker and the gateway run as the real commands
(``tests/engine.py``); the case's reference is given on the call, as the portal does,
so the citizen's token can name it before the case exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from rtic.casework import format_case_ref
from tests.conftest import make_call, make_hotlist_change, make_incident, make_read
from tests.engine import Engine, next_message

pytestmark = pytest.mark.e2e

BRUM, COVENTRY = "E08000025", "E08000026"
OFFICER = "OFF-E2E-1"


@contextlib.asynccontextmanager
async def socket(
    engine: Engine, role: str, sub: str, **claims: Any
) -> AsyncIterator[ClientConnection]:
    """A subscribed websocket of a token with these claims (``cases``, ``areas``)."""
    token = engine.token(role, sub, **claims)
    async with connect(
        engine.ws_url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        assert orjson.loads(await ws.recv())["type"] == "hello"
        await ws.send(orjson.dumps({"type": "subscribe"}).decode())
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        yield ws


async def collect(ws: ClientConnection, into: list[dict[str, Any]], got: asyncio.Event) -> None:
    """Keep every ``case_update`` frame a socket gets (``got`` is set on each)."""
    async for raw in ws:
        msg = orjson.loads(raw)
        if msg.get("type") == "case_update":
            into.append(msg)
            got.set()


STAFF_ONLY = {"alert_raised", "update"}  # the call may raise an alert: staff see it, not citizens


def kinds(frames: list[dict[str, Any]], case_ref: str, staff: bool = False) -> list[str]:
    found = [f["entry"]["kind"] for f in frames if f["case_ref"] == case_ref and f.get("entry")]
    return [k for k in found if k not in STAFF_ONLY] if staff else found


async def test_a_case_timeline_in_order_and_its_updates_at_the_right_clients_only(
    engine: Engine,
) -> None:
    ref = format_case_ref(engine.settings.force_code, 2026, random.randrange(9_000_000, 9_999_999))
    clients = {
        "officer in charge": ("officer", OFFICER, {}),
        "supervisor here": ("supervisor", "SUP-BRUM", {"areas": [BRUM]}),
        "citizen": ("citizen", "cit-e2e", {"cases": [ref]}),
        "other officer": ("officer", "OFF-E2E-9", {}),
        "supervisor elsewhere": ("supervisor", "SUP-COV", {"areas": [COVENTRY]}),
        "analyst": ("rtic_analyst", "an-e2e", {}),
        "other case officer": ("case_officer", "co-e2e", {}),
    }
    frames: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    now = datetime.now(UTC)
    call = make_call(
        channel="999", category="burglary", grade=3, case_ref=ref, received_at=now.isoformat()
    )
    incident_id = f"INC-{ref}"
    steps = [
        {"event": "created", "call_ids": [call["call_id"]], "units": []},
        {"event": "assigned", "units": [OFFICER]},
        {"event": "arrived", "units": [OFFICER]},
        {"event": "closed", "units": [OFFICER], "result": "arrested"},
    ]
    async with contextlib.AsyncExitStack() as stack:
        sockets = {
            name: await stack.enter_async_context(socket(engine, role, sub, **claims))
            for name, (role, sub, claims) in clients.items()
        }
        got = asyncio.Event()
        readers = [
            asyncio.create_task(collect(ws, frames[name], got)) for name, ws in sockets.items()
        ]
        try:
            async with engine.producer() as producer:
                await engine.send(producer, engine.topics.calls, call["call_id"], call)
                # The dispatcher raises the incident once the call is in: the case worker
                # reads calls and incidents from two topics, in no order between them.
                async with asyncio.timeout(30):
                    while "received" not in kinds(frames["supervisor here"], ref):
                        await got.wait()
                        got.clear()
                for i, step in enumerate(steps, start=1):
                    event = make_incident(
                        incident_id=incident_id,
                        category="burglary",
                        grade=3,
                        at=(now + timedelta(seconds=i)).isoformat(),
                        **step,
                    )
                    await engine.send(producer, engine.topics.incidents, incident_id, event)
            try:
                async with asyncio.timeout(30):
                    while not all(
                        "closed" in kinds(frames[name], ref)
                        for name in ("officer in charge", "supervisor here", "citizen")
                    ):
                        await got.wait()
                        got.clear()
            except TimeoutError:
                seen = {name: kinds(got_frames, ref) for name, got_frames in frames.items()}
                raise AssertionError(f"case updates seen: {seen}\n{engine.logs()}") from None
            await asyncio.sleep(1.0)  # time for a frame that should not come
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    order = ["received", "assessed", "officer_assigned", "officer_attended", "outcome", "closed"]
    assert kinds(frames["supervisor here"], ref, staff=True) == order, engine.logs()
    assert kinds(frames["citizen"], ref) == order  # nothing meant for staff only
    # The officer is on the case from the assignment on (the gateway reads who is on it).
    seen = kinds(frames["officer in charge"], ref, staff=True)
    assert seen[-4:] == order[-4:] and set(seen) <= set(order)
    for name in ("other officer", "supervisor elsewhere", "analyst", "other case officer"):
        assert [f for f in frames[name] if f["case_ref"] == ref] == [], name
    for frame in frames["citizen"]:
        assert set(frame) <= {"type", "case_ref", "status", "at", "change", "entry"}
        assert set(frame.get("entry") or {}) <= {"at", "kind", "text"}
    assert frames["citizen"][-1]["status"] == "closed"
    assert frames["supervisor here"][-1]["officer_in_charge"] == OFFICER

    # The same case over HTTP: staff see the timeline oldest first; the citizen newest first.
    async with httpx.AsyncClient(base_url=engine.base_url) as http:
        staff = await http.get(
            f"/api/cases/{ref}",
            headers={"Authorization": f"Bearer {engine.token('officer', OFFICER)}"},
        )
        citizen = await http.get(
            f"/api/cases/{ref}",
            headers={"Authorization": f"Bearer {engine.token('citizen', 'cit-e2e', cases=[ref])}"},
        )
        stranger = await http.get(
            f"/api/cases/{ref}",
            headers={"Authorization": f"Bearer {engine.token('officer', 'OFF-E2E-9')}"},
        )
    assert staff.status_code == 200, staff.text
    timeline = [e["kind"] for e in staff.json()["timeline"]]
    assert [k for k in timeline if k not in STAFF_ONLY] == order
    assert staff.json()["case"]["status"] == "closed"
    assert [e["kind"] for e in citizen.json()["timeline"]] == order[::-1]
    assert stranger.status_code == 404


async def test_an_alerts_audit_history_shows_who_was_sent_it_who_opened_and_acted(
    engine: Engine,
) -> None:
    """Delivered, opened, assigned: the gateway's records go through ``rtic.audit.v1``
    and the case worker's audit writer into the database, where a supervisor reads them."""
    tag = f"{random.randrange(10_000):04d}"
    plate = f"AU{tag[:2]} D{tag[2:]}T"
    async with (
        socket(engine, "rtic_analyst", "an-audit") as ws,
        engine.producer() as producer,
    ):
        change = make_hotlist_change(vrm=plate, reason="stolen")
        await engine.send(producer, engine.topics.reference, change["id"], change)
        await engine.until_listed(change["id"])  # the hotlist entry lands before the read
        read = make_read(vrm=plate, camera_id="CAM-AUD", read_at=datetime.now(UTC).isoformat())
        await engine.send(producer, engine.topics.anpr, read["camera_id"], read)
        alert = await next_message(ws, "alert", timeout=15, rule_id="anpr_hotlist_hit")
        assert alert["source_event_ids"] == [read["read_id"]]
        await ws.send(orjson.dumps({"type": "open", "alert_id": alert["alert_id"]}).decode())
        await next_message(ws, "opened", timeout=5)
        ack = {"type": "ack", "alert_id": alert["alert_id"], "action": "assign", "note": "BW-21"}
        await ws.send(orjson.dumps(ack).decode())
        await next_message(ws, "acked", timeout=5)

    supervisor = {"Authorization": f"Bearer {engine.token('supervisor', 'sup-audit')}"}
    path = f"/api/audit?object_type=alert&object_id={alert['alert_id']}"
    records: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=engine.base_url) as http, asyncio.timeout(20):
        while {"alert_delivered", "alert_opened", "alert_assign"} - {r["action"] for r in records}:
            await asyncio.sleep(0.3)  # the audit writer stores in batches
            answer = await http.get(path, headers=supervisor)
            assert answer.status_code == 200, answer.text
            records = answer.json()["records"]
    delivered = next(r for r in records if r["action"] == "alert_delivered")
    assert "an-audit" in {r["sub"] for r in delivered["detail"]["recipients"]}
    opened = next(r for r in records if r["action"] == "alert_opened")
    assert (opened["actor"], opened["role"], opened["origin"]) == (
        "an-audit",
        "rtic_analyst",
        "127.0.0.1",
    )
    assigned = next(r for r in records if r["action"] == "alert_assign")
    assert assigned["reason"] == "BW-21"
