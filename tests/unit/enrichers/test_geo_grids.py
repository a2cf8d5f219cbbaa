"""The pre-computed grids give the exact queries' answers, bit for bit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichers.geo import (
    AreaGrid,
    AreaLevel,
    GeoIndex,
    round_1dp,
)
from enrichers.zones import build_place_layers
from rtic.geodesy import to_metres


def _exact(geo: GeoIndex) -> GeoIndex:
    """The same boundaries without grids: every look-up is the exact STRtree query."""
    return GeoIndex(geo.levels, geo.places, geo.version)


def _exact_share(grid: AreaGrid, outside: int) -> float:
    """The share of the grid's area, inside the force area, left to the exact query."""
    split = grid.cells <= AreaGrid.SPLIT
    small = grid.blocks.ravel()
    area = grid.fine**2
    exact = area * np.sum(grid.cells == AreaGrid.EXACT) + np.sum(small == AreaGrid.EXACT)
    inside = area * np.sum(~split & (grid.cells != outside)) + np.sum(small != outside)
    return float(exact / inside)


def test_the_loaded_index_has_a_grid_that_answers_most_points(geo: GeoIndex) -> None:
    assert geo.grid is not None and geo.grid.fine > 1
    assert geo._grid_combos[0] == {}  # cells outside every area
    assert _exact_share(geo.grid, outside=0) < 0.05
    assert all(layer.grid is not None for layer in geo.places.values())


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_areas_from_the_grids_equal_the_exact_query_in_and_around_the_force_area(
    geo: GeoIndex, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    lats = rng.uniform(52.30, 52.72, 3000)
    lons = rng.uniform(-2.30, -1.35, 3000)
    assert geo._lookup_areas(lats, lons) == _exact(geo)._lookup_areas(lats, lons)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_points_on_and_next_to_boundaries_get_the_exact_answer(
    geo: GeoIndex, data: st.DataObject
) -> None:
    level = geo.levels[data.draw(st.sampled_from(["ward", "lsoa"]), label="level")]
    i = data.draw(st.integers(0, len(level.geoms) - 1), label="area")
    ring = shapely.get_coordinates(shapely.boundary(level.geoms[i]))
    offsets = data.draw(st.sampled_from([0.0, 1e-9, 1e-7, 1e-5]), label="offset")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    pick = ring[rng.integers(0, len(ring), 200)]
    lons = pick[:, 0] + rng.uniform(-1, 1, 200) * offsets
    lats = pick[:, 1] + rng.uniform(-1, 1, 200) * offsets
    assert geo._lookup_areas(lats, lons) == _exact(geo)._lookup_areas(lats, lons)


def test_grid_points_outside_it_and_not_finite_take_the_exact_query(geo: GeoIndex) -> None:
    grid = geo.grid
    assert grid is not None
    got = grid.lookup(np.array([np.nan, -5.0, 0.0, -1.9]), np.array([52.5, 52.5, 52.5, np.inf]))
    assert (got == AreaGrid.EXACT).all()
    lats, lons = np.array([np.nan, 51.5, 52.48]), np.array([-1.9, -0.12, -1.9])
    assert geo._lookup_areas(lats, lons) == _exact(geo)._lookup_areas(lats, lons)


def _exact_nearest(layer, xs, ys, max_distance):  # type: ignore[no-untyped-def]
    (p, li), d = layer.tree.query_nearest(
        shapely.points(xs, ys), max_distance=max_distance, return_distance=True, all_matches=False
    )
    return sorted(zip(p.tolist(), li.tolist(), d.tolist(), strict=True))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([5000.0, 1500.0, 100.0, 1.0]))
