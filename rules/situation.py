"""One situation, one key: alerts about the same place and hour say so alike.

Five calls about one thing can raise both ``repeat_calls`` (the same address or caller
again) and ``emerging_incident`` (several callers close together). Both carry
``details.situation``, a short text made here from the call that raised them: the
finest area the call is in (its LSOA, else its ward, else a cell of about 100 m) and
the hour (UTC) the call was received. Pages group alerts with the same text as one
situation. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rtic.schemas import LocationV1


def situation(location: LocationV1, enrichment: Mapping[str, Any], at: datetime) -> str:
    """``"<place> <YYYY-MM-DD HH>:00Z"``: the same for calls of one small area and hour,
    e.g. ``"Birmingham 050A (E01009001) 2026-11-24 21:00Z"``."""
    areas = enrichment.get("areas") or {}
    place = None
    for level in ("lsoa", "ward"):
        area = areas.get(level)
        if isinstance(area, Mapping) and area.get("code"):
            place = f"{area.get('name') or level} ({area['code']})"
            break
    if place is None:  # outside the force's areas: a cell of about 100 m
        place = f"near {location.lat:.3f}, {location.lon:.3f}"
    return f"{place} {at.astimezone(UTC):%Y-%m-%d %H}:00Z"
