"""The one schema module: every message that crosses a topic or a websocket.

Namespace ``rtic``, version ``v1`` (the class names end in ``V1`` and the
topics in ``.v1``). A breaking change adds ``...V2`` classes and ``.v2``
topics beside these; it never edits a ``V1`` in place. Input models accept
extra fields (the contract welcomes them) and carry them through to
``rtic.enriched.v1`` untouched.

``decode_event`` is the single entry point from bytes: it raises
``DecodeError`` or ``ValidationFailed`` with a reason a sender can act on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
import shapely
import shapely.errors
import shapely.geometry
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from rtic.errors import DecodeError, ValidationFailed

Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]

# When an event happened: an aware time in the years the engine can compute with. Year 1
# or 9999 parse, then overflow where a rule adds a deadline or a window to them (a rule
# that raises on every timer tick); no call, read or ping comes from those years. The
# bounds are pydantic's own constraints (checked in its core, not by a Python validator
# called per event: 2.8 microseconds a read less, issue 15).
EARLIEST_EVENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(3000, 1, 1, tzinfo=UTC)

EventTime = Annotated[AwareDatetime, Field(ge=EARLIEST_EVENT, lt=LATEST_EVENT)]


class _Open(BaseModel):
    """Contract input: validated, extra fields kept."""

    model_config = ConfigDict(extra="allow", frozen=False)


class _Closed(BaseModel):
    """Engine output or control message: no unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Channel(StrEnum):
    EMERGENCY = "999"
    NON_EMERGENCY = "101"
    ONLINE = "online"
    WEBCHAT = "webchat"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


class Role(StrEnum):
    RTIC_ANALYST = "rtic_analyst"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    CASE_OFFICER = "case_officer"
    CITIZEN = "citizen"
    CONTACT_HANDLER = "contact_handler"  # webchat queue and the cases of the chats they hold


class LocationV1(_Open):
    lat: Lat
    lon: Lon
    address: str | None = None


class CallerV1(_Open):
    person_id: str | None = None
    name: str | None = None
    phone: str | None = None


class CallV1(_Open):
    """A call for service (``rtic.calls.v1``, key ``call_id``)."""

    call_id: NonEmpty
    received_at: EventTime
    channel: Channel
    category: NonEmpty
    location: LocationV1
    description: str | None = None
    caller: CallerV1 | None = None
    grade: Literal[1, 2, 3, 4] | None = None


class PersonRefV1(_Open):
    person_id: NonEmpty
    role: str | None = None


class VehicleRefV1(_Open):
    vrm: NonEmpty
    role: str | None = None


class IncidentEventV1(_Open):
    """An incident lifecycle event (``rtic.incidents.v1``, key ``incident_id``)."""

    incident_id: NonEmpty
    event: Literal["created", "updated", "assigned", "arrived", "closed"]
    at: EventTime
    grade: Literal[1, 2, 3, 4]
    category: NonEmpty
    location: LocationV1
    call_ids: list[str] | None = None
    persons: list[PersonRefV1] | None = None
    vehicles: list[VehicleRefV1] | None = None
    units: list[str] | None = None


class PlateReadV1(_Open):
    """One ANPR read (``rtic.anpr.v1``, key ``camera_id``)."""

    read_id: NonEmpty
    vrm: Annotated[str, Field(min_length=1, max_length=16)]
    camera_id: NonEmpty
    read_at: EventTime
    lat: Lat
    lon: Lon
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    direction: str | None = None


class PlateReadBatchV1(_Open):
    """A batch of reads from one camera: ``{"reads": [...]}``."""

    reads: Annotated[list[PlateReadV1], Field(min_length=1, max_length=10_000)]


class OfficerLocationV1(_Open):
    """A device ping (``rtic.officer-locations.v1``, key ``officer_id``)."""

    officer_id: NonEmpty
    at: EventTime
    lat: Lat
    lon: Lon
    callsign: str | None = None
    status: Literal["available", "committed", "off_duty"] | None = None


