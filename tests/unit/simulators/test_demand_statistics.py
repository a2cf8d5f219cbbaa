"""The demand model over a simulated week: hourly shape, busier weekend nights, grade mix,
and where calls fall, each within a stated tolerance."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from enrichers.geo import GeoIndex
from simulators.demand import (
    GRADES,
    LOCAL,
    DemandModel,
    Volumes,
    call_profile,
    lsoa_weights_from_csv,
)

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=LOCAL).astimezone(UTC)
WEEK = timedelta(days=7)
CALLS_ONLY = Volumes(
    calls_per_s=0.05,
    reads_per_s=0,
    pings_per_s=0,
    cameras=1,
    officers=1,
    repeat_share=0.0,
    repeat_callers=0,
)


@pytest.fixture(scope="module")
def week_of_calls(geo: GeoIndex) -> list[dict]:
    model = DemandModel(geo, seed=7, start=MONDAY, volumes=CALLS_ONLY)
    calls = []
    for ev in model.events():
        if ev.at >= MONDAY + WEEK:
            break
        if ev.kind == "call":
            calls.append(ev.value)
    return calls


def _local_hour(call: dict) -> tuple[int, int]:
    at = datetime.fromisoformat(call["received_at"]).astimezone(LOCAL)
    return at.weekday(), at.hour


def test_volume_over_a_week_matches_the_rate(week_of_calls: list[dict]) -> None:
    expected = CALLS_ONLY.calls_per_s * WEEK.total_seconds()  # about 30,240
    assert abs(len(week_of_calls) - expected) / expected < 0.03


def test_hourly_shape_follows_the_profile_within_15_percent(week_of_calls: list[dict]) -> None:
    by_hour = Counter(h for _, h in map(_local_hour, week_of_calls))
    expected = Counter()
    for minute in range(7 * 24 * 60):
        at = MONDAY + timedelta(minutes=minute)
        expected[at.astimezone(LOCAL).hour] += call_profile(at)
    total_e, total_o = sum(expected.values()), len(week_of_calls)
    for hour in range(24):
        share_o, share_e = by_hour[hour] / total_o, expected[hour] / total_e
        assert abs(share_o - share_e) / share_e < 0.15, (hour, share_o, share_e)
    assert by_hour[4] < by_hour[18] / 2  # quiet early morning, busy evening


def test_friday_and_saturday_nights_are_busier(week_of_calls: list[dict]) -> None:
    nights = Counter(dow for dow, h in map(_local_hour, week_of_calls) if h >= 20)
    midweek = (nights[1] + nights[2]) / 2
    assert nights[4] > 1.25 * midweek and nights[5] > 1.25 * midweek


def test_grade_mix_within_two_points(week_of_calls: list[dict]) -> None:
    grades = Counter(c["grade"] for c in week_of_calls)
    total = sum(w for _, w in GRADES)
    for grade, weight in GRADES:
        assert abs(grades[grade] / len(week_of_calls) - weight / total) < 0.02


def test_calls_fall_by_lsoa_weights(geo: GeoIndex, week_of_calls: list[dict]) -> None:
    # Default weights are the same for every LSOA: a district's share of calls is its share of LSOAs.
    lsoas = geo.levels["lsoa"]
    district_of_lsoa = Counter(
        a.get("district", {}).get("code")
        for a in geo.areas(
            *zip(
                *[(p.y, p.x) for p in (g.representative_point() for g in lsoas.geoms)], strict=True
            )
        )
    )
    areas = geo.areas(
        [c["location"]["lat"] for c in week_of_calls], [c["location"]["lon"] for c in week_of_calls]
    )
    observed = Counter(a["district"]["code"] for a in areas)
    for code, n in district_of_lsoa.items():
        assert abs(observed[code] / len(week_of_calls) - n / len(lsoas.codes)) < 0.02, code


def test_deployment_weights_move_demand(geo: GeoIndex) -> None:
    all_codes = [str(c) for c in geo.levels["lsoa"].codes]
    target = all_codes[::170]  # ten LSOAs spread over the force area
    weights = lsoa_weights_from_csv("lsoa,weight\n" + "\n".join(f"{c},1" for c in target))
    model = DemandModel(geo, seed=3, start=MONDAY, volumes=CALLS_ONLY, lsoa_weights=weights)
    calls = [
        ev.value
        for ev, _ in zip((e for e in model.events() if e.kind == "call"), range(300), strict=False)
    ]
    lsoa_codes = {
        a["lsoa"]["code"]
        for a in geo.areas(
            [c["location"]["lat"] for c in calls], [c["location"]["lon"] for c in calls]
        )
    }
    assert lsoa_codes <= set(target) | {None}
    police = (
        "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context\n"
        + "x,2024-01,W,W,-1.9,52.48,L,E01009347,B,Burglary,,\n" * 3
    )
    assert lsoa_weights_from_csv(police) == {"E01009347": 3.0}
    with pytest.raises(ValueError):
        DemandModel(geo, seed=3, start=MONDAY, volumes=CALLS_ONLY, lsoa_weights={"nowhere": 1.0})
