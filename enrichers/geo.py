"""Place enrichment: which areas a point falls in, and the nearest places of interest.

Reference data is loaded once (``GeoIndex.load``) from the boundaries and place
layers in the data folder; look-ups work on whole batches at once with shapely
2's vectorised STRtree queries, so a batch of 500 events costs one query per
level, not 500. Pure: no I/O after loading, no clock.

Levels, each a code and a name, from the data folder (see data/README.md):

- ``district``: the seven metropolitan districts of the force area (file names)
- ``ward``: electoral wards (2013), a stand-in for police neighbourhoods
- ``lsoa``: Lower Layer Super Output Areas (2011)

A point on a shared border takes the area with the lowest code; a point inside
the force area that falls in a sliver between generalised polygons of one level
takes that level's nearest area (within about 350 m). So every point inside the
force area gets exactly one code per level.

Two pre-computed indexes answer most look-ups with a few numpy operations and
fall back to the exact STRtree query wherever they cannot be sure, so answers
are identical with or without them (property tests check it):

- ``AreaGrid``, per level: a grid of small cells; a cell that no polygon boundary
  of the level touches lies wholly inside the same polygons, so its answer is
  known at load. Points in cells a boundary crosses take the exact query.
- ``NearestGrid``, per place layer: for each cell, the only places that can be the
  nearest to a point in it; a look-up is distances to those few. Ties (places at
  the same position) and crowded cells take the exact query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import shapely
from shapely import STRtree

from rtic.errors import ConfigError

DISTRICT_NAMES = {
    "E08000025": "Birmingham",
    "E08000026": "Coventry",
    "E08000027": "Dudley",
    "E08000028": "Sandwell",
    "E08000029": "Solihull",
    "E08000030": "Walsall",
    "E08000031": "Wolverhampton",
}
LEVELS = ("district", "ward", "lsoa")
GAP_TOLERANCE_DEG = 0.005  # about 350 m east-west, 550 m north-south
AREA_CACHE_SIZE = 200_000  # points remembered (about 100 MB at most); cleared when full
_LEVEL_FIELDS = {"ward": ("WD13CD", "WD13NM"), "lsoa": ("LSOA11CD", "LSOA11NM")}
# Cell sizes of the area grids (degrees): smaller cells leave fewer points to the exact
# query but take longer to build (both levels: about half a second) and more memory.
AREA_GRID_CELL_DEG = {"ward": 0.0005, "lsoa": 0.00025}
_GRID_MARGIN_DEG = 1e-7  # cells are tested grown by this (about 1 cm): rounding is covered
NEAREST_CELL_M = 500.0  # cell size of the nearest-place grids
NEAREST_CAP_M = 5000.0  # the grids serve look-ups within this distance (the default)
NEAREST_GRID_MARGIN_M = 2000.0  # grids cover the places' extent and this much around it
NEAREST_MAX_CANDIDATES = 64  # a cell with more candidates is left to the exact query
NEAREST_ALL_CANDIDATES = 32  # a layer this small: every place is a candidate, no grid
NEAREST_GRID_MAX_PLACES = 20_000  # a layer larger than this is queried exactly (build cost)

# Metres per degree around the force area (52.5 N): an equirectangular
# projection is within 0.5 % over a 60 km area, ample for "nearest" and radii.
REF_LAT = 52.48
M_PER_DEG_LAT = 111_250.0
M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(REF_LAT)))


def to_metres(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local planar metres (x east, y north) for WGS84 degrees."""
    return np.asarray(lons) * M_PER_DEG_LON, np.asarray(lats) * M_PER_DEG_LAT


