"""The worker's verification agent without Faust or Redis: first decision wins, a
verified check raises the actionable alert, not a match raises nothing and is counted,
bad messages become dead letters."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import orjson

from enrichers.verifications import MemoryVerifications
from rtic.schemas import AlertV1, DeadLetterV1, EventKind, PlateReadV1
from rtic.topics import Topics
from rules.base import evaluate
from rules.catalogue import default_rules
from streams.pipeline import RawRecord
from streams.verifications import Verifications
from tests.conftest import NOW, make_read

TOPICS = Topics.with_prefix("t.")
HOTLIST = [r for r in default_rules() if r.spec.rule_id == "anpr_hotlist_hit"]


def pending() -> dict[str, Any]:
    read = PlateReadV1.model_validate(
        make_read(vrm="BX15OKT", camera_id="CAM-9", confidence=0.2, lat=52.4862, lon=-1.8904)
    )
    hit = {"id": "HL1", "vrm": "BX15 OKT", "reason": "wanted_driver", "match": "exact"}
    (alert,) = evaluate(
        HOTLIST, EventKind.ANPR, read, {"area_codes": [], "history": {"hotlist": [hit]}}, NOW
    )
    return alert.model_dump(mode="json")


def message(alert: dict[str, Any], outcome: str, vid: str, **kw: Any) -> bytes:
    return orjson.dumps(
        {
            "verification_id": vid,
            "alert_id": alert["alert_id"],
            "outcome": outcome,
            "by": "off-1",
            "role": "officer",
            "at": NOW.isoformat(),
            "camera_id": "CAM-9",
            "alert": alert,
            **kw,
        }
    )


def record(value: bytes, offset: int = 0) -> RawRecord:
    return RawRecord(TOPICS.verifications, 0, offset, b"k", value)


class Officers:
    async def __call__(self) -> dict[str, dict[str, Any]]:
        at = (NOW - timedelta(minutes=1)).isoformat()
        return {
            "near": {"lat": 52.4870, "lon": -1.8900, "at": at, "status": "available"},
            "far": {"lat": 52.4081, "lon": -1.5106, "at": at, "status": "available"},
        }


def agent(store: MemoryVerifications | None = None) -> Verifications:
    rules = default_rules()
    return Verifications(
        TOPICS,
        store or MemoryVerifications(),
        Officers(),
        lambda: rules,
        lambda: NOW,
        lambda rec, reason: (
            TOPICS.dead_letter,
            rec.topic.encode(),
            orjson.dumps(
                DeadLetterV1(
                    source_topic=rec.topic,
                    partition=rec.partition,
                    offset=rec.offset,
                    raw=base64.b64encode(rec.value or b"").decode(),
                    reason=reason,
                    at=NOW,
                ).model_dump(mode="json")
            ),
        ),
    )


async def test_the_first_verified_decision_raises_the_actionable_alert_once() -> None:
    store = MemoryVerifications()
    a, alert = agent(store), pending()
    out = await a.process(record(message(alert, "verified", "v-1")))
    (hit,) = out.alerts
    assert hit.rule_id == "anpr_verified_hit" and hit.severity == "critical"
    assert hit.audience.officers == ["off-1", "near"]
    assert hit.source_event_ids == [*alert["source_event_ids"], "v-1"]
    ((topic, key, value),) = out.messages
    assert topic == TOPICS.alerts and key == hit.alert_id.encode()
    assert AlertV1.model_validate_json(value) == hit
    # The winner again (a redelivery): the same alert; a later decision: nothing.
    again = await a.process(record(message(alert, "verified", "v-1")))
    assert [x.alert_id for x in again.alerts] == [hit.alert_id]
    late = await a.process(record(message(alert, "not_a_match", "v-2")))
    assert late.messages == [] and a.ignored == 1
    assert await store.camera_counts() == {"CAM-9": {"verified": 1, "not_a_match": 0}}


async def test_not_a_match_raises_nothing_and_counts_against_the_camera() -> None:
    store = MemoryVerifications()
    out = await agent(store).process(record(message(pending(), "not_a_match", "v-1")))
    assert out.messages == [] and out.alerts == []
    assert await store.camera_counts() == {"CAM-9": {"verified": 0, "not_a_match": 1}}


async def test_bad_messages_become_dead_letters() -> None:
    a, alert = agent(), pending()
    bad = [
        b"\xff not json",
        b"[]",
        orjson.dumps({"alert_id": "x"}),
        message(alert, "maybe", "v-1"),
        message({**alert, "rule_id": "repeat_calls"}, "verified", "v-2"),
        message(alert, "verified", "v-3", alert_id="someone-else"),
        message({**alert, "severity": "apocalyptic"}, "verified", "v-4"),
    ]
    for i, raw in enumerate(bad):
        out = await a.process(record(raw, i))
        ((topic, _, value),) = out.messages
        letter = DeadLetterV1.model_validate_json(value)
        assert topic == TOPICS.dead_letter and letter.offset == i and letter.reason
        assert base64.b64decode(letter.raw) == raw
    assert a.decided == 0
