"""The Redis stores against a real Redis: reference changes, look-ups, history, open
alerts, snoozes and outages, through the stores and through the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from cli.services import free_port
from enrichers.geo import GeoIndex
from enrichers.stores import RedisStores, Stores
from rtic.errors import ServiceError
from rtic.schemas import (
    AlertV1,
    CallV1,
    EventKind,
    IncidentEventV1,
    PlateReadV1,
    ReferenceChangeV1,
    validate_event,
)
from rtic.settings import Settings
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import NOW, make_call, make_hotlist_change, make_incident, make_read

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[RedisStores]:
    s = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
    yield s
    keys = [
        k async for k in s.redis.scan_iter(match=f"{settings.topic_prefix}rtic:*", count=10_000)
    ]
    if keys:
        await s.redis.delete(*keys)
    await s.close()


def _change(d: dict) -> ReferenceChangeV1:
    model = validate_event(EventKind.REFERENCE, d)
    assert isinstance(model, ReferenceChangeV1)
    return model


def _read(**kw: object) -> PlateReadV1:
    return PlateReadV1.model_validate(make_read(**kw))


async def hotlist_hits(stores: RedisStores, reads: list[PlateReadV1]) -> list[list[Any]]:
    """Each read's hotlist hits, through the reads' round trip (which records them too)."""
    return [b["hotlist"] for b in await stores.history.enrich(EventKind.ANPR, reads)]  # type: ignore[index]


async def record_calls(stores: RedisStores, calls: list[CallV1]) -> list[Any]:
    """Each call's history block, the calls recorded as the pipeline records them."""
    return await stores.history.enrich(EventKind.CALL, calls)


async def incident_history(stores: RedisStores, incidents: list[IncidentEventV1]) -> list[Any]:
    """Each incident event's history block."""
    return await stores.history.enrich(EventKind.INCIDENT, incidents)


async def test_hotlist_upsert_lookup_misread_move_and_delete(store: RedisStores) -> None:
    change = make_hotlist_change(vrm="BD51 SMR", reason="stolen")
    await store.reference.apply([_change(change)])
    exact, misread, other = await hotlist_hits(
        store, [_read(vrm="BD51SMR"), _read(vrm="8D5I 5MR"), _read(vrm="ZZ99ZZZ")]
    )
    assert [h["match"] for h in exact] == ["exact"]
    assert exact[0]["reason"] == "stolen" and exact[0]["id"] == change["id"]
    assert [h["match"] for h in misread] == ["misread"]
    assert other == []
    # The same id upserted with another plate moves: the old plate no longer hits.
    moved = {**change, "entry": {"vrm": "YY11YYY", "reason": "firearms"}}
    await store.reference.apply([_change(moved)])
    old, new = await hotlist_hits(store, [_read(vrm="BD51SMR"), _read(vrm="YY11YYY")])
    assert old == [] and new[0]["reason"] == "firearms"
    await store.reference.apply([_change({"kind": "hotlist", "op": "delete", "id": change["id"]})])
    (gone,) = await hotlist_hits(store, [_read(vrm="YY11YYY")])
    assert gone == []


async def test_expired_hotlist_entries_do_not_hit(store: RedisStores) -> None:
    change = make_hotlist_change(vrm="EX01PRD", reason="stolen")
    change["entry"]["expires_at"] = (NOW - timedelta(hours=1)).isoformat()
    await store.reference.apply([_change(change)])
    (hits,) = await hotlist_hits(store, [_read(vrm="EX01PRD")])
    assert hits == []


