"""Simulated demand through the real engine: a plate read, a call and an incident each come
out of rtic.enriched.v1 with a complete enrichment block."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import orjson
import pytest

from enrichers.geo import GeoIndex
from simulators.demand import DemandModel
from tests.engine import Engine

pytestmark = pytest.mark.e2e


async def test_simulated_read_call_and_incident_are_fully_enriched(
    engine: Engine, geo: GeoIndex
) -> None:
    topics = engine.topics
    async with engine.tail(topics.enriched) as consumer:
        # At 5 events/s, 600 events span about two simulated minutes: incidents follow calls.
        model = DemandModel(geo, seed=42, start=datetime.now(UTC), rate=5.0)
        events = list(itertools.islice(model.events(), 400))
        async with engine.producer() as producer:
            for ev in events:  # officer pings and reference data first land too, in order
                await producer.send(
                    topics.for_kind(ev.kind), orjson.dumps(ev.value), key=ev.key.encode()
                )
            await producer.flush()
        seen: dict[str, dict] = {}
        deadline = asyncio.get_running_loop().time() + 20
        while len(seen) < 3 and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    msg = orjson.loads(r.value)
                    for event in msg.get("reads", [msg]):
                        kind = event["enrichment"]["kind"]
                        if kind == "call" and not event["enrichment"].get("nearest_units"):
                            continue  # a call from before the officers were indexed
                        seen.setdefault(kind, event)
            seen.pop("officer_location", None)
    assert set(seen) == {"anpr", "call", "incident"}, f"only {sorted(seen)} came out"
    read, call, incident = seen["anpr"], seen["call"], seen["incident"]
    for event in (read, call, incident):
        e = event["enrichment"]
        assert set(e["areas"]) == {"district", "ward", "lsoa"}
        assert e["in_force_area"] is True and "geofences" in e
        assert "partial" not in e, e.get("partial")
        assert e["reference_version"].startswith("geo-")
    assert "hotlist" in read["enrichment"]["history"]
    for event in (call, incident):
        e = event["enrichment"]
        assert e["nearby_places"], "no school or hospital within 5 km"
        assert {"markers", "nearby"} <= set(e["history"])
        assert "nearest_units" in e
    assert {
        "calls_at_address",
        "calls_by_person",
        "incidents_at_address",
        "incidents_nearby",
    } <= set(call["enrichment"]["history"])
    assert {"calls_at_address", "calls_nearby", "incidents_at_address"} <= set(
        incident["enrichment"]["history"]
    )
    assert call["enrichment"]["nearest_units"], "the simulator's officers should be near enough"
