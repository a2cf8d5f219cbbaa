"""The gateway's records against real services: the history search reads what the
enrichers wrote to a real Redis; searches and views are audited onto a real broker's
``rtic.audit.v1`` and, through the case worker's audit writer, into a real database
(SQLite and PostgreSQL); a revoked token is refused and its open socket closed.

PostgreSQL: 127.0.0.1:5432, trust auth, user ``postgres``; each test gets a database of
its own (dropped afterwards); the PostgreSQL cases skip, saying why, only when nothing
listens there.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cli.services import free_port
from enrichers.search import RedisHistorySearch
from enrichers.stores import RedisStores
from push.gateway import Gateway
from records import open_records
from records.protocols import Records
from rtic.casework import AuditObject
from rtic.kafka import bootstrap_servers
from rtic.schemas import (
    CallV1,
    EventKind,
    IncidentEventV1,
    PlateReadV1,
    ReferenceChangeV1,
    validate_event,
)
from rtic.settings import Settings
from rtic.tokens import TokenKeys, issue_token
from streams.casework import CaseWork
from streams.pipeline import RawRecord
from tests.conftest import NOW, make_call, make_hotlist_change, make_incident, make_read
from tests.force_area import use_force_area_codes

pytestmark = pytest.mark.integration

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


def _pg_listens() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((PG_HOST, PG_PORT)) == 0


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Records]:
    """Records on a database of the test's own, migrated by ``open_records``."""
    if request.param == "sqlite":
        opened = await open_records(f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}")
        try:
            yield opened
        finally:
            await opened.close()
        return
    if not _pg_listens():
        pytest.skip(f"PostgreSQL: nothing listens on {PG_HOST}:{PG_PORT}")
    name = f"rtic_test_gw_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        opened = await open_records(f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
        try:
            yield opened
        finally:
            await opened.close()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[RedisStores]:
    s = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
    yield s
    keys = [
        k async for k in s.redis.scan_iter(match=f"{settings.topic_prefix}rtic:*", count=10_000)
    ]
    if keys:
        await s.redis.delete(*keys)
    await s.close()


@pytest.fixture
async def search(settings: Settings) -> AsyncIterator[RedisHistorySearch]:
    s = RedisHistorySearch.from_url(settings.redis_url, prefix=settings.topic_prefix)
    yield s
    await s.close()


def _change(d: dict[str, Any]) -> ReferenceChangeV1:
    model = validate_event(EventKind.REFERENCE, d)
    assert isinstance(model, ReferenceChangeV1)
    return model


async def fill_history(stores: RedisStores, unique: Any) -> dict[str, Any]:
    """Hotlists, markers, calls, incidents and reads, written as the workers write them."""
    plate, person = f"S{unique('P')[-6:]}X".replace("-", ""), unique("P")
    address = f"{unique('n')[-4:]} Search Road, Birmingham"
    hot = make_hotlist_change(vrm=plate, reason="stolen")
    await stores.reference.apply(
        [
            _change(hot),
            _change(
                {
                    "kind": "person_marker",
                    "op": "upsert",
                    "id": unique("PM"),
                    "entry": {"person_id": person, "marker": "violence"},
                }
            ),
            _change(
                {
                    "kind": "address_marker",
                    "op": "upsert",
                    "id": unique("AM"),
                    "entry": {"address": address, "marker": "weapons"},
                }
            ),
        ]
    )
    calls = [
        CallV1.model_validate(
            make_call(
                received_at=(NOW + timedelta(minutes=i)).isoformat(),
                caller={"person_id": person if i < 2 else "P-other", "name": "A Caller"},
                location={"lat": 52.48, "lon": -1.89, "address": address if i else "elsewhere"},
            )
        )
        for i in range(3)
    ]
    await stores.history.enrich(EventKind.CALL, calls)
    incident = IncidentEventV1.model_validate(
        make_incident(
            location={"lat": 52.48, "lon": -1.89, "address": address},
            vehicles=[{"vrm": plate, "role": "suspect"}],
        )
    )
    await stores.history.enrich(EventKind.INCIDENT, [incident])
    reads = [
        PlateReadV1.model_validate(
            make_read(vrm=plate, read_at=(NOW + timedelta(minutes=i)).isoformat())
        )
        for i in range(3)
    ]
    await stores.history.enrich(EventKind.ANPR, reads)
    return {
        "plate": plate,
        "person": person,
        "address": address,
        "hotlist_id": hot["id"],
        "calls": [c.call_id for c in calls],
        "incident": incident.incident_id,
        "reads": [r.read_id for r in reads],
    }


async def test_the_search_reads_what_the_enrichers_wrote_to_redis(
    stores: RedisStores, search: RedisHistorySearch, unique: Any
) -> None:
    facts = await fill_history(stores, unique)
    plate = await search.search("plate", facts["plate"].lower(), NOW)
    assert [(h["id"], h["match"]) for h in plate["hotlist"]] == [(facts["hotlist_id"], "exact")]
    assert [r["read_id"] for r in plate["trail"]] == facts["reads"][::-1]  # newest first
    assert [v["incident_id"] for v in plate["linked_incidents"]] == [facts["incident"]]
    person = await search.search("person", facts["person"], NOW)
    assert [m["marker"] for m in person["markers"]] == ["violence"]
    assert [c["id"] for c in person["calls"]] == facts["calls"][:2][::-1]
    address = await search.search("address", facts["address"].upper() + " ", NOW)
    assert [m["marker"] for m in address["markers"]] == ["weapons"]
    assert [c["id"] for c in address["calls"]] == facts["calls"][1:][::-1]
    assert [i["id"] for i in address["incidents"]] == [facts["incident"]]
    nothing = await search.search("person", "P-nobody", NOW)
    assert nothing == {"person_id": "P-nobody", "markers": [], "calls": []}


