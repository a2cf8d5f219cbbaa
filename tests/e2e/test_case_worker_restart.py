"""The case worker killed mid-stream (SIGKILL, as in a crash) and started again: every
call's case is in the database once, with each of its entries once, and every audit
record once (at-least-once delivery, idempotent writers)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from records import open_records
from records.protocols import Records
from rtic.casework import AuditObject, LinkKind
from tests.conftest import NOW, make_call
from tests.engine import Engine

pytestmark = pytest.mark.e2e
CALLS = 120


def _call(tag: str, i: int) -> dict[str, Any]:
    # Spread over the city, each caller once: no rule links alerts to these cases.
    lat, lon = 52.40 + (i % 12) * 0.01, -2.00 + (i // 12) * 0.02
    return make_call(
        call_id=f"{tag}-C{i}",
        channel="online",
        category="burglary",
        grade=3,
        at_point=(lat, lon),
        caller={"person_id": f"{tag}-P{i}", "name": "A Caller"},
        location={"lat": lat, "lon": lon, "address": f"{i} {tag} Road, Birmingham"},
    )


def _audit(tag: str, i: int) -> dict[str, Any]:
    return {
        "audit_id": f"{tag}-audit-{i}",
        "at": (NOW + timedelta(seconds=i)).isoformat(),
        "actor": "analyst-1",
        "role": "rtic_analyst",
        "action": "alert_delivered",
        "object_type": "alert",
        "object_id": f"{tag}-alert",
    }


async def _cases_of(records: Records, call_ids: list[str]) -> list[str | None]:
    return [await records.cases.case_for_link(LinkKind.CALL, c) for c in call_ids]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Until ``check()`` is true (polling the database), or TimeoutError."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(0.2)


async def test_a_killed_case_worker_loses_and_doubles_nothing(
    engine: Engine, unique: Callable[[str], str]
) -> None:
    tag = unique("kill")
    calls = [_call(tag, i) for i in range(CALLS)]
    call_ids = [c["call_id"] for c in calls]
    records = await open_records(engine.settings.database_url)
    try:
        async with engine.producer() as producer:

            async def feed() -> None:
                for i, call in enumerate(calls):
                    await engine.send(producer, engine.topics.calls, call["call_id"], call)
                    await engine.send(producer, engine.topics.audit, f"{tag}-alert", _audit(tag, i))
                    await asyncio.sleep(0.04)

            feeding = asyncio.create_task(feed())

            # Kill it mid-stream: once it has written some of these cases, not all.
            async def some_written() -> bool:
                return await records.cases.case_for_link(LinkKind.CALL, call_ids[10]) is not None

            await eventually(some_written, 90)
            assert not feeding.done()
            await engine.restart_cases(kill=True)
            await feeding
            for i in range(CALLS):  # and every audit record once more
                await engine.send(producer, engine.topics.audit, f"{tag}-alert", _audit(tag, i))

        async def all_written() -> bool:
            return None not in await _cases_of(records, call_ids)

        await eventually(all_written, 120)
        refs = await _cases_of(records, call_ids)
        assert len(set(refs)) == CALLS  # one case per call
        for ref in set(refs):
            assert ref is not None
            view = await records.cases.view(ref)
            assert view is not None
            kinds = [e.kind.value for e in view.timeline]
            assert kinds.count("received") == 1 and kinds.count("assessed") == 1, kinds
            assert [ln.kind for ln in view.links].count(LinkKind.CALL) == 1

        async def trail_written() -> bool:
            trail = await records.audit.for_object(AuditObject.ALERT, f"{tag}-alert")
            return len(trail) >= CALLS

        await eventually(trail_written, 60)
        await asyncio.sleep(2.0)  # any repeat that were to be stored would be in by now
        trail = await records.audit.for_object(AuditObject.ALERT, f"{tag}-alert")
        assert sorted(r.audit_id for r in trail) == sorted(
            _audit(tag, i)["audit_id"] for i in range(CALLS)
        )
    finally:
        await records.close()
    assert engine.processes["cases"].poll() is None, engine.logs()
