"""End to end on real parts: an analyst snoozes a rule for a plate over the websocket.

The gateway turns the ``snooze`` message into a reference change on
``rtic.reference.v1``, the worker stores it as a live layer in Redis and holds
back the alerts it matches: a read of the snoozed plate (even misread) raises
no alert while a read of another hotlisted plate still does, until the snooze
is lifted with ``unsnooze``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection

from tests.conftest import make_hotlist_change, make_read
from tests.engine import Engine, next_message

pytestmark = pytest.mark.e2e


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _until_stored(engine: Engine, snooze_id: str, present: bool) -> None:
    """Until the worker has applied the snooze change to Redis (or its removal)."""
    r = aioredis.Redis.from_url(engine.settings.redis_url)
    key = f"{engine.settings.topic_prefix}rtic:ref:snooze"
    try:
        for _ in range(100):  # 10 s
            if bool(await r.hexists(key, snooze_id)) == present:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"snooze {snooze_id} {'not stored' if present else 'not removed'}")
    finally:
        await r.aclose()


async def _alerts_until(
    ws: ClientConnection, read_id: str, timeout: float = 10
) -> list[dict[str, Any]]:
    """Every alert pushed until (and including) the one raised by ``read_id``."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("type") != "alert":
                continue
            seen.append(msg)
            if read_id in msg.get("source_event_ids", []):
                return seen


async def test_an_analyst_snoozes_a_plate_and_only_that_plate_stops_alerting(
    engine: Engine,
) -> None:
    tag = f"{int(time.time() * 1000) % 10_000:04d}"
    snoozed_plate, other_plate = f"SZ{tag[:2]} A{tag[2:]}K", f"SY{tag[:2]} B{tag[2:]}K"
    topics = engine.topics
    async with (
        engine.client(role="rtic_analyst", sub="analyst-snooze") as ws,
        engine.producer() as producer,
    ):
        listed = []
        for plate in (snoozed_plate, other_plate):
            change = make_hotlist_change(vrm=plate, reason="stolen")
            await engine.send(producer, topics.reference, change["id"], change)
            listed.append(change["id"])
        snooze = {
            "type": "snooze",
            "rule_id": "anpr_hotlist_hit",
            "vrm": snoozed_plate,
            "minutes": 60,
            "reason": "e2e: owner recovered the car",
        }
        await ws.send(orjson.dumps(snooze).decode())
        answer = await next_message(ws, "snoozed", timeout=5)
        until = datetime.fromisoformat(answer["until"])
        assert abs(until - (datetime.now(UTC) + timedelta(minutes=60))) < timedelta(seconds=30)
        await _until_stored(engine, answer["snooze_id"], present=True)
        await engine.until_listed(*listed)  # the hotlist entries land too (another partition)

        # The snoozed plate (read as a misread) first, then the other one, from one camera
        # (one partition, so in this order): the first alert to come must be the other's.
        quiet = make_read(vrm=snoozed_plate.replace("S", "5"), camera_id="CAM-SNZ", read_at=_now())
        loud = make_read(vrm=other_plate, camera_id="CAM-SNZ", read_at=_now())
        await engine.send(producer, topics.anpr, quiet["camera_id"], quiet)
        await engine.send(producer, topics.anpr, loud["camera_id"], loud)
        ours = {quiet["read_id"], loud["read_id"]}
        alerts = [
            a for a in await _alerts_until(ws, loud["read_id"]) if ours & set(a["source_event_ids"])
        ]
        assert [a["source_event_ids"] for a in alerts] == [[loud["read_id"]]]
        assert alerts[0]["details"]["vrm"] == other_plate
        with pytest.raises(TimeoutError):  # and nothing for the snoozed read comes later
            await _alerts_until(ws, quiet["read_id"], timeout=1.5)

        # Lifted: the snoozed plate alerts again.
        await ws.send(orjson.dumps({"type": "unsnooze", "snooze_id": answer["snooze_id"]}).decode())
        lifted = await next_message(ws, "unsnoozed", timeout=5)
        assert lifted["snooze_id"] == answer["snooze_id"]
        await _until_stored(engine, answer["snooze_id"], present=False)
        again = make_read(vrm=snoozed_plate, camera_id="CAM-SNZ", read_at=_now())
        await engine.send(producer, topics.anpr, again["camera_id"], again)
        alert = await next_message(ws, "alert", timeout=10, rule_id="anpr_hotlist_hit")
        assert alert["source_event_ids"] == [again["read_id"]]


async def test_an_officer_may_not_snooze(engine: Engine) -> None:
    async with engine.client(role="officer", sub="OFF-SNZ") as ws:
        msg = {"type": "snooze", "rule_id": "anpr_hotlist_hit", "vrm": "AB12CDE", "minutes": 60}
        await ws.send(orjson.dumps(msg).decode())
        error = await next_message(ws, "error", timeout=5)
    assert error["code"] == "forbidden"
