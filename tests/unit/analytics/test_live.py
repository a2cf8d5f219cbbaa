"""Live priorities from the engine's calls (pure): the window, ids kept whole, the reasons."""

from __future__ import annotations

import random
from datetime import timedelta

from analytics.live import LiveEvent, LiveSettings, RecentEvents, priorities
from tests.conftest import NOW

SETTINGS = LiveSettings(categories=("burglary",), top=5)


def background(n: int, seed: int = 1) -> list[LiveEvent]:
    """Calls scattered over 30 areas on a 6 x 5 grid (about 700 m apart), over 28 days."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = rng.randrange(30)
        out.append(
            LiveEvent(
                f"CALL-BG-{i}",
                "burglary",
                NOW - timedelta(hours=rng.uniform(0.5, 27 * 24)),
                52.45 + (a // 6) * 0.006,
                -1.95 + (a % 6) * 0.01,
                f"E0100{a:04d}",
                f"Area {a}",
            )
        )
    return out


def test_a_burst_of_recent_calls_ranks_its_area_first_with_those_calls_as_why() -> None:
    burst = [
        LiveEvent(
            f"WMP/2026/{i:06d}",
            "burglary",
            NOW - timedelta(hours=3 + i),
            52.47,
            -1.93,
            "E01009999",
            "Burst Area",
        )
        for i in range(10)
    ]
    stale = LiveEvent(
        "CALL-OLD", "burglary", NOW - timedelta(days=40), 52.47, -1.93, "E01009999", "Burst Area"
    )
    found = priorities([*background(120), *burst, stale], NOW, SETTINGS)
    first = found.priorities[0]
    assert first.area_code == "E01009999" and first.rank == 1
    assert {r.event_id for r in first.why} <= {e.event_id for e in burst}
    assert len(first.why) == 5 and all(r.relation == "same_area" for r in first.why)
    weights = [r.weight for r in first.why]
    assert weights == sorted(weights, reverse=True)
    assert first.score > 0 and first.events_in_area == 10  # the 40-day-old call is not in
    assert found.events_used == 130 and len(found.priorities) == 5
    assert found.period.start == NOW and found.period.end == NOW + timedelta(days=1)
    assert found.window.end == NOW and found.window.start == NOW - timedelta(days=28)
    assert found.priorities_id.startswith("PRI-") and found.model["periods"] == 28


def test_no_calls_no_priorities_and_no_error() -> None:
    found = priorities([], NOW, SETTINGS)
    assert found.priorities == [] and found.events_used == 0


def test_recent_events_count_a_call_once_and_forget_the_old() -> None:
    recent = RecentEvents(timedelta(days=28), limit=3)
    a = LiveEvent("A", "burglary", NOW - timedelta(days=1), 52.4, -1.9, "E1", "E1")
    assert recent.add(a, NOW) and not recent.add(a, NOW)
    assert not recent.add(
        LiveEvent("OLD", "burglary", NOW - timedelta(days=29), 52.4, -1.9, "E1", "E1"), NOW
    )
    version = recent.version
    recent.prune(NOW + timedelta(days=28))
    assert len(recent) == 0 and recent.version > version
    for i in range(5):
        recent.add(LiveEvent(f"N{i}", "burglary", NOW, 52.4, -1.9, "E1", "E1"), NOW)
    assert [e.event_id for e in recent.events()] == ["N2", "N3", "N4"]