def round_1dp(values: np.ndarray) -> list[float]:
    """``[round(v, 1) for v in values]``, bit for bit, mostly in numpy.

    ``rint(10 v) / 10`` is the double nearest to the right decimal whenever ``10 v``
    is not within rounding of a half (IEEE division is correctly rounded, as is
    Python's ``round``); the few values that are go through ``round`` itself.
    """
    tens = values * 10.0
    out = (np.rint(tens) / 10.0).tolist()
    near_half = np.abs(tens - np.floor(tens) - 0.5) < 1e-6
    for i in np.flatnonzero(near_half | ~(np.abs(tens) < 1e12)).tolist():
        out[i] = round(float(values[i]), 1)
    return out


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Planar distance in metres between two nearby WGS84 points."""
    dx = (lon2 - lon1) * M_PER_DEG_LON
    dy = (lat2 - lat1) * M_PER_DEG_LAT
    return float((dx * dx + dy * dy) ** 0.5)


@dataclass(frozen=True, eq=False)
class AreaLevel:
    """One level of areas: polygons in a tree, and parallel codes and names."""

    name: str
    tree: STRtree
    codes: np.ndarray
    names: np.ndarray
    geoms: np.ndarray
    parents: np.ndarray | None = None  # for wards: the district code each lies in

    @cached_property
    def entries(self) -> list[dict[str, str]]:
        """``{"code", "name"}`` per area, built once and shared (read-only)."""
        return [
            {"code": str(c), "name": str(n)} for c, n in zip(self.codes, self.names, strict=True)
        ]

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Index of the containing area for each point, -1 outside every area."""
        out = np.full(len(points), -1, dtype=np.int64)
        if len(points) == 0:
            return out
        pidx, aidx = self.tree.query(points, predicate="intersects")
        if len(pidx):
            # Several hits (a border): keep the lowest code, deterministically.
            order = np.lexsort((self.codes[aidx], pidx))
            pidx, aidx = pidx[order], aidx[order]
            first = np.unique(pidx, return_index=True)[1]
            out[pidx[first]] = aidx[first]
        return out


