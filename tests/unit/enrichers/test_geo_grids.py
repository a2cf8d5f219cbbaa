"""The pre-computed grids give the exact queries' answers, bit for bit."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichers.geo import AreaGrid, GeoIndex, round_1dp, to_metres
from enrichers.zones import build_place_layers


def _exact(geo: GeoIndex) -> GeoIndex:
    """The same boundaries without grids: every look-up is the exact STRtree query."""
    return GeoIndex(geo.levels, geo.places, geo.version)


def test_the_loaded_index_has_grids_that_answer_most_points(geo: GeoIndex) -> None:
    assert set(geo.grids) == {"ward", "lsoa"}
    for grid in geo.grids.values():
        inside = grid.cells[grid.cells != AreaGrid.NONE]
        assert (inside == AreaGrid.EXACT).mean() < 0.2
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
    grid = geo.grids["ward"]
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
