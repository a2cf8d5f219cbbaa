"""The one earth model: haversine distances, the radius test, the local projection."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rtic.geodesy import (
    EARTH_RADIUS_M,
    FORCE_CENTRE,
    LOCAL,
    M_PER_DEG,
    LocalProjection,
    arc_deg2,
    arc_limit,
    distance_m,
    distances_m,
    metres_per_degree,
    to_degrees,
    to_metres,
    within,
)
from tests.conftest import BIRMINGHAM_CENTRE, COVENTRY_CENTRE

COORD = st.tuples(st.floats(52.3, 52.7), st.floats(-2.3, -1.4))
# Anywhere within about 40 km of the force's centre.
NEAR_FORCE = st.tuples(
    st.floats(FORCE_CENTRE[0] - 0.36, FORCE_CENTRE[0] + 0.36),
    st.floats(FORCE_CENTRE[1] - 0.58, FORCE_CENTRE[1] + 0.58),
)


def test_a_degree_of_latitude_and_known_distances() -> None:
    assert math.isclose(distance_m(52.0, -1.9, 53.0, -1.9), M_PER_DEG, rel_tol=1e-12)
    assert math.isclose(M_PER_DEG, EARTH_RADIUS_M * math.pi / 180)
    # Birmingham to Coventry centres: about 26 km.
    assert 25_000 < distance_m(*BIRMINGHAM_CENTRE, *COVENTRY_CENTRE) < 28_000
    # Half the circumference between antipodes, without a domain error.
    assert math.isclose(distance_m(0.0, 0.0, 0.0, 180.0), math.pi * EARTH_RADIUS_M)


def test_metres_per_degree_shrink_east_west_with_latitude() -> None:
    assert metres_per_degree(0.0) == (M_PER_DEG, M_PER_DEG)
    m_lat, m_lon = metres_per_degree(60.0)
    assert m_lat == M_PER_DEG and math.isclose(m_lon, M_PER_DEG / 2)
    # A small step east at the force's latitude measures what the haversine measures.
    lat, lon = FORCE_CENTRE
    assert math.isclose(
        distance_m(lat, lon, lat, lon + 0.001), metres_per_degree(lat)[1] * 0.001, rel_tol=1e-6
    )


@given(COORD, COORD, COORD)
def test_distance_is_a_metric(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    ab, ba = distance_m(*a, *b), distance_m(*b, *a)
    assert ab == ba >= 0
    assert distance_m(*a, *a) == 0
    assert distance_m(*a, *c) <= ab + distance_m(*b, *c) + 1e-6


@settings(max_examples=50)
@given(st.lists(st.tuples(COORD, COORD), min_size=1, max_size=20))
def test_distances_for_arrays_are_the_scalar_distances(pairs: list[tuple[Any, Any]]) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    got = distances_m(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    expected = [distance_m(*p, *q) for p, q in pairs]
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-80, 80),
    st.floats(-179, 179),
    st.floats(-0.01, 0.01),
    st.floats(-0.01, 0.01),
)
def test_the_radius_test_agrees_with_the_haversine(
    lat: float, lon: float, dlat: float, dlon: float
) -> None:
    d = distance_m(lat, lon, lat + dlat, lon + dlon)
    for r in (50.0, 300.0):
        if abs(d - r) > 1e-6:
            assert within(lat, lon, lat + dlat, lon + dlon, r) == (d <= r)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-80, 80),
    st.floats(-179, 179),
    st.lists(st.tuples(st.floats(-0.002, 0.002), st.floats(-0.002, 0.002)), max_size=30),
)
def test_the_radius_test_for_arrays_decides_as_the_scalar_one(
    lat: float, lon: float, offsets: list[tuple[float, float]]
) -> None:
    others = np.array(offsets).reshape(-1, 2) + np.array([lat, lon])
    n = len(others)
    arc = arc_deg2(np.full(n, lat), np.full(n, lon), others[:, 0], others[:, 1])
    for r in (50.0, 120.0):
        for (olat, olon), a in zip(others.tolist(), arc.tolist(), strict=True):
            if abs(math.sqrt(a) * M_PER_DEG - r) > 1e-6:  # not on the circle itself
                assert (a <= arc_limit(r)) == within(lat, lon, olat, olon, r)


def test_the_projection_is_centred_on_the_force_east_and_north() -> None:
    x, y = to_metres(np.array([FORCE_CENTRE[1]]), np.array([FORCE_CENTRE[0]]))
    assert abs(x[0]) < 1e-9 and abs(y[0]) < 1e-9
    x, y = to_metres(np.array([FORCE_CENTRE[1] + 0.01]), np.array([FORCE_CENTRE[0] + 0.01]))
    assert x[0] > 0 and y[0] > 0
    x, y = to_metres(np.array([np.nan]), np.array([52.5]))
    assert np.isnan(x[0]) and np.isnan(y[0])
    assert LOCAL == LocalProjection(*FORCE_CENTRE)


@settings(max_examples=200, deadline=None)
@given(NEAR_FORCE, NEAR_FORCE)
def test_planar_distances_near_the_force_are_the_haversine(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    xs, ys = to_metres(np.array([a[1], b[1]]), np.array([a[0], b[0]]))
    planar = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
    # The scale is 1 + (d / 2R)**2 at d from the centre: under 1e-5 within 40 km.
    assert math.isclose(planar, distance_m(*a, *b), rel_tol=2e-5, abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.floats(49.0, 61.0), st.floats(-8.0, 2.0))
def test_the_projection_goes_back_to_the_same_point(lat: float, lon: float) -> None:
    xs, ys = to_metres(np.array([lon]), np.array([lat]))
    lons, lats = to_degrees(xs, ys)
    assert abs(lons[0] - lon) < 1e-9 and abs(lats[0] - lat) < 1e-9
    # Farther away the scale grows as 1 + (d / 2R)**2, d the distance from the centre.
    xs2, ys2 = to_metres(np.array([lon + 0.01]), np.array([lat]))
    planar = math.hypot(xs2[0] - xs[0], ys2[0] - ys[0])
    d = distance_m(*FORCE_CENTRE, lat, lon)
    scale = 1 + (d / (2 * EARTH_RADIUS_M)) ** 2
    assert math.isclose(planar, scale * distance_m(lat, lon, lat, lon + 0.01), rel_tol=1e-4)
