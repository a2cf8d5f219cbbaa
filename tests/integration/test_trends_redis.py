"""Trend snapshots on a real Redis (replaced per partition, expiring), and the leader's
anomaly check reading them: a ward's surge becomes one analyst alert, sent again only
as a higher version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from analytics.trends import TrendFeed, TrendSnapshot
from enrichers.geo import GeoIndex
from enrichers.trend_store import KEEP, RedisTrendStore, hour_tag
from rtic.schemas import Role
from rtic.settings import Settings
from streams.trends import AnomalyCheck

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(minute=40, second=0, microsecond=0)
HOUR = NOW.replace(minute=0)
LADYWOOD, BIRMINGHAM = "E05001193", "E08000025"


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[RedisTrendStore]:
    s = RedisTrendStore.from_url(settings.redis_url, prefix=settings.topic_prefix)
    yield s
    keys = [
        k async for k in s.redis.scan_iter(match=f"{settings.topic_prefix}rtic:*", count=10_000)
    ]
    if keys:
        await s.redis.delete(*keys)
    await s.close()


def snap(hour: datetime, partition: int, wards: dict[str, float]) -> bytes:
    counts = {"calls.ward": wards, "calls.total": {"all": sum(wards.values())}}
    return (
        TrendSnapshot(hour=hour, partition=partition, counts=counts, published_at=NOW)
        .model_dump_json()
        .encode()
    )


async def test_snapshots_replace_their_partitions_and_expire_after_30_days(
    store: RedisTrendStore, settings: Settings
) -> None:
    await store.put([(HOUR, 0, snap(HOUR, 0, {"W": 1.0})), (HOUR, 1, snap(HOUR, 1, {"W": 2.0}))])
    await store.put([(HOUR, 0, snap(HOUR, 0, {"W": 4.0}))])
    found = await store.read([HOUR, HOUR - timedelta(hours=1)])
    assert list(found) == [HOUR]
    got = sorted(
        TrendSnapshot.model_validate_json(v).counts["calls.ward"]["W"] for v in found[HOUR]
    )
    assert got == [2.0, 4.0]
    ttl = await store.redis.ttl(f"{settings.topic_prefix}rtic:trends:{hour_tag(HOUR)}")
    assert (KEEP - timedelta(hours=2)).total_seconds() < ttl <= KEEP.total_seconds()


async def test_a_surge_in_a_ward_raises_one_alert_then_higher_versions(
    store: RedisTrendStore, settings: Settings, geo: GeoIndex
) -> None:
    # Eight days of history: about one call an hour in Ladywood, in every hour.
    rng = np.random.default_rng(4)
    hours = [HOUR - timedelta(hours=h) for h in range(1, 8 * 24)]
    await store.put([(h, 0, snap(h, 0, {LADYWOOD: float(rng.poisson(1.0))})) for h in hours])
    await store.put([(HOUR, 0, snap(HOUR, 0, {LADYWOOD: 9.0}))])
    worker = SimpleNamespace(settings=settings, pipeline=lambda: SimpleNamespace(geo=geo))
    check = AnomalyCheck(worker, TrendFeed(store))  # type: ignore[arg-type]
    alerts = await check.alerts(NOW)
    [ward] = [a for a in alerts if a.details["level"] == "ward"]
    assert ward.alert_id == f"demand_anomaly:ward:{LADYWOOD}:{HOUR:%Y%m%dT%H}"
    assert ward.details["name"] == "Ladywood" and ward.area == [BIRMINGHAM, LADYWOOD]
    assert ward.details["observed"] == 9 and ward.details["expected"] < 2.5
    assert ward.details["p_value"] <= settings.anomaly_alpha and ward.location is not None
    assert ward.audience.roles == [Role.RTIC_ANALYST, Role.SUPERVISOR]
    assert geo.areas([ward.location.lat], [ward.location.lon])[0]["ward"]["code"] == LADYWOOD
    assert await check.alerts(NOW + timedelta(minutes=1)) == []  # nothing new: not sent again
    await store.put([(HOUR, 1, snap(HOUR, 1, {LADYWOOD: 2.0}))])  # two more, another partition
    [again] = [
        a for a in await check.alerts(NOW + timedelta(minutes=2)) if a.alert_id == ward.alert_id
    ]
    assert again.version == ward.version + 2 and again.details["observed"] == 11


async def test_no_alert_without_a_week_of_history(
    store: RedisTrendStore, settings: Settings, geo: GeoIndex
) -> None:
    hours = [HOUR - timedelta(hours=h) for h in range(1, 48)]
    await store.put([(h, 0, snap(h, 0, {LADYWOOD: 1.0})) for h in hours])
    await store.put([(HOUR, 0, snap(HOUR, 0, {LADYWOOD: 30.0}))])
    worker = SimpleNamespace(settings=settings, pipeline=lambda: SimpleNamespace(geo=geo))
    assert await AnomalyCheck(worker, TrendFeed(store)).alerts(NOW) == []  # type: ignore[arg-type]
