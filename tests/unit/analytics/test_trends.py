"""Trend counts: what an event counts for, snapshots merged over partitions, the desk's
panel (last 24 hours against the same hours of earlier weeks) and the feed from a store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from analytics.trends import (
    PANEL_HOURS,
    TrendBook,
    TrendFeed,
    TrendSnapshot,
    attend_counters,
    event_counters,
)
from enrichers.trend_store import MemoryTrendStore

NOW = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
HOUR = NOW.replace(minute=0)


def snap(hour: datetime, partition: int, **series: dict[str, float]) -> TrendSnapshot:
    counts = {k.replace("__", "."): v for k, v in series.items()}
    return TrendSnapshot(hour=hour, partition=partition, counts=counts, published_at=NOW)


def test_a_call_counts_by_area_grade_category_and_in_total() -> None:
    got = event_counters("calls", {"district": "E08000025", "ward": "E05001193"}, 2, "burglary")
    assert got == [
        ("calls.district", "E08000025", 1.0),
        ("calls.ward", "E05001193", 1.0),
        ("calls.grade", "2", 1.0),
        ("calls.category", "burglary", 1.0),
        ("calls.total", "all", 1.0),
    ]
    outside = event_counters("incidents", {}, None, "other")
    assert [s for s, _, _ in outside] == [
        "incidents.grade",
        "incidents.category",
        "incidents.total",
    ]
    assert outside[0][1] == "ungraded"


def test_time_to_attend_and_travel_by_grade() -> None:
    created = NOW - timedelta(minutes=12)
    got = attend_counters(1, created, NOW - timedelta(minutes=9), NOW)
    assert got == [
        ("attend.count", "1", 1.0),
        ("attend.seconds", "1", 720.0),
        ("travel.count", "1", 1.0),
        ("travel.seconds", "1", 540.0),
    ]
    assert attend_counters(2, NOW + timedelta(minutes=1), None, NOW) == []  # clocks out of step


def test_partitions_are_summed_and_a_newer_snapshot_replaces_its_own() -> None:
    book = TrendBook()
    book.put(snap(HOUR, 0, calls__ward={"W1": 2.0}))
    book.put(snap(HOUR, 1, calls__ward={"W1": 1.0, "W2": 4.0}))
    book.put(snap(HOUR, 0, calls__ward={"W1": 3.0}))  # partition 0 again, later
    assert book.counts(HOUR, "calls.ward") == {"W1": 4.0, "W2": 4.0}
    assert book.covered(HOUR + timedelta(minutes=10)) and not book.covered(
        HOUR - timedelta(hours=1)
    )
    assert book.put_raw([b"not json", b'{"hour": "x"}', snap(HOUR, 2).model_dump_json()]) == 1


def test_history_marks_hours_nothing_came_in_as_not_observed() -> None:
    book = TrendBook()
    book.put(snap(HOUR - timedelta(hours=2), 0, calls__ward={"W1": 1.0}))
    book.put(snap(HOUR, 0, calls__ward={"W2": 3.0}))
    h = book.history("calls.ward", HOUR, 3, codes=["W9"])
    assert h.codes == ["W1", "W2", "W9"]
    assert h.covered.tolist() == [True, False, True]
    assert h.counts.tolist() == [[1, 0, 0], [0, 0, 0], [0, 3, 0]]


def test_the_panel_sets_the_last_24_hours_against_the_same_hours_of_earlier_weeks() -> None:
    book = TrendBook()
    week = timedelta(days=7)
    book.put(snap(HOUR, 0, calls__district={"D1": 9.0}, calls__total={"all": 9.0}))
    book.put(
        snap(HOUR - week, 0, calls__district={"D1": 2.0, "D2": 1.0}, calls__total={"all": 3.0})
    )
    book.put(snap(HOUR - 3 * week, 0, calls__district={"D1": 4.0}, calls__total={"all": 4.0}))
    book.put(snap(HOUR - timedelta(hours=5), 0, calls__district={"D2": 1.0}))
    book.put(
        snap(HOUR - timedelta(hours=1), 0, attend__count={"1": 2.0}, attend__seconds={"1": 1200.0})
    )
    book.put(snap(HOUR - week, 1, attend__count={"1": 1.0}, attend__seconds={"1": 900.0}))
    book.put(snap(HOUR, 1, anpr_hits__camera={"CAM-9": 2.0}))  # another partition
    panel = book.panel(NOW, "district")
    assert len(panel["hours"]) == PANEL_HOURS and panel["hours"][-1] == HOUR.isoformat()
    assert panel["weeks"][-1] == 2 and panel["weeks"][-5] == 0  # weeks 1 and 3 observed
    d1, d2 = panel["areas"]
    assert d1["code"] == "D1" and d1["last_24h"][-1] == 9.0 and d1["baseline"][-1] == 3.0
    assert d1["total"] == 9.0 and d1["baseline_total"] == 3.0
    assert d2["code"] == "D2" and d2["baseline"][-1] == 0.5 and d2["baseline"][-5] is None
    assert panel["calls"]["last_24h"][-1] == 9.0 and panel["calls"]["baseline"][-1] == 3.5
    assert panel["attend_by_grade"]["1"] == {"last_24h_mean_s": 600.0, "baseline_mean_s": 900.0}
    assert panel["attend_by_grade"]["2"]["last_24h_mean_s"] is None
    assert panel["anpr_hits_by_camera"] == [
        {"camera": "CAM-9", "total": 2.0, "baseline_total": 0.0}
    ]
    assert panel["observed_since"] == (HOUR - 3 * week).isoformat()
    with pytest.raises(ValueError):
        book.panel(NOW, "lsoa")


class Recording(MemoryTrendStore):
    """A memory store that remembers which hours each read asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[datetime]] = []

    async def read(self, hours: Sequence[datetime]) -> dict[datetime, list[bytes]]:
        self.asked.append(list(hours))
        return await super().read(hours)


