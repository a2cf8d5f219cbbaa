"""Boundaries for the map, read from the files alone: the same GeoJSON the enrichment's
own reading of the files gives (geopandas, districts as the union of their wards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import orjson
import pytest
import shapely
import shapely.geometry

from enrichers.boundaries import (
    DISTRICT_NAMES,
    LEVEL_FILES,
    boundaries_geojson,
    boundary_levels,
    reference_version,
)
from enrichers.geo import GeoIndex
from rtic.errors import ConfigError


def _as_the_enrichment_reads_it(data_dir: Path, level: str) -> dict[str, Any]:
    """The reference: files read with geopandas, simplified as the map always was."""
    folder, code_f, name_f = LEVEL_FILES["ward" if level == "district" else level]
    rows = []
    for path in sorted((data_dir / "boundaries" / folder).glob("*.json")):
        frame = gpd.read_file(path)
        if level == "district":
            geom = shapely.union_all(frame.geometry.values)
            rows.append((path.stem, DISTRICT_NAMES.get(path.stem, path.stem), geom))
        else:
            rows += list(zip(frame[code_f], frame[name_f], frame.geometry, strict=True))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": code, "name": name},
                "geometry": shapely.geometry.mapping(
                    shapely.set_precision(
                        shapely.simplify(geom, 0.0004, preserve_topology=True), 1e-5
                    )
                ),
            }
            for code, name, geom in rows
        ],
    }


@pytest.mark.parametrize("level", ["district", "ward", "lsoa"])
def test_the_same_geojson_as_reading_with_geopandas(data_dir: Path, level: str) -> None:
    ours = orjson.dumps(boundaries_geojson(data_dir, level))
    assert ours == orjson.dumps(_as_the_enrichment_reads_it(data_dir, level))


def test_levels_version_and_cache(data_dir: Path, geo: GeoIndex) -> None:
    assert boundary_levels(data_dir) == ("district", "ward", "lsoa")
    assert reference_version(data_dir) == geo.version
    assert boundaries_geojson(data_dir, "ward") is boundaries_geojson(data_dir, "ward")
    with pytest.raises(ValueError, match="planet"):
        boundaries_geojson(data_dir, "planet")


def test_no_wards_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no ward boundaries"):
        boundary_levels(tmp_path)