class HotlistEntryV1(_Open):
    vrm: Annotated[str, Field(min_length=1, max_length=16)]
    reason: Literal[
        "stolen",
        "wanted_driver",
        "firearms",
        "no_insurance",
        "missing_person",
        "linked_to_incident",
        "other",
    ]
    severity: Severity | None = None
    expires_at: AwareDatetime | None = None
    source: str | None = None


class PersonMarkerV1(_Open):
    """A warning marker on a person (``kind: person_marker``)."""

    person_id: NonEmpty
    marker: NonEmpty = Field(description="e.g. weapons, violence_to_officers, mental_health")
    note: str | None = None
    expires_at: AwareDatetime | None = None


class AddressMarkerV1(_Open):
    """A warning marker on an address (``kind: address_marker``)."""

    address: NonEmpty
    marker: NonEmpty = Field(description="e.g. weapons, high_risk_domestic_abuse, dog")
    note: str | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    expires_at: AwareDatetime | None = None


class CircleV1(_Closed):
    lat: Lat
    lon: Lon
    radius_m: Annotated[float, Field(gt=0, le=50_000)]


class GeofenceV1(_Open):
    """An operator-defined zone (``kind: geofence``): a GeoJSON polygon or a circle,
    active from ``valid_from`` to ``valid_to`` (either open)."""

    name: NonEmpty
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon, WGS84"
    )
    circle: CircleV1 | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> GeofenceV1:
        if (self.geometry is None) == (self.circle is None):
            raise ValueError("give exactly one of 'geometry' (a GeoJSON polygon) or 'circle'")
        if self.geometry is not None:
            if self.geometry.get("type") not in ("Polygon", "MultiPolygon"):
                raise ValueError("geometry must be a GeoJSON Polygon or MultiPolygon")
            try:
                shape = shapely.geometry.shape(self.geometry)
            except (
                KeyError,
                TypeError,
                ValueError,
                IndexError,
                shapely.errors.GEOSException,
            ) as exc:
                raise ValueError(f"geometry is not a valid polygon: {exc}") from exc
            if shape.is_empty or not shape.is_valid:
                raise ValueError("geometry is not a valid polygon (empty or self-intersecting)")
            minx, miny, maxx, maxy = shape.bounds
            if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
                raise ValueError("geometry coordinates must be WGS84 longitude and latitude")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class PlaceV1(_Open):
    """A place of interest an operator adds (``kind: place``): a care home, a refuge..."""

    name: NonEmpty
    kind: NonEmpty = Field(
        description="the layer: care_home, refuge, licensed_premises, hotspot..."
    )
    lat: Lat
    lon: Lon
    generated: bool = Field(False, description="true for sample data made up for a demo or test")


class SnoozeV1(_Open):
    """An analyst's snooze (``kind: snooze``): alerts of a rule (or of every rule) for an
    area or a plate are held back until ``until``. The reference change's ``id`` is the
    snooze id; ``op: delete`` lifts it early."""

    rule_id: NonEmpty | None = Field(None, description="the rule snoozed; none: every rule")
    area: NonEmpty | None = Field(None, description="an area code: district, ward or LSOA")
    vrm: Annotated[str, Field(min_length=1, max_length=16)] | None = Field(
        None, description="a plate, compared with usual misreads folded (like hotlists)"
    )
    until: AwareDatetime
    by: NonEmpty = Field(description="who snoozed (the token's subject)")
    reason: Annotated[str, Field(max_length=500)] | None = None

    @model_validator(mode="after")
    def _area_or_plate(self) -> SnoozeV1:
        if self.area is None and self.vrm is None:
            raise ValueError("give an 'area' or a 'vrm' (a snooze never silences everything)")
        if self.vrm is not None and not any(c.isalnum() for c in self.vrm):
            raise ValueError("vrm must contain letters or digits")
        return self


