"""The pre-computed grids that answer most place look-ups with a few numpy operations.

Both fall back to the exact STRtree query wherever they cannot be sure, so answers
are identical with or without them (``tests/unit/enrichers/test_geo_grids.py``
checks it, bit for bit):

- ``AreaGrid``: a grid of small cells in degrees (about 17 m by 28 m). A cell that
  no polygon boundary comes near lies wholly inside the same polygons as its centre;
  which they are is found for all cells at once by counting boundary crossings along
  the rows (a winding count; near a polygon that is not valid, the exact query decides
  instead). A cell a boundary crosses is split into 4 x 4 smaller cells found the same
  way. ``GeoIndex`` builds one per level looked up, on the same cells, and combines
  them into one grid of combinations of areas.
- ``NearestGrid``, per place layer, in the planar metres of ``rtic.geodesy``: for each
  cell, the only places that can be the nearest to a point in it; a look-up is
  distances to those few. Ties (places at the same position) and crowded cells take
  the exact query, which picks.

Pure: numpy and shapely, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import shapely

if TYPE_CHECKING:
    from enrichers.geo.layers import AreaLevel

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
