"""Geofences and operator places: circles and polygons, validity windows, nearest places."""

from __future__ import annotations

from datetime import timedelta

from enrichers.geo import GeoIndex, distance_m
from enrichers.zones import Geofences, build_place_layers, circle_polygon
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
    geo.extra_places = layers
    try:
        (near,) = geo.nearest_places([LAT], [LON])
        assert near["refuge"]["name"] == "Sample refuge (generated)"
        assert near["refuge"]["generated"] is True
        assert 100 < near["refuge"]["distance_m"] < 120
        assert "school" in near
    finally:
        geo.extra_places = {}


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
