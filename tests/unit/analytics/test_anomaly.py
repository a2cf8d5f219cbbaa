"""The anomaly model: the negative binomial tail, thresholds, what history it needs, the
weekly pattern it learns, what it finds, and the alert it makes (pure, no services)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.anomaly import (
    HISTORY_HOURS,
    LOCAL,
    AnomalyParams,
    History,
    alert_id,
    anomaly_alert,
    detect,
    expectations,
    hour_of_week,
    nb_sf,
)
from rtic.schemas import Role, Severity

MONDAY = datetime(2026, 10, 26, 0, 0, tzinfo=LOCAL).astimezone(UTC)


def nb_pmf(x: int, r: float, p: float) -> float:
    return (
        math.exp(math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1) + r * math.log(p))
        * (1 - p) ** x
    )


@pytest.mark.parametrize("r, p", [(0.3, 0.9), (2.0, 0.5), (16.0, 0.2), (50.0, 0.95)])
def test_the_tail_matches_summed_probabilities(r: float, p: float) -> None:
    for k in (0, 1, 2, 5, 10, 30):
        brute = sum(nb_pmf(x, r, p) for x in range(k, 3000))
        assert nb_sf(k, r, p) == pytest.approx(brute, rel=1e-9, abs=1e-15)


def test_with_a_large_shape_the_tail_is_poisson() -> None:
    mu, r = 2.0, 1e7
    poisson = 1 - sum(math.exp(-mu) * mu**x / math.factorial(x) for x in range(8))
    assert nb_sf(8, r, r / (r + mu)) == pytest.approx(poisson, rel=1e-4)


def flat(hours: int, codes: list[str], rate: float, seed: int = 1) -> History:
    rng = np.random.default_rng(seed)
    return History(MONDAY, codes, rng.poisson(rate, size=(hours, len(codes))))


def test_no_expectation_before_a_week_of_history_and_gaps_are_not_zeros() -> None:
    params = AnomalyParams()
    short = flat(100, ["A"], 2.0)
    assert expectations(short, MONDAY + timedelta(hours=100), params) is None
    week = flat(200, ["A"], 2.0)
    assert expectations(week, MONDAY + timedelta(hours=200), params) is not None
    # The same counts with 60 hours not observed: too little history again.
    covered = np.ones(200, dtype=bool)
    covered[10:70] = False
    gappy = History(MONDAY, ["A"], week.counts, covered)
    assert expectations(gappy, MONDAY + timedelta(hours=200), params) is None


def test_the_expected_count_follows_the_area_and_the_hour_of_the_week() -> None:
    # Four weeks: area B has three times area A's calls; evenings twice the mornings.
    hours = HISTORY_HOURS
    rng = np.random.default_rng(7)
    shape = np.array(
        [
            2.0 if 17 <= (MONDAY + timedelta(hours=t)).astimezone(LOCAL).hour < 22 else 1.0
            for t in range(hours)
        ]
    )
    counts = np.stack([rng.poisson(1.0 * shape), rng.poisson(3.0 * shape)], axis=1)
    history = History(MONDAY, ["A", "B"], counts)
    history = History(MONDAY, ["A", "B"], np.vstack([counts, counts[-168:]]))

    def mean_at(code: str, hour: int) -> float:
        # The expected count at this hour on each day of the fifth week, averaged.
        found = []
        for day in range(7):
            at = MONDAY + timedelta(weeks=4, days=day, hours=hour)
            found += [e.mean for e in expectations(history, at) or [] if e.code == code]
        return sum(found) / len(found)

    assert mean_at("A", 18) == pytest.approx(2.0, rel=0.15)
    assert mean_at("A", 8) == pytest.approx(1.0, rel=0.15)
    assert mean_at("B", 18) == pytest.approx(6.0, rel=0.15)
    assert mean_at("B", 3) == pytest.approx(3.0, rel=0.15)
    evening = MONDAY + timedelta(weeks=4, hours=18)
    assert [e.weeks for e in expectations(history, evening) or []] == [4, 4]
    assert hour_of_week(evening) == 18  # Monday 18:00 local


def test_the_threshold_is_the_first_count_whose_tail_is_at_most_alpha() -> None:
    params = AnomalyParams(alpha=1e-3, min_count=1)
    e = (expectations(flat(HISTORY_HOURS, ["A"], 1.5), MONDAY + timedelta(weeks=4), params) or [])[
        0
    ]
    k = e.threshold(params)
    assert e.sf(k) <= params.alpha < e.sf(k - 1)


def test_a_surge_is_found_and_plain_demand_is_not() -> None:
    codes = [f"W{i:02d}" for i in range(20)]
    history = flat(HISTORY_HOURS + 1, codes, 1.2, seed=3)
    hour = MONDAY + timedelta(hours=HISTORY_HOURS)
    plain = {c: float(n) for c, n in zip(codes, history.counts[-1], strict=True)}
    assert detect(history, hour, plain) == []
    surged = {**plain, "W07": plain["W07"] + 12}
    found = detect(history, hour, surged)
    assert [a.code for a in found] == ["W07"]
    a = found[0]
    assert a.observed == int(surged["W07"]) and a.expected == pytest.approx(1.2, rel=0.3)
    assert a.p_value < 1e-4 and a.threshold <= a.observed and a.weeks == 4
    assert a.history_hours == HISTORY_HOURS


def test_the_alert_carries_expected_observed_and_probability_with_a_stable_id() -> None:
    codes = ["E05001193"]
    history = flat(HISTORY_HOURS + 1, codes, 1.0, seed=5)
    hour = MONDAY + timedelta(hours=HISTORY_HOURS, minutes=20)
    params = AnomalyParams()
    [found] = detect(history, hour, {"E05001193": 11}, params)
    now = hour + timedelta(minutes=5)
    alert = anomaly_alert(
        found, level="ward", name="Ladywood", district="E08000025",
        location=(52.48, -1.91), now=now, params=params,
    )  # fmt: skip
    assert (
        alert.alert_id
        == alert_id("ward", "E05001193", hour)
        == (f"demand_anomaly:ward:E05001193:{hour:%Y%m%dT%H}")
    )
    assert alert.rule_id == "demand_anomaly" and alert.area == ["E08000025", "E05001193"]
    assert alert.audience.roles == [Role.RTIC_ANALYST, Role.SUPERVISOR]
    d = alert.details
    assert d["observed"] == 11 and d["expected"] == pytest.approx(found.expected, abs=1e-3)
    assert d["p_value"] == found.p_value and d["threshold"] == found.threshold
    assert "11 calls in Ladywood" in alert.summary and "p = " in alert.summary
    assert alert.severity in (Severity.MEDIUM, Severity.HIGH)
    assert alert.version == 11 - found.threshold + 1
    [more] = detect(history, hour, {"E05001193": 14}, params)
    later = anomaly_alert(
        more, level="ward", name="Ladywood", district="E08000025",
        location=None, now=now, params=params,
    )  # fmt: skip
    assert later.alert_id == alert.alert_id and later.version == alert.version + 3
    assert later.details["p_value"] < found.p_value


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        History(datetime(2026, 1, 1), ["A"], np.zeros((1, 1)))