_ENTRY_MODELS: dict[str, type[BaseModel]] = {
    "hotlist": HotlistEntryV1,
    "person_marker": PersonMarkerV1,
    "address_marker": AddressMarkerV1,
    "geofence": GeofenceV1,
    "place": PlaceV1,
    "snooze": SnoozeV1,
}


class ReferenceChangeV1(_Open):
    """A change to reference data (``rtic.reference.v1``, key: entity id)."""

    kind: Literal["hotlist", "person_marker", "address_marker", "geofence", "place", "snooze"]
    op: Literal["upsert", "delete"]
    id: NonEmpty
    entry: dict[str, Any] | None = None

    def validated_entry(self) -> BaseModel | None:
        """The entry of an upsert, validated by its kind (``None`` for a delete)."""
        if self.op == "delete":
            return None
        if self.entry is None:
            raise ValidationFailed(f"{self.kind} upsert needs an 'entry' object")
        model = _ENTRY_MODELS[self.kind]
        try:
            return model.model_validate(self.entry)
        except ValidationError as exc:
            raise ValidationFailed(f"{self.kind} entry: {_reason(exc)}") from exc


class AudienceV1(_Closed):
    """Who an alert is for: any match admits a client (see push/access.py)."""

    roles: list[Role] = Field(default_factory=list)
    areas: list[str] = Field(default_factory=list)
    officers: list[str] = Field(default_factory=list)


class AlertV1(_Closed):
    """An alert (``rtic.alerts.v1``, key ``alert_id``)."""

    alert_id: NonEmpty
    rule_id: NonEmpty
    severity: Severity
    title: str
    summary: str
    created_at: EventTime
    source_event_ids: list[str]
    location: LocationV1 | None
    area: list[str]
    audience: AudienceV1
    details: dict[str, Any] = Field(default_factory=dict)
    # Extensions (docs/contract.md): an alert that groups repeated hits is sent again,
    # same alert_id, with a higher version; clients replace what they show.
    version: int = Field(1, ge=1, description="1 for a new alert; higher for an update of it")
    updated_at: EventTime | None = None
    group: str | None = Field(None, description="what repeated hits share, for the rule's window")


class AlertAckV1(_Closed):
    """An acknowledgement (``rtic.alert-acks.v1``, key ``alert_id``)."""

    alert_id: NonEmpty
    action: Literal["ack", "assign", "dismiss"]
    by: NonEmpty
    role: Role
    at: EventTime
    note: str | None = None


class VerificationV1(_Closed):
    """A person's check of a "check the plate" alert (``rtic.verifications.v1``, key
    ``alert_id``): ``verified`` (the read is the listed vehicle: the worker raises the
    actionable ``anpr_verified_hit``) or ``not_a_match`` (a misread: counted against the
    camera). Written by the gateway; the first decision for an alert version wins."""

    verification_id: NonEmpty = Field(description="stable: the same act gives the same id")
    alert_id: NonEmpty = Field(description="the pending alert checked")
    outcome: Literal["verified", "not_a_match"]
    by: NonEmpty = Field(description="the token's subject")
    role: Role
    at: EventTime
    note: str | None = None
    camera_id: str | None = None
    alert: dict[str, Any] = Field(description="the pending alert as the gateway held it")


class DeadLetterV1(_Closed):
    """What could not be decoded or validated (``rtic.dead-letter.v1``, key: source topic)."""

    source_topic: str
    partition: int
    offset: int
    raw: str = Field(description="The message value as received, base64.")
    key: str | None = Field(None, description="The message key as received, base64.")
    reason: str
    at: datetime


class EventKind(StrEnum):
    CALL = "call"
    INCIDENT = "incident"
    ANPR = "anpr"
    OFFICER_LOCATION = "officer_location"
    REFERENCE = "reference"