def test_nearest_places_from_the_grids_equal_the_exact_query(
    geo: GeoIndex, seed: int, max_distance: float
) -> None:
    rng = np.random.default_rng(seed)
    xs, ys = to_metres(rng.uniform(-2.4, -1.3, 2000), rng.uniform(52.25, 52.75, 2000))
    for layer in geo.places.values():
        pidx, lidx, dists = layer.nearest(xs, ys, max_distance)
        got = sorted(zip(pidx.tolist(), lidx.tolist(), dists.tolist(), strict=True))
        assert got == _exact_nearest(layer, xs, ys, max_distance), layer.kind


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 120))
def test_operator_layers_small_and_large_with_duplicates_equal_the_exact_query(
    seed: int, size: int
) -> None:
    rng = np.random.default_rng(seed)
    lats = rng.uniform(52.40, 52.55, size).round(3)  # rounded: places at the same spot
    lons = rng.uniform(-2.0, -1.8, size).round(3)
    entries = {
        f"P{i}": {"name": f"p{i}", "kind": "care_home", "lat": float(a), "lon": float(o)}
        for i, (a, o) in enumerate(zip(lats, lons, strict=True))
    }
    layer = build_place_layers(entries)["care_home"]
    xs, ys = to_metres(rng.uniform(-2.1, -1.7, 1000), rng.uniform(52.35, 52.6, 1000))
    pidx, lidx, dists = layer.nearest(xs, ys, 5000.0)
    got = sorted(zip(pidx.tolist(), lidx.tolist(), dists.tolist(), strict=True))
    assert got == _exact_nearest(layer, xs, ys, 5000.0)


@given(st.lists(st.floats(0, 1e7, allow_nan=False), max_size=50))
def test_round_1dp_is_round_bit_for_bit(values: list[float]) -> None:
    halves = [k / 20 for k in range(0, 400, 1)]  # x.x5: the ties and near-ties
    arr = np.array(values + halves, dtype=float)
    got = round_1dp(arr)
    want = [round(v, 1) for v in arr.tolist()]
    assert [g.hex() for g in got] == [w.hex() for w in want]


# ---- the grids' build on made-up areas: holes, overlaps, orientation, invalid rings ------


def _level(geoms: list[shapely.Geometry]) -> AreaLevel:
    arr = np.array(geoms, dtype=object)
    shapely.prepare(arr)
    codes = np.array([f"A{i:03d}" for i in range(len(arr))], dtype=object)
    return AreaLevel("test", shapely.STRtree(arr), codes, codes.copy(), arr)


def _made_up_areas(rng: np.random.Generator) -> list[shapely.Geometry]:
    """Overlapping discs, boxes with holes (either orientation), a multipolygon, and
    an invalid polygon (a ring that crosses itself)."""
    out: list[shapely.Geometry] = []
    for _ in range(int(rng.integers(1, 6))):
        x, y = rng.uniform(0, 0.05, 2)
        out.append(shapely.Point(x, y).buffer(float(rng.uniform(0.002, 0.02)), quad_segs=6))
    for _ in range(int(rng.integers(0, 3))):
        x, y = rng.uniform(0, 0.04, 2)
        w = float(rng.uniform(0.004, 0.02))
        hole = shapely.box(x + w / 4, y + w / 4, x + w / 2, y + w / 2)
        poly = shapely.Polygon(shapely.box(x, y, x + w, y + w).exterior, [hole.exterior])
        out.append(poly if rng.random() < 0.5 else shapely.reverse(poly))
    x, y = rng.uniform(0, 0.04, 2)
    out.append(
        shapely.MultiPolygon(
            [
                shapely.box(x, y, x + 0.003, y + 0.003),
                shapely.box(x + 0.005, y, x + 0.008, y + 0.004),
            ]
        )
    )
    if rng.random() < 0.5:
        x, y = rng.uniform(0, 0.04, 2)
        out.append(shapely.Polygon([(x, y), (x + 0.01, y + 0.01), (x + 0.01, y), (x, y + 0.01)]))
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 4, 8]))
def test_a_grid_built_by_winding_counts_agrees_with_the_exact_query(seed: int, fine: int) -> None:
    rng = np.random.default_rng(seed)
    level = _level(_made_up_areas(rng))
    grid = AreaGrid.build(level, 0.0005, fine)
    x1, y1 = grid.x0 + grid.nx * grid.cell, grid.y0 + grid.ny * grid.cell
    vertices = shapely.get_coordinates(level.geoms)  # on the boundaries: the exact query
    xs = np.concatenate([rng.uniform(grid.x0, x1, 4000), vertices[:, 0]])
    ys = np.concatenate([rng.uniform(grid.y0, y1, 4000), vertices[:, 1]])
    got = grid.lookup(xs, ys)
    exact = level.lookup(shapely.points(xs, ys))
    sure = got != AreaGrid.EXACT
    assert sure[:4000].mean() > 0.5
    assert not sure[4000:].any()
    assert (got[sure] == np.where(exact >= 0, exact, AreaGrid.NONE)[sure]).all()
    if fine > 1:
        coarse = AreaGrid.build(level, 0.0005, 1)
        assert _exact_share(grid, AreaGrid.NONE) <= _exact_share(coarse, AreaGrid.NONE)


