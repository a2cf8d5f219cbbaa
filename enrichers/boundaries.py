"""Boundaries for the dashboard map, read straight from the files: no ``GeoIndex``.

The gateway draws the map from ``/api/boundaries?level=...``; it needs the
simplified polygons of one level, not the area grids and place layers the
enrichment builds. ``boundaries_geojson`` reads only that level's files (under
``data/boundaries/``, see data/README.md) with plain JSON and shapely, so the
gateway starts in a moment and does not import geopandas.

The layout is the one the enrichment loads: ``wards/<district code>.json`` (one
file per district; a district is the union of its wards) and optionally
``lsoa/<district code>.json``. ``reference_version`` is the same digest the
enrichment puts in every event's ``reference_version``.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry

from rtic.errors import ConfigError

DISTRICT_NAMES = {
    "E08000025": "Birmingham",
    "E08000026": "Coventry",
    "E08000027": "Dudley",
    "E08000028": "Sandwell",
    "E08000029": "Solihull",
    "E08000030": "Walsall",
    "E08000031": "Wolverhampton",
}
# Each level read from files: its folder, and the properties holding code and name.
LEVEL_FILES = {"ward": ("wards", "WD13CD", "WD13NM"), "lsoa": ("lsoa", "LSOA11CD", "LSOA11NM")}


def _level_paths(data_dir: Path, folder: str) -> list[Path]:
    return sorted((data_dir / "boundaries" / folder).glob("*.json"))


def boundary_levels(data_dir: Path) -> tuple[str, ...]:
    """The levels there are boundaries for: ``district`` (from the wards), ``ward``, and
    ``lsoa`` if its files are there."""
    if not _level_paths(data_dir, "wards"):
        raise ConfigError(f"no ward boundaries under {data_dir / 'boundaries' / 'wards'}")
    found = [name for name, (folder, *_) in LEVEL_FILES.items() if _level_paths(data_dir, folder)]
    return ("district", *found)


@cache
def reference_version(data_dir: Path) -> str:
    """The version of the reference data: a digest of the boundary and place files."""
    digest = hashlib.sha256()
    for folder, *_ in LEVEL_FILES.values():
        for path in _level_paths(data_dir, folder):
            digest.update(path.read_bytes())
    places = data_dir / "places"
    for path in sorted(places.glob("*.geojson")) if places.exists() else []:
        digest.update(path.read_bytes())
    return f"geo-{digest.hexdigest()[:12]}"


def _areas(data_dir: Path, level: str) -> list[tuple[str, str, Any]]:
    """``(code, name, geometry)`` of every area of a level, in file order."""
    if level == "district":
        return [
            (path.stem, DISTRICT_NAMES.get(path.stem, path.stem), shapely.union_all(geoms))
            for path, geoms in (
                (path, [geom for _, _, geom in _features(path, "WD13CD", "WD13NM")])
                for path in _level_paths(data_dir, "wards")
            )
        ]
    folder, code_field, name_field = LEVEL_FILES[level]
    return [
        area
        for path in _level_paths(data_dir, folder)
        for area in _features(path, code_field, name_field)
    ]


def _features(path: Path, code_field: str, name_field: str) -> list[tuple[str, str, Any]]:
    collection = json.loads(path.read_bytes())
    return [
        (
            feature["properties"][code_field],
            feature["properties"][name_field],
            shapely.geometry.shape(feature["geometry"]),
        )
        for feature in collection["features"]
    ]


@cache
def boundaries_geojson(data_dir: Path, level: str = "ward", tolerance: float = 0.0004) -> dict:
    """Simplified polygons of one level as a GeoJSON ``FeatureCollection`` (for the
    dashboard map), each with ``{code, name}``. Read once per level and cached: the
    answer is shared, so callers must not change it. ``ValueError`` for a level
    there are no boundaries for."""
    if level not in boundary_levels(data_dir):
        raise ValueError(f"no boundaries for level {level!r}")
    features = []
    for code, name, geom in _areas(data_dir, level):
        simple = shapely.simplify(geom, tolerance, preserve_topology=True)
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name},
                "geometry": shapely.geometry.mapping(shapely.set_precision(simple, 1e-5)),
            }
        )
    return {"type": "FeatureCollection", "features": features}