INPUT_MODELS: dict[EventKind, Any] = {
    EventKind.CALL: CallV1,
    EventKind.INCIDENT: IncidentEventV1,
    EventKind.OFFICER_LOCATION: OfficerLocationV1,
    EventKind.REFERENCE: ReferenceChangeV1,
}


def _reason(exc: ValidationError) -> str:
    """A short, sender-readable reason: the first three problems."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 3
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


# orjson reads objects nested up to 1024 deep but writes only 254: a message nested
# deeper than that would decode, then fail where its enriched copy is written. No message
# of the contract nests past ten (a MultiPolygon's coordinates are the deepest).
MAX_NESTING = 64


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in ``value`` nest more than ``limit`` deep."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def decode_json(raw: bytes | str | None) -> dict[str, Any]:
    """Bytes to a JSON object, or ``DecodeError`` saying why not."""
    if raw is None or raw == b"" or raw == "":
        raise DecodeError("empty message")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise DecodeError(f"JSON {type(value).__name__}, expected an object")
    # Only a message with that many brackets can nest that deep: most skip the walk.
    if isinstance(raw, str):
        openers = raw.count("{") + raw.count("[")
    else:
        openers = raw.count(b"{") + raw.count(b"[")
    if openers > MAX_NESTING and nested_deeper_than(value, MAX_NESTING):
        raise DecodeError(f"JSON nested more than {MAX_NESTING} deep")
    return value


def validate_event(kind: EventKind, data: dict[str, Any]) -> BaseModel:
    """A decoded object to its contract model, or ``ValidationFailed``."""
    try:
        if kind is EventKind.ANPR:
            if "reads" in data:
                return PlateReadBatchV1.model_validate(data)
            return PlateReadV1.model_validate(data)
        model = INPUT_MODELS[kind].model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_reason(exc)) from exc
    if isinstance(model, ReferenceChangeV1):
        model.validated_entry()
    return model


_READS: TypeAdapter[list[PlateReadV1]] = TypeAdapter(list[PlateReadV1])


def validate_reads(items: list[Any]) -> list[PlateReadV1] | None:
    """Plate reads validated in one call into pydantic's core; ``None`` if any is not
    valid (then ``validate_event`` on each names what is wrong with which)."""
    try:
        return _READS.validate_python(items)
    except ValidationError:
        return None


def validate_read_batch(
    data: dict[str, Any],
) -> tuple[PlateReadBatchV1 | None, list[tuple[int, str]]]:
    """A camera batch read by read: the batch of the valid reads (``None`` if none is),
    and ``(index, reason)`` for each invalid one, so one bad read does not hold back
    the others. A batch that is not a list of 1 to 10,000 objects fails whole."""
    reads = data.get("reads")
    if not isinstance(reads, list) or not 1 <= len(reads) <= 10_000:
        validate_event(EventKind.ANPR, data)  # raises with the batch-level reason
    assert isinstance(reads, list)
    envelope = {k: v for k, v in data.items() if k != "reads"}
    every = validate_reads(reads)  # every read valid (nearly always): one call for all
    if every is not None:
        return PlateReadBatchV1.model_construct(reads=every, **envelope), []
    # Read by read, to name the bad ones and keep the others.
    good: list[PlateReadV1] = []
    bad: list[tuple[int, str]] = []
    for i, read in enumerate(reads):
        try:
            good.append(PlateReadV1.model_validate(read))
        except ValidationError as exc:
            bad.append((i, _reason(exc)))
    if not good:
        return None, bad
    return PlateReadBatchV1.model_construct(reads=good, **envelope), bad


def decode_event(kind: EventKind, raw: bytes | str | None) -> tuple[dict[str, Any], BaseModel]:
    """Bytes to (the JSON object as sent, its validated model)."""
    data = decode_json(raw)
    return data, validate_event(kind, data)


def dumps(value: Any) -> bytes:
    """JSON bytes for the wire (UTC ISO 8601 times, UTF-8)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=False)
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)
