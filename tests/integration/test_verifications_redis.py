"""Plate-check decisions on a real Redis: the first decision per alert version wins,
racing decisions are counted once, per camera."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from enrichers.verifications import RedisVerifications
from rtic.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[RedisVerifications]:
    s = RedisVerifications.from_url(settings.redis_url, prefix=settings.topic_prefix)
    yield s
    keys = [
        k async for k in s.redis.scan_iter(match=f"{settings.topic_prefix}rtic:*", count=10_000)
    ]
    if keys:
        await s.redis.delete(*keys)
    await s.close()


async def test_racing_decisions_one_wins_and_is_counted_once(store: RedisVerifications) -> None:
    answers = await asyncio.gather(
        *(store.decide("A1", 1, f"v{i}", "not_a_match", "CAM-1") for i in range(20))
    )
    winners = {a.verification_id for a in answers}
    assert len(winners) == 1
    (winner,) = winners
    assert sum(a.first for a in answers) == 1
    again = await store.decide("A1", 1, winner, "not_a_match", "CAM-1")  # a redelivery
    assert again.first and again.verification_id == winner
    assert await store.camera_counts() == {"CAM-1": {"verified": 0, "not_a_match": 1}}


async def test_each_version_is_its_own_check_and_cameras_are_apart(
    store: RedisVerifications,
) -> None:
    assert (await store.decide("A1", 1, "v1", "not_a_match", "CAM-1")).first
    assert (await store.decide("A1", 2, "v2", "verified", "CAM-2")).first
    assert (await store.decide("A2", 1, "v3", "verified", "")).first  # no camera: not counted
    assert await store.camera_counts() == {
        "CAM-1": {"verified": 0, "not_a_match": 1},
        "CAM-2": {"verified": 1, "not_a_match": 0},
    }
    ttl = await store.redis.ttl(store.keys.verification("A1", 1))
    assert 29 * 86_400 < ttl <= 30 * 86_400
