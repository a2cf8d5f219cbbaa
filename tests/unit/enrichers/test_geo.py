"""Place enrichment on the real boundaries: known points, borders, outside, and batch = one-by-one."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichers.geo import LEVELS, GeoIndex
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


# ---- Birmingham, ward by ward -----------------------------------------------------------

BIRMINGHAM = "E08000025"


def _birmingham_wards(geo: GeoIndex) -> list[int]:
    parents = geo.levels["ward"].parents
    assert parents is not None
    return [i for i, parent in enumerate(parents) if parent == BIRMINGHAM]


def _point_inside(geom: shapely.Geometry, seed: int) -> tuple[float, float]:
    """A uniformly random point strictly inside ``geom`` (lat, lon)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(10_000):
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if geom.contains(shapely.Point(lon, lat)):
            return lat, lon
    raise AssertionError("no point found inside the polygon")


def test_birmingham_has_its_wards(geo: GeoIndex) -> None:
    assert len(_birmingham_wards(geo)) > 30


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_point_inside_a_birmingham_ward_gets_that_ward_and_one_code_per_level(
    geo: GeoIndex, data: st.DataObject
) -> None:
    wards = geo.levels["ward"]
    i = data.draw(st.sampled_from(_birmingham_wards(geo)), label="ward")
    lat, lon = _point_inside(wards.geoms[i], data.draw(st.integers(0, 2**32 - 1), label="seed"))
    (areas,) = geo.areas([lat], [lon])
    assert set(areas) == set(LEVELS)
    assert areas["district"] == {"code": BIRMINGHAM, "name": "Birmingham"}
    containing = [
        str(wards.codes[j]) for j in wards.tree.query(shapely.Point(lon, lat), "intersects")
    ]
    # Generalised polygons can overlap a little; then the lowest code wins.
    assert areas["ward"]["code"] == min(containing)
    assert str(wards.codes[i]) in containing
    assert geo.area_codes(areas) == [BIRMINGHAM, areas["ward"]["code"], areas["lsoa"]["code"]]


# ---- the cache and edge cases -------------------------------------------------------------


def test_no_points_no_areas(geo: GeoIndex) -> None:
    assert geo.areas([], []) == []
    assert geo.nearest_places([], []) == []
    assert geo.area_codes({}) == []


def test_a_repeated_point_gets_the_same_answer_in_one_batch_and_from_the_cache(
    geo: GeoIndex,
) -> None:
    lat, lon = 52.4801, -1.9025  # central Birmingham
    first, again = geo.areas([lat, lat], [lon, lon])
    assert first == again and first["district"]["name"] == "Birmingham"
    (cached,) = geo.areas([lat], [lon])
    assert cached == first


def test_areas_come_back_in_the_order_asked(geo: GeoIndex) -> None:
    points = [LONDON, BIRMINGHAM_CENTRE, COVENTRY_CENTRE, LONDON, BIRMINGHAM_CENTRE]
    got = geo.areas([p[0] for p in points], [p[1] for p in points])
    names = [a.get("district", {}).get("name") for a in got]
    assert names == [None, "Birmingham", "Coventry", None, "Birmingham"]


def test_nearest_places_respect_the_distance_limit(geo: GeoIndex) -> None:
    (near,) = geo.nearest_places([BIRMINGHAM_CENTRE[0]], [BIRMINGHAM_CENTRE[1]])
    (tight,) = geo.nearest_places(
        [BIRMINGHAM_CENTRE[0]], [BIRMINGHAM_CENTRE[1]], max_distance_m=1.0
    )
    assert set(tight) <= set(near)
    assert all(p["distance_m"] <= 1.0 for p in tight.values())
    for kind, place in near.items():
        assert place["distance_m"] <= 5000, kind
        assert place["name"] and place["id"]
