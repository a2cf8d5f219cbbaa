"""Anomalies: how many calls an area usually has in an hour, and when it has far more.

The model, for one area ``a`` and one hour ``h`` (pure; numpy and ``math`` only):

1. **History.** The hourly counts of every area over the four weeks before ``h``
   (``History``: consecutive hours, each *covered* or not; an hour with no count at
   all, for any area, counts as not observed: the engine was not running or nothing
   came in, which is not the same as nobody calling).
2. **Weekly shape, force-wide.** The mean force-wide count at each local hour of the
   week (Europe/London, 168 of them), shrunk towards the mean at that hour of the day
   (weight ``week_shrink`` pseudo-weeks), divided by the overall mean: ``s[w]``
   (1 is an average hour). One week of history gives every hour of the week; a day
   gives the hour-of-day shape only.
3. **Area level.** The area's calls over the covered hours divided by the sum of
   ``s`` over the same hours: its rate in an average hour, ``L[a]`` (half a call
   added, so an area never seen to have a call still has a small rate).
4. **Prior for the hour.** ``m0 = L[a] * s[w(h)]``, with a gamma distribution
   around it whose coefficient of variation squared is ``cv**2 + 1 / (calls + 1/2)``:
   how far an area's own rhythm may differ from the force's (``cv``), and how
   little a level drawn from few calls is known.
5. **The area's own weeks.** The counts at the same hour one to four weeks before
   (those covered): ``n`` of them summing ``S``. The gamma prior updated by them
   (Poisson counts) gives ``Gamma(alpha0 + S, beta0 + n)`` for the hour's rate, and
   the count expected in the hour is its **negative binomial** predictive
   (``r = alpha0 + S``, ``p = (beta0 + n) / (beta0 + n + 1)``), mean ``r (1-p) / p``.

   A busy area with four weeks of history leans on its own weeks; a quiet ward,
   whose four single hours say little, leans on its level and the force's shape.

6. **The test.** The tail probability ``P(X >= observed)`` under that predictive.
   An area is anomalous when it is at most ``alpha`` and at least ``min_count``
   calls came in. Counts only grow within an hour, so the **threshold** (the
   smallest count whose tail is at most ``alpha``) is known at the start of the
   hour, and an alert can be raised the moment the count reaches it: this is the
   same test as waiting for the end of the hour, with no extra false alarms.

No alert is raised before ``min_history_hours`` of covered history (a week by
default): without it there is no weekly shape to compare with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rtic.schemas import AlertV1, AudienceV1, LocationV1, Role, Severity

LOCAL = ZoneInfo("Europe/London")
HOUR = timedelta(hours=1)
WEEK_HOURS = 7 * 24
HISTORY_WEEKS = 4
HISTORY_HOURS = HISTORY_WEEKS * WEEK_HOURS
_TAIL_TERMS = 100_000  # a bound on the upper-tail sum; it converges long before


class AnomalyParams(BaseModel):
    """What decides that an area is well above its usual count (docs/analytics.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(
        1e-4, gt=0, lt=0.5, description="Tail probability at or below which a count is anomalous."
    )
    min_count: int = Field(3, ge=1, description="Fewer calls than this in an hour never alert.")
    cv: float = Field(
        0.25, ge=0, le=2, description="How far an area's own rhythm may depart from the force's."
    )
    week_shrink: float = Field(
        1.0, ge=0, description="Pseudo-weeks pulling each hour of the week to its hour of day."
    )
    min_history_hours: int = Field(
        WEEK_HOURS, ge=1, description="Covered hours of history needed before any alert."
    )


def hour_start(at: datetime) -> datetime:
    """The start of ``at``'s hour (aware; UTC stays UTC)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: every time in the engine is timezone-aware")
    return at.replace(minute=0, second=0, microsecond=0)


def hour_of_week(at: datetime) -> int:
    """0 (Monday 00:00-01:00 local time) to 167."""
    local = at.astimezone(LOCAL)
    return local.weekday() * 24 + local.hour


# ---- the negative binomial ------------------------------------------------------------


def _log_pmf(x: int, r: float, p: float) -> float:
    return (
        math.lgamma(x + r)
        - math.lgamma(r)
        - math.lgamma(x + 1)
        + r * math.log(p)
        + (x * math.log1p(-p) if x else 0.0)
    )


def nb_sf(k: int, r: float, p: float) -> float:
    """``P(X >= k)`` for a negative binomial with ``r`` > 0 and success probability
    ``p`` in (0, 1] (mean ``r (1-p) / p``), summed from the side that keeps precision."""
    if k <= 0:
        return 1.0
    if p >= 1.0:
        return 0.0
    mean = r * (1 - p) / p
    if k <= mean + 1:
        below = sum(math.exp(_log_pmf(x, r, p)) for x in range(k))
        return max(0.0, min(1.0, 1.0 - below))
    # Upper tail: terms fall from the first, the ratio tending to (1 - p) < 1.
    term = math.exp(_log_pmf(k, r, p))
    total = 0.0
    x = k
    for _ in range(_TAIL_TERMS):
        total += term
        term *= (x + r) / (x + 1) * (1 - p)
        x += 1
        if term < total * 1e-16:
            break
    return min(1.0, total)


@dataclass(frozen=True)
class Expectation:
    """The predictive distribution of one area's count in one hour."""

    code: str
    r: float
    p: float
    weeks: int  # own same hours of earlier weeks that were covered (0 to 4)

    @property
    def mean(self) -> float:
        return self.r * (1 - self.p) / self.p

    def sf(self, k: int) -> float:
        """``P(X >= k)``: how likely this many calls or more are in a usual hour."""
        return nb_sf(k, self.r, self.p)

    def threshold(self, params: AnomalyParams) -> int:
        """The smallest count that is anomalous: at least ``min_count``, tail at most
        ``alpha``."""
        k = max(params.min_count, math.floor(self.mean) + 1)
        while self.sf(k) > params.alpha:
            k += 1
        return k


@dataclass(frozen=True)
class Anomaly:
    """An area well above its expected count in an hour."""

    code: str
    hour: datetime
    observed: int
    expected: float
    p_value: float
    threshold: int
    weeks: int
    history_hours: int


# ---- history and the model ---------------------------------------------------------------


class History:
    """Hourly counts of areas over consecutive hours (``counts[t, a]``, the hour
    ``start + t``), and which hours were observed at all (``covered[t]``)."""

    def __init__(
        self,
        start: datetime,
        codes: Sequence[str],
        counts: np.ndarray,
        covered: np.ndarray | None = None,
    ) -> None:
        self.start = hour_start(start)
        self.codes = list(codes)
        self.counts = np.asarray(counts, dtype=float)
        if self.counts.ndim != 2 or self.counts.shape[1] != len(self.codes):
            raise ValueError("counts must be hours x areas, one column per code")
        hours = self.counts.shape[0]
        self.covered = (
            np.ones(hours, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
        )
        if self.covered.shape != (hours,):
            raise ValueError("covered must have one flag per hour")
        self.how = np.array(
            [hour_of_week(self.start + t * HOUR) for t in range(hours)], dtype=np.int64
        )

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def index(self, hour: datetime) -> int:
        """The row of ``hour`` (may be outside the history: negative or past the end)."""
        return int((hour_start(hour) - self.start) // HOUR)


def _weekly_shape(totals: np.ndarray, how: np.ndarray, week_shrink: float) -> np.ndarray:
    """``s[w]`` for w in 0..167 from the covered force-wide totals (mean 1 over hours)."""
    mean = float(totals.mean()) if totals.size else 0.0
    if mean <= 0:
        return np.ones(WEEK_HOURS)
    n_w = np.bincount(how, minlength=WEEK_HOURS).astype(float)
    sum_w = np.bincount(how, weights=totals, minlength=WEEK_HOURS)
    hod = how % 24
    n_d = np.bincount(hod, minlength=24).astype(float)
    sum_d = np.bincount(hod, weights=totals, minlength=24)
    day = np.where(n_d > 0, sum_d / np.maximum(n_d, 1), mean)
    day_of_w = day[np.arange(WEEK_HOURS) % 24]
    if week_shrink > 0:
        shaped = (sum_w + week_shrink * day_of_w) / (n_w + week_shrink)
    else:
        shaped = np.where(n_w > 0, sum_w / np.maximum(n_w, 1), day_of_w)
    return np.asarray(shaped / mean)


def expectations(
    history: History, hour: datetime, params: AnomalyParams | None = None
) -> list[Expectation] | None:
    """Every area's expected count in ``hour``, from the history before it (at most four
    weeks); ``None`` when fewer than ``min_history_hours`` of it are covered."""
    params = params or AnomalyParams()
    h = history.index(hour)
    lo = max(0, h - HISTORY_HOURS)
    hi = min(h, len(history))
    if hi <= lo:
        return None
    rows = np.arange(lo, hi)
    rows = rows[history.covered[lo:hi]]
    if len(rows) < params.min_history_hours:
        return None
    counts = history.counts[rows]
    how = history.how[rows]
    shape = _weekly_shape(counts.sum(axis=1), how, params.week_shrink)
    exposure = float(shape[how].sum())
    seen = counts.sum(axis=0)
    level = (seen + 0.5) / exposure
    alpha0 = 1.0 / (params.cv**2 + 1.0 / (seen + 0.5))
    m0 = np.maximum(level * shape[hour_of_week(hour_start(hour))], 1e-9)
    beta0 = alpha0 / m0
    own = [h - k * WEEK_HOURS for k in range(1, HISTORY_WEEKS + 1)]
    own = [t for t in own if lo <= t < hi and history.covered[t]]
    s = history.counts[own].sum(axis=0) if own else np.zeros(len(history.codes))
    r = alpha0 + s
    beta = beta0 + len(own)
    p = beta / (beta + 1.0)
    return [
        Expectation(code, float(r[i]), float(p[i]), len(own))
        for i, code in enumerate(history.codes)
    ]


def detect(
    history: History,
    hour: datetime,
    observed: Mapping[str, float],
    params: AnomalyParams | None = None,
) -> list[Anomaly]:
    """The areas whose count in ``hour`` (``observed``, by code: so far, or the whole
    hour) is anomalous against the history before it, most improbable first."""
    params = params or AnomalyParams()
    expected = expectations(history, hour, params)
    if expected is None:
        return []
    h = history.index(hour)
    covered_hours = int(history.covered[max(0, h - HISTORY_HOURS) : max(0, h)].sum())
    found = []
    for e in expected:
        k = int(observed.get(e.code, 0))
        if k < params.min_count or k <= e.mean:
            continue
        tail = e.sf(k)
        if tail <= params.alpha:
            found.append(
                Anomaly(
                    e.code,
                    hour_start(hour),
                    k,
                    e.mean,
                    tail,
                    e.threshold(params),
                    e.weeks,
                    covered_hours,
                )
            )
    found.sort(key=lambda a: (a.p_value, a.code))
    return found


# ---- the analyst alert -----------------------------------------------------------------------

RULE_ID = "demand_anomaly"
HIGH_BELOW = 1e-6  # a tail probability this small makes the alert high, not medium


def alert_id(level: str, code: str, hour: datetime) -> str:
    """Stable: one alert per area and hour (its count rising sends new versions)."""
    return f"{RULE_ID}:{level}:{code}:{hour_start(hour).astimezone(UTC):%Y%m%dT%H}"


def anomaly_alert(
    found: Anomaly,
    *,
    level: str,
    name: str,
    district: str | None,
    location: tuple[float, float] | None,
    now: datetime,
    params: AnomalyParams,
) -> AlertV1:
    """The analyst alert for an anomalous area and hour: expected and observed counts
    and the tail probability, so the analyst can judge it. Its version is the number
    of calls at or over the threshold (the first alert at the threshold is version 1):
    a re-send after a restart repeats a version, which clients show once."""
    hour = found.hour.astimezone(UTC)
    odds = f"about once in {1 / found.p_value:,.0f} such hours" if found.p_value > 0 else "never"
    days = found.history_hours / 24
    areas = [c for c in (district, found.code) if c]
    lat_lon = LocationV1(lat=location[0], lon=location[1]) if location else None
    return AlertV1(
        alert_id=alert_id(level, found.code, hour),
        rule_id=RULE_ID,
        severity=Severity.HIGH if found.p_value < HIGH_BELOW else Severity.MEDIUM,
        title=f"Unusual demand in {name}: {found.observed} calls this hour, "
        f"about {found.expected:.1f} expected",
        summary=(
            f"{found.observed} calls in {name} ({level}) between {hour:%H:%M} and "
            f"{hour + HOUR:%H:%M} UTC; about {found.expected:.1f} usual at this hour of the "
            f"week. This many or more by chance: p = {found.p_value:.1e} ({odds}). "
            f"Learned from {days:.0f} days of counts"
            f"{f', {found.weeks} of them the same hour in earlier weeks' if found.weeks else ''}."
        ),
        created_at=now,
        source_event_ids=[],
        location=lat_lon,
        area=list(dict.fromkeys(areas)),
        audience=AudienceV1(roles=[Role.RTIC_ANALYST, Role.SUPERVISOR]),
        details={
            "level": level,
            "code": found.code,
            "name": name,
            "hour": hour.isoformat(),
            "observed": found.observed,
            "expected": round(found.expected, 3),
            "p_value": found.p_value,
            "threshold": found.threshold,
            "alpha": params.alpha,
            "weeks": found.weeks,
            "history_hours": found.history_hours,
            "model": "gamma-Poisson (negative binomial predictive), weekly seasonality "
            "(docs/analytics.md)",
            "situation": f"{RULE_ID}:{district or found.code}:{hour:%Y%m%dT%H}",
            "why": f"{found.observed} calls against {found.expected:.1f} expected: the "
            f"threshold for this area and hour is {found.threshold} (tail probability at "
            f"most {params.alpha:g}).",
        },
        version=max(1, found.observed - found.threshold + 1),
        updated_at=now if found.observed > found.threshold else None,
    )
