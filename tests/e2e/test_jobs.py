"""End to end on the real engine: the desk assigns a job over a real websocket, the officer
gets it at once, works it (en route, arrived, a log, closed) across a gateway restart, and
each update is on ``rtic.incidents.v1`` once, on the desk live, and in the case's timeline
once; an id sent twice (also after the restart) is written once; an officer can neither
update another officer's job nor send a position for another officer."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import ClientConnection, connect

from rtic.casework import format_case_ref
from tests.conftest import make_call, make_incident
from tests.engine import Engine

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def socket(
    engine: Engine, role: str, sub: str, **claims: Any
) -> AsyncIterator[tuple[ClientConnection, list[dict[str, Any]]]]:
    """A subscribed socket, and the snapshot frames that followed ``subscribed``."""
    token = engine.token(role, sub, **claims)
    async with connect(
        engine.ws_url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        assert orjson.loads(await ws.recv())["type"] == "hello"
        await ws.send(orjson.dumps({"type": "subscribe"}).decode())
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        wanted = {"officer": ["jobs"], "rtic_analyst": ["incidents", "officers"]}.get(role, [])
        snapshots = [orjson.loads(await ws.recv()) for _ in wanted]
        assert [s["type"] for s in snapshots] == wanted
        yield ws, snapshots


async def send(ws: ClientConnection, msg: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(msg).decode())


async def reply(ws: ClientConnection, *types: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame of one of ``types`` (or an error)."""
    async with asyncio.timeout(timeout):
        while True:
            msg: dict[str, Any] = orjson.loads(await ws.recv())
            if msg["type"] in (*types, "error"):
                return msg


async def incident_frame(
    ws: ClientConnection, incident_id: str, status: str, kind: str = "incident"
) -> dict[str, Any]:
    """The next ``incident`` (or ``job``) frame of this incident in this status."""
    key = "incident" if kind == "incident" else "job"
    async with asyncio.timeout(15):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg["type"] == kind and msg[key]["incident_id"] == incident_id:
                if msg[key]["status"] == status:
                    return dict(msg[key])


def job_update(incident_id: str, update_id: str, event: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "job_update",
        "update_id": update_id,
        "incident_id": incident_id,
        "event": event,
        "at": datetime.now(UTC).isoformat(),
        **kw,
    }


