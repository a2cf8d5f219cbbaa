"""Place enrichment: which areas a point falls in, and the nearest places of interest.

``GeoIndex`` holds the levels of areas and the place layers (``GeoIndex.load`` reads
them once, ``enrichers.geo.loading``) and answers whole batches at once: numpy
arrays and shapely 2's vectorised STRtree queries, so a batch of 500 events costs a
few array operations, not 500 queries. Pure: no I/O after loading, no clock.

A point on a shared border takes the area with the lowest code; a point inside the
force area that falls in a sliver between generalised polygons of one level takes
that level's nearest area (within about 350 m). So every point inside the force area
gets exactly one code per level.

The area grids of the levels looked up (``enrichers.geo.grids.AreaGrid``) are
combined into one grid whose cells hold the combination of areas itself (district,
ward, LSOA: one shared dict each); points in small cells a boundary crosses, or in a
sliver between one level's polygons, take the exact queries. Nearest places are
measured in the planar metres of ``rtic.geodesy.to_metres`` (within 0.001 % of the
great-circle distance over the force area).

Operator place layers (refuges, say) change at run time: the worker hands the new
ones to ``set_operator_places``; they are looked up with the shipped layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from enrichers.geo.grids import AREA_GRID_CELL_DEG, AreaGrid
from enrichers.geo.layers import AreaLevel, PlaceLayer, points_xy
from enrichers.geo.loading import load_layers
from rtic.geodesy import to_metres

GAP_TOLERANCE_DEG = 0.005  # about 350 m east-west, 550 m north-south
AREA_CACHE_SIZE = 200_000  # points remembered (about 100 MB at most); cleared when full


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
        self._operator_places: dict[str, PlaceLayer] = {}  # changed at run time
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
        """Read boundaries and place layers from ``data_dir`` (see data/README.md) and
        build the area grids of the levels looked up."""
        levels, places, version = load_layers(data_dir)
        index = cls(levels, places, version)
        looked_up = index.looked_up
        built = AreaGrid.build_many([levels[name] for name in looked_up], AREA_GRID_CELL_DEG)
        index._combine(dict(zip(looked_up, built, strict=True)))
        return index

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
        for layer in {**self.places, **self._operator_places}.values():
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

    @property
    def operator_places(self) -> Mapping[str, PlaceLayer]:
        """The operator's place layers by kind, looked up with the shipped ones."""
        return self._operator_places

    def set_operator_places(self, layers: Mapping[str, PlaceLayer]) -> None:
        """Replace the operator's place layers (``enrichers.zones.build_place_layers``):
        a kind also shipped takes the operator's layer, in the shipped kind's order."""
        self._operator_places = dict(layers)

    def area_codes(self, areas: dict[str, Any]) -> list[str]:
        """The codes of one point's areas, broadest first."""
        return [areas[lvl]["code"] for lvl in self.levels if lvl in areas]

    def codes_at(self, lat: float, lon: float) -> list[str]:
        """The area codes of one point, broadest first (empty outside the force area)."""
        return self.area_codes(self.areas([lat], [lon])[0])
