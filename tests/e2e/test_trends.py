"""Trends and anomalies through the real engine: the worker's windowed table survives a
restart (its changelog), and a ward's surge over a week of counted history raises a
``demand_anomaly`` alert that reaches an analyst's socket with expected and observed
counts and the probability."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cli.services import free_port
from enrichers.geo import GeoIndex
from rtic.settings import Settings
from tests.conftest import make_call
from tests.engine import Engine, next_message

pytestmark = pytest.mark.e2e

COVENTRY = "E08000026"


@pytest.fixture
def trend_engine(
    tansu_url: str, redis_url: str, tmp_path: Path, unique: Callable[[str], str]
) -> Iterator[Engine]:
    """An engine of its own (its history is this test's; its worker is restarted),
    writing its counts each second and checking for anomalies each second."""
    settings = Settings(
        kafka_url=tansu_url,
        redis_url=redis_url,
        topic_prefix=f"{unique('trends').lower()}.",
        gateway_port=free_port(),
        worker_web_port=free_port(),
        trends_publish_s=1.0,
        anomaly_check_s=1.0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}",
        evidence_dir=tmp_path / "evidence",
    )
    eng = Engine(settings, tmp_path)
    try:
        eng.start()
        yield eng
    finally:
        eng.stop()


def coventry_wards(geo: GeoIndex) -> list[tuple[str, tuple[float, float]]]:
    layer = geo.levels["ward"]
    out = []
    for code, poly in zip(layer.codes, layer.geoms, strict=True):
        pt = poly.representative_point()
        found = geo.areas([pt.y], [pt.x])[0]
        if found.get("district", {}).get("code") == COVENTRY and found["ward"]["code"] == code:
            out.append((str(code), (pt.y, pt.x)))
    return sorted(out)


def a_call(point: tuple[float, float], at: datetime, n: int) -> dict[str, object]:
    """A call from its own caller at its own address (no repeat-call alerts)."""
    return make_call(
        at_point=point,
        received_at=at.isoformat(),
        caller={"person_id": f"P-T{n}", "name": "A Caller", "phone": f"0770090{n:04d}"},
        location={"lat": point[0], "lon": point[1], "address": f"{n} Trend Street, Coventry"},
        category="asb",
        grade=3,
    )


async def test_a_surge_over_a_week_of_history_alerts_and_counts_survive_a_restart(
    trend_engine: Engine, geo: GeoIndex
) -> None:
    engine = trend_engine
    (_, busy_at), (quiet, quiet_at) = coventry_wards(geo)[:2]
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    # Eight days of history, a call an hour in one ward: every hour observed.
    history = [a_call(busy_at, hour - timedelta(hours=h, minutes=-5), h) for h in range(1, 193)]
    surge = [a_call(quiet_at, now, 1000 + i) for i in range(6)]
    async with engine.producer() as producer:
        for call in history + surge[:3]:
            await engine.send(producer, engine.topics.calls, call["call_id"], call)

    async def ward_now() -> float:
        async with httpx.AsyncClient(base_url=engine.base_url) as http:
            answer = await http.get(
                "/api/desk/trends?level=ward&top=200",
                headers={"Authorization": f"Bearer {engine.token('rtic_analyst', 'an-1')}"},
            )
        row = next((a for a in answer.json()["areas"] if a["code"] == quiet), None)
        return row["last_24h"][-1] if row else 0.0

    async def until_counted(n: float) -> None:
        for _ in range(60):
            if await ward_now() >= n:
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"{quiet} not counted to {n}: {await ward_now()}")

    await until_counted(3)  # three calls: at the threshold (min_count) of a quiet ward
    # Stopped as an operator would (its offsets committed): after a crash the calls
    # since the last commit are counted again (at least once, docs/analytics.md).
    await engine.restart_worker()
    alert_id = f"demand_anomaly:ward:{quiet}:{hour:%Y%m%dT%H}"
    async with engine.client("rtic_analyst", "an-1") as ws:
        async with engine.producer() as producer:
            for call in surge[3:]:
                await engine.send(producer, engine.topics.calls, call["call_id"], call)
        # The alert rises with the count: six only if the three counted before the
        # restart came back from the table's changelog.
        async with asyncio.timeout(45):
            while True:
                alert = await next_message(ws, "alert", timeout=45, alert_id=alert_id)
                if alert["details"]["observed"] >= 6:
                    break
    await until_counted(6)
    await asyncio.sleep(2)
    assert await ward_now() == 6  # counted once each
    d = alert["details"]
    assert alert["rule_id"] == "demand_anomaly" and alert["area"] == [COVENTRY, quiet]
    assert d["observed"] == 6 and d["threshold"] == 3 and alert["version"] == 4
    assert d["expected"] < 0.5 and d["p_value"] <= engine.settings.anomaly_alpha
    assert d["history_hours"] >= 168 and d["weeks"] >= 1
    assert "6 calls this hour" in alert["title"] and alert["audience"]["roles"] == [
        "rtic_analyst",
        "supervisor",
    ]
