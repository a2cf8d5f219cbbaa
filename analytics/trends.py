"""Live trends: hourly counts as the worker's windowed tables publish them, merged.

The worker counts in Faust tables with tumbling hourly windows (``streams/trends.py``),
one count per *series* and key, per input partition. What an event adds is decided
here (pure):

- a call: ``calls.district``, ``calls.ward`` (its area codes), ``calls.grade``,
  ``calls.category``, ``calls.total`` (``all``), in the hour it was received;
- an incident's ``created`` event: the same series for ``incidents.``;
- an incident's first ``arrived`` event: ``attend.count`` and ``attend.seconds`` by
  grade (created to arrived) and ``travel.count`` / ``travel.seconds`` (assigned to
  arrived), in the hour of the arrival;
- an ANPR hotlist hit (an ``anpr_hotlist_hit`` alert, each version one read):
  ``anpr_hits.camera`` by camera id, in the hour of the read.

Every few seconds the worker publishes, for each (input partition, hour) that changed,
a ``TrendSnapshot``: all the counts of that partition in that hour. The snapshots are
kept in Redis (``enrichers/trend_store.py``), and a ``TrendBook`` merges them: the
counts of an hour are the sum over partitions. The desk's panel
(``TrendBook.panel``) is the last 24 hours against the same hours of the four weeks
before; the anomaly model (``analytics/anomaly.py``) reads ``TrendBook.history``.

An hour with no snapshot at all is *not observed* (the engine was not running, or
nothing came in): it is left out of a baseline rather than counted as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from analytics.anomaly import HISTORY_WEEKS, History, hour_start
from enrichers.trend_store import TrendStore
from rtic.clock import utc_now

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PANEL_HOURS = 24
RETAIN = timedelta(days=7 * HISTORY_WEEKS + 1)  # 29 days: four weeks before the last 24 h
AREA_LEVELS = ("district", "ward")
EVENT_FAMILIES = ("calls", "incidents")
DIMENSIONS = ("district", "ward", "grade", "category", "total")
ATTEND_SERIES = ("attend.count", "attend.seconds", "travel.count", "travel.seconds")
SERIES = (
    *(f"{f}.{d}" for f in EVENT_FAMILIES for d in DIMENSIONS),
    "anpr_hits.camera",
    *ATTEND_SERIES,
)

Counter = tuple[str, str, float]  # (series, key, amount)


class TrendSnapshot(BaseModel):
    """Every count of one input partition in one hour (what the worker publishes)."""

    model_config = ConfigDict(extra="forbid")

    hour: AwareDatetime = Field(description="The hour's start (UTC).")
    partition: int = Field(ge=0, description="The input partition these counts are of.")
    counts: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Series -> key -> count (``SERIES``)."
    )
    published_at: AwareDatetime


# ---- what an event counts for ------------------------------------------------------------


def event_counters(
    family: str, areas: Mapping[str, str], grade: int | None, category: str
) -> list[Counter]:
    """The counts one call or new incident adds (``family``: ``calls``/``incidents``);
    ``areas``: its codes by level (a call outside the force area has none)."""
    out: list[Counter] = [
        (f"{family}.{level}", areas[level], 1.0) for level in AREA_LEVELS if areas.get(level)
    ]
    out.append((f"{family}.grade", str(grade) if grade in (1, 2, 3, 4) else "ungraded", 1.0))
    out.append((f"{family}.category", category, 1.0))
    out.append((f"{family}.total", "all", 1.0))
    return out


def attend_counters(
    grade: int, created: datetime | None, assigned: datetime | None, arrived: datetime
) -> list[Counter]:
    """What a first arrival adds: time to attend (from creation) and travel (from
    assignment) by grade, in seconds; a negative span (clocks out of step) is left out."""
    out: list[Counter] = []
    for name, since in (("attend", created), ("travel", assigned)):
        if since is None:
            continue
        seconds = (arrived - since).total_seconds()
        if seconds < 0:
            continue
        out.append((f"{name}.count", str(grade), 1.0))
        out.append((f"{name}.seconds", str(grade), seconds))
    return out


# ---- the merged view -----------------------------------------------------------------------


class TrendBook:
    """Snapshots by hour and partition; counts of an hour summed over partitions."""

    def __init__(self) -> None:
        self.hours: dict[datetime, dict[int, TrendSnapshot]] = {}

    def put(self, snapshot: TrendSnapshot) -> None:
        """Keep ``snapshot`` (it replaces the earlier one of its hour and partition)."""
        self.hours.setdefault(hour_start(snapshot.hour), {})[snapshot.partition] = snapshot

    def put_raw(self, raw: Iterable[bytes | str]) -> int:
        """Snapshots as JSON; what did not validate is skipped. How many were kept."""
        kept = 0
        for item in raw:
            try:
                self.put(TrendSnapshot.model_validate_json(item))
            except ValueError:
                continue
            kept += 1
        return kept

    def forget_before(self, hour: datetime) -> None:
        for h in [h for h in self.hours if h < hour]:
            del self.hours[h]

    def covered(self, hour: datetime) -> bool:
        return bool(self.hours.get(hour_start(hour)))

    def since(self) -> datetime | None:
        """The first hour observed, if any."""
        return min(self.hours) if self.hours else None

    def counts(self, hour: datetime, series: str) -> dict[str, float]:
        """One series in one hour, summed over partitions."""
        out: dict[str, float] = {}
        for snap in self.hours.get(hour_start(hour), {}).values():
            for key, n in snap.counts.get(series, {}).items():
                out[key] = out.get(key, 0.0) + n
        return out

    def history(self, series: str, end: datetime, hours: int, codes: Iterable[str] = ()) -> History:
        """``hours`` consecutive hours of one series ending with ``end``'s hour, for the
        anomaly model: one column per key seen (and per code in ``codes``)."""
        last = hour_start(end)
        first = last - (hours - 1) * HOUR
        rows = [self.counts(first + t * HOUR, series) for t in range(hours)]
        keys = sorted({*codes, *(k for row in rows for k in row)})
        index = {k: i for i, k in enumerate(keys)}
        counts = np.zeros((hours, len(keys)))
        for t, row in enumerate(rows):
            for k, n in row.items():
                counts[t, index[k]] = n
        covered = np.array([self.covered(first + t * HOUR) for t in range(hours)], dtype=bool)
        return History(first, keys, counts, covered)

    # ---- the desk's panel --------------------------------------------------------------

    def panel(self, now: datetime, level: str = "district", top: int = 12) -> dict[str, Any]:
        """The last 24 hours against the same hours of the four weeks before.

        For each hour ``h`` of the last 24 (oldest first) the baseline is the mean
        count at ``h - 7 days``, ``h - 14 days``, ... ``h - 28 days`` over the weeks
        that were observed (``weeks``: how many); ``None`` when none was.
        """
        if level not in AREA_LEVELS:
            raise ValueError(f"level must be one of {', '.join(AREA_LEVELS)}")
        last = hour_start(now)
        hours = [last - (PANEL_HOURS - 1 - i) * HOUR for i in range(PANEL_HOURS)]
        weeks_of = [
            [h - k * WEEK for k in range(1, HISTORY_WEEKS + 1) if self.covered(h - k * WEEK)]
            for h in hours
        ]

        def compare(series: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
            now_rows = [self.counts(h, series) for h in hours]
            base_rows = [[self.counts(b, series) for b in bs] for bs in weeks_of]
            found = set(keys) if keys is not None else set()
            if keys is None:
                for row in now_rows:
                    found.update(row)
                for rows in base_rows:
                    for row in rows:
                        found.update(row)
            out: dict[str, Any] = {}
            for key in sorted(found):
                recent = [row.get(key, 0.0) for row in now_rows]
                baseline = [
                    (sum(r.get(key, 0.0) for r in rows) / len(rows)) if rows else None
                    for rows in base_rows
                ]
                out[key] = {
                    "last_24h": recent,
                    "baseline": baseline,
                    "total": sum(recent),
                    "baseline_total": _total(baseline),
                }
            return out

        areas = compare(f"calls.{level}")
        ranked = sorted(areas.items(), key=lambda kv: (-_excess(kv[1]), -kv[1]["total"], kv[0]))
        attend: dict[str, Any] = {}
        for grade in ("1", "2", "3", "4"):
            attend[grade] = {
                "last_24h_mean_s": self._mean_span(hours, "attend", grade),
                "baseline_mean_s": self._mean_span(
                    [b for bs in weeks_of for b in bs], "attend", grade
                ),
            }
        cameras = compare("anpr_hits.camera")
        since = self.since()
        return {
            "generated_at": now.isoformat(),
            "level": level,
            "hours": [h.isoformat() for h in hours],
            "weeks": [len(bs) for bs in weeks_of],
            "observed_since": since.isoformat() if since else None,
            "areas": [{"code": k, **v} for k, v in ranked[:top]],
            "area_count": len(areas),
            "calls": compare("calls.total", ["all"])["all"],
            "incidents": compare("incidents.total", ["all"])["all"],
            "calls_by_grade": compare("calls.grade"),
            "calls_by_category": compare("calls.category"),
            "anpr_hits_by_camera": [
                {"camera": k, "total": v["total"], "baseline_total": v["baseline_total"]}
                for k, v in sorted(cameras.items(), key=lambda kv: (-kv[1]["total"], kv[0]))[:top]
            ],
            "attend_by_grade": attend,
        }

    def _mean_span(self, hours: Iterable[datetime], name: str, grade: str) -> float | None:
        n = s = 0.0
        for h in hours:
            n += self.counts(h, f"{name}.count").get(grade, 0.0)
            s += self.counts(h, f"{name}.seconds").get(grade, 0.0)
        return s / n if n else None


def _total(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _excess(row: Mapping[str, Any]) -> float:
    """How far the last 24 hours are above the baseline (0 without a baseline)."""
    base = row["baseline"]
    return sum(n - b for n, b in zip(row["last_24h"], base, strict=True) if b is not None)


# ---- kept fresh from the store ---------------------------------------------------------------


class TrendFeed:
    """A ``TrendBook`` read from a ``TrendStore``: the first read takes the 29 days; each
    later one the hours written since the read before (a margin for clocks out of step)
    and the last ``recent_hours``; every ``full_every``, all of them again."""

    MARGIN = timedelta(seconds=30)

    def __init__(
        self,
        store: TrendStore,
        *,
        recent_hours: int = 3,
        full_every: timedelta = timedelta(minutes=10),
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.wall = wall  # the clock the store's writers stamp changes with
        self.book = TrendBook()
        self.recent_hours = recent_hours
        self.full_every = full_every
        self.read_at: datetime | None = None
        self._full_at: datetime | None = None
        self._asked_at: datetime | None = None  # the wall clock of the last read

    async def refresh(self, now: datetime) -> TrendBook:
        """Read what may have changed (``ServiceError`` when the store does not answer:
        the book keeps what it had). ``now``: the reader's clock (its 24 hours end there)."""
        last = hour_start(now)
        first = last - RETAIN
        every = [first + t * HOUR for t in range(int((last - first) / HOUR) + 1)]
        asked = self.wall()
        full = (
            self._full_at is None
            or self._asked_at is None
            or abs(asked - self._full_at) >= self.full_every
        )
        if full:
            wanted = every
        else:
            assert self._asked_at is not None
            changed = set(await self.store.changed_since(self._asked_at - self.MARGIN))
            wanted = [h for h in every if h in changed] + [
                h for h in every[-self.recent_hours :] if h not in changed
            ]
        found = await self.store.read(wanted)
        for hour in wanted:
            self.book.hours.pop(hour, None)
            self.book.put_raw(found.get(hour, []))
        self.book.forget_before(first)
        if full:
            self._full_at = asked
        self._asked_at = asked
        self.read_at = now
        return self.book
