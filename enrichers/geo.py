"""Place enrichment: which areas a point falls in, and the nearest places of interest.

Reference data is loaded once (``GeoIndex.load``) from the boundaries and place
layers in the data folder; look-ups work on whole batches at once (numpy arrays, and
shapely 2's vectorised STRtree queries), so a batch of 500 events costs a few array
operations, not 500 queries. Pure: no I/O after loading, no clock.

Levels, each a code and a name, from the data folder (see data/README.md):

- ``district``: the seven metropolitan districts of the force area (file names)
- ``ward``: electoral wards (2013), a stand-in for police neighbourhoods
- ``lsoa``: Lower Layer Super Output Areas (2011)

A point on a shared border takes the area with the lowest code; a point inside
the force area that falls in a sliver between generalised polygons of one level
takes that level's nearest area (within about 350 m). So every point inside the
force area gets exactly one code per level.

Pre-computed indexes answer most look-ups with a few numpy operations and fall back
to the exact STRtree query wherever they cannot be sure, so answers are identical
with or without them (property tests check it):

- ``AreaGrid``: a grid of small cells (about 17 m by 28 m). A cell that no polygon
  boundary comes near lies wholly inside the same polygons as its centre; which
  they are is found for all cells at once by counting boundary crossings along the
  rows (a winding count; near a polygon that is not valid, the exact query decides
  instead). A cell a boundary crosses is split into 4 x 4 smaller cells found the
  same way. The ward and LSOA grids are built on the same cells and combined
  into one grid whose cells hold the combination of areas itself (district, ward,
  LSOA: one shared dict each); points in small cells a boundary crosses, or in a
  sliver between one level's polygons, take the exact queries.
- ``NearestGrid``, per place layer: for each cell, the only places that can be the
  nearest to a point in it; a look-up is distances to those few. Ties (places at
  the same position) and crowded cells take the exact query, which picks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
# The area grid (degrees: about 17 m by 28 m), and the cells a boundary crosses split
# into 4 x 4: finer leaves fewer points to the exact query, but takes longer to build
# and more memory (see AreaGrid).
AREA_GRID_CELL_DEG = 0.00025
AREA_GRID_FINE = 4
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


def points_xy(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``shapely.points(xs, ys)``; from one (n, 2) array, which costs shapely 2 far less
    per call (about 5 us instead of 30)."""
    return shapely.points(np.column_stack((xs, ys)))


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
        if len(pidx) == 1 or (len(pidx) and (pidx[1:] > pidx[:-1]).all()):
            out[pidx] = aidx  # one hit per point, the usual case
        elif len(pidx):
            # Several hits (a border): keep the lowest code, deterministically.
            order = np.lexsort((self.codes[aidx], pidx))
            pidx, aidx = pidx[order], aidx[order]
            first = np.unique(pidx, return_index=True)[1]
            out[pidx[first]] = aidx[first]
        return out


