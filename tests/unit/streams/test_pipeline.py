"""The batch pipeline without services: place enrichment, dead letters, camera batches.

History is absent here (``history=None``), which is itself a real path: the
events go on, marked partial. The path with Redis is in tests/integration.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from enrichers.geo import GeoIndex
from rtic.errors import ServiceError
from rtic.plates import canonical_vrm
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


# ---- snoozes ------------------------------------------------------------------------------


class SnoozeHistory:
    """A stand-in history store: a hotlist, a live snooze layer, and open-alert grouping."""

    def __init__(self, hotlist: dict[str, str], snoozes: dict[str, dict[str, Any]]) -> None:
        self.hotlist = hotlist  # canonical plate -> listed plate
        self.snoozes = snoozes
        self.version = 1

    async def officer_states(self) -> dict[str, Any]:
        return {}

    async def reference_versions(self, kinds: Sequence[str]) -> list[int]:
        return [self.version if k == "snooze" else 0 for k in kinds]

    async def reference_entries(self, kind: str) -> tuple[int, dict[str, Any]]:
        assert kind == "snooze"
        return self.version, dict(self.snoozes)

    async def enrich(self, kind: EventKind, models: Sequence[Any], *_: Any, **__: Any) -> list:
        blocks = []
        for read in models:
            listed = self.hotlist.get(canonical_vrm(read.vrm))
            hits = [{"id": f"HL-{listed}", "vrm": listed, "reason": "stolen", "match": "exact"}]
            blocks.append({"history": {"hotlist": hits if listed else []}})
        return blocks

    async def group_alerts(self, hits: Sequence[tuple[str, str, str, float, float]]) -> list:
        return [(alert_id, 1, 1, t) for _, alert_id, _, _, t in hits]


async def test_a_snoozed_alert_is_dropped_counted_and_logged_and_others_go_out(
    geo: GeoIndex, caplog: pytest.LogCaptureFixture
) -> None:
    until = (NOW + timedelta(hours=1)).isoformat()
    history = SnoozeHistory(
        {canonical_vrm(p): p for p in ("BX15 OKT", "CT12 ZEN")},
        {"SN-1": {"rule_id": "anpr_hotlist_hit", "vrm": "BX15OKT", "until": until, "by": "an-1"}},
    )
    p = Pipeline(TOPICS, geo, history, default_rules(), clock=lambda: NOW)  # type: ignore[arg-type]
    snoozed, other = make_read(vrm="8X15 0KT"), make_read(vrm="CT12 ZEN")  # a misread of it
    with caplog.at_level(logging.INFO, logger="streams.pipeline"):
        out = await p.process([rec(TOPICS.anpr, orjson.dumps({"reads": [snoozed, other]}))])
    alerts = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.alerts]
    assert [a["source_event_ids"] for a in alerts] == [[other["read_id"]]]
    assert [a.source_event_ids for a in out.alerts] == [[other["read_id"]]]
    assert p.stats.suppressed == {"anpr_hotlist_hit": 1} and p.stats.alerts == 1
    assert p.snoozes.version == 1 and len(p.snoozes) == 1
    (line,) = [r.getMessage() for r in caplog.records if "snoozed by" in r.getMessage()]
    assert "SN-1" in line and "anpr_hotlist_hit" in line
    enriched = [v for t, _, v in out.messages if t == TOPICS.enriched]
    assert len(enriched) == 1  # the read itself still goes out enriched


async def test_a_lifted_or_expired_snooze_holds_nothing_back(geo: GeoIndex) -> None:
    clock = [NOW]
    history = SnoozeHistory(
        {canonical_vrm("BX15 OKT"): "BX15 OKT"},
        {"SN-1": {"vrm": "BX15OKT", "until": (NOW + timedelta(minutes=5)).isoformat(), "by": "a"}},
    )
    p = Pipeline(TOPICS, geo, history, default_rules(), clock=lambda: clock[0])  # type: ignore[arg-type]
    first = await p.process([rec(TOPICS.anpr, orjson.dumps(make_read(vrm="BX15OKT")))])
    assert first.alerts == [] and p.stats.suppressed["anpr_hotlist_hit"] == 1
    clock[0] = NOW + timedelta(minutes=5)  # expired: alerts flow again
    expired = await p.process([rec(TOPICS.anpr, orjson.dumps(make_read(vrm="BX15OKT")))])
    assert [a.rule_id for a in expired.alerts] == ["anpr_hotlist_hit"]
    clock[0] = NOW
    history.snoozes, history.version = {}, 2  # lifted (op: delete): the layer moves on
    p._layers_checked = None  # as after a reference batch: look at the layers again
    lifted = await p.process([rec(TOPICS.anpr, orjson.dumps(make_read(vrm="BX15OKT")))])
    assert [a.rule_id for a in lifted.alerts] == ["anpr_hotlist_hit"]
    assert p.stats.suppressed["anpr_hotlist_hit"] == 1 and p.snoozes.version == 2
