"""Geofences and operator places: circles and polygons, validity windows, nearest places."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichers.geo import GeoIndex
from enrichers.zones import Geofences, build_place_layers, circle_polygon
from rtic.geodesy import distance_m
from tests.conftest import BIRMINGHAM_CENTRE, NOW

LAT, LON = BIRMINGHAM_CENTRE


def test_circle_polygon_has_the_radius() -> None:
    poly = circle_polygon(LAT, LON, 300)
    for lon, lat in list(poly.exterior.coords)[:-1]:
        assert 295 < distance_m(LAT, LON, lat, lon) < 305


def test_geofence_hits_respect_shape_and_validity() -> None:
    fences = Geofences.build(
        3,
        {
            "circle": {
                "name": "Match day",
                "circle": {"lat": LAT, "lon": LON, "radius_m": 200},
                "valid_from": (NOW - timedelta(hours=1)).isoformat(),
                "valid_to": (NOW + timedelta(hours=1)).isoformat(),
            },
            "square": {
                "name": "Square",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [LON - 0.01, LAT - 0.01],
                            [LON + 0.01, LAT - 0.01],
                            [LON + 0.01, LAT + 0.01],
                            [LON - 0.01, LAT + 0.01],
                            [LON - 0.01, LAT - 0.01],
                        ]
                    ],
                },
            },
            "later": {
                "name": "Tomorrow",
                "circle": {"lat": LAT, "lon": LON, "radius_m": 500},
                "valid_from": (NOW + timedelta(days=1)).isoformat(),
            },
            "broken": {"name": "bad", "circle": {"lat": "x"}},
        },
    )
    inside, edge, outside = fences.hits([LAT, LAT + 0.005, 52.0], [LON, LON, -1.0], [NOW, NOW, NOW])
    assert sorted(h["id"] for h in inside) == ["circle", "square"]
    assert [h["id"] for h in edge] == ["square"]  # ~550 m north: outside the 200 m circle
    assert outside == []
    later = fences.hits([LAT], [LON], [NOW + timedelta(days=2)])[0]
    assert sorted(h["id"] for h in later) == ["later", "square"]
    assert Geofences.build(0, {}).hits([LAT], [LON], [NOW]) == [[]]


def test_operator_places_join_the_nearest_places(geo: GeoIndex) -> None:
    layers = build_place_layers(
        {
            "R1": {
                "name": "Sample refuge (generated)",
                "kind": "refuge",
                "lat": LAT + 0.001,
                "lon": LON,
                "generated": True,
            }
        }
    )
    geo.set_operator_places(layers)
    try:
        (near,) = geo.nearest_places([LAT], [LON])
        assert near["refuge"]["name"] == "Sample refuge (generated)"
        assert near["refuge"]["generated"] is True
        assert 100 < near["refuge"]["distance_m"] < 120
        # Measured in the one earth model: the great-circle distance, to 0.001 %.
        expected = distance_m(LAT, LON, LAT + 0.001, LON)
        assert abs(near["refuge"]["distance_m"] - expected) <= 0.05 + expected * 1e-5
        assert "school" in near
        assert dict(geo.operator_places) == layers
    finally:
        geo.set_operator_places({})
    assert not geo.operator_places
    assert "refuge" not in geo.nearest_places([LAT], [LON])[0]


def test_nearest_available_officers_fresh_first_then_stale() -> None:
    from enrichers.zones import Officers

    def state(lat: float, status: str = "available", age_s: int = 10) -> dict:
        return {
            "lat": lat,
            "lon": LON,
            "status": status,
            "callsign": "BW",
            "at": (NOW - timedelta(seconds=age_s)).isoformat(),
        }

    officers = Officers.build(
        {
            "NEAR": state(LAT + 0.0003),
            "FAR": state(LAT + 0.01),
            "BUSY": state(LAT + 0.0001, status="committed"),
            "OFF": state(LAT, status="off_duty"),
            "OLD": state(LAT + 0.0002, age_s=1200),
            "AWAY": state(LAT + 0.5),  # ~55 km: beyond the radius
            "BAD": {"lat": "x"},
        }
    )
    (units, none) = officers.nearest([LAT, 51.0], [LON, 0.0], NOW)
    assert [u["officer_id"] for u in units] == ["NEAR", "FAR", "OLD"]
    assert (
        30 < units[0]["distance_m"] < 40 and units[0]["fix_age_s"] == 10 and not units[0]["stale"]
    )
    assert units[2]["stale"] is True
    assert none == []
    assert Officers.build({}).nearest([LAT], [LON], NOW) == [[]]


def _hits_by_the_tree_alone(fences: Geofences, lats: list[float], lons: list[float]) -> list:
    """Every point through the STRtree query (no box test first): the reference."""
    out: list[list[dict[str, str]]] = [[] for _ in lats]
    assert fences.tree is not None
    pidx, gidx = fences.tree.query(shapely.points(lons, lats), predicate="intersects")
    for p, g in zip(pidx.tolist(), gidx.tolist(), strict=True):
        out[p].append({"id": fences.ids[g], "name": fences.names[g]})
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 90), st.integers(1, 400))
def test_geofence_hits_equal_the_tree_query_for_any_number_of_fences(
    seed: int, n_fences: int, n_points: int
) -> None:
    rng = np.random.default_rng(seed)
    entries: dict[str, dict] = {}
    for i in range(n_fences):
        lat, lon = rng.uniform(52.40, 52.60), rng.uniform(-2.0, -1.7)
        if rng.random() < 0.5:
            entries[f"C{i}"] = {
                "circle": {"lat": lat, "lon": lon, "radius_m": rng.uniform(50, 3000)}
            }
        else:
            d = rng.uniform(0.001, 0.03)
            ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
            entries[f"P{i}"] = {"geometry": {"type": "Polygon", "coordinates": [ring]}}
    fences = Geofences.build(1, entries)
    lats = rng.uniform(52.35, 52.65, n_points)
    lons = rng.uniform(-2.05, -1.65, n_points)
    # Points on the fences' bounding boxes and corners: the box test is inclusive.
    assert fences.bounds is not None
    corners = fences.bounds[rng.integers(0, len(fences.bounds), 20)]
    lats = np.concatenate([lats, corners[:, 1], corners[:, 3]]).tolist()
    lons = np.concatenate([lons, corners[:, 0], corners[:, 2]]).tolist()
    got = fences.hits(lats, lons, [NOW] * len(lats))
    assert got == _hits_by_the_tree_alone(fences, lats, lons)