def test_grids_built_together_are_split_alike(geo: GeoIndex) -> None:
    ward, lsoa = AreaGrid.build_many([geo.levels["ward"], geo.levels["lsoa"]], 0.001, 2)
    assert (ward.x0, ward.y0, ward.nx, ward.ny) == (lsoa.x0, lsoa.y0, lsoa.nx, lsoa.ny)
    assert np.array_equal(ward.cells <= AreaGrid.SPLIT, lsoa.cells <= AreaGrid.SPLIT)
    with pytest.raises(ValueError, match="built together"):
        GeoIndex(
            geo.levels,
            geo.places,
            geo.version,
            grids={
                "ward": AreaGrid.build(geo.levels["ward"], 0.001, 2),
                "lsoa": AreaGrid.build(geo.levels["lsoa"], 0.001, 2),
            },
        )


# ---- the combinations' dicts, and the cache ---------------------------------------------


def test_the_grid_s_combinations_are_the_exact_path_s_dicts(geo: GeoIndex) -> None:
    exact = _exact(geo)
    for areas in geo._grid_combos[1:]:
        codes = [areas[level]["code"] for level in geo.levels]
        indexes = {
            name: np.array([list(level.codes).index(code)])
            for (name, level), code in zip(geo.levels.items(), codes, strict=True)
        }
        number = int(geo._numbers(indexes, 1)[0])
        assert geo._combos[number] is areas  # shared with the exact path
        assert exact._combo(number) == areas  # what building it on first use gives
    assert len(set(map(id, geo._grid_combos))) == len(geo._grid_combos)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_areas_without_the_cache_equal_areas_with_it(geo: GeoIndex, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lats = rng.uniform(52.30, 52.72, 300)
    lons = rng.uniform(-2.30, -1.35, 300)
    lats[::7], lons[::7] = lats[0], lons[0]  # repeats
    fresh = copy.copy(geo)
    fresh._area_cache = {}
    before = dict(fresh._area_cache)
    uncached = fresh.areas(lats.tolist(), lons.tolist(), cache=False)
    assert fresh._area_cache == before  # not read nor written
    assert uncached == fresh.areas(lats.tolist(), lons.tolist())  # fills the cache
    assert uncached == fresh.areas(lats.tolist(), lons.tolist())  # from the cache
    assert uncached == _exact(geo).areas(lats.tolist(), lons.tolist(), cache=False)


def test_an_operator_layer_of_a_shipped_kind_replaces_it(geo: GeoIndex) -> None:
    lat, lon = 52.4801, -1.9025
    school = {"S1": {"name": "Operator school", "kind": "school", "lat": lat, "lon": lon + 0.001}}
    geo.set_operator_places(build_place_layers(school))
    try:
        (near,) = geo.nearest_places([lat], [lon])
        assert near["school"]["name"] == "Operator school"
        assert list(near) == list(geo.places)  # the shipped kinds' order is kept
    finally:
        geo.set_operator_places({})
