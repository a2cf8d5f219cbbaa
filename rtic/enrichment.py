"""The ``enrichment`` block the engine adds to every event on ``rtic.enriched.v1``.

One model, ``Enrichment``, built in one place (``streams.pipeline``) from the parts
the enrichers computed: place (areas, geofences, nearby places), history (a
``HistoryBlock``), nearest units, and the run's reference version and time.
``docs/contract.md`` shows the shape; this module is its typed statement.

The parts are ``TypedDict``s, not models: the enrichers build them as plain dicts
(often shared between events: a camera's areas, an empty search answer) and they go
on the wire as they are. A ``TypedDict`` types them for a reader and for mypy, and
pydantic still validates them when a consumer parses a block
(``Enrichment.model_validate``), at no cost on the engine's own path.

Keys that do not apply are left out of the wire form, never written as ``null``:
``Enrichment.wire()`` is the block as it goes out, the same dict the rules read.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, with_config
from typing_extensions import TypedDict

EventKindName = Literal["call", "incident", "anpr", "officer_location"]

# Reference entries (hotlist entries, markers) keep every field they were loaded with.
_OPEN = ConfigDict(extra="allow")


class AreaRef(TypedDict):
    """One area of a point: its code and name."""

    code: str
    name: str


class GeofenceHit(TypedDict):
    """A live geofence the point is inside, active at the event's own time."""

    id: str
    name: str


class NearbyPlace(TypedDict):
    """The nearest place of one layer within 5 km."""

    name: str
    id: str
    distance_m: float
    generated: NotRequired[bool]


@with_config(_OPEN)
class HotlistHit(TypedDict):
    """A live hotlist entry a plate read matched (the entry's own fields, plus ``match``)."""

    id: str
    vrm: str
    reason: str
    match: Literal["exact", "misread"]
    severity: NotRequired[str]
    expires_at: NotRequired[str]
    source: NotRequired[str]


class TrailRead(TypedDict):
    """One of a plate's previous reads."""

    read_id: str
    camera_id: str
    at: str
    lat: float
    lon: float


class LinkedIncident(TypedDict):
    """A vehicle of an open incident that a plate read matched."""

    id: str
    incident_id: str
    vrm: str
    role: str | None
    category: str
    grade: int | None
    units: list[str]
    at: str


@with_config(_OPEN)
class Marker(TypedDict):
    """A live warning marker on the event's address or one of its persons."""

    id: str
    marker: str
    address: NotRequired[str]
    person_id: NotRequired[str]
    note: NotRequired[str]
    lat: NotRequired[float]
    lon: NotRequired[float]
    expires_at: NotRequired[str]


class Listed(TypedDict):
    """A call or incident as a search lists it."""

    id: str
    category: str
    at: str


class AtAddress(TypedDict):
    """Records at the event's normalised address (or by its caller) in the window."""

    count: int
    recent: list[str]  # ids, newest first


class Nearby(TypedDict):
    """Records within ``radius_m`` in the window, by category, the newest few listed."""

    radius_m: float
    count: int
    by_category: dict[str, int]
    recent: list[Listed]


class RecentCallsNearby(TypedDict):
    """The emerging-incident search: other calls within its radius and window, oldest first."""

    radius_m: float
    window_minutes: float
    count: int
    # Distinct callers or addresses among these calls and this one (calls sharing a
    # caller or an address count once): what an emerging incident needs.
    sources: int
    calls: list[Listed]


class HistoryBlock(TypedDict, total=False):
    """What history adds, by event kind (see docs/contract.md for which kind has which)."""

    # plate reads
    hotlist: list[HotlistHit]
    linked_incidents: list[LinkedIncident]
    trail: list[TrailRead]
    # calls and incidents
    markers: list[Marker]
    nearby: Nearby
    calls_at_address: AtAddress
    calls_by_person: AtAddress
    calls_nearby: Nearby
    incidents_at_address: AtAddress
    incidents_nearby: Nearby
    recent_calls_nearby: RecentCallsNearby


class NearestUnit(TypedDict):
    """An available officer near a call or incident."""

    officer_id: str
    callsign: str | None
    distance_m: int
    fix_age_s: int
    stale: bool


class Partial(TypedDict):
    """Why history is missing from this block (Redis slow or down)."""

    reason: str


_set = object.__setattr__


class Enrichment(BaseModel):
    """The ``enrichment`` block of one event.

    Fields that do not apply to an event are absent (``None`` here, left out on the
    wire). Build it with ``Enrichment.build`` (the engine's values, already valid) or
    ``Enrichment.model_validate`` (someone else's JSON).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKindName
    areas: dict[str, AreaRef] | None = None
    area_codes: list[str] | None = None
    in_force_area: bool | None = None
    geofences: list[GeofenceHit] | None = None
    nearby_places: dict[str, NearbyPlace] | None = None
    history: HistoryBlock | None = None
    nearest_units: list[NearestUnit] | None = None
    reference_version: str
    enriched_at: str  # ISO 8601, UTC: when the batch was enriched
    partial: Partial | None = None

    @classmethod
    def build(
        cls,
        *,
        kind: EventKindName,
        reference_version: str,
        enriched_at: str,
        areas: dict[str, AreaRef] | None = None,
        area_codes: list[str] | None = None,
        in_force_area: bool | None = None,
        geofences: list[GeofenceHit] | None = None,
        nearby_places: dict[str, NearbyPlace] | None = None,
        history: HistoryBlock | None = None,
        nearest_units: list[NearestUnit] | None = None,
        partial: Partial | None = None,
    ) -> Enrichment:
        """The block from values the engine computed itself, without validating them.

        ``model_construct`` does the same but walks every field (about 5 us an event,
        a fifth of a plate read's whole path); this sets the instance's state in one
        step (about 1 us). The keyword arguments are typed, so mypy checks the
        construction that validation would otherwise check at run time.
        """
        values: dict[str, Any] = {"kind": kind}
        if areas is not None:
            values["areas"] = areas
            values["area_codes"] = area_codes
            values["in_force_area"] = in_force_area
            values["geofences"] = geofences
        if nearby_places is not None:
            values["nearby_places"] = nearby_places
        if history is not None:
            values["history"] = history
        if nearest_units is not None:
            values["nearest_units"] = nearest_units
        values["reference_version"] = reference_version
        values["enriched_at"] = enriched_at
        if partial is not None:
            values["partial"] = partial
        block = cls.__new__(cls)
        # What model_construct sets: the fields given (absent ones read as None, below).
        _set(block, "__dict__", values)
        _set(block, "__pydantic_fields_set__", set(values))
        _set(block, "__pydantic_extra__", None)
        _set(block, "__pydantic_private__", None)
        return block

    def __getattr__(self, name: str) -> Any:
        # A field ``build`` left out (it does not apply) reads as None, its default.
        if name in type(self).model_fields:
            return None
        return super().__getattr__(name)  # type: ignore[misc]

    def wire(self) -> dict[str, Any]:
        """The block as it goes on the wire and as rules read it: fields that do not
        apply left out. For a built block, the block's own dict: read it, never change it."""
        if None in self.__dict__.values():  # a validated block holds its None defaults
            return {k: v for k, v in self.__dict__.items() if v is not None}
        return self.__dict__
