"""Place enrichment on the real boundaries: known points, borders, outside, and batch = one-by-one."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichers.geo import LEVELS, GeoIndex, distance_m
from tests.conftest import BIRMINGHAM_CENTRE, COVENTRY_CENTRE, LONDON


def test_known_points_get_their_areas(geo: GeoIndex) -> None:
    brum, cov, london = geo.areas(*zip(BIRMINGHAM_CENTRE, COVENTRY_CENTRE, LONDON, strict=True))
    assert brum["district"] == {"code": "E08000025", "name": "Birmingham"}
    assert brum["ward"]["name"] == "Nechells"
    assert brum["lsoa"]["code"].startswith("E01")
    assert cov["district"]["name"] == "Coventry"
    assert london == {}
    assert geo.area_codes(brum)[0] == "E08000025"


def test_every_level_is_loaded_with_names(geo: GeoIndex) -> None:
    assert tuple(geo.levels) == LEVELS
    assert len(geo.levels["district"].codes) == 7
    assert len(geo.levels["ward"].codes) > 150
    assert len(geo.levels["lsoa"].codes) > 1500
    assert geo.version.startswith("geo-")


def test_a_point_on_a_shared_border_gets_one_code_deterministically(geo: GeoIndex) -> None:
    wards = geo.levels["ward"]
    a, b = wards.geoms[0], None
    for g in wards.geoms[1:]:
        if a.touches(g) or a.intersects(g):
            b = g
            break
    assert b is not None
    border = shapely.intersection(a.boundary, b.boundary)
    point = (
        shapely.get_point(shapely.get_parts(border)[0], 0)
        if border.geom_type != "Point"
        else border
    )
    (hit,) = geo.areas([point.y], [point.x])
    assert "ward" in hit
    assert hit == geo.areas([point.y], [point.x])[0]


def test_nearest_places_are_real_and_near(geo: GeoIndex) -> None:
    (near,) = geo.nearest_places([BIRMINGHAM_CENTRE[0]], [BIRMINGHAM_CENTRE[1]])
    assert {"school", "hospital"} <= set(near)
    assert 0 <= near["school"]["distance_m"] < 2000
    (far,) = geo.nearest_places([LONDON[0]], [LONDON[1]])
    assert far == {}


def test_distance_is_plausible() -> None:
    # Birmingham to Coventry centres: about 26 km.
    d = distance_m(*BIRMINGHAM_CENTRE, *COVENTRY_CENTRE)
    assert 25_000 < d < 28_000


def test_boundaries_geojson_for_the_map(geo: GeoIndex) -> None:
    gj = geo.boundaries_geojson("district")
    assert len(gj["features"]) == 7
    assert {f["properties"]["name"] for f in gj["features"]} >= {"Birmingham", "Coventry"}


def _points_in_force_area(geo: GeoIndex, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lats, lons = [], []
    district = geo.levels["district"]
    while len(lats) < n:
        lat, lon = rng.uniform(52.35, 52.67), rng.uniform(-2.21, -1.42)
        if any(g.contains(shapely.Point(lon, lat)) for g in district.geoms):
            lats.append(lat)
            lons.append(lon)
    return np.array(lats), np.array(lons)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_inside_the_force_area_exactly_one_code_per_level_and_batch_equals_single(
    geo: GeoIndex, seed: int
) -> None:
    lats, lons = _points_in_force_area(geo, seed, 20)
    batch = geo.areas(lats, lons)
    for i, areas in enumerate(batch):
        assert set(areas) == set(LEVELS), (lats[i], lons[i], areas)
        assert geo.areas([lats[i]], [lons[i]])[0] == areas