async def test_call_history_counts_once_per_call_and_attaches_markers(store: RedisStores) -> None:
    address = "7 Marker Lane, Walsall"
    await store.reference.apply(
        [
            _change(
                {
                    "kind": "address_marker",
                    "op": "upsert",
                    "id": "AM-1",
                    "entry": {"address": address, "marker": "weapons"},
                }
            ),
            _change(
                {
                    "kind": "person_marker",
                    "op": "upsert",
                    "id": "PM-1",
                    "entry": {"person_id": "P-77", "marker": "violence_to_officers"},
                }
            ),
        ]
    )
    calls = [
        CallV1.model_validate(
            make_call(
                location={"lat": 52.58, "lon": -1.98, "address": address.upper()},
                caller={"person_id": "P-77"},
                received_at=(NOW + timedelta(days=i)).isoformat(),
            )
        )
        for i in range(3)
    ]
    first = await record_calls(store, calls[:2])
    again = await record_calls(store, calls[1:2])  # redelivery of the second call
    third = await record_calls(store, calls[2:])
    assert first[1]["calls_at_address"]["count"] == 2
    assert again[0]["calls_at_address"]["count"] == 2
    assert third[0]["calls_at_address"]["count"] == 3
    assert third[0]["calls_by_person"]["count"] == 3
    assert third[0]["calls_at_address"]["recent"][0] == calls[2].call_id
    assert {m["marker"] for m in third[0]["markers"]} == {"weapons", "violence_to_officers"}
    incident = IncidentEventV1.model_validate(
        make_incident(
            location={"lat": 52.58, "lon": -1.98, "address": address},
            persons=[{"person_id": "P-77", "role": "victim"}],
        )
    )
    (block,) = await incident_history(store, [incident])
    assert {m["marker"] for m in block["markers"]} == {"weapons", "violence_to_officers"}


async def test_calls_older_than_the_window_are_forgotten(store: RedisStores) -> None:
    address = "1 Old Road, Dudley"
    old = CallV1.model_validate(
        make_call(
            location={"lat": 52.5, "lon": -2.08, "address": address},
            caller=None,
            received_at=(NOW - timedelta(days=40)).isoformat(),
        )
    )
    new = CallV1.model_validate(
        make_call(
            location={"lat": 52.5, "lon": -2.08, "address": address},
            caller=None,
            received_at=NOW.isoformat(),
        )
    )
    await record_calls(store, [old])
    (block,) = await record_calls(store, [new])
    assert block["calls_at_address"] == {"count": 1, "recent": [new.call_id]}


async def test_workers_share_call_history_through_the_log(
    store: RedisStores, settings: Settings
) -> None:
    """Two workers (two stores) see each other's calls from their next batch on; a worker
    started later reads the whole log back; the log is trimmed to its retention."""
    here = {"lat": 52.4862, "lon": -1.8904, "address": "1 Shared Street"}

    def call(n: int) -> CallV1:
        return CallV1.model_validate(
            make_call(
                call_id=f"SHARE-{n}",
                location=here,
                caller={"person_id": "P-SHARE"},
                received_at=(NOW + timedelta(seconds=n)).isoformat(),
            )
        )

    one = store
    two = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
    try:
        await record_calls(one, [call(1), call(2)])
        (b3,) = await record_calls(two, [call(3)])
        assert b3["calls_at_address"] == {"count": 3, "recent": ["SHARE-3", "SHARE-2", "SHARE-1"]}
        assert b3["nearby"]["count"] == 2
        (b4,) = await record_calls(one, [call(4)])
        assert b4["calls_by_person"]["count"] == 4
        later = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
        try:
            (b5,) = await record_calls(later, [call(5)])
            assert b5["calls_at_address"]["count"] == 5
            assert len(later.history.calls) == 5
        finally:
            await later.close()
        # Everything logged more than the retention ago goes, from the log and the index.
        two.history.log_keep_s = 0
        await asyncio.sleep(0.01)
        (b6,) = await record_calls(two, [call(6)])
        assert b6["calls_at_address"] == {"count": 1, "recent": ["SHARE-6"]}
        assert set(two.history.calls.records) == {"SHARE-6"}
        assert await two.redis.xlen(two.keys.call_log) <= 5  # MINID ~ trims whole nodes
    finally:
        await two.close()


