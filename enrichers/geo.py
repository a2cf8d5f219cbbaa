"""Place enrichment: which areas a point falls in, and the nearest places of interest.

Reference data is loaded once (``GeoIndex.load``) from the boundaries and place
layers in the data folder; look-ups work on whole batches at once with shapely
2's vectorised STRtree queries, so a batch of 500 events costs one query per
level, not 500. Pure: no I/O after loading, no clock.

Levels, each a code and a name, from the data folder (see data/README.md):

- ``district``: the seven metropolitan districts of the force area (file names)
- ``ward``: electoral wards (2013), a stand-in for police neighbourhoods
- ``lsoa``: Lower Layer Super Output Areas (2011)

A point on a shared border takes the area with the lowest code; a point inside
the force area that falls in a sliver between generalised polygons of one level
takes that level's nearest area (within about 350 m). So every point inside the
force area gets exactly one code per level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely import STRtree

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
LEVELS = ("district", "ward", "lsoa")
GAP_TOLERANCE_DEG = 0.005  # about 350 m east-west, 550 m north-south
AREA_CACHE_SIZE = 200_000  # points remembered (about 100 MB at most); cleared when full
_LEVEL_FIELDS = {"ward": ("WD13CD", "WD13NM"), "lsoa": ("LSOA11CD", "LSOA11NM")}

# Metres per degree around the force area (52.5 N): an equirectangular
# projection is within 0.5 % over a 60 km area, ample for "nearest" and radii.
REF_LAT = 52.48
M_PER_DEG_LAT = 111_250.0
M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(REF_LAT)))


def to_metres(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local planar metres (x east, y north) for WGS84 degrees."""
    return np.asarray(lons) * M_PER_DEG_LON, np.asarray(lats) * M_PER_DEG_LAT


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Planar distance in metres between two nearby WGS84 points."""
    dx = (lon2 - lon1) * M_PER_DEG_LON
    dy = (lat2 - lat1) * M_PER_DEG_LAT
    return float((dx * dx + dy * dy) ** 0.5)


@dataclass(frozen=True, eq=False)
class AreaLevel:
    """One level of areas: polygons in a tree, and parallel codes and names."""

    name: str
    tree: STRtree
    codes: np.ndarray
    names: np.ndarray
    geoms: np.ndarray
    parents: np.ndarray | None = None  # for wards: the district code each lies in

    @cached_property
    def entries(self) -> list[dict[str, str]]:
        """``{"code", "name"}`` per area, built once and shared (read-only)."""
        return [
            {"code": str(c), "name": str(n)} for c, n in zip(self.codes, self.names, strict=True)
        ]

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Index of the containing area for each point, -1 outside every area."""
        out = np.full(len(points), -1, dtype=np.int64)
        if len(points) == 0:
            return out
        pidx, aidx = self.tree.query(points, predicate="intersects")
        if len(pidx):
            # Several hits (a border): keep the lowest code, deterministically.
            order = np.lexsort((self.codes[aidx], pidx))
            pidx, aidx = pidx[order], aidx[order]
            first = np.unique(pidx, return_index=True)[1]
            out[pidx[first]] = aidx[first]
        return out


@dataclass(frozen=True)
class PlaceLayer:
    """Points of one kind (schools, hospitals...) in planar metres for nearest look-ups."""

    kind: str
    tree: STRtree
    names: np.ndarray
    ids: np.ndarray
    lats: np.ndarray
    lons: np.ndarray
    generated: bool = False