@dataclass(frozen=True, eq=False)
class AreaGrid:
    """One level's answers, pre-computed on a grid of cells in degrees.

    A cell that no polygon boundary of the level comes near (within a small margin,
    so rounding in finding a point's cell is covered) lies wholly inside the same
    polygons as its centre. Which polygons those are is found for every cell at once
    by a winding count along the rows (``_winding``), not by a query per cell. A cell
    a boundary crosses is split into ``fine`` x ``fine`` smaller cells answered the
    same way, and only the small cells a boundary crosses are left to the exact query.

    ``cells`` holds per cell the area's index, ``NONE`` (inside no area), ``EXACT``
    (the exact query decides) or, for a split cell, ``SPLIT - k``: its small cells are
    row ``k`` of ``blocks`` (row by row, each the area's index, ``NONE`` or ``EXACT``).
    """

    EXACT: ClassVar[int] = -1
    NONE: ClassVar[int] = -2
    SPLIT: ClassVar[int] = -3

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    cells: np.ndarray
    fine: int = 1
    blocks: np.ndarray = field(default_factory=lambda: np.empty((0, 1), dtype=np.int16))

    @classmethod
    def build(cls, level: AreaLevel, cell: float, fine: int = AREA_GRID_FINE) -> AreaGrid:
        """One level's grid."""
        return cls.build_many([level], cell, fine)[0]

    @classmethod
    def build_many(
        cls, levels: Sequence[AreaLevel], cell: float, fine: int = AREA_GRID_FINE
    ) -> list[AreaGrid]:
        """A grid per level, all on the same cells and split alike (a cell is split where
        a boundary of any of the levels crosses it), so they can be combined cell by cell."""
        bounds = np.array([shapely.total_bounds(level.geoms) for level in levels])
        x0, y0 = float(bounds[:, 0].min()) - cell, float(bounds[:, 1].min()) - cell
        nx = int(np.ceil((bounds[:, 2].max() - x0) / cell)) + 2
        ny = int(np.ceil((bounds[:, 3].max() - y0) / cell)) + 2
        edges = [_ring_edges(level.geoms) for level in levels]
        segments = [_segments(e) for e in edges]
        # The winding count is trusted for valid polygons only: cells near an invalid
        # one (a self-crossing ring, say) take the exact query instead.
        invalid = [shapely.bounds(level.geoms[~shapely.is_valid(level.geoms)]) for level in levels]
        marked = np.zeros(ny * nx, dtype=bool)
        for a, b in segments:
            iy, ix = _touched_cells(a, b, x0, y0, cell, nx, ny)
            marked[iy * nx + ix] = True
        frame = (x0, y0, cell, nx, ny)
        cells = [
            cls._unmarked(level, e, bad, frame, marked)
            for level, e, bad in zip(levels, edges, invalid, strict=True)
        ]
        split = np.flatnonzero(marked)
        blocks: list[np.ndarray | None] = [None]
        if fine > 1 and len(split):
            blocks = [
                _split_cells(e, s, *frame, split, fine, len(level.codes), bad)
                for level, e, s, bad in zip(levels, edges, segments, invalid, strict=True)
            ]
        if any(b is None for b in blocks):  # not split (or not expected: a crossing outside)
            return [cls(*frame, c) for c in cells]
        grids = []
        for coarse, small in zip(cells, blocks, strict=True):
            coarse = coarse.astype(np.int32)
            coarse[split] = cls.SPLIT - np.arange(len(split))
            assert small is not None
            grids.append(cls(*frame, coarse, fine, small))
        return grids

    @classmethod
    def _unmarked(
        cls,
        level: AreaLevel,
        edges: _Edges,
        invalid: np.ndarray,
        frame: tuple[float, float, float, int, int],
        marked: np.ndarray,
    ) -> np.ndarray:
        """The answers of the cells no boundary comes near (``EXACT`` for the others)."""
        x0, y0, cell, nx, ny = frame

        def locate(row: np.ndarray, x: np.ndarray) -> np.ndarray:
            return row * nx + np.clip(np.floor((x - x0) / cell).astype(np.int64), 0, nx - 1)

        found = _winding(edges, y0, cell, ny, locate, nx * ny, len(level.codes))
        # (None is not expected: every crossing has a cell)
        cells = np.full(nx * ny, cls.EXACT, dtype=np.int32) if found is None else found
        cells[marked] = cls.EXACT
        unsure = (cells == cls.EXACT).reshape(ny, nx)
        for r0, r1, c0, c1 in _box_cells(invalid, x0, y0, cell):
            unsure[max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1] = True
        unsure = unsure.ravel() & ~marked
        if unsure.any():  # overlapping or invalid polygons: the exact query at the centre
            rows, cols = np.divmod(np.flatnonzero(unsure), nx)
            centres = np.column_stack((x0 + (cols + 0.5) * cell, y0 + (rows + 0.5) * cell))
            exact = level.lookup(shapely.points(centres))
            cells[unsure] = np.where(exact >= 0, exact, cls.NONE)
        return cells

    def lookup(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Per point the area index, ``NONE`` or ``EXACT`` (also outside the grid)."""
        fx = (lons - self.x0) / self.cell
        fy = (lats - self.y0) / self.cell
        ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)  # False for NaN
        if ok.all():
            return self._inside(fx, fy)
        out = np.full(len(lons), self.EXACT, dtype=np.int64)
        sel = np.flatnonzero(ok)
        out[sel] = self._inside(fx[sel], fy[sel])
        return out

    def _inside(self, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
        ix, iy = fx.astype(np.int64), fy.astype(np.int64)
        out = self.cells[iy * self.nx + ix].astype(np.int64)
        split = np.flatnonzero(out <= self.SPLIT)
        if len(split):
            f = self.fine
            sx = np.minimum(((fx[split] - ix[split]) * f).astype(np.int64), f - 1)
            sy = np.minimum(((fy[split] - iy[split]) * f).astype(np.int64), f - 1)
            out[split] = self.blocks[self.SPLIT - out[split], sy * f + sx]
        return out


_Edges = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _ring_edges(geoms: np.ndarray) -> _Edges:
    """Every ring edge of the polygons: start and end points (n x 2), the polygon's index,
    and the edge's weight in a winding count: +1 or -1, so that a point inside a valid
    polygon counts 1 and a point outside it 0, whatever the rings' orientation."""
    parts, part_poly = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    exterior = np.ones(len(rings), dtype=bool)  # each part's rings: the exterior, then holes
    exterior[1:] = ring_part[1:] != ring_part[:-1]
    weight = np.where(shapely.is_ccw(rings) == exterior, 1, -1)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    edge_ring = ring[:-1][same]
    return xy[:-1][same], xy[1:][same], part_poly[ring_part[edge_ring]], weight[edge_ring]


def _segments(edges: _Edges) -> tuple[np.ndarray, np.ndarray]:
    """The edges' segments once each (a border shared by two areas is in both their rings)."""
    a, b = edges[0], edges[1]
    flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    ends = np.where(flip[:, None], np.hstack([b, a]), np.hstack([a, b]))
    order = np.lexsort(ends.T[::-1])
    ends = ends[order]
    keep = np.ones(len(ends), dtype=bool)
    keep[1:] = (ends[1:] != ends[:-1]).any(axis=1)
    return ends[keep, :2], ends[keep, 2:]


def _touched_cells(
    a: np.ndarray, b: np.ndarray, x0: float, y0: float, size: float, nx: int, ny: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every cell of a grid that a segment ``a``-``b`` comes within
    the margin of: for each row the segment reaches (the row grown by the margin), the
    columns the part of the segment in that row spans, grown by the margin."""
    m = _GRID_MARGIN_DEG
    ya, yb = a[:, 1], b[:, 1]
    ylo, yhi = np.minimum(ya, yb), np.maximum(ya, yb)
    r0 = np.clip(np.floor((ylo - m - y0) / size).astype(np.int64), 0, ny - 1)
    r1 = np.clip(np.floor((yhi + m - y0) / size).astype(np.int64), 0, ny - 1)
    count = r1 - r0 + 1
    seg = np.repeat(np.arange(len(a)), count)
    row = r0[seg] + np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
    # The part of the segment in the row (grown): between these heights, clipped to it.
    lo = np.maximum(y0 + row * size - m, ylo[seg])
    hi = np.minimum(y0 + (row + 1) * size + m, yhi[seg])
    xa, dx, dy = a[seg, 0], (b - a)[seg, 0], (b - a)[seg, 1]
    flat = dy == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo = np.where(flat, 0.0, np.clip((lo - ya[seg]) / dy, 0.0, 1.0))
        t_hi = np.where(flat, 1.0, np.clip((hi - ya[seg]) / dy, 0.0, 1.0))
    x_lo, x_hi = xa + t_lo * dx, xa + t_hi * dx
    c0 = np.clip(np.floor((np.minimum(x_lo, x_hi) - m - x0) / size).astype(np.int64), 0, nx - 1)
    c1 = np.clip(np.floor((np.maximum(x_lo, x_hi) + m - x0) / size).astype(np.int64), 0, nx - 1)
    count = c1 - c0 + 1
    pair = np.repeat(np.arange(len(row)), count)
    col = c0[pair] + np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    return row[pair], col


def _row_crossings(
    a: np.ndarray, b: np.ndarray, y0: float, size: float, ny: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the edges cross the centre lines of the rows of a grid: (edge, row, x).

    An edge crosses the line of row ``j`` (``y = y0 + (j + 0.5) * size``) when exactly
    one of its ends is at or above it, so a vertex on the line counts once.
    """
    ya, yb = a[:, 1], b[:, 1]
    lo = np.floor((np.minimum(ya, yb) - y0) / size - 0.5).astype(np.int64)
    hi = np.floor((np.maximum(ya, yb) - y0) / size - 0.5).astype(np.int64) + 1
    lo, hi = np.clip(lo, 0, ny), np.clip(hi, -1, ny - 1)  # one row more each side: checked below
    count = np.maximum(hi - lo + 1, 0)
    edge = np.repeat(np.arange(len(a)), count)
    row = lo[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    line = y0 + (row + 0.5) * size
    cross = (ya[edge] <= line) != (yb[edge] <= line)
    edge, row, line = edge[cross], row[cross], line[cross]
    x = a[edge, 0] + (line - ya[edge]) * (b[edge, 0] - a[edge, 0]) / (yb[edge] - ya[edge])
    return edge, row, x


def _winding(
    edges: _Edges,
    y0: float,
    size: float,
    ny: int,
    locate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_slots: int,
    n_areas: int,
) -> np.ndarray | None:
    """The area around the centre of every cell, where a winding count is sure of it:
    the area's index, ``NONE``, or ``EXACT`` (overlapping areas: not sure).

    Each edge crossing a row's centre line weighs ``base + index + 1`` (``base`` is the
    number of areas + 1), signed by its direction and its ring's weight; summed from
    the left, they give at a point ``base * n + s``, ``n`` the number of valid polygons
    around it and ``s`` the sum of their (index + 1): ``0`` outside every area, ``base
    + index + 1`` inside one, more inside several. A crossing lies on a boundary, so in
    a cell a boundary touches; for the other cells, summing up to and including the
    cell is summing up to its centre. ``locate(row, x)`` gives the slot of the cell a
    crossing is in (-1: none); slots follow each row from left to right, and whole rows
    one after another (a row's weights sum to zero). None when a crossing has no slot.
    """
    a, b, poly, weight = edges
    edge, row, x = _row_crossings(a, b, y0, size, ny)
    at = locate(row, x)
    if (at < 0).any():
        return None
    base = n_areas + 1
    dtype = np.int32 if 4 * base * (len(a) + 1) < np.iinfo(np.int32).max else np.int64
    # Seen from a point, the edges to its left of a ring around it go down if the ring
    # runs anticlockwise: +1 down, -1 up, times the ring's weight.
    sign = np.where(b[edge, 1] < a[edge, 1], weight[edge], -weight[edge])
    count: np.ndarray = np.zeros(n_slots, dtype=dtype)
    np.add.at(count, at, (sign * (base + poly[edge] + 1)).astype(dtype))
    np.cumsum(count, out=count)
    out_type = np.int16 if n_areas < np.iinfo(np.int16).max else np.int32
    count -= base + 1  # now the area's index, where inside one
    one = (count >= 0) & (count < n_areas)
    out = np.where(count == -(base + 1), out_type(AreaGrid.NONE), out_type(AreaGrid.EXACT))
    np.copyto(out, count, casting="unsafe", where=one)
    return out


def _box_cells(
    bounds: np.ndarray, x0: float, y0: float, size: float
) -> Iterator[tuple[int, int, int, int]]:
    """For each box (minx, miny, maxx, maxy): the rows and columns of the grid's cells
    it meets, grown by a cell each way (first row, last row, first column, last column)."""
    for minx, miny, maxx, maxy in bounds.tolist():
        yield (
            int(np.floor((miny - y0) / size)) - 1,
            int(np.floor((maxy - y0) / size)) + 1,
            int(np.floor((minx - x0) / size)) - 1,
            int(np.floor((maxx - x0) / size)) + 1,
        )


def _split_cells(
    edges: _Edges,
    segments: tuple[np.ndarray, np.ndarray],
    x0: float,
    y0: float,
    cell: float,
    nx: int,
    ny: int,
    split: np.ndarray,
    fine: int,
    n_areas: int,
    invalid: np.ndarray,
) -> np.ndarray | None:
    """The small cells of the ``split`` cells (flat numbers, ascending), ``fine`` x
    ``fine`` each: one row per split cell, its small cells row by row.

    Small cells are counted in the order of lines: small row ``r`` of every split cell
    of one row of the grid, left to right, then of the next row, so each line is a
    small row of the whole grid, and one winding count answers them all.
    """
    nb, size = len(split), cell / fine
    block = np.full(nx * ny, -1, dtype=np.int64)
    block[split] = np.arange(nb)

    def locate(row: np.ndarray, x: np.ndarray) -> np.ndarray:
        col = np.clip(np.floor((x - x0) / size).astype(np.int64), 0, nx * fine - 1)
        k = block[(row // fine) * nx + col // fine]
        return np.where(k >= 0, (row % fine) * (nb * fine) + k * fine + col % fine, -1)

    found = _winding(edges, y0, size, ny * fine, locate, nb * fine * fine, n_areas)
    if found is None:
        return None
    iy, ix = _touched_cells(*segments, x0, y0, size, nx * fine, ny * fine)
    k = block[(iy // fine) * nx + ix // fine]
    keep = k >= 0
    found[(iy[keep] % fine) * (nb * fine) + k[keep] * fine + ix[keep] % fine] = AreaGrid.EXACT
    blocks = found.reshape(fine, nb, fine).transpose(1, 0, 2).reshape(nb, fine * fine)
    rows, cols = np.divmod(split, nx)
    for r0, r1, c0, c1 in _box_cells(invalid, x0, y0, cell):
        blocks[(rows >= r0) & (rows <= r1) & (cols >= c0) & (cols <= c1)] = AreaGrid.EXACT
    return np.ascontiguousarray(blocks)


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
        """``grids``: one per level looked up (``looked_up``), built together
        (``AreaGrid.build_many``); they are combined into one grid of combinations of
        areas. Without them every look-up is the exact query."""
        self.levels = levels
        self.places = places
        self.version = version
        self._area_cache: dict[tuple[float, float], dict[str, Any]] = {}
        # One shared answer per combination of areas, keyed by _numbers' number.
        self._combos: dict[int, dict[str, Any]] = {}
        self.extra_places: dict[str, PlaceLayer] = {}  # operator layers, changed at run time
        self._ward_district: np.ndarray | None = None
        self._ward_district_or_none = np.empty(0, dtype=np.int64)
        if "ward" in levels and "district" in levels:
            position = {code: i for i, code in enumerate(levels["district"].codes)}
            ward_district = getattr(levels["ward"], "parents", None)
            if ward_district is not None:
                self._ward_district = np.array([position[c] for c in ward_district], dtype=np.int64)
                # The same, one place on, with -1 (no ward) giving -1 (no district).
                self._ward_district_or_none = np.concatenate([[-1], self._ward_district])
        # The levels looked up: a ward lies in one district, so the big district
        # polygons are never tested when wards say which district they are in.
        self.looked_up = [
            name for name in levels if not (name == "district" and self._ward_district is not None)
        ]
        self.grid: AreaGrid | None = None  # cells: an index into _grid_combos, or EXACT
        self._grid_combos: list[dict[str, Any]] = []
        if grids:
            self._combine(grids)

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
        looked_up = [name for name in levels if name != "district"]
        built = AreaGrid.build_many([levels[name] for name in looked_up], AREA_GRID_CELL_DEG)
        grids = dict(zip(looked_up, built, strict=True))
        return cls(levels, places, version=f"geo-{digest.hexdigest()[:12]}", grids=grids)

    def _combine(self, grids: dict[str, AreaGrid]) -> None:
        """One grid whose cells say the combination of areas (an index into
        ``_grid_combos``) from one grid per level looked up, where every level is sure
        and either all levels have an area or none has (a point in a sliver between
        one level's polygons takes the exact path, which finds its nearest area)."""
        if set(grids) != set(self.looked_up):
            raise ValueError(f"area grids for {sorted(grids)}, levels looked up {self.looked_up}")
        order = [grids[name] for name in self.looked_up]
        first = order[0]
        frame = (first.x0, first.y0, first.cell, first.nx, first.ny, first.fine)
        split = first.cells <= AreaGrid.SPLIT
        for g in order[1:]:
            same = (g.x0, g.y0, g.cell, g.nx, g.ny, g.fine) == frame
            if not (same and np.array_equal(g.cells <= AreaGrid.SPLIT, split)):
                raise ValueError("area grids not built together (AreaGrid.build_many)")
        sizes = [len(self.levels[name].codes) + 1 for name in self.looked_up]
        if int(np.prod(sizes, dtype=np.float64)) > 50_000_000:
            return  # too many combinations for a table: the exact query answers

        def codes(values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """Each cell's combination as one number (0: no area), whether all levels
            have an area, and whether none has."""
            code = np.zeros(len(values[0]), dtype=np.int64)
            full = np.ones(len(values[0]), dtype=bool)
            empty = np.ones(len(values[0]), dtype=bool)
            for v, size in zip(values, sizes, strict=True):
                code = code * size + np.maximum(v + 1, 0)
                full &= v >= 0
                empty &= v == AreaGrid.NONE
            return code, full, empty

        coarse = codes([g.cells for g in order])
        small = codes([g.blocks.ravel() for g in order])
        present = np.zeros(int(np.prod(sizes)), dtype=bool)
        present[coarse[0][coarse[1] & ~split]] = True
        present[small[0][small[1]]] = True
        known = np.flatnonzero(present)  # the combinations met (0 is never: no level)
        index = np.zeros(len(present), dtype=np.int32)
        index[known] = np.arange(1, len(known) + 1)
        # The combinations' dicts, shared with the exact path's.
        digits = np.array(np.unravel_index(known, sizes)) - 1
        found = dict(zip(self.looked_up, digits, strict=True))
        if "district" not in found and self._ward_district is not None:
            found["district"] = self._ward_district[found["ward"]]
        table = [self._combos.setdefault(0, self._combo(0))]
        for number in self._numbers(found, len(known)).tolist():
            table.append(self._combos.setdefault(number, self._combo(number)))

        def cells(code: np.ndarray, full: np.ndarray, empty: np.ndarray) -> np.ndarray:
            dtype = np.int16 if len(table) < np.iinfo(np.int16).max else np.int32
            out = np.where(full, index[code], np.where(empty, 0, AreaGrid.EXACT))
            return out.astype(dtype)

        joint = cells(*coarse).astype(np.int32)
        joint[split] = first.cells[split]
        blocks = cells(*small).reshape(first.blocks.shape)
        self.grid = AreaGrid(
            first.x0, first.y0, first.cell, first.nx, first.ny, joint, first.fine, blocks
        )
        self._grid_combos = table

    def areas(
        self, lats: Sequence[float], lons: Sequence[float], cache: bool = True
    ) -> list[dict[str, Any]]:
        """For each point, ``{level: {"code", "name"}}`` for every level it falls in.

        Points seen before (fixed cameras, repeat addresses) come from a bounded
        cache; the rest are looked up together, one vectorised query per level.
        ``cache=False`` skips the cache both ways, for points that rarely repeat
        (calls, incidents): the answers are the same, without its bookkeeping.
        The returned dicts are shared (one per combination of areas, and with the
        cache): read them, never change them.
        """
        if not cache:
            return self._lookup_areas(np.asarray(lats, dtype=float), np.asarray(lons, dtype=float))
        keys = list(zip(lats, lons, strict=True))
        seen = self._area_cache
        results: list[dict[str, Any] | None] = list(map(seen.get, keys))
        n_missing = results.count(None)
        if not n_missing:
            return results  # type: ignore[return-value]
        if n_missing == len(keys):  # all new: the usual case for calls
            fresh = self._lookup_areas(np.asarray(lats, dtype=float), np.asarray(lons, dtype=float))
            if len(seen) + len(fresh) > AREA_CACHE_SIZE:
                seen.clear()
            seen.update(zip(keys, fresh, strict=True))
            return fresh
        missing = [i for i, hit in enumerate(results) if hit is None]
        lat_a = np.asarray([lats[i] for i in missing], dtype=float)
        lon_a = np.asarray([lons[i] for i in missing], dtype=float)
        fresh = self._lookup_areas(lat_a, lon_a)
        if len(seen) + len(fresh) > AREA_CACHE_SIZE:
            seen.clear()
        for i, found in zip(missing, fresh, strict=True):
            results[i] = found
            seen[keys[i]] = found
        return results  # type: ignore[return-value]

    def _lookup_areas(self, lat_a: np.ndarray, lon_a: np.ndarray) -> list[dict[str, Any]]:
        """The areas of each point: from the grid of combinations where it is sure, else
        the exact queries."""
        grid = self.grid
        if grid is None:
            return self._lookup_exact(lat_a, lon_a)
        idx = grid.lookup(lon_a, lat_a)
        out = list(map(self._grid_combos.__getitem__, idx.tolist()))
        exact = np.flatnonzero(idx < 0)
        if len(exact):
            found = self._lookup_exact(lat_a[exact], lon_a[exact])
            for i, areas in zip(exact.tolist(), found, strict=True):
                out[i] = areas
        return out

    def _lookup_exact(self, lat_a: np.ndarray, lon_a: np.ndarray) -> list[dict[str, Any]]:
        """The areas of each point from the exact queries: one per level looked up."""
        points = points_xy(lon_a, lat_a)
        found = {name: self.levels[name].lookup(points) for name in self.looked_up}
        # The generalised layers (wards 2013, LSOAs 2011) leave slivers between them: a
        # point inside the force area that falls in a gap of one layer takes that layer's
        # nearest area within GAP_TOLERANCE_DEG, so it gets one code at every level.
        outside = [idx < 0 for idx in found.values()]
        if any(not np.array_equal(outside[0], out) for out in outside[1:]):
            inside = ~np.logical_and.reduce(outside)
            for (name, idx), out in zip(found.items(), outside, strict=True):
                gaps = np.flatnonzero(inside & out)
                if len(gaps):
                    pidx, aidx = self.levels[name].tree.query_nearest(
                        points[gaps], max_distance=GAP_TOLERANCE_DEG, all_matches=False
                    )
                    idx[gaps[pidx]] = aidx
        if "district" not in found and self._ward_district is not None:
            found["district"] = self._ward_district_or_none[found["ward"] + 1]
        # Each combination's dict is built once and shared.
        keys = self._numbers(found, len(lat_a)).tolist()
        combos = self._combos
        try:
            return list(map(combos.__getitem__, keys))
        except KeyError:  # a combination not seen before
            for key in set(keys).difference(combos):
                combos[key] = self._combo(key)
            return list(map(combos.__getitem__, keys))

    def _numbers(self, found: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Every point's areas (index per level, -1: none) as one number: a digit per
        level, in base that level's size + 1."""
        number = np.zeros(n, dtype=np.int64)
        for i, (name, level) in enumerate(self.levels.items()):
            digit = found[name] + 1
            number = digit if i == 0 else number * (len(level.codes) + 1) + digit
        return number

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
