"""Injected surges on simulated demand: does the anomaly model find them, and how often
does it raise a false alarm on plain demand?

The demand model's calls are a thinned Poisson process, so the count of calls in an
area in an hour is Poisson with the mean ``DemandModel.call_rates`` gives (its volume,
its daily and weekly rhythm, where it puts calls). ``evaluate`` draws four weeks of
history and a test period from those means (a fixed seed), then:

- **false alarms**: runs the detector (``analytics.anomaly.detect``) on every area in
  every hour of the plain test period; every alarm there is false;
- **surges**: for each surge size, adds that many calls to one area in each of
  ``surges_per_size`` test hours (one area per hour, chosen at random) and counts
  the surges the detector finds in their hour.

``python -m simulators.surges`` prints the figures docs/analytics.md records (more
seeds than the test runs). The unit test (tests/unit/simulators/test_surges.py) runs
one seed and asserts bounds.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from analytics.anomaly import HISTORY_HOURS, AnomalyParams, History, detect
from enrichers.geo import GeoIndex
from rtic.settings import Settings
from simulators.demand import LOCAL, DemandModel, Volumes

# Calls only, at the West Midlands volume (about 5,200 calls a day), with the presets'
# repeat callers as docs/simulators.md describes them: 5 % of calls from 300 people.
FORCE_CALLS = Volumes(
    calls_per_s=0.06,
    reads_per_s=0,
    pings_per_s=0,
    cameras=1,
    officers=1,
    repeat_share=0.05,
    repeat_callers=300,
)
START = datetime(2026, 10, 26, 0, 0, tzinfo=LOCAL)  # a Monday, after the clocks went back


@dataclass
class SurgeReport:
    """What one evaluation found."""

    level: str
    seed: int
    areas: int
    test_hours: int
    false_alarms: int = 0
    found: dict[int, int] = field(default_factory=dict)  # surge size -> surges found
    injected: dict[int, int] = field(default_factory=dict)  # surge size -> surges injected

    @property
    def tests(self) -> int:
        return self.areas * self.test_hours

    @property
    def false_alarm_rate(self) -> float:
        """False alarms per area and hour tested."""
        return self.false_alarms / self.tests if self.tests else 0.0

    @property
    def false_alarms_per_day(self) -> float:
        """False alarms per day across the force (every area of the level)."""
        return self.false_alarms / (self.test_hours / 24) if self.test_hours else 0.0

    def detection(self, size: int) -> float:
        return self.found.get(size, 0) / self.injected[size] if self.injected.get(size) else 0.0


def evaluate(
    geo: GeoIndex,
    *,
    seed: int,
    level: str = "ward",
    sizes: tuple[int, ...] = (4, 6, 8, 12),
    surges_per_size: int = 50,
    test_days: int = 7,
    params: AnomalyParams | None = None,
    volumes: Volumes = FORCE_CALLS,
) -> SurgeReport:
    """Four weeks of history and ``test_days`` of test hours drawn from the demand
    model's means for ``seed``; false alarms on plain demand and surges found."""
    params = params or AnomalyParams()
    test_hours = test_days * 24
    hours = HISTORY_HOURS + test_hours
    start = START.astimezone(LOCAL)
    model = DemandModel(geo, seed=seed, start=start, volumes=volumes)
    codes, rates = model.call_rates(level, start, hours)
    rng = np.random.default_rng(seed)
    plain = rng.poisson(rates).astype(float)
    report = SurgeReport(level, seed, len(codes), test_hours)
    history = History(start, codes, plain)
    for t in range(HISTORY_HOURS, hours):
        at = start + timedelta(hours=t)
        observed = dict(zip(codes, plain[t], strict=True))
        report.false_alarms += len(detect(history, at, observed, params))
    for size in sizes:
        counts = plain.copy()
        chosen = rng.choice(test_hours, size=min(surges_per_size, test_hours), replace=False)
        where = rng.integers(0, len(codes), size=len(chosen))
        for t, a in zip(chosen, where, strict=True):
            counts[HISTORY_HOURS + t, a] += size
        surged = History(start, codes, counts)
        found = 0
        for t, a in zip(chosen, where, strict=True):
            at = start + timedelta(hours=HISTORY_HOURS + int(t))
            observed = dict(zip(codes, counts[HISTORY_HOURS + t], strict=True))
            if any(x.code == codes[a] for x in detect(surged, at, observed, params)):
                found += 1
        report.found[size] = found
        report.injected[size] = len(chosen)
    return report


def _table(reports: list[SurgeReport], sizes: tuple[int, ...]) -> str:
    level = reports[0].level
    tests = sum(r.tests for r in reports)
    alarms = sum(r.false_alarms for r in reports)
    days = sum(r.test_hours for r in reports) / 24
    lines = [
        f"**{level}s** ({reports[0].areas} areas, {len(reports)} seeds, {days:g} test days, "
        f"{tests:,} area-hours tested): {alarms} false alarms, "
        f"{alarms / tests:.2e} per area-hour, {alarms / days:.2f} a day across the force.",
        "",
        "| calls added in one hour | surges | found | detection rate |",
        "| --- | --- | --- | --- |",
    ]
    for size in sizes:
        injected = sum(r.injected.get(size, 0) for r in reports)
        found = sum(r.found.get(size, 0) for r in reports)
        lines.append(f"| +{size} | {injected} | {found} | {found / injected:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the figures of docs/analytics.md (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    args = parser.parse_args(argv)
    geo = GeoIndex.load(args.data_dir)
    for level, sizes in (("ward", (4, 6, 8, 12)), ("district", (20, 40, 60))):
        reports = [evaluate(geo, seed=s, level=level, sizes=sizes) for s in range(args.seeds)]
        print(_table(reports, sizes))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