class GeoIndex:
    """Areas and places, loaded once, queried in batches."""

    def __init__(self, levels: dict[str, AreaLevel], places: dict[str, PlaceLayer], version: str):
        self.levels = levels
        self.places = places
        self.version = version
        self._area_cache: dict[tuple[float, float], dict[str, Any]] = {}
        self.extra_places: dict[str, PlaceLayer] = {}  # operator layers, changed at run time
        self._ward_district: np.ndarray | None = None
        if "ward" in levels and "district" in levels:
            position = {code: i for i, code in enumerate(levels["district"].codes)}
            ward_district = getattr(levels["ward"], "parents", None)
            if ward_district is not None:
                self._ward_district = np.array([position[c] for c in ward_district], dtype=np.int64)

    @classmethod
    def load(cls, data_dir: Path) -> GeoIndex:
        """Read boundaries and place layers from ``data_dir`` (see data/README.md)."""
        bdir = data_dir / "boundaries"
        ward_files = sorted((bdir / "wards").glob("*.json"))
        if not ward_files:
            raise ConfigError(f"no ward boundaries under {bdir / 'wards'}")
        digest = hashlib.sha256()
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
        levels = {
            "district": AreaLevel(
                "district",
                STRtree(dgeoms),
                np.array(district_codes, dtype=object),
                np.array([DISTRICT_NAMES.get(c, c) for c in district_codes], dtype=object),
                dgeoms,
            ),
            **levels,
        }
        places: dict[str, PlaceLayer] = {}
        pdir = data_dir / "places"
        for path in sorted(pdir.glob("*.geojson")) if pdir.exists() else []:
            digest.update(path.read_bytes())
            layer = load_place_layer(path)
            if layer is not None:
                places[layer.kind] = layer
        return cls(levels, places, version=f"geo-{digest.hexdigest()[:12]}")

    def areas(self, lats: Sequence[float], lons: Sequence[float]) -> list[dict[str, Any]]:
        """For each point, ``{level: {"code", "name"}}`` for every level it falls in.

        Points seen before (fixed cameras, repeat addresses) come from a bounded
        cache; the rest are looked up together, one vectorised query per level.
        The returned dicts are shared with the cache: read them, never change them.
        """
        results: list[dict[str, Any] | None] = []
        missing: list[int] = []
        cache = self._area_cache
        for i, key in enumerate(zip(lats, lons, strict=True)):
            hit = cache.get(key)
            results.append(hit)
            if hit is None:
                missing.append(i)
        if missing:
            lat_a = np.asarray([lats[i] for i in missing], dtype=float)
            lon_a = np.asarray([lons[i] for i in missing], dtype=float)
            fresh = self._lookup_areas(lat_a, lon_a)
            if len(cache) + len(fresh) > AREA_CACHE_SIZE:
                cache.clear()
            for i, found in zip(missing, fresh, strict=True):
                results[i] = found
                cache[(lats[i], lons[i])] = found
        return results  # type: ignore[return-value]

    def _lookup_areas(self, lat_a: np.ndarray, lon_a: np.ndarray) -> list[dict[str, Any]]:
        points = shapely.points(lon_a, lat_a)
        results: list[dict[str, Any]] = [{} for _ in range(len(points))]
        found: dict[str, np.ndarray] = {}
        for name, level in self.levels.items():
            if name == "district" and self._ward_district is not None and "ward" in self.levels:
                continue  # a ward lies in one district: no need to test the big district polygons
            found[name] = level.lookup(points)
        # The generalised layers (wards 2013, LSOAs 2011) leave slivers between them: a
        # point inside the force area that falls in a gap of one layer takes that layer's
        # nearest area within GAP_TOLERANCE_DEG, so it gets one code at every level.
        inside = np.zeros(len(points), dtype=bool)
        for idx in found.values():
            inside |= idx >= 0
        for name, idx in found.items():
            gaps = np.nonzero(inside & (idx < 0))[0]
            if len(gaps):
                pidx, aidx = self.levels[name].tree.query_nearest(
                    points[gaps], max_distance=GAP_TOLERANCE_DEG, all_matches=False
                )
                idx[gaps[pidx]] = aidx
        if "district" not in found and "ward" in found and self._ward_district is not None:
            wards = found["ward"]
            found["district"] = np.where(wards >= 0, self._ward_district[np.maximum(wards, 0)], -1)
        for name, level in self.levels.items():
            entries = level.entries
            for i, a in enumerate(found[name].tolist()):
                if a >= 0:
                    results[i][name] = entries[a]
        return results

    def nearest_places(
        self, lats: Sequence[float], lons: Sequence[float], max_distance_m: float = 5000.0
    ) -> list[dict[str, Any]]:
        """For each point, the nearest place of each kind within ``max_distance_m``."""
        n = len(lats)
        results: list[dict[str, Any]] = [{} for _ in range(n)]
        if n == 0:
            return results
        xs, ys = to_metres(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        points = shapely.points(xs, ys)
        for layer in {**self.places, **self.extra_places}.values():
            (pidx, lidx), dists = layer.tree.query_nearest(
                points, max_distance=max_distance_m, return_distance=True, all_matches=False
            )
            for p, li, d in zip(pidx.tolist(), lidx.tolist(), dists.tolist(), strict=True):
                results[p][layer.kind] = {
                    "name": layer.names[li],
                    "id": layer.ids[li],
                    "distance_m": round(d, 1),
                    **({"generated": True} if layer.generated else {}),
                }
        return results

    def area_codes(self, areas: dict[str, Any]) -> list[str]:
        """The codes of one point's areas, broadest first."""
        return [areas[lvl]["code"] for lvl in self.levels if lvl in areas]

    def codes_at(self, lat: float, lon: float) -> list[str]:
        """The area codes of one point, broadest first (empty outside the force area)."""
        return self.area_codes(self.areas([lat], [lon])[0])

    def boundaries_geojson(self, level: str = "ward", tolerance: float = 0.0004) -> dict[str, Any]:
        """Simplified polygons of one level as GeoJSON (for the dashboard map)."""
        lv = self.levels[level]
        feats = []
        for code, name, geom in zip(lv.codes, lv.names, lv.geoms, strict=True):
            simple = shapely.simplify(geom, tolerance, preserve_topology=True)
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"code": code, "name": name},
                    "geometry": shapely.geometry.mapping(shapely.set_precision(simple, 1e-5)),
                }
            )
        return {"type": "FeatureCollection", "features": feats}


def level_dir(level: str) -> str:
    return {"ward": "wards", "lsoa": "lsoa"}[level]


def load_place_layer(path: Path) -> PlaceLayer | None:
    """A GeoJSON layer of points with ``name`` and ``kind``; kind from the features."""
    frame = gpd.read_file(path)
    frame = frame[frame.geometry.notna() & (frame.geometry.geom_type == "Point")]
    if frame.empty:
        return None
    kind = str(frame["kind"].iloc[0]) if "kind" in frame else path.stem
    lons = frame.geometry.x.to_numpy()
    lats = frame.geometry.y.to_numpy()
    xs, ys = to_metres(lons, lats)
    ids = (
        frame["source_id"].astype(str).to_numpy(dtype=object)
        if "source_id" in frame
        else np.array([f"{kind}-{i}" for i in range(len(frame))], dtype=object)
    )
    return PlaceLayer(
        kind=kind,
        tree=STRtree(shapely.points(xs, ys)),
        names=frame["name"].astype(str).to_numpy(dtype=object),
        ids=ids,
        lats=lats,
        lons=lons,
        generated=bool(frame.get("generated", False) is True),
    )
