"""The gateway's records against real services: the history search reads what the
enrichers wrote to a real Redis; searches and views are audited onto a real broker's
``rtic.audit.v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from enrichers.search import RedisHistorySearch
from enrichers.stores import RedisStores
from rtic.schemas import (
    CallV1,
    EventKind,
    IncidentEventV1,
    PlateReadV1,
    ReferenceChangeV1,
    validate_event,
)
from rtic.settings import Settings
from tests.conftest import NOW, make_call, make_hotlist_change, make_incident, make_read

pytestmark = pytest.mark.integration


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
