"""The batch pipeline without services: place enrichment, dead letters, camera batches,
and history, reference data, snoozes and open alerts on the memory stores.

Without stores (``None``), which is itself a real path, the events go on, marked
partial. With ``Stores.memory()`` the pipeline runs its whole path without Redis;
the same path on Redis is in tests/integration (test_history_redis.py).
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from enrichers.geo import GeoIndex
from enrichers.stores import Stores
from rtic.errors import ServiceError
from rtic.schemas import AlertV1, EventKind, PlateReadV1, Severity
from rtic.topics import Topics
from rules.base import Rule, RuleContext, RuleSpec, make_alert
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import (
    BIRMINGHAM_CENTRE,
    COVENTRY_CENTRE,
    LONDON,
    NOW,
    make_call,
    make_hotlist_change,
    make_incident,
    make_officer_location,
    make_read,
)

TOPICS = Topics.with_prefix("unit.")


def pipeline(geo: GeoIndex) -> Pipeline:
    return Pipeline(TOPICS, geo, None, default_rules(), clock=lambda: NOW)


def rec(topic: str, value: bytes | None, offset: int = 0, key: bytes | None = b"k") -> RawRecord:
    return RawRecord(topic, 3, offset, key, value)


async def test_a_call_comes_out_enriched_and_partial_without_history(geo: GeoIndex) -> None:
    call = make_call(extra_field="kept")
    out = await pipeline(geo).process([rec(TOPICS.calls, orjson.dumps(call))])
    ((topic, key, value),) = [m for m in out.messages if m[0] != TOPICS.alerts]
    enriched = orjson.loads(value)
    assert topic == TOPICS.enriched and key == call["call_id"].encode()
    assert enriched["extra_field"] == "kept"
    e = enriched["enrichment"]
    assert e["kind"] == "call" and e["areas"]["district"]["name"] == "Birmingham"
    assert e["area_codes"][0] == "E08000025" and e["in_force_area"] is True
    assert "school" in e["nearby_places"]
    assert e["partial"]["reason"] == "history store not configured"
    assert e["reference_version"] == f"{geo.version}/geofences-0/places-0"
    assert e["geofences"] == []


async def test_bad_records_become_dead_letters_and_the_good_one_goes_on(geo: GeoIndex) -> None:
    p = pipeline(geo)
    good = make_call()
    records = [
        rec(TOPICS.calls, b"\x00garbage", offset=10),
        rec(TOPICS.calls, b"[]", offset=11, key=None),
        rec(TOPICS.calls, orjson.dumps(make_call(channel="pager")), offset=12),
        rec(TOPICS.calls, orjson.dumps(good), offset=13),
    ]
    out = await p.process(records)
    assert out.dead_letters == 3
    letters = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.dead_letter]
    assert [(d["partition"], d["offset"]) for d in letters] == [(3, 10), (3, 11), (3, 12)]
    assert base64.b64decode(letters[0]["raw"]) == b"\x00garbage"
    assert letters[1]["key"] is None and letters[0]["key"] == base64.b64encode(b"k").decode()
    assert letters[0]["source_topic"] == TOPICS.calls
    assert "DecodeError" in letters[0]["reason"] and "channel" in letters[2]["reason"]
    enriched = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.enriched]
    assert [e["call_id"] for e in enriched] == [good["call_id"]]
    assert p.stats.dead_letters[TOPICS.calls] == 3
    # What the worker's observers get (deadline book, trend tables): the valid one only.
    assert [(part, ev.call_id) for part, ev in out.events] == [(3, good["call_id"])]


async def test_a_camera_batch_stays_one_message_with_enrichment_on_each_read(geo: GeoIndex) -> None:
    reads = [make_read(camera_id="CAM-9"), make_read(camera_id="CAM-9", at_point=LONDON)]
    out = await pipeline(geo).process(
        [rec(TOPICS.anpr, orjson.dumps({"reads": reads, "site": "A38"}))]
    )
    ((topic, key, value),) = out.messages
    batch = orjson.loads(value)
    assert topic == TOPICS.enriched and key == b"CAM-9" and batch["site"] == "A38"
    assert [r["read_id"] for r in batch["reads"]] == [r["read_id"] for r in reads]
    inside, outside = (r["enrichment"] for r in batch["reads"])
    assert inside["in_force_area"] is True and outside["in_force_area"] is False
    assert outside["area_codes"] == []


async def test_a_single_read_is_keyed_by_camera(geo: GeoIndex) -> None:
    read = make_read(camera_id="CAM-1")
    out = await pipeline(geo).process([rec(TOPICS.anpr, orjson.dumps(read))])
    ((_, key, value),) = out.messages
    assert key == b"CAM-1" and orjson.loads(value)["read_id"] == read["read_id"]


async def test_single_reads_come_out_alike_whether_all_are_valid_or_one_is_not(
    geo: GeoIndex,
) -> None:
    """One bad read (or undecodable record) among single reads changes nothing for the
    good ones (the same output as without it, order kept); it becomes a dead letter
    naming its field. (It guards any batch-wide fast path for validation.)"""
    reads = [make_read(camera_id=f"CAM-{i}") for i in range(5)]
    bad = {**make_read(camera_id="CAM-X"), "lat": 91.0}
    values = [orjson.dumps(r) for r in reads]
    fast = await pipeline(geo).process(
        [rec(TOPICS.anpr, v, offset=i) for i, v in enumerate(values)]
    )
    mixed_values = [*values[:2], orjson.dumps(bad), *values[2:], b"{"]
    slow = await pipeline(geo).process(
        [rec(TOPICS.anpr, v, offset=i) for i, v in enumerate(mixed_values)]
    )
    assert fast.dead_letters == 0 and slow.dead_letters == 2
    out_fast = [m for m in fast.messages if m[0] == TOPICS.enriched]
    out_slow = [m for m in slow.messages if m[0] == TOPICS.enriched]
    assert [k for _, k, _ in out_fast] == [f"CAM-{i}".encode() for i in range(5)]
    assert out_slow == out_fast
    letters = [orjson.loads(v) for t, _, v in slow.messages if t == TOPICS.dead_letter]
    assert [d["offset"] for d in letters] == [2, 6]
    assert "lat" in letters[0]["reason"] and "DecodeError" in letters[1]["reason"]


# ---- dead letters -------------------------------------------------------------------------


async def test_a_dead_letter_is_keyed_by_its_source_topic_and_says_when(geo: GeoIndex) -> None:
    out = await pipeline(geo).process([rec(TOPICS.calls, b"{", offset=7)])
    ((topic, key, value),) = out.messages
    letter = orjson.loads(value)
    assert topic == TOPICS.dead_letter and key == TOPICS.calls.encode()
    assert letter["at"] == "2026-11-24T21:30:00Z"
    assert set(letter) == {"source_topic", "partition", "offset", "raw", "key", "reason", "at"}


async def test_an_empty_value_is_a_dead_letter_not_a_crash(geo: GeoIndex) -> None:
    out = await pipeline(geo).process(
        [rec(TOPICS.incidents, None), rec(TOPICS.incidents, b"", offset=1)]
    )
    letters = [orjson.loads(v) for _, _, v in out.messages]
    assert out.dead_letters == 2
    assert [(d["raw"], d["reason"]) for d in letters] == [
        ("", "DecodeError: empty message"),
        ("", "DecodeError: empty message"),
    ]


async def test_a_camera_batch_with_bad_reads_dead_letters_them_and_the_rest_go_on(
    geo: GeoIndex,
) -> None:
    good = [make_read(camera_id="CAM-B"), make_read(camera_id="CAM-B")]
    raw = orjson.dumps({"reads": [good[0], make_read(vrm=""), good[1], {"read_id": 7}]})
    out = await pipeline(geo).process([rec(TOPICS.anpr, raw)])
    letters = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.dead_letter]
    enriched = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.enriched]
    ((letter,),) = (letters,)
    assert "reads[1]: vrm" in letter["reason"] and "reads[3]:" in letter["reason"]
    assert base64.b64decode(letter["raw"]) == raw
    ((batch,),) = (enriched,)
    assert [r["read_id"] for r in batch["reads"]] == [r["read_id"] for r in good]
    assert batch["dead_lettered_reads"] == [1, 3]
    assert all("enrichment" in r for r in batch["reads"])


async def test_a_camera_batch_of_only_bad_reads_is_only_a_dead_letter(geo: GeoIndex) -> None:
    out = await pipeline(geo).process([rec(TOPICS.anpr, orjson.dumps({"reads": [{"vrm": 1}]}))])
    ((topic, _, value),) = out.messages
    assert topic == TOPICS.dead_letter and "reads[0]" in orjson.loads(value)["reason"]
    out = await pipeline(geo).process([rec(TOPICS.anpr, orjson.dumps({"reads": []}))])
    ((topic, _, value),) = out.messages
    assert topic == TOPICS.dead_letter and "reads" in orjson.loads(value)["reason"]


async def test_a_batch_of_only_bad_records_gives_only_dead_letters(geo: GeoIndex) -> None:
    p = pipeline(geo)
    out = await p.process([rec(TOPICS.anpr, b"nope", offset=i) for i in range(3)])
    assert out.dead_letters == 3 and out.alerts == []
    assert {t for t, _, _ in out.messages} == {TOPICS.dead_letter}
    assert p.stats.received["anpr"] == 3 and p.stats.dead_letters[TOPICS.anpr] == 3


async def test_no_records_no_output(geo: GeoIndex) -> None:
    out = await pipeline(geo).process([])
    assert out.messages == [] and out.alerts == [] and out.dead_letters == 0


# ---- each input kind ----------------------------------------------------------------------


async def test_a_read_outside_the_force_area_is_not_in_it(geo: GeoIndex) -> None:
    read = make_read(at_point=LONDON)
    out = await pipeline(geo).process([rec(TOPICS.anpr, orjson.dumps(read))])
    ((_, _, value),) = out.messages
    e = orjson.loads(value)["enrichment"]
    assert e["in_force_area"] is False and e["areas"] == {} and e["area_codes"] == []
    assert e["kind"] == "anpr" and "nearby_places" not in e


async def test_an_incident_is_keyed_by_its_id_with_places_and_units(geo: GeoIndex) -> None:
    incident = make_incident(at_point=COVENTRY_CENTRE)
    out = await pipeline(geo).process([rec(TOPICS.incidents, orjson.dumps(incident))])
    ((topic, key, value),) = out.messages
    e = orjson.loads(value)["enrichment"]
    assert (topic, key) == (TOPICS.enriched, incident["incident_id"].encode())
    assert e["kind"] == "incident" and e["areas"]["district"]["name"] == "Coventry"
    assert e["nearest_units"] == [] and "nearby_places" in e


async def test_an_officer_ping_is_keyed_by_officer_without_places(geo: GeoIndex) -> None:
    ping = make_officer_location()
    out = await pipeline(geo).process([rec(TOPICS.officer_locations, orjson.dumps(ping))])
    ((_, key, value),) = out.messages
    e = orjson.loads(value)["enrichment"]
    assert key == ping["officer_id"].encode()
    assert e["kind"] == "officer_location" and e["in_force_area"] is True
    assert "nearby_places" not in e and "nearest_units" not in e


async def test_messages_come_out_in_the_order_they_came_in(geo: GeoIndex) -> None:
    calls = [make_call(at_point=p) for p in (LONDON, BIRMINGHAM_CENTRE, COVENTRY_CENTRE)]
    out = await pipeline(geo).process(
        [rec(TOPICS.calls, orjson.dumps(c), offset=i) for i, c in enumerate(calls)]
    )
    enriched = [orjson.loads(v)["call_id"] for t, _, v in out.messages if t == TOPICS.enriched]
    assert enriched == [c["call_id"] for c in calls]


async def test_reference_changes_need_the_history_store(geo: GeoIndex) -> None:
    # Without Redis a change must not be dropped: the batch raises and is retried.
    p = pipeline(geo)
    with pytest.raises(ServiceError):
        await p.process([rec(TOPICS.reference, orjson.dumps(make_hotlist_change()))])
    bad = await p.process([rec(TOPICS.reference, orjson.dumps({"kind": "hotlist"}))])
    assert bad.dead_letters == 1


# ---- rules inside the pipeline ------------------------------------------------------------


def _spec(rule_id: str) -> RuleSpec:
    return RuleSpec(rule_id, rule_id, "", frozenset({EventKind.ANPR}), Severity.HIGH)


def _per_read(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
    assert isinstance(event, PlateReadV1)
    return [
        make_alert(
            ctx,
            facts=(event.read_id,),
            title="t",
            summary="s",
            source_event_ids=[event.read_id],
            location=None,
            details={"in_force_area": ctx.enrichment["in_force_area"]},
        )
    ]


def _broken(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
    raise RuntimeError("rule bug")


async def test_alerts_are_keyed_by_id_once_per_batch_and_a_broken_rule_stops_nothing(
    geo: GeoIndex,
) -> None:
    p = Pipeline(
        TOPICS,
        geo,
        None,
        [Rule(_spec("broken"), _broken), Rule(_spec("per_read"), _per_read)],
        clock=lambda: NOW,
    )
    read, other = make_read(), make_read(at_point=LONDON)
    batch = {"reads": [read, read, other]}  # the first read redelivered inside the batch
    out = await p.process([rec(TOPICS.anpr, orjson.dumps(batch))])
    enriched = [v for t, _, v in out.messages if t == TOPICS.enriched]
    alerts = [(k, orjson.loads(v)) for t, k, v in out.messages if t == TOPICS.alerts]
    assert len(enriched) == 1
    assert [a["source_event_ids"] for _, a in alerts] == [[read["read_id"]], [other["read_id"]]]
    assert all(k == a["alert_id"].encode() for k, a in alerts)
    assert [a["details"]["in_force_area"] for _, a in alerts] == [True, False]
    assert p.stats.rules.errors["broken"] == 3 and p.stats.alerts == 2


# ---- property: every record comes out exactly once ---------------------------------------

RECORD_VALUES = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda: orjson.dumps(make_call())),
    st.builds(lambda: orjson.dumps(make_call(at_point=LONDON))),
    st.builds(lambda: orjson.dumps(make_call(grade=9))),
    st.builds(lambda: orjson.dumps([make_call()])),
    st.sampled_from([b"", b"{}", b"null"]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(RECORD_VALUES, max_size=8))
async def test_every_record_comes_out_once_enriched_or_dead_lettered(
    geo: GeoIndex, values: list[bytes]
) -> None:
    out = await pipeline(geo).process(
        [rec(TOPICS.calls, v, offset=i) for i, v in enumerate(values)]
    )
    records = [m for m in out.messages if m[0] != TOPICS.alerts]  # alerts are extra, not records
    assert len(records) == len(values)
    offsets = [orjson.loads(v)["offset"] for t, _, v in records if t == TOPICS.dead_letter]
    assert out.dead_letters == len(offsets) == len(set(offsets))
    for topic, _, value in records:
        assert topic in (TOPICS.enriched, TOPICS.dead_letter)
        if topic == TOPICS.enriched:
            assert "partial" in orjson.loads(value)["enrichment"]


# ---- on the memory stores: the path with history, as with Redis ------------------------


class Run:
    """A pipeline on memory stores, with a clock the test moves, and records to feed it."""

    def __init__(self, geo: GeoIndex, rules: list[Rule] | None = None) -> None:
        self.stores = Stores.memory()
        self.now = NOW
        self.p = Pipeline(
            TOPICS, geo, self.stores, default_rules() if rules is None else rules, clock=self.clock
        )
        self.offset = 0

    def clock(self) -> Any:
        return self.now

    async def send(self, topic: str, *values: dict[str, Any]) -> Any:
        records = []
        for v in values:
            records.append(rec(topic, orjson.dumps(v), offset=self.offset))
            self.offset += 1
        out = await self.p.process(records)
        if topic == TOPICS.reference:
            self.p._layers_checked = None  # as a second later: the worker looks again
        return out

    @staticmethod
    def enrichments(out: Any) -> list[dict[str, Any]]:
        found = []
        for t, _, v in out.messages:
            if t == TOPICS.enriched:
                msg = orjson.loads(v)
                found += (
                    [r["enrichment"] for r in msg["reads"]]
                    if "reads" in msg
                    else [msg["enrichment"]]
                )
        return found


async def test_a_hotlisted_plate_hits_with_its_trail_and_misreads_and_expiry(geo: GeoIndex) -> None:
    run = Run(geo)
    expired = make_hotlist_change(vrm="EX01PRD")
    expired["entry"]["expires_at"] = (NOW - timedelta(hours=1)).isoformat()
    listed = make_hotlist_change(vrm="BD51 SMR", reason="stolen")
    await run.send(TOPICS.reference, listed, expired)
    first = make_read(vrm="BD51SMR", camera_id="CAM-1")
    out = await run.send(TOPICS.anpr, first, make_read(vrm="ZZ99ZZZ"), make_read(vrm="EX01PRD"))
    hit, other, gone = run.enrichments(out)
    (entry,) = hit["history"]["hotlist"]
    assert entry["match"] == "exact" and entry["id"] == listed["id"] and entry["reason"] == "stolen"
    assert hit["history"]["trail"] == []
    assert other["history"] == {"hotlist": []} and gone["history"] == {"hotlist": []}
    assert "partial" not in hit
    out = await run.send(
        TOPICS.anpr, make_read(vrm="8D5I 5MR"), make_read(vrm="BD51SMR", camera_id="CAM-2")
    )
    misread, again = run.enrichments(out)  # a misread of the plate, and the plate once more
    assert [h["match"] for h in misread["history"]["hotlist"]] == ["misread"]
    assert misread["history"]["trail"] == []  # a trail is the plate's as read
    assert [r["camera_id"] for r in again["history"]["trail"]] == ["CAM-1"]
    (seen,) = run.enrichments(
        await run.send(TOPICS.anpr, make_read(vrm="BD51 SMR", camera_id="CAM-3"))
    )
    assert [r["camera_id"] for r in seen["history"]["trail"]] == ["CAM-2", "CAM-1"]
    (redelivered,) = run.enrichments(await run.send(TOPICS.anpr, first))
    assert [r["camera_id"] for r in redelivered["history"]["trail"]] == ["CAM-3", "CAM-2"]
    # Moved to another plate, then deleted: the old plate no longer hits.
    await run.send(TOPICS.reference, {**listed, "entry": {"vrm": "YY11YYY", "reason": "firearms"}})
    out = await run.send(TOPICS.anpr, make_read(vrm="BD51SMR"), make_read(vrm="YY11YYY"))
    old, new = run.enrichments(out)
    assert old["history"]["hotlist"] == [] and new["history"]["hotlist"][0]["reason"] == "firearms"
    await run.send(TOPICS.reference, {"kind": "hotlist", "op": "delete", "id": listed["id"]})
    (deleted,) = run.enrichments(await run.send(TOPICS.anpr, make_read(vrm="YY11YYY")))
    assert deleted["history"]["hotlist"] == []


async def test_calls_and_incidents_have_history_markers_and_nearest_units(geo: GeoIndex) -> None:
    run = Run(geo)
    address = "7 Marker Lane, Birmingham"
    here = {"lat": 52.4862, "lon": -1.8904, "address": address}
    await run.send(
        TOPICS.reference,
        {
            "kind": "address_marker",
            "op": "upsert",
            "id": "AM-1",
            "entry": {"address": address.upper(), "marker": "weapons"},
        },
        {
            "kind": "person_marker",
            "op": "upsert",
            "id": "PM-1",
            "entry": {"person_id": "P-77", "marker": "violence_to_officers"},
        },
    )
    await run.send(
        TOPICS.officer_locations,
        make_officer_location(officer_id="U-NEAR", at_point=(52.4865, -1.8904), callsign="BW-1"),
        make_officer_location(officer_id="U-BUSY", at_point=(52.4863, -1.8904), status="committed"),
    )
    run.p._layers_checked = None
    calls = [
        make_call(
            location=here,
            caller={"person_id": "P-77"},
            category="assault",
            received_at=(NOW - timedelta(days=2 - i)).isoformat(),
        )
        for i in range(3)
    ]
    await run.send(TOPICS.calls, *calls[:2])
    await run.send(TOPICS.calls, calls[1])  # a redelivery counts once
    (e,) = run.enrichments(await run.send(TOPICS.calls, calls[2]))
    h = e["history"]
    assert h["calls_at_address"] == {"count": 3, "recent": [c["call_id"] for c in reversed(calls)]}
    assert h["calls_by_person"]["count"] == 3
    assert h["nearby"]["count"] == 2 and h["nearby"]["by_category"] == {"assault": 2}
    assert {m["marker"] for m in h["markers"]} == {"weapons", "violence_to_officers"}
    assert h["incidents_at_address"] == {"count": 0, "recent": []}
    assert h["recent_calls_nearby"]["count"] == 0  # the others are days old
    assert [u["officer_id"] for u in e["nearest_units"]] == ["U-NEAR"]
    incident = make_incident(
        location=here, persons=[{"person_id": "P-77", "role": "victim"}], at=NOW.isoformat()
    )
    (i,) = run.enrichments(await run.send(TOPICS.incidents, incident))
    ih = i["history"]
    assert {m["marker"] for m in ih["markers"]} == {"weapons", "violence_to_officers"}
    assert ih["calls_at_address"]["count"] == 3 and ih["calls_nearby"]["count"] == 3
    assert ih["incidents_at_address"] == {"count": 0, "recent": []}
    assert [u["officer_id"] for u in i["nearest_units"]] == ["U-NEAR"]
    later = make_call(location=here, received_at=(NOW + timedelta(minutes=1)).isoformat())
    (c,) = run.enrichments(await run.send(TOPICS.calls, later))
    assert c["history"]["incidents_at_address"] == {"count": 1, "recent": [incident["incident_id"]]}
    assert c["history"]["incidents_nearby"]["count"] == 1


async def test_vehicles_of_open_incidents_are_found_by_reads_until_closed(geo: GeoIndex) -> None:
    run = Run(geo)
    incident = make_incident(
        vehicles=[{"vrm": "RB12 BER", "role": "suspect"}], category="robbery", units=["OFF-3"]
    )
    await run.send(TOPICS.incidents, incident)
    out = await run.send(TOPICS.anpr, make_read(vrm="R812 8ER"))  # a misread finds it too
    (e,) = run.enrichments(out)
    (link,) = e["history"]["linked_incidents"]
    assert (link["incident_id"], link["role"], link["units"]) == (
        incident["incident_id"],
        "suspect",
        ["OFF-3"],
    )
    assert "vehicle_linked_to_incident" in [a.rule_id for a in out.alerts]
    await run.send(TOPICS.incidents, {**incident, "event": "closed"})
    (after,) = run.enrichments(await run.send(TOPICS.anpr, make_read(vrm="RB12BER")))
    assert "linked_incidents" not in after["history"]


async def test_repeated_hits_fold_into_one_open_alert_and_redeliveries_do_not_count(
    geo: GeoIndex,
) -> None:
    run = Run(geo)
    await run.send(TOPICS.reference, make_hotlist_change(vrm="GR0U P11", reason="stolen"))
    reads = [make_read(vrm="GR0UP11", camera_id=f"CAM-G{i}") for i in range(3)]

    async def hit(i: int, minute: float) -> AlertV1:
        run.now = NOW + timedelta(minutes=minute)
        (alert,) = (await run.send(TOPICS.anpr, reads[i])).alerts
        return alert

    first, second = await hit(0, 0), await hit(1, 2)
    assert second.alert_id == first.alert_id and (first.version, second.version) == (1, 2)
    assert second.details["hits"] == 2 and "2 hits since" in second.summary
    assert second.created_at == first.created_at
    again = await hit(1, 2.5)  # a redelivery of the second read
    assert (again.alert_id, again.version) == (first.alert_id, 2)
    later = await hit(2, 30)  # past the 5-minute window: a new alert
    assert later.alert_id != first.alert_id and later.version == 1


async def test_geofences_and_places_change_at_run_time(geo: GeoIndex) -> None:
    run = Run(geo)
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
    try:
        await run.send(TOPICS.reference, fence, place)
        (e,) = run.enrichments(await run.send(TOPICS.calls, make_call()))
        assert e["geofences"] == [{"id": "GF-1", "name": "Stadium"}]
        assert e["nearby_places"]["care_home"]["name"] == "Care home (generated)"
        assert e["reference_version"].endswith("/geofences-1/places-1")
        await run.send(TOPICS.reference, {"kind": "geofence", "op": "delete", "id": "GF-1"})
        (e,) = run.enrichments(await run.send(TOPICS.calls, make_call()))
        assert e["geofences"] == [] and e["reference_version"].endswith("/geofences-2/places-1")
    finally:
        geo.extra_places = {}  # the session's GeoIndex is shared with other tests


async def test_a_snoozed_alert_is_dropped_counted_and_logged_and_others_go_out(
    geo: GeoIndex, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(geo)
    until = (NOW + timedelta(hours=1)).isoformat()
    await run.send(
        TOPICS.reference,
        make_hotlist_change(vrm="BX15 OKT"),
        make_hotlist_change(vrm="CT12 ZEN"),
        {
            "kind": "snooze",
            "op": "upsert",
            "id": "SN-1",
            "entry": {
                "rule_id": "anpr_hotlist_hit",
                "vrm": "BX15OKT",
                "until": until,
                "by": "an-1",
            },
        },
    )
    snoozed, other = make_read(vrm="8X15 0KT"), make_read(vrm="CT12 ZEN")  # a misread of it
    with caplog.at_level(logging.INFO, logger="streams.pipeline"):
        out = await run.send(TOPICS.anpr, {"reads": [snoozed, other]})
    alerts = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.alerts]
    assert [a["source_event_ids"] for a in alerts] == [[other["read_id"]]]
    assert [a.source_event_ids for a in out.alerts] == [[other["read_id"]]]
    p = run.p
    assert p.stats.suppressed == {"anpr_hotlist_hit": 1} and p.stats.alerts == 1
    assert p.snoozes.version == 1 and len(p.snoozes) == 1
    (line,) = [r.getMessage() for r in caplog.records if "snoozed by" in r.getMessage()]
    assert "SN-1" in line and "anpr_hotlist_hit" in line
    enriched = [v for t, _, v in out.messages if t == TOPICS.enriched]
    assert len(enriched) == 1  # the read itself still goes out enriched


async def test_a_lifted_or_expired_snooze_holds_nothing_back(geo: GeoIndex) -> None:
    run = Run(geo)
    await run.send(
        TOPICS.reference,
        make_hotlist_change(vrm="BX15 OKT"),
        {
            "kind": "snooze",
            "op": "upsert",
            "id": "SN-1",
            "entry": {
                "vrm": "BX15OKT",
                "until": (NOW + timedelta(minutes=5)).isoformat(),
                "by": "a",
            },
        },
    )
    first = await run.send(TOPICS.anpr, make_read(vrm="BX15OKT"))
    assert first.alerts == [] and run.p.stats.suppressed["anpr_hotlist_hit"] == 1
    run.now = NOW + timedelta(minutes=5)  # expired: alerts flow again
    expired = await run.send(TOPICS.anpr, make_read(vrm="BX15OKT"))
    assert [a.rule_id for a in expired.alerts] == ["anpr_hotlist_hit"]
    await run.send(TOPICS.reference, {"kind": "snooze", "op": "delete", "id": "SN-1"})
    run.now = NOW + timedelta(hours=1)  # past the hotlist hit's open-alert window
    lifted = await run.send(TOPICS.anpr, make_read(vrm="BX15OKT"))
    assert [a.rule_id for a in lifted.alerts] == ["anpr_hotlist_hit"]
    assert run.p.stats.suppressed["anpr_hotlist_hit"] == 1 and run.p.snoozes.version == 2


async def test_officer_pings_are_recorded_for_nearest_units_without_history(geo: GeoIndex) -> None:
    run = Run(geo)
    out = await run.send(TOPICS.officer_locations, make_officer_location(officer_id="U-1"))
    (e,) = run.enrichments(out)
    assert e["kind"] == "officer_location" and "history" not in e and "partial" not in e
    assert set(await run.stores.reference.officer_states()) == {"U-1"}