async def test_the_feed_reads_everything_once_then_what_changed_and_the_recent_hours() -> None:
    store = Recording()
    wall = [NOW]
    old = HOUR - timedelta(days=3)
    await store.put([(old, 0, snap(old, 0, calls__total={"all": 1.0}).model_dump_json().encode())])
    store.written[old] = NOW - timedelta(hours=1)
    feed = TrendFeed(store, recent_hours=3, full_every=timedelta(minutes=10), wall=lambda: wall[0])
    book = await feed.refresh(NOW)
    assert book.counts(old, "calls.total") == {"all": 1.0} and len(store.asked[-1]) == 29 * 24 + 1
    wall[0] = NOW + timedelta(minutes=1)
    book = await feed.refresh(wall[0])
    assert store.asked[-1] == [HOUR - timedelta(hours=h) for h in (2, 1, 0)]  # the recent hours
    # A replay rewrites an old hour: the next read takes it, with the recent hours.
    await store.put([(old, 0, snap(old, 0, calls__total={"all": 5.0}).model_dump_json().encode())])
    store.written[old] = wall[0] + timedelta(seconds=5)
    await store.put(
        [(HOUR, 1, snap(HOUR, 1, calls__total={"all": 2.0}).model_dump_json().encode())]
    )
    store.written[HOUR] = wall[0] + timedelta(seconds=5)
    wall[0] = NOW + timedelta(minutes=2)
    book = await feed.refresh(wall[0])
    assert sorted(store.asked[-1]) == [old, *(HOUR - timedelta(hours=h) for h in (2, 1, 0))]
    assert book.counts(old, "calls.total") == {"all": 5.0}
    assert book.counts(HOUR, "calls.total") == {"all": 2.0}
    # Ten minutes on, a full read again; thirty days on, the old hour is forgotten.
    wall[0] = NOW + timedelta(minutes=13)
    await feed.refresh(wall[0])
    assert len(store.asked[-1]) == 29 * 24 + 1
    book = await feed.refresh(NOW + timedelta(days=30))
    assert old not in book.hours
