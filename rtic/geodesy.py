"""Distances on the Earth, one model for the whole engine. Pure: numpy only.

The Earth is a sphere of Redis's geo radius (``EARTH_RADIUS_M``, what GEOSEARCH
measures, which the call history first used): every distance in metres the engine
reports or tests comes from it. Against the WGS84 ellipsoid it is within 0.3 %
at British latitudes, far below what a place, a radius or a geofence means.

Three ways to use it, each for its own job:

- ``distance_m``: the great-circle (haversine) distance between two points, exact
  on the sphere; ``distances_m`` is the same for arrays.
- ``within`` and ``arc_deg2``: whether a point is within ``r`` metres of another,
  equirectangularly about the pair's mean latitude (a first-order expansion of its
  cosine): within a micrometre of the haversine at the radii searched (up to a few
  km) and a handful of array operations for a whole batch (the call history's 50 m
  and emerging-incident searches).
- ``LocalProjection``: a stereographic projection of the sphere onto a plane in
  metres, centred on the force (``FORCE_CENTRE``), for indexes that need planar
  coordinates (nearest places, nearest officers). It is conformal, and its scale
  is ``1 + (d / 2R)**2`` at ``d`` from the centre: distances in the plane are within
  0.001 % of the haversine 40 km from the centre, and 0.1 % 400 km away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_M = 6_372_797.560856  # Redis's geo earth radius
_RAD = math.pi / 180
M_PER_DEG = EARTH_RADIUS_M * _RAD  # metres per degree of arc (of latitude)
# The centre of the force area (the West Midlands: Birmingham), where the local
# projection is exact; its scale is within 0.1 % up to 400 km away (England, Wales).
FORCE_CENTRE = (52.48, -1.89)


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of latitude and of longitude at latitude ``lat``."""
    return M_PER_DEG, M_PER_DEG * math.cos(lat * _RAD)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS84 points."""
    u = math.sin((lat2 - lat1) * _RAD / 2)
    v = math.sin((lon2 - lon1) * _RAD / 2)
    a = u * u + math.cos(lat1 * _RAD) * math.cos(lat2 * _RAD) * v * v
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


def distances_m(
    lats1: np.ndarray, lons1: np.ndarray, lats2: np.ndarray, lons2: np.ndarray
) -> np.ndarray:
    """``distance_m`` for arrays (broadcast), in one pass of numpy."""
    la1, la2 = np.asarray(lats1, dtype=float) * _RAD, np.asarray(lats2, dtype=float) * _RAD
    u = np.sin((la2 - la1) / 2)
    v = np.sin((np.asarray(lons2, dtype=float) - np.asarray(lons1, dtype=float)) * _RAD / 2)
    a = u * u + np.cos(la1) * np.cos(la2) * v * v
    result: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return result


def arc_limit(r_m: float) -> float:
    """``r_m`` metres as the squared degrees of arc ``arc_deg2`` is compared with."""
    return (r_m / M_PER_DEG) ** 2


def within(lat: float, lon: float, other_lat: float, other_lon: float, r_m: float) -> bool:
    """Whether (other_lat, other_lon) is within ``r_m`` metres of (lat, lon), decided
    as ``arc_deg2`` decides it (for radii up to a few km)."""
    rad = lat * _RAD
    dy = other_lat - lat
    dx = (other_lon - lon) * (math.cos(rad) - math.sin(rad) * _RAD / 2 * dy)
    return dx * dx + dy * dy <= arc_limit(r_m)


def arc_deg2(
    lats: np.ndarray, lons: np.ndarray, other_lats: np.ndarray, other_lons: np.ndarray
) -> np.ndarray:
    """Squared distance in degrees of arc from each (lat, lon) to its other point:
    equirectangular about the pair's mean latitude, ``cos(lat + dy / 2)`` taken to
    first order. Compare with ``arc_limit(r)``; ``within`` is the same for one pair."""
    rad = lats * _RAD
    dy = other_lats - lats
    # the same arithmetic as ``within``, in the same order
    dx = (other_lons - lons) * (np.cos(rad) - np.sin(rad) * _RAD / 2 * dy)
    result: np.ndarray = dx * dx + dy * dy
    return result


@dataclass(frozen=True)
class LocalProjection:
    """The stereographic projection of the sphere centred on (``lat0``, ``lon0``):
    planar metres, x east and y north, exact at the centre (see the module docstring)."""

    lat0: float
    lon0: float

    def to_metres(self, lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Planar metres (x, y) for WGS84 degrees (NaN stays NaN)."""
        phi = np.asarray(lats, dtype=float) * _RAD
        dlam = (np.asarray(lons, dtype=float) - self.lon0) * _RAD
        sin0, cos0 = math.sin(self.lat0 * _RAD), math.cos(self.lat0 * _RAD)
        sin_phi, cos_phi, cos_dlam = np.sin(phi), np.cos(phi), np.cos(dlam)
        k = 2 * EARTH_RADIUS_M / (1 + sin0 * sin_phi + cos0 * cos_phi * cos_dlam)
        xs: np.ndarray = k * cos_phi * np.sin(dlam)
        ys: np.ndarray = k * (cos0 * sin_phi - sin0 * cos_phi * cos_dlam)
        return xs, ys

    def to_degrees(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 degrees (lons, lats) of planar metres: the inverse of ``to_metres``."""
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        rho = np.hypot(x, y)
        c = 2 * np.arctan(rho / (2 * EARTH_RADIUS_M))
        sin_c, cos_c = np.sin(c), np.cos(c)
        sin0, cos0 = math.sin(self.lat0 * _RAD), math.cos(self.lat0 * _RAD)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(rho > 0, y * sin_c / rho, 0.0)
        lats = np.degrees(np.arcsin(np.clip(cos_c * sin0 + ratio * cos0, -1.0, 1.0)))
        lons = self.lon0 + np.degrees(np.arctan2(x * sin_c, rho * cos0 * cos_c - y * sin0 * sin_c))
        return lons, lats


LOCAL = LocalProjection(*FORCE_CENTRE)


def to_metres(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planar metres (x east, y north) of WGS84 degrees in the force's ``LOCAL``
    projection: what every planar index of places and officers is built in."""
    return LOCAL.to_metres(lons, lats)


def to_degrees(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees (lons, lats) of planar metres in the ``LOCAL`` projection."""
    return LOCAL.to_degrees(xs, ys)