async def test_calls_and_incidents_see_each_other_across_workers(
    store: RedisStores, settings: Settings
) -> None:
    """A call sees the incidents created at its address and within 50 m before it, an
    incident the calls and other incidents; an incident's later events leave itself out
    and are not logged again; a worker started later reads both logs back."""
    here = {"lat": 52.4862, "lon": -1.8904, "address": "3 Cross Street, Birmingham"}
    near = {"lat": 52.48635, "lon": -1.8904, "address": "5 Cross Street, Birmingham"}  # ~17 m

    def incident(ident: str, minutes: int, event: str = "created", **kw: Any) -> IncidentEventV1:
        return IncidentEventV1.model_validate(
            make_incident(
                incident_id=ident,
                event=event,
                at=(NOW + timedelta(minutes=minutes)).isoformat(),
                **kw,
            )
        )

    def call(ident: str, minutes: int, where: dict[str, Any]) -> CallV1:
        return CallV1.model_validate(
            make_call(
                call_id=ident,
                location=where,
                category="domestic_abuse",
                received_at=(NOW + timedelta(minutes=minutes)).isoformat(),
            )
        )

    one = store
    two = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
    try:
        await one.history.enrich(
            EventKind.INCIDENT,
            [
                incident("INC-X1", 0, location=here, category="assault"),
                incident("INC-X2", 1, location=near, category="burglary"),
                incident("INC-FAR", 2, location={**here, "lat": 52.50}),  # 1.5 km north
                incident("INC-LATER", 30, location=here),  # after the call below
            ],
        )
        (c1,) = await record_calls(two, [call("CALL-X1", 5, here)])
        assert c1["incidents_at_address"] == {"count": 2, "recent": ["INC-FAR", "INC-X1"]}
        assert c1["incidents_nearby"]["count"] == 2
        assert c1["incidents_nearby"]["by_category"] == {"assault": 1, "burglary": 1}
        assert [r["id"] for r in c1["incidents_nearby"]["recent"]] == ["INC-X2", "INC-X1"]
        assert c1["calls_at_address"] == {"count": 1, "recent": ["CALL-X1"]}

        # An incident's later event: itself left out, the call in, not logged again.
        (i1,) = await incident_history(
            two, [incident("INC-X1", 10, event="arrived", location=here, category="assault")]
        )
        assert i1["nearby"]["count"] == 1 and i1["nearby"]["recent"][0]["id"] == "INC-X2"
        assert i1["incidents_at_address"] == {"count": 1, "recent": ["INC-FAR"]}
        assert i1["calls_at_address"] == {"count": 1, "recent": ["CALL-X1"]}
        assert i1["calls_nearby"]["count"] == 1
        assert i1["calls_nearby"]["by_category"] == {"domestic_abuse": 1}
        assert await one.redis.xlen(one.keys.incident_log) == 1  # one entry: the first batch

        later = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
        try:
            (i2,) = await incident_history(later, [incident("INC-X3", 20, location=near)])
            assert i2["nearby"]["count"] == 2  # X1 and X2 (X1's arrival is no new incident)
            assert i2["calls_nearby"]["count"] == 1
            assert "incidents_at_address" in i2 and i2["incidents_at_address"]["count"] == 1
            assert set(later.history.incidents.records) == {
                "INC-X1",
                "INC-X2",
                "INC-FAR",
                "INC-LATER",
                "INC-X3",
            }
        finally:
            await later.close()
    finally:
        await two.close()


async def test_redis_down_raises_service_error_and_pipeline_goes_on_partial(
    geo: GeoIndex, settings: Settings
) -> None:
    dead = RedisStores.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    with pytest.raises(ServiceError):
        await hotlist_hits(dead, [_read()])
    topics = Topics.with_prefix(settings.topic_prefix)
    pipeline = Pipeline(topics, geo, dead, default_rules())
    out = await pipeline.process([RawRecord(topics.anpr, 0, 0, b"c", orjson.dumps(make_read()))])
    ((topic, _key, value),) = out.messages
    enriched = orjson.loads(value)
    assert topic == topics.enriched
    assert enriched["enrichment"]["partial"]["reason"].startswith("redis")
    assert enriched["enrichment"]["areas"]["district"]["name"] == "Birmingham"
    await dead.close()


