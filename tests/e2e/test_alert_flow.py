"""End to end on real parts: Tansu, Redis, the Faust worker and the gateway as processes.

A hotlist entry goes in through ``rtic.reference.v1``, a misread of its plate
through ``rtic.anpr.v1``, and the alert must arrive at a subscribed websocket
client; bad messages land in the dead-letter topic while the stream goes on.
"""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime

import orjson
import pytest

from tests.conftest import make_call, make_hotlist_change, make_read
from tests.engine import Engine, next_message

pytestmark = pytest.mark.e2e


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def test_misread_of_hotlisted_plate_alerts_a_subscribed_client(engine: Engine) -> None:
    topics = engine.topics
    async with engine.client(severities=["critical", "high"]) as ws, engine.producer() as producer:
        change = make_hotlist_change(vrm="BX15 OKT", reason="firearms")
        await engine.send(producer, topics.reference, change["id"], change)
        await engine.until_listed(change["id"])  # reference and ANPR are separate agents
        read = make_read(vrm="8X15 0KT", camera_id="CAM-E2E-1", read_at=_now())
        started = time.monotonic()
        await engine.send(producer, topics.anpr, read["camera_id"], read)
        alert = await next_message(ws, "alert", timeout=10, rule_id="anpr_hotlist_hit")
        latency = time.monotonic() - started
    assert alert["source_event_ids"] == [read["read_id"]]
    assert alert["severity"] == "critical"
    assert alert["details"]["match"] == "misread"
    assert alert["details"]["vrm_listed"] == "BX15 OKT"
    assert "E08000025" in alert["area"]  # Birmingham
    assert "why" in alert["details"]
    assert latency < 5, f"alert took {latency:.2f} s"


async def test_bad_messages_go_to_dead_letter_and_the_stream_goes_on(engine: Engine) -> None:
    topics = engine.topics
    async with engine.tail(topics.dead_letter) as consumer:
        async with engine.client() as ws, engine.producer() as producer:
            change = make_hotlist_change(vrm="KL66 XYZ", reason="wanted_driver")
            await engine.send(producer, topics.reference, change["id"], change)
            await engine.until_listed(change["id"])
            bad = [
                (topics.anpr, b"\xff\xfe not json"),
                (topics.anpr, b'["a", "list"]'),
                (topics.anpr, orjson.dumps({"read_id": "R-BAD", "vrm": "X"})),  # missing fields
                (topics.calls, orjson.dumps(make_call(channel="carrier pigeon"))),
            ]
            for topic, raw in bad:
                await producer.send_and_wait(topic, raw, key=b"bad")
            good = make_read(vrm="KL66XYZ", camera_id="CAM-E2E-2", read_at=_now())
            await engine.send(producer, topics.anpr, good["camera_id"], good)
            alert = await next_message(ws, "alert", timeout=10, rule_id="anpr_hotlist_hit")
            assert alert["source_event_ids"] == [good["read_id"]]
        letters = []
        async with asyncio.timeout(10):
            while len(letters) < len(bad):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    letters.extend(orjson.loads(r.value) for r in records)
    by_raw = {base64.b64decode(letter["raw"]): letter for letter in letters}
    for topic, raw in bad:
        letter = by_raw[raw]
        assert letter["source_topic"] == topic
        assert letter["offset"] >= 0 and letter["partition"] >= 0
        assert letter["reason"]
    assert "channel" in by_raw[bad[3][1]]["reason"]


async def test_repeat_calls_from_one_address_alert_on_the_third(engine: Engine) -> None:
    topics = engine.topics
    address = f"{int(time.time() * 1000) % 100000} Repeat Road, Birmingham"
    async with engine.client() as ws, engine.producer() as producer:
        calls = [
            make_call(
                location={"lat": 52.48, "lon": -1.89, "address": address},
                caller=None,
                category="burglary",  # domestic abuse fires on the second call
                received_at=_now(),
            )
            for _ in range(3)
        ]
        for call in calls[:2]:
            await engine.send(producer, topics.calls, call["call_id"], call)
        await engine.send(producer, topics.calls, calls[2]["call_id"], calls[2])
        alert = await next_message(ws, "alert", timeout=10, rule_id="repeat_calls")
    assert alert["source_event_ids"] == [calls[2]["call_id"]]
    assert alert["details"]["count"] == 3


async def test_tokens_are_required_and_roles_are_respected(engine: Engine) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as err:
        async with connect(engine.ws_url):
            pass
    assert err.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        async with connect(engine.ws_url + "?token=forged.token.value"):
            pass
    async with (
        engine.client(role="citizen", sub="citizen-1", events=True) as citizen,
        engine.client(
            role="officer",
            sub="officer-far",
            radius_m=500.0,
            position={"lat": 52.4081, "lon": -1.5106},
        ) as far_officer,
        engine.client(role="rtic_analyst", sub="analyst-2") as analyst,
        engine.producer() as producer,
    ):
        change = make_hotlist_change(vrm="CT12 ZEN", reason="stolen")
        await engine.send(producer, engine.topics.reference, change["id"], change)
        await engine.until_listed(change["id"])
        read = make_read(vrm="CT12ZEN", read_at=_now())  # in Birmingham, far from Coventry
        await engine.send(producer, engine.topics.anpr, read["camera_id"], read)
        alert = await next_message(analyst, "alert", timeout=10, rule_id="anpr_hotlist_hit")
        assert alert["source_event_ids"] == [read["read_id"]]
        for ws in (citizen, far_officer):
            with pytest.raises(TimeoutError):
                await next_message(ws, "alert", timeout=1)
            with pytest.raises(TimeoutError):
                await next_message(ws, "event", timeout=0.2)
