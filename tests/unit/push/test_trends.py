"""``GET /api/desk/trends``: who may read it (each role), what it answers from the trend
store, and what a bad request or an unreadable store is told."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from analytics.trends import PANEL_HOURS, TrendSnapshot
from enrichers.trend_store import MemoryTrendStore
from push.trends import DeskTrends
from rtic.errors import ServiceError
from tests.conftest import NOW
from tests.unit.push.test_web import make_app, token

HOUR = NOW.replace(minute=0)


def snapshot(hour: datetime, partition: int, wards: dict[str, float]) -> bytes:
    total = {"all": sum(wards.values())}
    counts = {
        "calls.ward": wards,
        "calls.district": {"E08000025": total["all"]},
        "calls.total": total,
    }
    return (
        TrendSnapshot(hour=hour, partition=partition, counts=counts, published_at=NOW)
        .model_dump_json()
        .encode()
    )


@pytest.mark.parametrize(
    "role, expected",
    [
        ("rtic_analyst", 200),
        ("supervisor", 200),
        ("officer", 403),
        ("case_officer", 403),
        ("citizen", 403),
        ("contact_handler", 403),
        (None, 401),
    ],
)
def test_only_analysts_and_supervisors_read_the_trends(role: str | None, expected: int) -> None:
    _, http = make_app()
    with http:
        headers = {"Authorization": f"Bearer {token(role)}"} if role else {}
        answer = http.get("/api/desk/trends", headers=headers)
        assert answer.status_code == expected, answer.text
        if expected == 200:
            body = answer.json()
            assert len(body["hours"]) == PANEL_HOURS and body["areas"] == []
            assert body["observed_since"] is None and body["calls"]["total"] == 0


async def test_the_panel_is_read_from_the_store_summed_over_partitions() -> None:
    store = MemoryTrendStore()
    await store.put(
        [
            (HOUR, 0, snapshot(HOUR, 0, {"E05001193": 3.0})),
            (HOUR, 1, snapshot(HOUR, 1, {"E05001193": 2.0, "E05001194": 1.0})),
            (
                HOUR - timedelta(days=7),
                0,
                snapshot(HOUR - timedelta(days=7), 0, {"E05001193": 1.0}),
            ),
        ]
    )
    _, http = make_app()
    http.app.state.desk_trends = DeskTrends(store, lambda: NOW)  # type: ignore[attr-defined]
    with http:
        headers = {"Authorization": f"Bearer {token('supervisor')}"}
        body = http.get("/api/desk/trends?level=ward&top=1", headers=headers).json()
        assert [a["code"] for a in body["areas"]] == ["E05001193"] and body["area_count"] == 2
        ward = body["areas"][0]
        assert (
            ward["last_24h"][-1] == 5.0 and ward["baseline"][-1] == 1.0 and body["weeks"][-1] == 1
        )
        district = http.get("/api/desk/trends", headers=headers).json()
        assert district["level"] == "district" and district["areas"][0]["total"] == 6.0


def test_a_bad_level_or_top_is_told_and_an_unreadable_store_is_503() -> None:
    class Down:
        async def put(self, snapshots: Sequence[tuple[datetime, int, bytes]]) -> None: ...

        async def read(self, hours: Sequence[datetime]) -> dict[datetime, list[bytes]]:
            raise ServiceError("redis: ConnectionError")

    _, http = make_app()
    with http:
        headers = {"Authorization": f"Bearer {token('rtic_analyst')}"}
        for query in ("level=lsoa", "top=0", "top=lots", "top=1000"):
            answer = http.get(f"/api/desk/trends?{query}", headers=headers)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"
        http.app.state.desk_trends = DeskTrends(Down(), lambda: NOW)  # type: ignore[attr-defined]
        answer = http.get("/api/desk/trends", headers=headers)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