async def test_enrich_batch_gives_trail_nearby_history_and_nearest_units(
    store: RedisStores, geo: GeoIndex, settings: Settings
) -> None:
    from tests.conftest import make_officer_location

    topics = Topics.with_prefix(settings.topic_prefix)
    pipeline = Pipeline(topics, geo, store, default_rules(), clock=lambda: NOW)
    pings = [
        make_officer_location(officer_id="U-NEAR", at_point=(52.4865, -1.8904), callsign="BW-1"),
        make_officer_location(officer_id="U-FAR", at_point=(52.4962, -1.8904), callsign="BW-2"),
        make_officer_location(officer_id="U-BUSY", at_point=(52.4863, -1.8904), status="committed"),
        make_officer_location(
            officer_id="U-OLD",
            at_point=(52.4864, -1.8904),
            at=(NOW - timedelta(minutes=20)).isoformat(),
        ),
    ]
    await pipeline.process(
        [
            RawRecord(topics.officer_locations, 0, i, b"k", orjson.dumps(p))
            for i, p in enumerate(pings)
        ]
    )
    here = {"lat": 52.4862, "lon": -1.8904, "address": "1 Trail Street"}
    earlier = make_call(
        location=here, category="assault", received_at=(NOW - timedelta(days=3)).isoformat()
    )
    await pipeline.process([RawRecord(topics.calls, 0, 0, b"k", orjson.dumps(earlier))])
    pipeline._layers_checked = None  # as a second later: the worker re-reads officers' positions
    call = make_call(location={**here, "lat": 52.48623}, received_at=NOW.isoformat())  # ~3 m away
    out = await pipeline.process([RawRecord(topics.calls, 0, 1, b"k", orjson.dumps(call))])
    enrichment = orjson.loads(out.messages[0][2])["enrichment"]
    nearby = enrichment["history"]["nearby"]
    assert nearby["count"] == 1 and nearby["by_category"] == {"assault": 1}
    assert nearby["recent"][0]["id"] == earlier["call_id"]
    units = enrichment["nearest_units"]
    assert [u["officer_id"] for u in units] == [
        "U-NEAR",
        "U-FAR",
        "U-OLD",
    ]  # busy left out, stale last
    assert units[0]["distance_m"] < 60 and units[0]["stale"] is False and units[2]["stale"] is True

    reads = [
        PlateReadV1.model_validate(make_read(vrm="TR41 LLL", camera_id=f"CAM-T{i}"))
        for i in range(3)
    ]
    unlisted = await store.history.enrich(EventKind.ANPR, reads[:1])
    assert unlisted[0] == {"hotlist": []}  # trails are shown for listed plates only
    await store.reference.apply([_change(make_hotlist_change(vrm="TR41 LLL", reason="stolen"))])
    blocks = await store.history.enrich(EventKind.ANPR, reads[1:])
    assert [r["camera_id"] for r in blocks[0]["trail"]] == ["CAM-T0"]
    assert [r["camera_id"] for r in blocks[1]["trail"]] == ["CAM-T1", "CAM-T0"]
    again = await store.history.enrich(EventKind.ANPR, reads[2:])  # a redelivery: not itself
    assert [r["camera_id"] for r in again[0]["trail"]] == ["CAM-T1", "CAM-T0"]


async def test_geofences_and_places_change_at_run_time(
    geo: GeoIndex, settings: Settings, store: RedisStores
) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    pipeline = Pipeline(topics, geo, store, default_rules())
    fence = {
        "kind": "geofence",
        "op": "upsert",
        "id": "GF-1",
        "entry": {"name": "Stadium", "circle": {"lat": 52.4862, "lon": -1.8904, "radius_m": 250}},
    }
    place = {
        "kind": "place",
        "op": "upsert",
        "id": "CH-1",
        "entry": {
            "name": "Care home (generated)",
            "kind": "care_home",
            "lat": 52.4866,
            "lon": -1.8904,
            "generated": True,
        },
    }
    await pipeline.process(
        [
            RawRecord(topics.reference, 0, i, b"k", orjson.dumps(c))
            for i, c in enumerate((fence, place))
        ]
    )
    out = await pipeline.process([RawRecord(topics.calls, 0, 0, b"k", orjson.dumps(make_call()))])
    enrichment = orjson.loads(out.messages[0][2])["enrichment"]
    assert enrichment["geofences"] == [{"id": "GF-1", "name": "Stadium"}]
    assert enrichment["nearby_places"]["care_home"]["name"] == "Care home (generated)"
    assert enrichment["reference_version"].endswith("/geofences-1/places-1")
    await pipeline.process(
        [
            RawRecord(
                topics.reference,
                0,
                9,
                b"k",
                orjson.dumps({"kind": "geofence", "op": "delete", "id": "GF-1"}),
            )
        ]
    )
    out = await pipeline.process([RawRecord(topics.calls, 0, 1, b"k", orjson.dumps(make_call()))])
    assert orjson.loads(out.messages[0][2])["enrichment"]["geofences"] == []
    geo.set_operator_places({})  # the session's GeoIndex is shared with other tests


