"""Live layers that change at run time: geofences, operator places, officers' positions.

Built from the entries kept in Redis (``rtic:ref:geofence``, ``rtic:ref:place``)
whenever their change counter moves, and queried in batches like the
boundaries. Pure: no I/O; ``now`` comes from the caller. Metres are those of
``rtic.geodesy`` (officers' distances in its planar ``to_metres``).

A circle is turned into a 64-sided polygon in local metres, so "inside" is
one vectorised point-in-polygon test for circles and polygons alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from shapely import STRtree

from enrichers.geo import PlaceLayer, points_xy
from rtic.geodesy import metres_per_degree, to_metres

# Up to this many geofences, a batch's points are first tested against every fence's
# bounding box in numpy, and only points in one go to the STRtree query (most points
# are in none): one comparison per point and fence, instead of a GEOS point each.
BOX_TEST_MAX_FENCES = 64


def circle_polygon(lat: float, lon: float, radius_m: float, sides: int = 64) -> shapely.Polygon:
    """A polygon in WGS84 degrees approximating a circle of ``radius_m`` metres
    (metres per degree taken at the circle's own latitude)."""
    angles = np.linspace(0, 2 * math.pi, sides, endpoint=False)
    m_lat, m_lon = metres_per_degree(lat)
    lons = lon + radius_m * np.cos(angles) / m_lon
    lats = lat + radius_m * np.sin(angles) / m_lat
    return shapely.Polygon(np.column_stack([lons, lats]))


@dataclass(frozen=True, eq=False)
class Geofences:
    """Active and scheduled geofences, indexed for batch look-ups."""

    version: int
    ids: list[str]
    names: list[str]
    valid_from: list[datetime | None]
    valid_to: list[datetime | None]
    tree: STRtree | None
    bounds: np.ndarray | None = None  # (fences, 4): minx, miny, maxx, maxy

    @classmethod
    def build(cls, version: int, entries: Mapping[str, Mapping[str, Any]]) -> Geofences:
        ids, names, starts, ends, geoms = [], [], [], [], []
        for ident, e in sorted(entries.items()):
            try:
                if e.get("circle"):
                    c = e["circle"]
                    geom = circle_polygon(float(c["lat"]), float(c["lon"]), float(c["radius_m"]))
                else:
                    geom = shapely.geometry.shape(e["geometry"])
                start = datetime.fromisoformat(e["valid_from"]) if e.get("valid_from") else None
                end = datetime.fromisoformat(e["valid_to"]) if e.get("valid_to") else None
            except (KeyError, TypeError, ValueError, shapely.errors.GEOSException):
                continue  # validated on the way in; a bad stored entry is skipped, not fatal
            ids.append(ident)
            names.append(str(e.get("name", ident)))
            starts.append(start)
            ends.append(end)
            geoms.append(geom)
        tree = bounds = None
        if geoms:
            arr = np.array(geoms, dtype=object)
            shapely.prepare(arr)
            tree = STRtree(arr)
            bounds = shapely.bounds(arr)
        return cls(version, ids, names, starts, ends, tree, bounds)

    def hits(
        self, lats: Sequence[float], lons: Sequence[float], times: Sequence[datetime]
    ) -> list[list[dict[str, str]]]:
        """For each point, the geofences it is inside that are active at its time."""
        out: list[list[dict[str, str]]] = [[] for _ in lats]
        if self.tree is None or not len(lats):
            return out
        xs, ys = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
        near = self._in_a_box(xs, ys)
        if not len(near):
            return out
        pidx, gidx = self.tree.query(points_xy(xs[near], ys[near]), predicate="intersects")
        for p, g in zip(near[pidx].tolist(), gidx.tolist(), strict=True):
            at = times[p]
            start, end = self.valid_from[g], self.valid_to[g]
            if (start is None or start <= at) and (end is None or at < end):
                out[p].append({"id": self.ids[g], "name": self.names[g]})
        return out

    @cached_property
    def _boxes(self) -> tuple[tuple[float, float, float, float], list[np.ndarray]] | None:
        """The box around all fences, and each fence's bounds as columns (minx, miny, maxx,
        maxy, each (fences, 1)); None when there are too many fences for the box test."""
        b = self.bounds
        if b is None or len(b) > BOX_TEST_MAX_FENCES:
            return None
        joint = (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )
        return joint, [b[:, i, None].copy() for i in range(4)]

    def _in_a_box(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """The points that can be inside a geofence: within one's bounding box (all
        points when there are many fences: the STRtree sorts them out)."""
        boxes = self._boxes
        if boxes is None:
            return np.arange(len(xs))
        (jx0, jy0, jx1, jy1), (x0, y0, x1, y1) = boxes
        near = np.flatnonzero((xs >= jx0) & (xs <= jx1) & (ys >= jy0) & (ys <= jy1))
        if 4 * len(near) < len(xs):  # few points in the fences' joint box: test those only
            xs, ys = xs[near], ys[near]
        else:
            near = np.arange(len(xs))
        inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)  # (fences, points)
        return near[inside.any(axis=0)]


def build_place_layers(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, PlaceLayer]:
    """Operator places grouped into one layer per ``kind``."""
    by_kind: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for ident, e in sorted(entries.items()):
        if isinstance(e.get("lat"), int | float) and isinstance(e.get("lon"), int | float):
            by_kind.setdefault(str(e.get("kind", "place")), []).append((ident, e))
    layers = {}
    for kind, items in by_kind.items():
        layers[kind] = PlaceLayer.of(
            kind,
            lats=np.array([float(e["lat"]) for _, e in items]),
            lons=np.array([float(e["lon"]) for _, e in items]),
            names=[str(e.get("name", i)) for i, e in items],
            ids=[i for i, _ in items],
            generated=all(bool(e.get("generated")) for _, e in items),
        )
    return layers


UNITS_COUNT = 3
UNITS_RADIUS_M = 10_000.0
STALE_FIX_S = 300.0  # an officer's fix older than this is marked stale


@dataclass(frozen=True, eq=False)
class Officers:
    """Available officers' last fixes, for the nearest units to a batch of events.

    A force has hundreds to a few thousand officers on duty, so distances from a
    batch to all of them are one numpy computation; no per-event Redis call.
    """

    ids: list[str]
    callsigns: list[str | None]
    xs: np.ndarray
    ys: np.ndarray
    fixes: np.ndarray  # epoch seconds of each last fix

    @classmethod
    def build(cls, states: Mapping[str, Mapping[str, Any]]) -> Officers:
        ids, callsigns, lats, lons, fixes = [], [], [], [], []
        for oid, st in sorted(states.items()):
            if st.get("status") not in (None, "available"):
                continue
            try:
                lat, lon = float(st["lat"]), float(st["lon"])
                fix = datetime.fromisoformat(st["at"]).timestamp()
            except (KeyError, TypeError, ValueError):
                continue
            ids.append(oid)
            callsigns.append(st.get("callsign"))
            lats.append(lat)
            lons.append(lon)
            fixes.append(fix)
        xs, ys = to_metres(np.array(lons, dtype=float), np.array(lats, dtype=float))
        return cls(ids, callsigns, xs, ys, np.array(fixes, dtype=float))

    def nearest(
        self, lats: Sequence[float], lons: Sequence[float], now: datetime, k: int = UNITS_COUNT
    ) -> list[list[dict[str, Any]]]:
        """For each point, up to ``k`` available officers within 10 km: fresh fixes first, then stale."""
        out: list[list[dict[str, Any]]] = [[] for _ in lats]
        if not self.ids or not len(lats):
            return out
        px, py = to_metres(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        ages = now.timestamp() - self.fixes
        stale = ages > STALE_FIX_S
        for start in range(0, len(px), 256):  # bounded memory: 256 x officers at a time
            dx = px[start : start + 256, None] - self.xs[None, :]
            dy = py[start : start + 256, None] - self.ys[None, :]
            dist = np.hypot(dx, dy)
            # Stale fixes sort after fresh ones: add a distance penalty beyond any radius.
            rank = dist + stale[None, :] * (2 * UNITS_RADIUS_M)
            take = min(k, len(self.ids))
            best = np.argpartition(rank, take - 1, axis=1)[:, :take]
            for row, cols in enumerate(best):
                cols = cols[np.argsort(rank[row, cols])]
                out[start + row] = [
                    {
                        "officer_id": self.ids[c],
                        "callsign": self.callsigns[c],
                        "distance_m": round(float(dist[row, c])),
                        "fix_age_s": round(max(float(ages[c]), 0.0)),
                        "stale": bool(stale[c]),
                    }
                    for c in cols.tolist()
                    if dist[row, c] <= UNITS_RADIUS_M
                ]
        return out
