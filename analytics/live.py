"""Live patrol priorities from the engine's own recent calls (pure: no I/O, the clock
given).

The engine knows more than police open data does: each call's own time (to the second)
and place (not snapped). The model is the one of ``analytics.hotspots``, with periods
of ``period`` (a day by default) over the last ``window`` (28 days), so repeats and near
repeats within days can be learned here where monthly data cannot show them. Units are
LSOAs (the enrichment's, or looked up); their centres are the boundaries' when given.

What it uses, on purpose (docs/analytics.md): calls (what the public reported) of the
victim-crime categories in ``categories``, not incidents (an incident either repeats a
call already counted, or was raised by officers themselves, which maps where they
were, not where harm was), not ANPR reads, stops or arrests.

``RecentEvents`` keeps the window's events by id (a redelivered or re-read call counts
once). ``priorities`` fits and ranks, each priority with its reasons: the events with
the largest part in its score, their ids whole.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from analytics.hotspots import Projection, fit, forecast, lag_kernel, neighbours
from rtic.priorities import (
    PrioritiesV1,
    PriorityPeriodV1,
    PriorityReasonV1,
    PriorityV1,
)

MODEL_NAME = "self-exciting (repeat and near repeat), EM"


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A modelled event: a victim-reported call, in an LSOA."""

    event_id: str
    category: str
    at: datetime
    lat: float
    lon: float
    area_code: str
    area_name: str


class RecentEvents:
    """The events of the window by id, oldest first; at most ``limit`` kept."""

    def __init__(self, window: timedelta, limit: int = 200_000) -> None:
        self.window = window
        self.limit = limit
        self._events: OrderedDict[str, LiveEvent] = OrderedDict()
        self.version = 0  # changes whenever the set changes

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: LiveEvent, now: datetime) -> bool:
        """Keep ``event`` if it is new and within the window (as of ``now``)."""
        if event.event_id in self._events or event.at < now - self.window:
            return False
        self._events[event.event_id] = event
        self.version += 1
        while len(self._events) > self.limit:
            self._events.popitem(last=False)
        return True

    def prune(self, now: datetime) -> None:
        """Drop what is older than the window."""
        start = now - self.window
        old = [k for k, e in self._events.items() if e.at < start]
        for key in old:
            del self._events[key]
        if old:
            self.version += 1

    def events(self) -> list[LiveEvent]:
        return list(self._events.values())


@dataclass(frozen=True)
class LiveSettings:
    period: timedelta = timedelta(days=1)
    window: timedelta = timedelta(days=28)
    top: int = 20
    reasons: int = 5
    bandwidth_m: float = 500.0
    kappa: float = 2.0
    categories: tuple[str, ...] = ()


def _digest(events: Iterable[LiveEvent], start: datetime) -> str:
    h = hashlib.sha256(start.isoformat().encode())
    for e in sorted(events, key=lambda e: e.event_id):
        h.update(e.event_id.encode() + b"\0")
    return h.hexdigest()[:12]


