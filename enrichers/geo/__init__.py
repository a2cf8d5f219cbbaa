"""Place enrichment: areas (district, ward, LSOA) and nearest places, in batches.

- ``loading``: reads the boundary and place files of the data folder (the only I/O);
- ``layers``: ``AreaLevel`` and ``PlaceLayer``, the data and their exact queries;
- ``grids``: ``AreaGrid`` and ``NearestGrid``, pre-computed answers that fall back
  to the exact queries where they cannot be sure;
- ``index``: ``GeoIndex``, the look-ups the pipeline calls.

Distances and planar metres come from ``rtic.geodesy``, the engine's one model.
"""

from enrichers.geo.grids import AREA_GRID_CELL_DEG, AreaGrid, NearestGrid
from enrichers.geo.index import GAP_TOLERANCE_DEG, GeoIndex, round_1dp
from enrichers.geo.layers import AreaLevel, PlaceLayer, points_xy
from enrichers.geo.loading import DISTRICT_NAMES, LEVELS, load_layers, load_place_layer

__all__ = [
    "AREA_GRID_CELL_DEG",
    "DISTRICT_NAMES",
    "GAP_TOLERANCE_DEG",
    "LEVELS",
    "AreaGrid",
    "AreaLevel",
    "GeoIndex",
    "NearestGrid",
    "PlaceLayer",
    "load_layers",
    "load_place_layer",
    "points_xy",
    "round_1dp",
]
