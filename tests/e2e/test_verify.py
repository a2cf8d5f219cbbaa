"""Verify before action, end to end on real parts (Tansu, Redis, the worker and the
gateway as processes, real websockets):

- a low-confidence read of a wanted plate is a pending "check the plate", never critical;
- an officer it was sent to answers ``verify`` and gets ``verify_ack``; the verified,
  critical alert then reaches an officer near the read and not one far away, and the
  desk is told (``verification`` frame);
- a citizen, or an officer the check was never sent to, gets ``not_found``;
- ``not_a_match`` raises nothing and is counted against the camera
  (``GET /api/anpr/cameras``, analysts and supervisors only).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tests.conftest import BIRMINGHAM_CENTRE, make_hotlist_change, make_read
from tests.engine import Engine, next_message

pytestmark = pytest.mark.e2e

NEAR = {"lat": 52.4870, "lon": -1.8900}  # about 100 m from the read
FAR = {"lat": 52.4081, "lon": -1.5106}  # Coventry


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _verify(ws, alert_id: str, outcome: str) -> dict:  # type: ignore[no-untyped-def]
    await ws.send(orjson.dumps({"type": "verify", "alert_id": alert_id, "outcome": outcome}))
    async with asyncio.timeout(10):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("type") in ("verify_ack", "error"):
                return msg


async def test_a_verified_plate_check_reaches_the_officers_around_it(
    engine: Engine, unique
) -> None:  # type: ignore[no-untyped-def]
    topics = engine.topics
    near_id, far_id = unique("off-near"), unique("off-far")
    plate = f"VF{unique('')[-5:].upper():0>5}"[:7]
    async with engine.producer() as producer:
        change = make_hotlist_change(vrm=plate, reason="firearms")
        await engine.send(producer, topics.reference, change["id"], change)
        for officer, at in ((near_id, NEAR), (far_id, FAR)):
            ping = {"officer_id": officer, "at": _now(), "status": "available", **at}
            await engine.send(producer, topics.officer_locations, officer, ping)
        await asyncio.sleep(1.5)  # the entry and the pings land (separate agents)
        async with (
            engine.client(role="rtic_analyst", sub=unique("an")) as desk,
            engine.client(role="officer", sub=near_id, radius_m=1000.0, position=NEAR) as near,
            engine.client(role="officer", sub=far_id, radius_m=1000.0, position=FAR) as far,
            engine.client(role="citizen", sub=unique("cit")) as citizen,
        ):
            read = make_read(vrm=plate, camera_id=unique("CAM"), confidence=0.15, read_at=_now())
            await engine.send(producer, topics.anpr, read["camera_id"], read)
            check = await next_message(near, "alert", timeout=10, rule_id="anpr_hotlist_hit")
            assert check["source_event_ids"] == [read["read_id"]]
            assert check["severity"] == "high"  # a 0.15 read of a firearms plate: not critical
            assert check["title"].startswith("Check the plate")
            v = check["details"]["verification"]
            assert (v["state"], v["read_vrm"], v["camera_id"], v["confidence"]) == (
                "pending",
                plate,
                read["camera_id"],
                0.15,
            )
            await next_message(desk, "alert", timeout=10, alert_id=check["alert_id"])
            for ws in (citizen, far):
                refused = await _verify(ws, check["alert_id"], "verified")
                assert (refused["type"], refused["code"]) == ("error", "not_found")
            ack = await _verify(near, check["alert_id"], "verified")
            assert ack["type"] == "verify_ack" and ack["outcome"] == "verified"
            hit = await next_message(near, "alert", timeout=10, rule_id="anpr_verified_hit")
            assert hit["severity"] == "critical"
            assert hit["source_event_ids"] == [read["read_id"], ack["verification_id"]]
            assert hit["details"]["verification"]["state"] == "verified"
            assert hit["details"]["verified_by"]["by"] == near_id
            assert near_id in hit["audience"]["officers"]
            told = await next_message(desk, "verification", timeout=10)
            assert (told["alert_id"], told["outcome"], told["by"]) == (
                check["alert_id"],
                "verified",
                near_id,
            )
            await next_message(desk, "alert", timeout=10, rule_id="anpr_verified_hit")
            with pytest.raises(TimeoutError):
                await next_message(far, "alert", timeout=2, rule_id="anpr_verified_hit")
            again = await _verify(desk, check["alert_id"], "not_a_match")
            assert (again["type"], again["code"]) == ("error", "not_pending")


async def test_not_a_match_raises_nothing_and_counts_for_the_camera(engine: Engine, unique) -> None:  # type: ignore[no-untyped-def]
    topics = engine.topics
    plate = f"NM{unique('')[-5:].upper():0>5}"[:7]
    camera = unique("CAM-NM")
    async with engine.producer() as producer:
        change = make_hotlist_change(vrm=plate, reason="stolen")
        await engine.send(producer, topics.reference, change["id"], change)
        await engine.until_listed(change["id"])
        async with engine.client(role="rtic_analyst", sub=unique("an")) as desk:
            read = make_read(
                vrm=plate, camera_id=camera, read_at=_now(), at_point=BIRMINGHAM_CENTRE
            )
            await engine.send(producer, topics.anpr, read["camera_id"], read)
            check = await next_message(desk, "alert", timeout=10, rule_id="anpr_hotlist_hit")
            assert check["details"]["verification"]["camera_id"] == camera
            ack = await _verify(desk, check["alert_id"], "not_a_match")
            assert ack["type"] == "verify_ack"
            told = await next_message(desk, "verification", timeout=10)
            assert told["outcome"] == "not_a_match"
            with pytest.raises(TimeoutError):
                await next_message(desk, "alert", timeout=2, rule_id="anpr_verified_hit")
    analyst = {"Authorization": f"Bearer {engine.token('rtic_analyst', 'an-cams')}"}
    officer = {"Authorization": f"Bearer {engine.token('officer', 'off-cams')}"}
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=10) as http:
        assert (await http.get("/api/anpr/cameras", headers=officer)).status_code == 403
        assert (await http.get("/api/anpr/cameras")).status_code == 401
        async with asyncio.timeout(10):
            while True:
                answer = await http.get("/api/anpr/cameras", headers=analyst)
                assert answer.status_code == 200, answer.text
                rows = {r["camera_id"]: r for r in answer.json()["cameras"]}
                if camera in rows and rows[camera]["not_a_match"] == 1:
                    break
                await asyncio.sleep(0.2)
    assert rows[camera]["verified"] == 0 and rows[camera]["pending"] == 0