async def test_vehicles_of_open_incidents_are_found_by_reads_until_closed(
    store: RedisStores,
) -> None:
    incident = make_incident(
        vehicles=[{"vrm": "RB12 BER", "role": "suspect"}], category="robbery", units=["OFF-3"]
    )
    await store.history.enrich(EventKind.INCIDENT, [IncidentEventV1.model_validate(incident)])
    (block,) = await store.history.enrich(EventKind.ANPR, [_read(vrm="R812 8ER")])  # a misread
    (link,) = block["linked_incidents"]
    assert (
        link["incident_id"] == incident["incident_id"]
        and link["role"] == "suspect"
        and link["units"] == ["OFF-3"]
    )
    closed = {**incident, "event": "closed"}
    await store.history.enrich(EventKind.INCIDENT, [IncidentEventV1.model_validate(closed)])
    (after,) = await store.history.enrich(EventKind.ANPR, [_read(vrm="RB12BER")])
    assert "linked_incidents" not in after


async def test_repeated_hits_fold_into_one_open_alert_and_redeliveries_do_not_count(
    geo: GeoIndex, settings: Settings, store: RedisStores
) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    clock = {"now": NOW}
    pipeline = Pipeline(topics, geo, store, default_rules(), clock=lambda: clock["now"])
    await pipeline.process(
        [
            RawRecord(
                topics.reference,
                0,
                0,
                b"k",
                orjson.dumps(make_hotlist_change(vrm="GR0U P11", reason="stolen")),
            )
        ]
    )
    reads = [make_read(vrm="GR0UP11", camera_id=f"CAM-G{i}") for i in range(3)]

    async def send(i: int, at_minute: float) -> AlertV1:
        clock["now"] = NOW + timedelta(minutes=at_minute)
        (alert,) = (
            await pipeline.process(
                [RawRecord(topics.anpr, 0, 10 + i, b"c", orjson.dumps(reads[i]))]
            )
        ).alerts
        return alert

    first, second = await send(0, 0), await send(1, 2)
    assert second.alert_id == first.alert_id and (first.version, second.version) == (1, 2)
    assert (
        second.details["hits"] == 2
        and "2 hits since" in second.summary
        and second.created_at == first.created_at
    )
    again = await send(1, 2.5)  # a redelivery of the second read
    assert (again.alert_id, again.version) == (first.alert_id, 2)
    later = await send(2, 30)  # past the 5-minute window: a new alert
    assert later.alert_id != first.alert_id and later.version == 1


async def test_snoozes_are_a_live_layer_that_holds_alerts_back_until_lifted(
    geo: GeoIndex, settings: Settings, store: RedisStores
) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    pipeline = Pipeline(topics, geo, store, default_rules(), clock=lambda: NOW)
    hotlist = make_hotlist_change(vrm="SN00 ZED", reason="stolen")
    snooze = {
        "kind": "snooze",
        "op": "upsert",
        "id": "SN-1",
        "entry": {
            "rule_id": "anpr_hotlist_hit",
            "vrm": "SN00ZED",
            "until": (NOW + timedelta(hours=1)).isoformat(),
            "by": "analyst-1",
        },
    }

    async def reference(*changes: dict) -> None:
        await pipeline.process(
            [
                RawRecord(topics.reference, 0, i, b"k", orjson.dumps(c))
                for i, c in enumerate(changes)
            ]
        )

    async def alerts_for(vrm: str) -> list[AlertV1]:
        read = make_read(vrm=vrm)
        out = await pipeline.process([RawRecord(topics.anpr, 0, 0, b"k", orjson.dumps(read))])
        return out.alerts

    await reference(hotlist, snooze)
    version, entries = await store.snoozes.entries()
    assert version == 1 and entries["SN-1"]["vrm"] == "SN00ZED"
    assert await alerts_for("5N00 2ED") == []  # a misread of the snoozed plate
    assert pipeline.stats.suppressed["anpr_hotlist_hit"] == 1
    await reference({"kind": "snooze", "op": "delete", "id": "SN-1"})
    assert await store.snoozes.entries() == (2, {})
    assert [a.rule_id for a in await alerts_for("SN00ZED")] == ["anpr_hotlist_hit"]