async def drain(consumer: AIOKafkaConsumer, seconds: float) -> list[dict[str, Any]]:
    """What a consumer reads in ``seconds``."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        batches = await consumer.getmany(timeout_ms=200)
        out += [orjson.loads(r.value) for recs in batches.values() for r in recs if r.value]
    return out


async def test_a_job_assigned_and_worked_from_the_phone_is_written_once_everywhere(
    engine: Engine,
) -> None:
    tag = f"{random.randrange(10**6):06d}"
    officer_id, stranger_id = f"OFF-J{tag}", f"OFF-K{tag}"
    ref = format_case_ref(engine.settings.force_code, 2026, random.randrange(8_000_000, 8_999_999))
    now = datetime.now(UTC)
    call = make_call(category="burglary", grade=2, case_ref=ref, received_at=now.isoformat())
    created = make_incident(
        incident_id=f"INC-J{tag}",
        category="burglary",
        grade=2,
        call_ids=[call["call_id"]],
        at=(now + timedelta(seconds=1)).isoformat(),
    )
    iid = created["incident_id"]
    ids = {step: f"{step}-{uuid.uuid4()}" for step in ("en_route", "arrived", "log", "closed")}
    async with (
        engine.tail(engine.topics.incidents) as incidents,
        engine.tail(engine.topics.officer_locations) as pings,
    ):
        async with (
            socket(engine, "rtic_analyst", "an-jobs") as (desk, _),
            socket(engine, "officer", officer_id) as (phone, (jobs,)),
            socket(engine, "officer", stranger_id) as (stranger, _),
        ):
            assert jobs["jobs"] == []
            # The officer's device says where they are; a position never names another.
            at = datetime.now(UTC).isoformat()
            position = {"lat": 52.487, "lon": -1.89, "at": at, "status": "available"}
            await send(phone, {"type": "position", **position})
            assert (await reply(phone, "position_ack"))["type"] == "position_ack"
            await send(stranger, {"type": "position", "officer_id": officer_id, **position})
            assert (await reply(stranger, "position_ack"))["type"] == "position_ack"

            async with engine.producer() as producer:
                await engine.send(producer, engine.topics.calls, call["call_id"], call)
                await asyncio.sleep(1.0)  # the case opens from the call first
                await engine.send(producer, engine.topics.incidents, iid, created)
            assert (await incident_frame(desk, iid, "open"))["grade"] == 2

            # Candidates: the officer nearby, with a rough travel time.
            analyst = {"Authorization": f"Bearer {engine.token('rtic_analyst', 'an-jobs')}"}
            async with httpx.AsyncClient(base_url=engine.base_url, headers=analyst) as http:
                answer = await http.get(f"/api/incidents/{iid}/candidates?limit=50")
            assert answer.status_code == 200, answer.text
            near = [c for c in answer.json()["candidates"] if c["officer_id"] == officer_id]
            assert near and near[0]["travel_minutes"] >= 1

            await send(desk, {"type": "assign", "assign_id": f"as-{tag}", "incident_id": iid,
                              "officer_id": officer_id})  # fmt: skip
            assigned = await reply(desk, "assigned")
            assert assigned["type"] == "assigned" and assigned["duplicate"] is False, assigned
            job = await incident_frame(phone, iid, "assigned", kind="job")
            assert job["units"] == [officer_id] and job["promise"]["target_minutes"] == 60

            # Someone else's job: not found, nothing written.
            await send(stranger, job_update(iid, f"x-{tag}", "arrived"))
            refused = await reply(stranger, "job_update_ack")
            assert (refused["type"], refused["code"]) == ("error", "not_found")

            for step, event in (("en_route", "en_route"), ("arrived", "arrived")):
                update = job_update(iid, ids[step], event)
                await send(phone, update)
                ack = await reply(phone, "job_update_ack")
                assert ack == {"type": "job_update_ack", "update_id": ids[step],
                               "duplicate": False}  # fmt: skip
                await send(phone, update)  # a flaky signal: the same update again
                assert (await reply(phone, "job_update_ack"))["duplicate"] is True
                await incident_frame(desk, iid, event)

        # A gateway restart: the board is rebuilt from the topic, ids are still known.
        await engine.restart_gateway()
        async with (
            socket(engine, "rtic_analyst", "an-jobs") as (desk, (board, _)),
            socket(engine, "officer", officer_id) as (phone, (jobs,)),
        ):
            (mine,) = jobs["jobs"]
            assert (mine["incident_id"], mine["status"]) == (iid, "arrived")
            assert iid in {i["incident_id"] for i in board["incidents"]}
            await send(phone, job_update(iid, ids["arrived"], "arrived"))
            assert (await reply(phone, "job_update_ack"))["duplicate"] is True
            await send(phone, job_update(iid, ids["log"], "updated", note="Door forced at rear"))
            assert (await reply(phone, "job_update_ack"))["duplicate"] is False
            closing = job_update(iid, ids["closed"], "closed", result="advice_given")
            await send(phone, closing)
            assert (await reply(phone, "job_update_ack"))["duplicate"] is False
            closed = await incident_frame(desk, iid, "closed")
            assert [e["text"] for e in closed["log"]] == ["Door forced at rear"]
            assert closed["result"] == "advice_given"
            await send(phone, closing)
            assert (await reply(phone, "job_update_ack"))["duplicate"] is True

        written = [e for e in await drain(incidents, 2.0) if e.get("incident_id") == iid]
        positions = await drain(pings, 0.5)

    ours = [e for e in written if e.get("update_id") or e.get("assign_id")]
    assert sorted(e.get("update_id") or e["assign_id"] for e in ours) == sorted(
        [*ids.values(), f"as-{tag}"]
    ), written
    by_id = {e.get("update_id"): e for e in ours}
    assert (by_id[ids["en_route"]]["event"], by_id[ids["en_route"]]["status"]) == (
        "updated",
        "en_route",
    )
    assert by_id[ids["closed"]]["result"] == "advice_given"
    assert all(e["by"] == officer_id for e in ours if e.get("update_id"))
    assert {p["officer_id"] for p in positions if p["officer_id"] in (officer_id, stranger_id)} == {
        officer_id,
        stranger_id,
    }
    assert sum(1 for p in positions if p["officer_id"] == officer_id) == 1  # not the stranger's

    # The case's timeline: each step once, from the officer's updates.
    headers = {"Authorization": f"Bearer {engine.token('officer', officer_id)}"}
    wanted = ["officer_assigned", "officer_en_route", "officer_attended", "update", "outcome"]
    kinds: list[str] = []
    async with httpx.AsyncClient(base_url=engine.base_url, headers=headers) as http:
        async with asyncio.timeout(30):
            while "closed" not in kinds:
                await asyncio.sleep(0.5)
                answer = await http.get(f"/api/cases/{ref}")
                if answer.status_code == 200:
                    kinds = [e["kind"] for e in answer.json()["timeline"]]
    for kind in [*wanted, "closed"]:
        assert kinds.count(kind) == 1, (kind, kinds)