async def test_a_long_log_is_scanned_in_chunks_up_to_the_limit(
    stores: RedisStores, search: RedisHistorySearch, unique: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr("enrichers.search.SCAN_CHUNK", 2)
    person = unique("P")
    for i in range(7):  # seven batches: seven log entries
        call = CallV1.model_validate(
            make_call(
                received_at=(NOW + timedelta(minutes=i)).isoformat(),
                caller={"person_id": person, "name": "A Caller"},
            )
        )
        await stores.history.enrich(EventKind.CALL, [call])
    found = await search._scan(search.keys.call_log, lambda _, p: p == person, limit=5)
    assert len(found) == 5
    everything = await search.search("person", person, NOW)
    assert len(everything["calls"]) == 7


# ---- through the gateway: audited into the database, revoked tokens ---------------------


def _token(settings: Settings, role: str, sub: str, **kw: Any) -> str:
    return issue_token(
        TokenKeys.from_settings(settings),
        sub=sub,
        role=role,
        now=datetime.now(UTC),
        ttl_seconds=600,
        **kw,
    )


async def _audit_messages(settings: Settings, count: int) -> list[RawRecord]:
    """The first ``count`` messages of ``rtic.audit.v1``, as the case worker reads them."""
    topic = f"{settings.topic_prefix}rtic.audit.v1"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        got: list[RawRecord] = []
        async with asyncio.timeout(20):
            while len(got) < count:
                for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                    got += [
                        RawRecord(tp.topic, tp.partition, m.offset, m.key, m.value) for m in batch
                    ]
        return got
    finally:
        await consumer.stop()


async def test_a_search_is_answered_from_redis_and_audited_into_the_database(
    settings: Settings, stores: RedisStores, records: Records, unique: Any
) -> None:
    facts = await fill_history(stores, unique)
    gateway = use_force_area_codes(Gateway(settings, records=records))
    opened = await gateway.open_stores()  # the Redis history search, as run() opens it
    await gateway.kafka.start(gateway.deliver)
    transport = httpx.ASGITransport(app=gateway.app, client=("10.9.8.7", 5555))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            analyst = {"Authorization": f"Bearer {_token(settings, 'rtic_analyst', 'an-7')}"}
            body = {
                "subject": "plate",
                "value": facts["plate"].lower(),
                "reason": "stolen vehicle seen near the school",
                "reference": "OP-KESTREL-12",
            }
            answer = await http.post("/api/search", json=body, headers=analyst)
            assert answer.status_code == 200, answer.text
            found = answer.json()["results"]
            assert [r["read_id"] for r in found["trail"]] == facts["reads"][::-1]
            assert found["hotlist"][0]["id"] == facts["hotlist_id"]
            refused = await http.post("/api/search", json={**body, "reason": ""}, headers=analyst)
            assert refused.status_code == 400
            # The case worker's audit writer stores what the gateway wrote to the topic.
            writer = CaseWork(settings, records)
            assert await writer.audit_batch(await _audit_messages(settings, 1)) == []
            supervisor = {"Authorization": f"Bearer {_token(settings, 'supervisor', 'sup-7')}"}
            plate = facts["plate"]
            history = await http.get(
                f"/api/audit?object_type=plate&object_id={plate}", headers=supervisor
            )
        assert history.status_code == 200, history.text
        (record,) = history.json()["records"]
        assert (record["actor"], record["role"], record["action"]) == (
            "an-7",
            "rtic_analyst",
            "history_search",
        )
        assert (record["reason"], record["reference"]) == (body["reason"], body["reference"])
        assert record["origin"] == "10.9.8.7"
        assert record["audit_id"] == answer.json()["audit_id"]
        # The view of that history was audited too; redelivered, it is stored once.
        again = await _audit_messages(settings, 2)
        await writer.audit_batch(again)
        await writer.audit_batch(again)
        viewed = await records.audit.for_object(AuditObject.AUDIT, f"plate:{plate}")
        assert [r.actor for r in viewed] == ["sup-7"]
    finally:
        await gateway.kafka.stop()
        for store in opened:
            await store.close()


async def test_a_revoked_token_is_refused_and_its_socket_closed_within_the_refresh(
    settings: Settings, records: Records
) -> None:
    settings = settings.model_copy(update={"gateway_port": free_port()})
    gateway = use_force_area_codes(Gateway(settings, records=records))
    serving = asyncio.create_task(gateway.run())
    base = f"127.0.0.1:{settings.gateway_port}"
    doomed = _token(settings, "officer", "OFF-7", jti="int-revoked")
    try:
        while gateway.serving is None or not gateway.serving.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        async with connect(f"ws://{base}/ws?token={doomed}") as ws:
            assert orjson.loads(await ws.recv())["type"] == "hello"
            await records.revocations.revoke(
                jti="int-revoked", sub=None, by="sup-1", reason="phone stolen", at=datetime.now(UTC)
            )
            revoked_at = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            took = time.monotonic() - revoked_at
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "invalid token")
        assert took <= gateway.revocations.refresh_s + 1.0
        async with httpx.AsyncClient(base_url=f"http://{base}") as http:
            refused = await http.get("/api/cases", headers={"Authorization": f"Bearer {doomed}"})
            other = _token(settings, "officer", "OFF-7")
            allowed = await http.get("/api/cases", headers={"Authorization": f"Bearer {other}"})
        assert refused.status_code == 401
        assert refused.json() == {"error": {"code": "invalid_token", "message": "invalid token"}}
        assert allowed.status_code == 200 and allowed.json() == {"cases": []}
    finally:
        if gateway.serving is not None:
            gateway.serving.should_exit = True
        await asyncio.wait_for(serving, 30)
