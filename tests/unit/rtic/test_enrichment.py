"""The enrichment block: the wire form the pipeline sends is the shape docs/contract.md
gives, for each kind of event, and ``Enrichment`` states it exactly (a block read back
validates and dumps to the same JSON)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from enrichers.geo import GeoIndex
from enrichers.stores import Stores
from rtic.enrichment import Enrichment
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import (
    NOW,
    make_call,
    make_hotlist_change,
    make_incident,
    make_officer_location,
    make_read,
)

TOPICS = Topics.with_prefix("wire.")
HERE = {"lat": 52.4862, "lon": -1.8904, "address": "3 Wire Street, Birmingham"}

PLACE = {"kind", "areas", "area_codes", "in_force_area", "geofences"}
RUN = {"reference_version", "enriched_at"}
NEARBY = {"radius_m", "count", "by_category", "recent"}
AT_ADDRESS = {"count", "recent"}
LISTED = {"id", "category", "at"}
UNIT = {"officer_id", "callsign", "distance_m", "fix_age_s", "stale"}


async def _enriched(geo: GeoIndex) -> dict[str, dict[str, Any]]:
    """One call, incident, plate read and officer ping through the pipeline on memory
    stores, with enough reference data that every part of a block is filled in."""
    p = Pipeline(TOPICS, geo, Stores.memory(), default_rules(), clock=lambda: NOW)
    fence = {
        "kind": "geofence",
        "op": "upsert",
        "id": "GF-W",
        "entry": {"name": "Wire zone", "circle": {"lat": 52.4862, "lon": -1.8904, "radius_m": 500}},
    }
    marker = {
        "kind": "address_marker",
        "op": "upsert",
        "id": "AM-W",
        "entry": {"address": HERE["address"], "marker": "weapons"},
    }
    changes = [fence, marker, make_hotlist_change(vrm="WI12 RED")]
    await p.process(
        [RawRecord(TOPICS.reference, 0, i, b"k", orjson.dumps(c)) for i, c in enumerate(changes)]
    )
    near = make_officer_location(officer_id="U-W", at_point=(52.4865, -1.8904))

    async def one(topic: str, value: dict[str, Any]) -> dict[str, Any]:
        p._layers_checked = None  # as a second later
        out = await p.process([RawRecord(topic, 0, 0, b"k", orjson.dumps(value))])
        (enriched,) = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.enriched]
        return dict(enriched["enrichment"])

    ping = await one(TOPICS.officer_locations, near)
    earlier = make_read(
        vrm="WI12RED", camera_id="CAM-W0", read_at=(NOW - timedelta(minutes=5)).isoformat()
    )
    await one(TOPICS.anpr, earlier)
    read = await one(TOPICS.anpr, make_read(vrm="WI12RED", camera_id="CAM-W1"))
    incident = await one(
        TOPICS.incidents, make_incident(location=HERE, at=(NOW - timedelta(hours=1)).isoformat())
    )
    call = await one(TOPICS.calls, make_call(location=HERE, caller={"person_id": "P-W"}))
    return {"call": call, "incident": incident, "anpr": read, "officer_location": ping}


@pytest.fixture
async def blocks(geo: GeoIndex) -> dict[str, dict[str, Any]]:
    try:
        return await _enriched(geo)
    finally:
        geo.extra_places = {}


def _nearby(block: dict[str, Any]) -> None:
    assert set(block) == NEARBY
    assert all(set(r) == LISTED for r in block["recent"])


async def test_a_call_block_has_the_contract_shape(blocks: dict[str, dict[str, Any]]) -> None:
    e = blocks["call"]
    assert set(e) == PLACE | RUN | {"nearby_places", "history", "nearest_units"}
    assert e["kind"] == "call" and e["geofences"] == [{"id": "GF-W", "name": "Wire zone"}]
    assert all(set(a) == {"code", "name"} for a in e["areas"].values())
    assert all({"name", "id", "distance_m"} <= set(pl) for pl in e["nearby_places"].values())
    h = e["history"]
    assert set(h) == {
        "calls_at_address",
        "calls_by_person",
        "nearby",
        "incidents_at_address",
        "incidents_nearby",
        "markers",
        "recent_calls_nearby",
    }
    assert set(h["calls_at_address"]) == set(h["calls_by_person"]) == AT_ADDRESS
    assert h["incidents_at_address"]["count"] == 1
    _nearby(h["nearby"])
    _nearby(h["incidents_nearby"])
    assert set(h["recent_calls_nearby"]) == {
        "radius_m",
        "window_minutes",
        "count",
        "sources",
        "calls",
    }
    assert [m["marker"] for m in h["markers"]] == ["weapons"]
    assert [set(u) for u in e["nearest_units"]] == [UNIT]


async def test_an_incident_block_has_the_contract_shape(blocks: dict[str, dict[str, Any]]) -> None:
    e = blocks["incident"]
    assert set(e) == PLACE | RUN | {"nearby_places", "history", "nearest_units"}
    h = e["history"]
    assert set(h) == {
        "markers",
        "nearby",
        "calls_nearby",
        "incidents_at_address",
        "calls_at_address",
    }
    _nearby(h["nearby"])
    _nearby(h["calls_nearby"])
    assert set(h["incidents_at_address"]) == set(h["calls_at_address"]) == AT_ADDRESS


async def test_a_plate_read_block_has_the_contract_shape(blocks: dict[str, dict[str, Any]]) -> None:
    e = blocks["anpr"]
    assert set(e) == PLACE | RUN | {"history"}
    (hit,) = e["history"]["hotlist"]
    assert set(e["history"]) == {"hotlist", "trail"}
    assert {"id", "vrm", "reason", "source"} <= set(hit) and hit["match"] == "exact"
    (previous,) = e["history"]["trail"]
    assert set(previous) == {"read_id", "camera_id", "at", "lat", "lon"}
    assert previous["camera_id"] == "CAM-W0"


async def test_an_officer_ping_block_has_the_contract_shape(
    blocks: dict[str, dict[str, Any]],
) -> None:
    e = blocks["officer_location"]
    assert set(e) == PLACE | RUN and e["kind"] == "officer_location"


async def test_the_model_states_the_wire_form_exactly(blocks: dict[str, dict[str, Any]]) -> None:
    for wire in blocks.values():
        parsed = Enrichment.model_validate(wire)
        assert parsed.wire() == wire
        assert parsed.model_dump(mode="json", exclude_none=True) == wire
        built = Enrichment.build(**wire)
        assert built.wire() == wire
        assert built.model_dump(mode="json", exclude_none=True) == wire
        constructed = Enrichment.model_construct(**wire)  # pydantic's own way, slower
        assert constructed.model_dump(mode="json", exclude_none=True) == wire


def test_a_built_block_reads_absent_fields_as_none_and_cannot_change() -> None:
    block = Enrichment.build(
        kind="anpr", reference_version="v", enriched_at="2026-11-24T21:30:00+00:00"
    )
    assert block.history is None and block.partial is None and block.areas is None
    assert block.wire() == {
        "kind": "anpr",
        "reference_version": "v",
        "enriched_at": "2026-11-24T21:30:00+00:00",
    }
    with pytest.raises(ValidationError):
        block.kind = "call"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = block.not_a_field  # type: ignore[attr-defined]


def test_a_block_with_a_key_the_contract_does_not_have_is_refused() -> None:
    with pytest.raises(ValidationError):
        Enrichment.model_validate(
            {"kind": "call", "reference_version": "v", "enriched_at": "t", "surprise": 1}
        )
    partial = Enrichment.model_validate(
        {
            "kind": "call",
            "reference_version": "v",
            "enriched_at": "t",
            "partial": {"reason": "redis"},
        }
    )
    assert partial.wire() == {
        "kind": "call",
        "reference_version": "v",
        "enriched_at": "t",
        "partial": {"reason": "redis"},
    }
