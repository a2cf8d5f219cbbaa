"""The batch pipeline without services: place enrichment, dead letters, camera batches.

History is absent here (``history=None``), which is itself a real path: the
events go on, marked partial. The path with Redis is in tests/integration.
"""

from __future__ import annotations

import base64

import orjson

from enrichers.geo import GeoIndex
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import LONDON, NOW, make_call, make_read

TOPICS = Topics.with_prefix("unit.")


def pipeline(geo: GeoIndex) -> Pipeline:
    return Pipeline(TOPICS, geo, None, default_rules(), clock=lambda: NOW)


def rec(topic: str, value: bytes, offset: int = 0, key: bytes | None = b"k") -> RawRecord:
    return RawRecord(topic, 3, offset, key, value)


async def test_a_call_comes_out_enriched_and_partial_without_history(geo: GeoIndex) -> None:
    call = make_call(extra_field="kept")
    out = await pipeline(geo).process([rec(TOPICS.calls, orjson.dumps(call))])
    ((topic, key, value),) = out.messages
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
