"""Injected surges on simulated demand: found, with a measured false-alarm rate on plain
demand (one fixed seed; docs/analytics.md records more seeds from
``python -m simulators.surges``)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np

from enrichers.geo import GeoIndex
from simulators.demand import DemandModel
from simulators.surges import FORCE_CALLS, START, evaluate


def test_the_rates_are_the_demand_models_own(geo: GeoIndex) -> None:
    """The counts the evaluation draws have the means of the calls the model yields: two
    days of its calls, counted by district, against ``call_rates``."""
    model = DemandModel(geo, seed=11, start=START, volumes=FORCE_CALLS)
    codes, rates = DemandModel(geo, seed=11, start=START, volumes=FORCE_CALLS).call_rates(
        "district", START, 48
    )
    calls = []
    for ev in model.events():
        if ev.at >= START + timedelta(hours=48):
            break
        if ev.kind == "call":
            calls.append(ev.value["location"])
    found = geo.areas([c["lat"] for c in calls], [c["lon"] for c in calls])
    by_district = Counter(a["district"]["code"] for a in found if a.get("district"))
    expected = rates.sum(axis=0)
    for code, mean in zip(codes, expected, strict=True):
        # Poisson counts: within four standard deviations of the model's mean.
        assert abs(by_district[code] - mean) < 4 * np.sqrt(mean) + 1, (
            code,
            by_district[code],
            mean,
        )
    assert abs(len(calls) - expected.sum()) < 4 * np.sqrt(expected.sum())


def test_surges_in_a_ward_are_found_and_plain_demand_raises_few_false_alarms(
    geo: GeoIndex,
) -> None:
    report = evaluate(geo, seed=0, level="ward", sizes=(4, 8, 12), surges_per_size=50)
    assert report.areas == 163 and report.test_hours == 7 * 24
    # Plain demand: at most one false alarm a day across the force's 163 wards.
    assert report.false_alarms_per_day <= 1.0, report
    assert report.false_alarm_rate <= 3e-4
    # Twelve extra calls in a ward in an hour (about ten times its usual) are found...
    assert report.detection(12) >= 0.9, report
    assert report.detection(8) >= 0.5, report
    # ...four (within what a busy hour brings anyway) mostly are not.
    assert report.detection(4) <= 0.4, report


def test_surges_in_a_district_are_found(geo: GeoIndex) -> None:
    report = evaluate(geo, seed=1, level="district", sizes=(60,), surges_per_size=30)
    assert report.false_alarms_per_day <= 1.0, report
    assert report.detection(60) >= 0.9, report