@dataclass(frozen=True, eq=False)
class AreaGrid:
    """One level's answers, pre-computed on a grid of cells in degrees.

    A cell that no polygon boundary of the level touches (grown by a small margin,
    so rounding in finding a point's cell is covered) lies wholly inside the same
    polygons, and so do rows of such cells side by side: one exact look-up per
    row run gives the answer of every point in it. ``cells`` holds per cell that
    area's index, ``NONE`` (inside no area) or ``EXACT`` (a boundary crosses the
    cell: the exact query decides).
    """

    EXACT: ClassVar[int] = -1
    NONE: ClassVar[int] = -2

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    cells: np.ndarray

    @classmethod
    def build(cls, level: AreaLevel, cell: float) -> AreaGrid:
        minx, miny, maxx, maxy = shapely.total_bounds(level.geoms)
        x0, y0 = float(minx) - cell, float(miny) - cell
        nx = int(np.ceil((maxx - x0) / cell)) + 2
        ny = int(np.ceil((maxy - y0) / cell)) + 2
        # Every boundary, cut in pieces no longer than half a cell; a piece marks the
        # cells its bounding box (grown by the margin) falls in.
        rings = shapely.segmentize(shapely.get_parts(shapely.boundary(level.geoms)), cell / 2)
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[1:] == ring[:-1]
        a, b = xy[:-1][same], xy[1:][same]
        lo = np.minimum(a, b) - _GRID_MARGIN_DEG
        hi = np.maximum(a, b) + _GRID_MARGIN_DEG
        ix0 = np.clip(np.floor((lo[:, 0] - x0) / cell).astype(np.int64), 0, nx - 1)
        ix1 = np.clip(np.floor((hi[:, 0] - x0) / cell).astype(np.int64), 0, nx - 1)
        iy0 = np.clip(np.floor((lo[:, 1] - y0) / cell).astype(np.int64), 0, ny - 1)
        iy1 = np.clip(np.floor((hi[:, 1] - y0) / cell).astype(np.int64), 0, ny - 1)
        marked = np.zeros((ny, nx), dtype=bool)
        span = int(max((ix1 - ix0).max(initial=0), (iy1 - iy0).max(initial=0)))
        for dy in range(span + 1):
            for dx in range(span + 1):
                m = (ix0 + dx <= ix1) & (iy0 + dy <= iy1)
                marked[iy0[m] + dy, ix0[m] + dx] = True
        # Runs of unmarked cells along each row: one exact look-up (at the centre of the
        # run's first cell) answers for the whole run.
        flat = marked.ravel()
        start = ~flat
        start[1:] &= flat[:-1]
        start[::nx] = ~flat[::nx]
        starts = np.flatnonzero(start)
        sy, sx = np.divmod(starts, nx)
        found = level.lookup(shapely.points(x0 + (sx + 0.5) * cell, y0 + (sy + 0.5) * cell))
        found[found < 0] = cls.NONE
        dtype = np.int16 if len(level.codes) < np.iinfo(np.int16).max else np.int32
        run = np.cumsum(start) - 1
        cells = np.where(flat, cls.EXACT, found.astype(dtype)[np.maximum(run, 0)]).astype(dtype)
        return cls(x0, y0, cell, nx, ny, cells)

    def lookup(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Per point the area index, ``NONE`` or ``EXACT`` (also outside the grid)."""
        fx = (lons - self.x0) / self.cell
        fy = (lats - self.y0) / self.cell
        ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)  # False for NaN
        out = np.full(len(lons), self.EXACT, dtype=np.int64)
        out[ok] = self.cells[fy[ok].astype(np.int64) * self.nx + fx[ok].astype(np.int64)]
        return out


@dataclass(frozen=True, eq=False)
class NearestGrid:
    """For each cell of a grid in metres, the only places that can be nearest to a point in it.

    A place is a candidate for a cell when its distance to the cell is within
    both ``cap`` and the farthest any point of the cell can be from its nearest
    place (the least, over places, of the distance to the cell's farthest
    corner). Look-ups within ``cap`` are then distances to a few candidates,
    computed as GEOS does. Padding points at a place at infinity. Cells with too
    many candidates are not ``usable``: their points take the exact query.
    """

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    cands: np.ndarray  # (cells, K) place indexes, padded with len(places)
    usable: np.ndarray  # per cell
    px: np.ndarray  # place x, then inf
    py: np.ndarray
    cap: float

    @classmethod
    def build(
        cls,
        xs: np.ndarray,
        ys: np.ndarray,
        cap: float = NEAREST_CAP_M,
        cell: float = NEAREST_CELL_M,
    ) -> NearestGrid:
        n_places = len(xs)
        px = np.append(xs.astype(float), np.inf)
        py = np.append(ys.astype(float), np.inf)
        if n_places <= NEAREST_ALL_CANDIDATES:  # one cell, everywhere: every place
            return cls(
                0.0,
                0.0,
                np.inf,
                1,
                1,
                np.arange(n_places, dtype=np.int32)[None, :],
                np.ones(1, dtype=bool),
                px,
                py,
                cap,
            )
        x0 = float(xs.min()) - NEAREST_GRID_MARGIN_M
        y0 = float(ys.min()) - NEAREST_GRID_MARGIN_M
        nx = int(np.ceil((xs.max() + NEAREST_GRID_MARGIN_M - x0) / cell)) + 1
        ny = int(np.ceil((ys.max() + NEAREST_GRID_MARGIN_M - y0) / cell)) + 1
        grow = 1e-3  # metres: cells grown by a millimetre, rounding is covered
        rows, cols = [], []
        chunk = max(1, 2_000_000 // n_places)
        for first in range(0, nx * ny, chunk):
            cid = np.arange(first, min(first + chunk, nx * ny))
            iy, ix = np.divmod(cid, nx)
            bx0 = (x0 + ix * cell - grow)[:, None]
            bx1 = (x0 + (ix + 1) * cell + grow)[:, None]
            by0 = (y0 + iy * cell - grow)[:, None]
            by1 = (y0 + (iy + 1) * cell + grow)[:, None]
            ddx = np.maximum(np.maximum(bx0 - xs, xs - bx1), 0.0)
            ddy = np.maximum(np.maximum(by0 - ys, ys - by1), 0.0)
            near = np.sqrt(ddx * ddx + ddy * ddy)
            fdx = np.maximum(xs - bx0, bx1 - xs)
            fdy = np.maximum(ys - by0, by1 - ys)
            bound = np.minimum(np.sqrt(fdx * fdx + fdy * fdy).min(axis=1), cap)
            r, c = np.nonzero(near <= (bound * (1 + 1e-9) + 1e-6)[:, None])
            rows.append(r + first)
            cols.append(c)
        row, col = np.concatenate(rows), np.concatenate(cols)
        counts = np.bincount(row, minlength=nx * ny)
        usable = counts <= NEAREST_MAX_CANDIDATES
        width = int(counts[usable].max(initial=1))
        cands = np.full((nx * ny, max(width, 1)), n_places, dtype=np.int32)
        keep = usable[row]
        row, col = row[keep], col[keep]
        offsets = np.concatenate([[0], np.cumsum(np.where(usable, counts, 0))[:-1]])
        slot = np.arange(len(row)) - offsets[row]
        cands[row, slot] = col
        return cls(x0, y0, cell, nx, ny, cands, usable, px, py, cap)

    def nearest(
        self, xs: np.ndarray, ys: np.ndarray, max_distance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(points, places, distances) found here, and the points the exact query must answer."""
        if self.nx == self.ny == 1:  # a small layer: one cell, everywhere
            pts = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
            cid = np.zeros(len(pts), dtype=np.int64)
        else:
            fx = (xs - self.x0) / self.cell
            fy = (ys - self.y0) / self.cell
            ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)  # False for NaN
            pts = np.flatnonzero(ok)
            cid = fy[pts].astype(np.int64) * self.nx + fx[pts].astype(np.int64)
        usable = self.usable[cid]
        pts, cid = pts[usable], cid[usable]
        cand = self.cands[cid]
        dx = self.px[cand] - xs[pts, None]
        dy = self.py[cand] - ys[pts, None]
        dist = np.sqrt(dx * dx + dy * dy)
        best = dist.argmin(axis=1)
        dmin = dist[np.arange(len(pts)), best]
        within = dmin <= max_distance
        # Places at the same distance (same position): the exact query picks, as before.
        tie = within & ((dist == dmin[:, None]).sum(axis=1) > 1)
        done = np.zeros(len(xs), dtype=bool)
        done[pts[~tie]] = True
        hit = within & ~tie
        return pts[hit], cand[hit, best[hit]], dmin[hit], np.flatnonzero(~done)


