"""The case worker (``rtic cases``, the real command) on a real Tansu broker and a real
database: SQLite in a file, and PostgreSQL at 127.0.0.1:5432 (a database of the test's
own, dropped after).

A call, its incident created, assigned, en route, arrived and closed make the case's
timeline in that order, each change published on ``rtic.cases.v1``; audit records sent
twice are stored once; bad input on the worker's own topics becomes dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from records import open_records
from records.protocols import Records
from rtic.casework import AuditObject
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings
from rtic.topics import Topics
from tests.conftest import NOW, make_call, make_incident

pytestmark = pytest.mark.integration
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _postgres(name: str, create: bool) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if create:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, unique: Callable[[str], str]
) -> Iterator[str]:
    """A fresh, empty database (the case worker applies the migrations on start)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}"
        return
    name = unique("rtic_it").lower().replace("-", "_")
    try:
        asyncio.run(_postgres(name, create=True))
    except OSError as exc:
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_postgres(name, create=False))


@contextlib.contextmanager
def case_worker(settings: Settings, database_url: str, log_path: Path) -> Iterator[None]:
    """``rtic cases`` as a process on these settings."""
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": settings.kafka_url,
        "RTIC_TOPIC_PREFIX": settings.topic_prefix,
        "RTIC_APP_ID": f"{settings.topic_prefix}engine",
        "RTIC_DATABASE_URL": database_url,
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "cases"], env=env, stdout=log, stderr=log
        )
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def reading(settings: Settings, *topics: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def until(
    consumer: AIOKafkaConsumer,
    got: dict[str, list[dict[str, Any]]],
    done: Callable[[], bool],
    timeout: float,
) -> None:
    """Read into ``got`` (by topic) until ``done()``."""
    async with asyncio.timeout(timeout):
        while not done():
            for tp, batch in (await consumer.getmany(timeout_ms=300)).items():
                got.setdefault(tp.topic, []).extend(orjson.loads(m.value) for m in batch)


async def send(producer: AIOKafkaProducer, topic: str, key: str, value: Any) -> None:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    await producer.send_and_wait(topic, raw, key=key.encode())


def audit_record(i: int, tag: str) -> dict[str, Any]:
    return {
        "audit_id": f"{tag}-audit-{i}",
        "at": (NOW + timedelta(seconds=i)).isoformat(),
        "actor": "analyst-1",
        "role": "rtic_analyst",
        "action": "alert_opened",
        "object_type": "alert",
        "object_id": f"{tag}-alert",
        "origin": "127.0.0.1",
    }


async def test_a_case_s_life_through_the_case_worker(
    settings: Settings, database_url: str, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all())
    tag = unique("cw")
    call = make_call(call_id=f"{tag}-C", category="burglary", grade=2)
    inc_id = f"{tag}-I"

    def event(event: str, minutes: float, **extra: Any) -> dict[str, Any]:
        at = (NOW + timedelta(minutes=minutes)).isoformat()
        return make_incident(incident_id=inc_id, event=event, at=at, grade=2, **extra)

    lifecycle = [
        event("created", 1, call_ids=[call["call_id"]], category="burglary"),
        event("assigned", 2, units=["OFF-7"]),
        event("updated", 3, units=["OFF-7"], status="en_route"),
        event("arrived", 9, units=["OFF-7"]),
        event("closed", 40, units=["OFF-7"], result="advice_given"),
    ]
    got: dict[str, list[dict[str, Any]]] = {}
    producer = make_producer(settings.kafka_url)
    await producer.start()
    try:
        with case_worker(settings, database_url, tmp_path / "cases.log"):
            async with reading(settings, topics.cases, topics.dead_letter) as consumer:
                await send(producer, topics.calls, "bad", b"not json")  # the stream worker's
                await send(producer, topics.calls, call["call_id"], call)
                updates = got.setdefault(topics.cases, [])
                try:
                    await until(consumer, got, lambda: bool(updates), 90)
                except TimeoutError:
                    pytest.fail((tmp_path / "cases.log").read_text()[-4000:])
                for ev in lifecycle:
                    await send(producer, topics.incidents, inc_id, ev)
                for i in range(5):  # each record twice: stored once
                    for _ in range(2):
                        await send(producer, topics.audit, f"{tag}-alert", audit_record(i, tag))
                await send(producer, topics.audit, "bad", b'{"audit_id": "x"}')
                await send(producer, topics.evidence, "bad", b"\xff not json")

                def closed() -> bool:
                    entries = [u["entry"]["kind"] for u in updates if u.get("entry")]
                    letters = got.get(topics.dead_letter, [])
                    return "closed" in entries and len(letters) >= 2

                await until(consumer, got, closed, 60)
            records = await open_records(database_url)
            try:
                await _check_records(records, updates, tag)
            finally:
                await records.close()
    finally:
        await producer.stop()
    letters = got[topics.dead_letter]
    assert sorted(d["source_topic"] for d in letters) == sorted([topics.audit, topics.evidence])
    assert all(d["reason"] for d in letters)


async def _check_records(records: Records, updates: list[dict[str, Any]], tag: str) -> None:
    ref = updates[0]["case_ref"]
    assert updates[0]["change"] == "opened"
    assert {u["case_ref"] for u in updates} == {ref}
    published = [u["entry"]["kind"] for u in updates if u.get("entry")]
    expected = [
        "received",
        "assessed",
        "officer_assigned",
        "officer_en_route",
        "officer_attended",
        "outcome",
        "closed",
    ]
    assert published == expected
    assert len({u["update_id"] for u in updates}) == len(updates)
    view = await records.cases.view(ref)
    assert view is not None
    assert [e.kind.value for e in view.timeline] == expected
    assert view.case.status.value == "closed" and view.case.officer_in_charge == "OFF-7"
    assert view.case.area  # the GeoIndex's area codes of the call's place
    # The audit writer stores each record once, though each was sent twice.
    async with asyncio.timeout(30):
        while True:
            trail = await records.audit.for_object(AuditObject.ALERT, f"{tag}-alert")
            if len(trail) >= 5:
                break
            await asyncio.sleep(0.3)
    await asyncio.sleep(1.0)  # the repeats, if any were stored, would be in by now
    trail = await records.audit.for_object(AuditObject.ALERT, f"{tag}-alert")
    assert sorted(r.audit_id for r in trail) == [f"{tag}-audit-{i}" for i in range(5)]