def priorities(
    events: Sequence[LiveEvent],
    now: datetime,
    settings: LiveSettings,
    centres: Mapping[str, tuple[float, float]] | None = None,
) -> PrioritiesV1:
    """The ranked LSOAs for ``[now, now + period)`` from the events of the window before
    ``now`` (later ones, a clock ahead of the gateway's, count in the last period)."""
    period_s = settings.period.total_seconds()
    periods = max(1, math.ceil(settings.window.total_seconds() / period_s))
    start = now - timedelta(seconds=periods * period_s)
    used = [e for e in events if start <= e.at < now + settings.period]
    codes = sorted({e.area_code for e in used})
    at = {c: i for i, c in enumerate(codes)}
    names = {e.area_code: e.area_name for e in used}
    bins = np.array(
        [min(periods - 1, int((e.at - start).total_seconds() // period_s)) for e in used],
        dtype=np.int64,
    )
    units = np.array([at[e.area_code] for e in used], dtype=np.int64)
    counts = np.zeros((len(codes), periods))
    np.add.at(counts, (units, bins), 1.0)
    # Centres: the boundary's where known, else the mean of the area's events.
    lat = np.zeros(len(codes))
    lon = np.zeros(len(codes))
    if len(used):
        size = np.bincount(units, minlength=len(codes))
        lat = np.bincount(units, weights=[e.lat for e in used], minlength=len(codes)) / size
        lon = np.bincount(units, weights=[e.lon for e in used], minlength=len(codes)) / size
    for code, i in at.items():
        if centres and code in centres:
            lat[i], lon[i] = centres[code]
    projection = Projection.about(lat)
    xs, ys = projection.xy(lon, lat)
    nb = neighbours(np.stack([xs, ys], axis=1), settings.bandwidth_m)
    model = fit(counts, nb, kappa=settings.kappa)
    ahead = forecast(model, counts, nb)
    order = sorted(range(len(codes)), key=lambda i: (-ahead.expected[i], codes[i]))
    top = order[: settings.top]

    # Reasons: an event's part in a unit's score. In its own area: its repeat effect and
    # its share of the area's background (its background probability over K + kappa
    # periods); in an area around it: its near-repeat effect.
    lam = model.intensity(counts, nb)
    g = lag_kernel(model.beta, periods - bins)
    own = model.theta_repeat * g + model.mu[units] / lam[units, bins] / (periods + model.kappa)
    near_of: dict[int, list[tuple[int, float]]] = {}
    for s, d, w in zip(nb.src.tolist(), nb.dst.tolist(), nb.out.tolist(), strict=True):
        near_of.setdefault(d, []).append((s, w))
    by_unit: dict[int, list[int]] = {}
    for j, u in enumerate(units.tolist()):
        by_unit.setdefault(u, []).append(j)

    def reasons(u: int) -> list[PriorityReasonV1]:
        found: list[tuple[float, int, str]] = [(float(own[j]), j, "same_area") for j in by_unit[u]]
        if model.theta_near > 0:
            for v, w in near_of.get(u, []):
                for j in by_unit.get(v, []):
                    found.append((model.theta_near * w * float(g[j]), j, "nearby_area"))
        # Largest part first; of equal parts, the most recent (then by id, for a stable list).
        found.sort(
            key=lambda item: (-item[0], -used[item[1]].at.timestamp(), used[item[1]].event_id)
        )
        return [
            PriorityReasonV1(
                event_id=used[j].event_id,
                category=used[j].category,
                at=used[j].at,
                area_code=used[j].area_code,
                relation=relation,
                weight=round(weight, 4),
            )
            for weight, j, relation in found[: settings.reasons]
        ]

    in_area = np.bincount(units, minlength=len(codes))
    return PrioritiesV1(
        priorities_id=f"PRI-{now:%Y%m%dT%H%M%S}-{_digest(used, start)}",
        generated_at=now,
        period=PriorityPeriodV1(start=now, end=now + settings.period),
        window=PriorityPeriodV1(start=start, end=now),
        categories=list(settings.categories),
        events_used=len(used),
        model={
            "name": MODEL_NAME,
            "period_hours": round(period_s / 3600, 3),
            **model.summary(),
        },
        priorities=[
            PriorityV1(
                rank=rank,
                area_code=codes[i],
                area_name=names.get(codes[i], codes[i]),
                lat=round(float(lat[i]), 6),
                lon=round(float(lon[i]), 6),
                score=round(float(ahead.expected[i]), 4),
                background=round(float(ahead.background[i]), 4),
                repeat=round(float(ahead.repeat[i]), 4),
                near=round(float(ahead.near[i]), 4),
                events_in_area=int(in_area[i]),
                why=reasons(i) if i in by_unit else [],
            )
            for rank, i in enumerate(top, start=1)
        ],
    )