@dataclass(frozen=True)
class PlaceLayer:
    """Points of one kind (schools, hospitals...) in planar metres for nearest look-ups."""

    kind: str
    tree: STRtree
    names: np.ndarray
    ids: np.ndarray
    lats: np.ndarray
    lons: np.ndarray
    generated: bool = False

    @cached_property
    def grid(self) -> NearestGrid | None:
        """The nearest-place grid, built on first use (None for an empty or huge layer)."""
        if not 0 < len(self.ids) <= NEAREST_GRID_MAX_PLACES:
            return None
        xy = shapely.get_coordinates(self.tree.geometries)
        return NearestGrid.build(xy[:, 0], xy[:, 1])

    @cached_property
    def name_list(self) -> list[Any]:
        return list(self.names)

    @cached_property
    def id_list(self) -> list[Any]:
        return list(self.ids)

    def nearest(
        self, xs: np.ndarray, ys: np.ndarray, max_distance_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For points in metres, (point, place, distance) of the nearest place within
        ``max_distance_m``: from the grid where it is sure, else the exact STRtree query."""
        grid = self.grid if 0 < max_distance_m <= NEAREST_CAP_M else None
        if grid is None:
            exact = np.arange(len(xs))
            pidx = lidx = np.empty(0, dtype=np.int64)
            dists = np.empty(0)
        else:
            pidx, lidx, dists, exact = grid.nearest(xs, ys, max_distance_m)
        if len(exact):
            (pe, le), de = self.tree.query_nearest(
                shapely.points(xs[exact], ys[exact]),
                max_distance=max_distance_m,
                return_distance=True,
                all_matches=False,
            )
            pidx = np.concatenate([pidx, exact[pe]])
            lidx = np.concatenate([lidx, le])
            dists = np.concatenate([dists, de])
        return pidx, lidx, dists


class GeoIndex:
    """Areas and places, loaded once, queried in batches."""

    def __init__(
        self,
        levels: dict[str, AreaLevel],
        places: dict[str, PlaceLayer],
        version: str,
        grids: dict[str, AreaGrid] | None = None,
    ):
        self.levels = levels
        self.places = places
        self.version = version
        self.grids = grids or {}  # without grids every look-up is the exact query
        self._area_cache: dict[tuple[float, float], dict[str, Any]] = {}
        # One shared answer per combination of areas, keyed by _lookup_areas' number.
        self._combos: dict[int, dict[str, Any]] = {}
        self.extra_places: dict[str, PlaceLayer] = {}  # operator layers, changed at run time
        self._ward_district: np.ndarray | None = None
        if "ward" in levels and "district" in levels:
            position = {code: i for i, code in enumerate(levels["district"].codes)}
            ward_district = getattr(levels["ward"], "parents", None)
            if ward_district is not None:
                self._ward_district = np.array([position[c] for c in ward_district], dtype=np.int64)

    @classmethod
    def load(cls, data_dir: Path) -> GeoIndex:
        """Read boundaries and place layers from ``data_dir`` (see data/README.md)."""
        bdir = data_dir / "boundaries"
        ward_files = sorted((bdir / "wards").glob("*.json"))
        if not ward_files:
            raise ConfigError(f"no ward boundaries under {bdir / 'wards'}")
        digest = hashlib.sha256()
        levels: dict[str, AreaLevel] = {}
        district_geoms, district_codes = [], []
        for level, (code_f, name_f) in _LEVEL_FIELDS.items():
            frames = []
            for path in sorted((bdir / level_dir(level)).glob("*.json")):
                digest.update(path.read_bytes())
                frame = gpd.read_file(path)
                frame["district"] = path.stem
                frames.append(frame)
                if level == "ward":
                    district_geoms.append(shapely.union_all(frame.geometry.values))
                    district_codes.append(path.stem)
            if not frames:
                continue
            codes = np.concatenate([f[code_f].to_numpy(dtype=object) for f in frames])
            names = np.concatenate([f[name_f].to_numpy(dtype=object) for f in frames])
            geoms = np.concatenate([f.geometry.to_numpy() for f in frames])
            parents = np.concatenate([f["district"].to_numpy(dtype=object) for f in frames])
            shapely.prepare(geoms)
            levels[level] = AreaLevel(level, STRtree(geoms), codes, names, geoms, parents)
        dgeoms = np.array(district_geoms, dtype=object)
        shapely.prepare(dgeoms)
        levels = {
            "district": AreaLevel(
                "district",
                STRtree(dgeoms),
                np.array(district_codes, dtype=object),
                np.array([DISTRICT_NAMES.get(c, c) for c in district_codes], dtype=object),
                dgeoms,
            ),
            **levels,
        }
        places: dict[str, PlaceLayer] = {}
        pdir = data_dir / "places"
        for path in sorted(pdir.glob("*.geojson")) if pdir.exists() else []:
            digest.update(path.read_bytes())
            layer = load_place_layer(path)
            if layer is not None:
                places[layer.kind] = layer
                _ = layer.grid  # built now rather than on the first call
        grids = {
            name: AreaGrid.build(levels[name], cell)
            for name, cell in AREA_GRID_CELL_DEG.items()
            if name in levels
        }
        return cls(levels, places, version=f"geo-{digest.hexdigest()[:12]}", grids=grids)

    def areas(self, lats: Sequence[float], lons: Sequence[float]) -> list[dict[str, Any]]:
        """For each point, ``{level: {"code", "name"}}`` for every level it falls in.

        Points seen before (fixed cameras, repeat addresses) come from a bounded
        cache; the rest are looked up together, one vectorised query per level.
        The returned dicts are shared with the cache: read them, never change them.
        """
        keys = list(zip(lats, lons, strict=True))
        cache = self._area_cache
        results: list[dict[str, Any] | None] = list(map(cache.get, keys))
        n_missing = results.count(None)
        if not n_missing:
            return results  # type: ignore[return-value]
        if n_missing == len(keys):  # all new: the usual case for calls
            fresh = self._lookup_areas(np.asarray(lats, dtype=float), np.asarray(lons, dtype=float))
            if len(cache) + len(fresh) > AREA_CACHE_SIZE:
                cache.clear()
            cache.update(zip(keys, fresh, strict=True))
            return fresh
        missing = [i for i, hit in enumerate(results) if hit is None]
        lat_a = np.asarray([lats[i] for i in missing], dtype=float)
        lon_a = np.asarray([lons[i] for i in missing], dtype=float)
        fresh = self._lookup_areas(lat_a, lon_a)
        if len(cache) + len(fresh) > AREA_CACHE_SIZE:
            cache.clear()
        for i, found in zip(missing, fresh, strict=True):
            results[i] = found
            cache[keys[i]] = found
        return results  # type: ignore[return-value]

    def _level_lookup(self, name: str, lat_a: np.ndarray, lon_a: np.ndarray) -> np.ndarray:
        """Index of the containing area per point (-1: none): the grid, else the exact query."""
        level = self.levels[name]
        grid = self.grids.get(name)
        if grid is None:
            return level.lookup(shapely.points(lon_a, lat_a))
        idx = grid.lookup(lon_a, lat_a)
        exact = np.flatnonzero(idx == AreaGrid.EXACT)
        if len(exact):
            idx[exact] = level.lookup(shapely.points(lon_a[exact], lat_a[exact]))
        idx[idx == AreaGrid.NONE] = -1
        return idx

    def _lookup_areas(self, lat_a: np.ndarray, lon_a: np.ndarray) -> list[dict[str, Any]]:
        found: dict[str, np.ndarray] = {}
        for name in self.levels:
            if name == "district" and self._ward_district is not None and "ward" in self.levels:
                continue  # a ward lies in one district: no need to test the big district polygons
            found[name] = self._level_lookup(name, lat_a, lon_a)
        # The generalised layers (wards 2013, LSOAs 2011) leave slivers between them: a
        # point inside the force area that falls in a gap of one layer takes that layer's
        # nearest area within GAP_TOLERANCE_DEG, so it gets one code at every level.
        inside = np.zeros(len(lat_a), dtype=bool)
        for idx in found.values():
            inside |= idx >= 0
        for name, idx in found.items():
            gaps = np.nonzero(inside & (idx < 0))[0]
            if len(gaps):
                pidx, aidx = self.levels[name].tree.query_nearest(
                    shapely.points(lon_a[gaps], lat_a[gaps]),
                    max_distance=GAP_TOLERANCE_DEG,
                    all_matches=False,
                )
                idx[gaps[pidx]] = aidx
        if "district" not in found and "ward" in found and self._ward_district is not None:
            wards = found["ward"]
            found["district"] = np.where(wards >= 0, self._ward_district[np.maximum(wards, 0)], -1)
        # Every point's areas as one number (a digit per level, base: that level's size
        # + 1); each combination's dict is built once and shared.
        number = np.zeros(len(lat_a), dtype=np.int64)
        for name, level in self.levels.items():
            number = number * (len(level.codes) + 1) + (found[name] + 1)
        keys = number.tolist()
        combos = self._combos
        for key in set(keys).difference(combos):
            combos[key] = self._combo(key)
        return list(map(combos.__getitem__, keys))

    def _combo(self, number: int) -> dict[str, Any]:
        """The areas dict of one of ``_lookup_areas``' numbers."""
        digits = []
        for level in reversed(self.levels.values()):
            number, digit = divmod(number, len(level.codes) + 1)
            digits.append(digit - 1)
        return {
            name: level.entries[i]
            for (name, level), i in zip(self.levels.items(), reversed(digits), strict=True)
            if i >= 0
        }

    def nearest_places(
        self, lats: Sequence[float], lons: Sequence[float], max_distance_m: float = 5000.0
    ) -> list[dict[str, Any]]:
        """For each point, the nearest place of each kind within ``max_distance_m``."""
        n = len(lats)
        results: list[dict[str, Any]] = [{} for _ in range(n)]
        if n == 0:
            return results
        xs, ys = to_metres(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        for layer in {**self.places, **self.extra_places}.values():
            pidx, lidx, dists = layer.nearest(xs, ys, max_distance_m)
            kind, names, ids = layer.kind, layer.name_list, layer.id_list
            found = zip(pidx.tolist(), lidx.tolist(), round_1dp(dists), strict=True)
            if layer.generated:
                for p, li, d in found:
                    results[p][kind] = {
                        "name": names[li],
                        "id": ids[li],
                        "distance_m": d,
                        "generated": True,
                    }
            else:
                for p, li, d in found:
                    results[p][kind] = {"name": names[li], "id": ids[li], "distance_m": d}
        return results

    def area_codes(self, areas: dict[str, Any]) -> list[str]:
        """The codes of one point's areas, broadest first."""
        return [areas[lvl]["code"] for lvl in self.levels if lvl in areas]

    def codes_at(self, lat: float, lon: float) -> list[str]:
        """The area codes of one point, broadest first (empty outside the force area)."""
        return self.area_codes(self.areas([lat], [lon])[0])

    def boundaries_geojson(self, level: str = "ward", tolerance: float = 0.0004) -> dict[str, Any]:
        """Simplified polygons of one level as GeoJSON (for the dashboard map)."""
        lv = self.levels[level]
        feats = []
        for code, name, geom in zip(lv.codes, lv.names, lv.geoms, strict=True):
            simple = shapely.simplify(geom, tolerance, preserve_topology=True)
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"code": code, "name": name},
                    "geometry": shapely.geometry.mapping(shapely.set_precision(simple, 1e-5)),
                }
            )
        return {"type": "FeatureCollection", "features": feats}


def level_dir(level: str) -> str:
    return {"ward": "wards", "lsoa": "lsoa"}[level]


def load_place_layer(path: Path) -> PlaceLayer | None:
    """A GeoJSON layer of points with ``name`` and ``kind``; kind from the features."""
    frame = gpd.read_file(path)
    frame = frame[frame.geometry.notna() & (frame.geometry.geom_type == "Point")]
    if frame.empty:
        return None
    kind = str(frame["kind"].iloc[0]) if "kind" in frame else path.stem
    lons = frame.geometry.x.to_numpy()
    lats = frame.geometry.y.to_numpy()
    xs, ys = to_metres(lons, lats)
    ids = (
        frame["source_id"].astype(str).to_numpy(dtype=object)
        if "source_id" in frame
        else np.array([f"{kind}-{i}" for i in range(len(frame))], dtype=object)
    )
    return PlaceLayer(
        kind=kind,
        tree=STRtree(shapely.points(xs, ys)),
        names=frame["name"].astype(str).to_numpy(dtype=object),
        ids=ids,
        lats=lats,
        lons=lons,
        generated=bool(frame.get("generated", False) is True),
    )
