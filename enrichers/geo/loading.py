"""Reading the place reference data from the data folder (see data/README.md).

Levels of areas, each a code and a name:

- ``district``: the seven metropolitan districts of the force area (named in
  ``enrichers.boundaries.DISTRICT_NAMES``; each is the union of its wards, one ward file per district)
- ``ward``: electoral wards (2013), a stand-in for police neighbourhoods
- ``lsoa``: Lower Layer Super Output Areas (2011)

and the place layers (``places/*.geojson``: schools, hospitals...). The data's
version is a digest of every file read, so a worker can say which data it used.
The only I/O of ``enrichers.geo``; everything after loading is pure.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely import STRtree

from enrichers.boundaries import DISTRICT_NAMES, LEVEL_FILES
from enrichers.geo.layers import AreaLevel, PlaceLayer
from rtic.errors import ConfigError

LEVELS = ("district", "ward", "lsoa")
_LEVEL_FIELDS = {level: (code, name) for level, (_, code, name) in LEVEL_FILES.items()}


def level_dir(level: str) -> str:
    """The folder under ``boundaries/`` that holds a level's files."""
    return LEVEL_FILES[level][0]


def load_layers(data_dir: Path) -> tuple[dict[str, AreaLevel], dict[str, PlaceLayer], str]:
    """The levels of areas (broadest first), the place layers by kind, and the data's
    version (``geo-`` and a digest of the files read) from ``data_dir``.

    Raises:
        ConfigError: no ward boundaries in the data folder.
    """
    bdir = data_dir / "boundaries"
    if not sorted((bdir / "wards").glob("*.json")):
        raise ConfigError(f"no ward boundaries under {bdir / 'wards'}")
    digest = hashlib.sha256()
    levels = read_levels(bdir, digest)
    places = read_place_layers(data_dir / "places", digest)
    return levels, places, f"geo-{digest.hexdigest()[:12]}"


def read_levels(bdir: Path, digest: Any) -> dict[str, AreaLevel]:
    """District, ward and LSOA levels from the boundary files (each file fed to ``digest``)."""
    levels: dict[str, AreaLevel] = {}
    district_geoms, district_codes = [], []
    for level, (code_f, name_f) in _LEVEL_FIELDS.items():
        frames = []
        for path in sorted((bdir / level_dir(level)).glob("*.json")):
            digest.update(path.read_bytes())
            frame = gpd.read_file(path)
            frame["district"] = path.stem
            frames.append(frame)
            if level == "ward":
                district_geoms.append(shapely.union_all(frame.geometry.values))
                district_codes.append(path.stem)
        if not frames:
            continue
        codes = np.concatenate([f[code_f].to_numpy(dtype=object) for f in frames])
        names = np.concatenate([f[name_f].to_numpy(dtype=object) for f in frames])
        geoms = np.concatenate([f.geometry.to_numpy() for f in frames])
        parents = np.concatenate([f["district"].to_numpy(dtype=object) for f in frames])
        shapely.prepare(geoms)
        levels[level] = AreaLevel(level, STRtree(geoms), codes, names, geoms, parents)
    dgeoms = np.array(district_geoms, dtype=object)
    shapely.prepare(dgeoms)
    district = AreaLevel(
        "district",
        STRtree(dgeoms),
        np.array(district_codes, dtype=object),
        np.array([DISTRICT_NAMES.get(c, c) for c in district_codes], dtype=object),
        dgeoms,
    )
    return {"district": district, **levels}


def read_place_layers(pdir: Path, digest: Any) -> dict[str, PlaceLayer]:
    """Every place layer in ``pdir`` by kind, grids built now rather than on first use."""
    places: dict[str, PlaceLayer] = {}
    for path in sorted(pdir.glob("*.geojson")) if pdir.exists() else []:
        digest.update(path.read_bytes())
        layer = load_place_layer(path)
        if layer is not None:
            places[layer.kind] = layer
            _ = layer.grid
    return places


def load_place_layer(path: Path) -> PlaceLayer | None:
    """A GeoJSON layer of points with ``name`` and ``kind``; kind from the features
    (else the file's name). None when it has no points."""
    frame = gpd.read_file(path)
    frame = frame[frame.geometry.notna() & (frame.geometry.geom_type == "Point")]
    if frame.empty:
        return None
    kind = str(frame["kind"].iloc[0]) if "kind" in frame else path.stem
    ids = (
        frame["source_id"].astype(str).to_numpy(dtype=object)
        if "source_id" in frame
        else np.array([f"{kind}-{i}" for i in range(len(frame))], dtype=object)
    )
    return PlaceLayer.of(
        kind,
        lats=frame.geometry.y.to_numpy(),
        lons=frame.geometry.x.to_numpy(),
        names=frame["name"].astype(str).to_numpy(dtype=object),
        ids=ids,
        generated=bool(frame.get("generated", False) is True),
    )