async def test_the_memory_stores_give_the_pipeline_what_redis_gives_it(
    geo: GeoIndex, settings: Settings, store: RedisStores
) -> None:
    """The same batches through the pipeline on Redis and on the memory stores the unit
    tests use: every message out (enriched events and alerts) is the same."""
    from tests.conftest import make_officer_location

    here = {"lat": 52.4862, "lon": -1.8904, "address": "3 Same Street, Birmingham"}
    snooze = {
        "rule_id": "anpr_hotlist_hit",
        "vrm": "SN00ZED",
        "until": (NOW + timedelta(hours=1)).isoformat(),
        "by": "a",
    }
    batches: list[tuple[str, list[dict[str, Any]]]] = [
        (
            "reference",
            [
                make_hotlist_change(vrm="CM12 PAR"),
                make_hotlist_change(vrm="GR0U P11"),
                make_hotlist_change(vrm="SN00 ZED"),
                {
                    "kind": "address_marker",
                    "op": "upsert",
                    "id": "AM-S",
                    "entry": {"address": here["address"], "marker": "weapons"},
                },
                {
                    "kind": "person_marker",
                    "op": "upsert",
                    "id": "PM-S",
                    "entry": {"person_id": "P-S", "marker": "violence_to_officers"},
                },
                {
                    "kind": "geofence",
                    "op": "upsert",
                    "id": "GF-S",
                    "entry": {"name": "Zone", "circle": {**here, "radius_m": 400}},
                },
                {"kind": "snooze", "op": "upsert", "id": "SN-S", "entry": snooze},
            ],
        ),
        ("officer_locations", [make_officer_location(at_point=(52.4865, -1.8904))]),
        (
            "incidents",
            [
                make_incident(
                    location=here,
                    persons=[{"person_id": "P-S"}],
                    vehicles=[{"vrm": "VE12 HIC", "role": "suspect"}],
                    at=(NOW - timedelta(hours=2)).isoformat(),
                )
            ],
        ),
        (
            "calls",
            [
                make_call(
                    location=here,
                    caller={"person_id": "P-S"},
                    received_at=(NOW - timedelta(minutes=m)).isoformat(),
                )
                for m in (30, 5, 2, 1)
            ],
        ),
        (
            "anpr",
            [
                {"reads": [make_read(vrm=v, camera_id="CAM-1") for v in ("CM12PAR", "ZZ11ZZZ")]},
                make_read(vrm="VE12HIC"),
                make_read(vrm="SN00ZED"),
                make_read(vrm="GR0UP11"),
            ],
        ),
        ("anpr", [make_read(vrm="CM12PAR", camera_id="CAM-2"), make_read(vrm="GR0UP11")]),
        ("incidents", [make_incident(location=here, at=NOW.isoformat())]),
    ]
    topics = Topics.with_prefix(settings.topic_prefix)

    async def run(stores: Stores) -> list[list[tuple[str, bytes | None, Any]]]:
        pipeline = Pipeline(topics, geo, stores, default_rules(), clock=lambda: NOW)
        outs = []
        for topic, values in batches:
            records = [
                RawRecord(getattr(topics, topic), 0, i, b"k", orjson.dumps(v))
                for i, v in enumerate(values)
            ]
            out = await pipeline.process(records)
            pipeline._layers_checked = None  # as a second later
            outs.append([(t, k, orjson.loads(v)) for t, k, v in out.messages])
        return outs

    on_redis = await run(store)
    in_memory = await run(Stores.memory())
    assert in_memory == on_redis
    alerts = [m for out in on_redis for m in out if m[0] == topics.alerts]
    assert {m[2]["rule_id"] for m in alerts} >= {
        "anpr_hotlist_hit",
        "vehicle_linked_to_incident",
        "officer_safety",
        "repeat_calls",
    }
