"""The gateway's incident board and officer board: pure, no I/O, no clock of its own.

The gateway keeps what the desk and the officers' phones show about jobs:

- the **incident board**: every open incident, and each closed one for
  ``KEEP_CLOSED`` after its close, folded from the incident events of
  ``rtic.incidents.v1`` (``IncidentBoard.apply``), with the enrichment the
  worker adds on ``rtic.enriched.v1`` (markers, a history summary, area codes:
  ``IncidentBoard.enrich``) kept beside it by incident id, so an enriched event
  read before or after its incident event is never lost;
- the **officer board**: each officer's last position and status, from the
  device pings of ``rtic.officer-locations.v1`` (``OfficerBoard.apply``), and
  the jobs each officer has today.

The gateway edge (``push/dispatch.py``) feeds both from Kafka and pushes the
views they return; this module decides what an incident looks like
(``Incident.view``, one shape for the desk and the officer), who may see it
(``visible_to``), which officers are nearest (``candidates``) and the supervisors'
workload (``workload``), and builds the incident events an officer's job update
or the desk's assignment becomes (``job_update_event``, ``assign_event``).

An incident event is applied once: events the board has applied are known by
their ``update_id`` (an officer's update), ``assign_id`` (an assignment) or, for
an event of another system, by its kind and time; a redelivery changes nothing.
A status only moves forward (``open`` < ``assigned`` < ``en_route`` <
``arrived`` < ``closed``), units are only added, and the grade, category and
location are those of the incident's latest event.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from rtic.client_messages import Assign, JobUpdate
from rtic.geodesy import distance_m
from rtic.schemas import IncidentEventV1, OfficerLocationV1, Role
from rtic.tokens import Principal

Status = Literal["open", "assigned", "en_route", "arrived", "closed"]
STATUS_RANK: dict[str, int] = {"open": 0, "assigned": 1, "en_route": 2, "arrived": 3, "closed": 4}
AreaCodes = Callable[[float, float], list[str]]

KEEP_CLOSED = timedelta(hours=1)  # a closed incident stays on the board this long
APPLIED_KEYS_KEPT = 500  # event keys remembered per incident (redeliveries are recent)
LOG_KEPT = 200  # log entries kept per incident on the board (the case keeps them all)
ENRICHMENT_KEPT = 20_000  # enrichment blocks kept for incidents not on the board (yet)
STALE_PING = timedelta(hours=1)  # an officer silent this long is no candidate
# Rough travel time: straight-line distance x ROAD_FACTOR at URBAN_KMH (stated as rough).
ROAD_FACTOR = 1.3
URBAN_KMH = 30.0
TRAVEL_BASIS = (
    f"rough: straight-line distance x {ROAD_FACTOR} at {URBAN_KMH:.0f} km/h (urban), not a route"
)
LOCAL = ZoneInfo("Europe/London")  # "today" is the force's day
# Job update -> the incident event it becomes (docs/cases.md, "How an officer's job update
# travels"): the contract's event list has no en_route, so it is an update with a status.
JOB_EVENTS: dict[str, tuple[str, str | None]] = {
    "en_route": ("updated", "en_route"),
    "arrived": ("arrived", None),
    "updated": ("updated", None),
    "closed": ("closed", None),
}
HISTORY_COUNTS = (
    "calls_at_address",
    "calls_by_person",
    "incidents_at_address",
    "calls_nearby",
    "incidents_nearby",
)
MARKER_FIELDS = ("marker", "note", "address", "person_id")


def event_key(event: IncidentEventV1) -> str:
    """What tells one incident event from another of the same incident."""
    extra = event.model_extra or {}
    for name in ("update_id", "assign_id"):
        value = extra.get(name)
        if isinstance(value, str) and value:
            return f"{name}:{value}"
    return f"{event.event}@{event.at.isoformat()}"


def _status_of(event: IncidentEventV1, extra: Mapping[str, Any]) -> Status:
    if event.event == "closed":
        return "closed"
    if event.event == "arrived":
        return "arrived"
    if event.event == "updated" and extra.get("status") == "en_route":
        return "en_route"
    if event.event == "assigned" or event.units:
        return "assigned"
    return "open"


def summarise_enrichment(enrichment: Mapping[str, Any]) -> dict[str, Any]:
    """What the board keeps of an incident's enrichment block: its area codes, warning
    markers (the marker, note, address or person) and a history summary (counts)."""
    history = enrichment.get("history") or {}
    markers = []
    for marker in history.get("markers") or []:
        if isinstance(marker, dict):
            markers.append({k: marker[k] for k in MARKER_FIELDS if marker.get(k) is not None})
    summary: dict[str, Any] = {}
    for name in HISTORY_COUNTS:
        block = history.get(name)
        if isinstance(block, dict) and isinstance(block.get("count"), int):
            summary[name] = block["count"]
    out: dict[str, Any] = {"markers": markers, "history": summary}
    codes = enrichment.get("area_codes")
    if isinstance(codes, list):
        out["area"] = [str(c) for c in codes]
    return out


@dataclass
class Incident:
    """One incident as the board holds it."""

    incident_id: str
    grade: int
    category: str
    location: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    status: Status = "open"
    units: list[str] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    case_ref: str | None = None
    arrived_at: datetime | None = None
    closed_at: datetime | None = None
    result: str | None = None
    area: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    assigned_at: dict[str, datetime] = field(default_factory=dict)  # officer -> first time
    applied: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    def promise(self, targets: Mapping[int, int]) -> dict[str, Any] | None:
        """The attendance promise of the incident's grade, from its opening."""
        minutes = targets.get(self.grade)
        if minutes is None:
            return None
        due = self.opened_at + timedelta(minutes=minutes)
        return {"due_at": due.isoformat(), "target_minutes": minutes}

    def view(
        self, targets: Mapping[int, int], enrichment: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The incident object of the frames and the HTTP API (docs/contract.md)."""
        extra = enrichment or {}
        out: dict[str, Any] = {
            "incident_id": self.incident_id,
            "grade": self.grade,
            "category": self.category,
            "location": self.location,
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "status": self.status,
            "units": list(self.units),
            "promise": self.promise(targets),
            "markers": list(extra.get("markers") or []),
            "history": dict(extra.get("history") or {}),
            "call_ids": list(self.call_ids),
            "area": list(self.area),
            "log": list(self.log),
        }
        for name in ("arrived_at", "closed_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        if self.result is not None:
            out["result"] = self.result
        if self.case_ref is not None:
            out["case_ref"] = self.case_ref
        return out


@dataclass(frozen=True)
class BoardChange:
    """What one event did to the board: the incident now, and the units it had before."""

    incident: Incident
    units_before: frozenset[str]
    opened: bool  # the event put the incident on the board

    @property
    def added_units(self) -> frozenset[str]:
        return frozenset(self.incident.units) - self.units_before


class IncidentBoard:
    """Open incidents (and closed ones for ``keep_closed``), by incident id.

    Args:
        targets: the attendance target in minutes by grade (no entry: no promise).
        area_codes: the area codes of a point (the gateway's ``GeoIndex``), for
            incidents whose enriched event has not been read; None: enrichment only.
        keep_closed: how long a closed incident stays on the board.
    """

    def __init__(
        self,
        targets: Mapping[int, int],
        area_codes: AreaCodes | None = None,
        keep_closed: timedelta = KEEP_CLOSED,
    ) -> None:
        self.targets = dict(targets)
        self.area_codes = area_codes
        self.keep_closed = keep_closed
        self.incidents: dict[str, Incident] = {}
        self.enrichment: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.incidents)

    def get(self, incident_id: str) -> Incident | None:
        return self.incidents.get(incident_id)

    def view(self, incident: Incident) -> dict[str, Any]:
        """The incident object of one incident, with its enrichment."""
        return incident.view(self.targets, self.enrichment.get(incident.incident_id))

    def apply(self, event: IncidentEventV1) -> BoardChange | None:
        """Fold one incident event into the board; None when it changes nothing (a
        redelivery, or an event of an incident closed and gone from the board)."""
        extra = event.model_extra or {}
        key = event_key(event)
        incident = self.incidents.get(event.incident_id)
        opened = incident is None
        if incident is None:
            location = event.location.model_dump(mode="json", exclude_none=True)
            incident = Incident(
                incident_id=event.incident_id,
                grade=event.grade,
                category=event.category,
                location=location,
                opened_at=event.at,
                updated_at=event.at,
                area=self._areas(event.incident_id, event.location.lat, event.location.lon),
            )
            if event.event == "closed":
                return None  # closed before we knew it: nothing to show
        elif key in incident.applied:
            return None
        units_before = frozenset(incident.units)
        incident.applied[key] = None
        while len(incident.applied) > APPLIED_KEYS_KEPT:
            incident.applied.popitem(last=False)
        if event.at >= incident.updated_at:
            incident.grade = event.grade
            incident.category = event.category
            incident.location = event.location.model_dump(mode="json", exclude_none=True)
            incident.updated_at = event.at
        if event.event == "created":
            incident.opened_at = min(incident.opened_at, event.at)
        status = _status_of(event, extra)
        if STATUS_RANK[status] > STATUS_RANK[incident.status]:
            incident.status = status
        for unit in event.units or ():
            if unit not in incident.units:
                incident.units.append(unit)
                incident.assigned_at.setdefault(unit, event.at)
        for call_id in event.call_ids or ():
            if call_id not in incident.call_ids:
                incident.call_ids.append(call_id)
        case_ref = extra.get("case_ref")
        if isinstance(case_ref, str) and incident.case_ref is None:
            incident.case_ref = case_ref
        if event.event == "arrived" and incident.arrived_at is None:
            incident.arrived_at = event.at
        if event.event == "closed":
            incident.closed_at = incident.closed_at or event.at
            result = extra.get("result") or extra.get("outcome")
            if result:
                incident.result = str(result)
        note = extra.get("note")
        if isinstance(note, str) and note.strip():
            update_id = extra.get("update_id")
            incident.log.append(
                {
                    "at": event.at.isoformat(),
                    "by": str(extra.get("by") or ""),
                    "text": note.strip(),
                    "update_id": update_id if isinstance(update_id, str) else key,
                }
            )
            incident.log.sort(key=lambda e: str(e["at"]))
            del incident.log[:-LOG_KEPT]
        self.incidents[event.incident_id] = incident
        return BoardChange(incident, units_before, opened)

    def _areas(self, incident_id: str, lat: float, lon: float) -> list[str]:
        known = self.enrichment.get(incident_id, {}).get("area")
        if known:
            return list(known)
        return list(self.area_codes(lat, lon)) if self.area_codes is not None else []

    def enrich(self, incident_id: str, enrichment: Mapping[str, Any]) -> Incident | None:
        """Keep an incident's enrichment (markers, history summary, areas); the incident
        if it is on the board and what it shows changed."""
        summary = summarise_enrichment(enrichment)
        if self.enrichment.get(incident_id) == summary:
            return None
        self.enrichment[incident_id] = summary
        self.enrichment.move_to_end(incident_id)
        over = len(self.enrichment) - ENRICHMENT_KEPT
        if over > 0:  # the oldest of incidents not on the board go (the board's stay)
            for gone in [k for k in self.enrichment if k not in self.incidents][:over]:
                del self.enrichment[gone]
        incident = self.incidents.get(incident_id)
        if incident is not None and summary.get("area"):
            incident.area = list(summary["area"])
        return incident

    def expire(self, now: datetime) -> list[Incident]:
        """Take off the board the incidents closed more than ``keep_closed`` ago."""
        gone = [
            inc
            for inc in self.incidents.values()
            if inc.closed_at is not None and inc.closed_at + self.keep_closed <= now
        ]
        for inc in gone:
            del self.incidents[inc.incident_id]
            self.enrichment.pop(inc.incident_id, None)
        return gone

    def jobs_of(self, officer_id: str) -> list[Incident]:
        """An officer's open jobs, oldest first."""
        return sorted(
            (i for i in self.incidents.values() if i.is_open and officer_id in i.units),
            key=lambda i: i.opened_at,
        )

    def visible_to(self, who: Principal) -> list[Incident]:
        """The incidents a client may see on the board, highest grade then oldest first."""
        shown = [i for i in self.incidents.values() if may_see_incident(who, i)]
        return sorted(shown, key=lambda i: (i.grade, i.opened_at))


def may_see_incident(who: Principal, incident: Incident) -> bool:
    """Analysts see every incident; a supervisor those in the areas of their token (all
    if it names none); an officer the incidents they are a unit of; nobody else."""
    if who.role is Role.RTIC_ANALYST:
        return True
    if who.role is Role.SUPERVISOR:
        return not who.areas or bool(set(who.areas) & set(incident.area))
    if who.role is Role.OFFICER:
        return who.sub in incident.units
    return False


# ---- officers ----------------------------------------------------------------------------


@dataclass
class Officer:
    """One officer's last ping, and the jobs they were given (for the workload)."""

    officer_id: str
    lat: float
    lon: float
    at: datetime
    status: str = "unknown"
    callsign: str | None = None
    area: list[str] = field(default_factory=list)

    def view(self, jobs: Iterable[str]) -> dict[str, Any]:
        """The officer object of the frames and the HTTP API (docs/contract.md)."""
        out: dict[str, Any] = {
            "officer_id": self.officer_id,
            "lat": self.lat,
            "lon": self.lon,
            "at": self.at.isoformat(),
            "status": self.status,
            "jobs": list(jobs),
        }
        if self.callsign is not None:
            out["callsign"] = self.callsign
        return out


class OfficerBoard:
    """Each officer's latest ping (an older ping read late changes nothing)."""

    def __init__(self, area_codes: AreaCodes | None = None) -> None:
        self.area_codes = area_codes
        self.officers: dict[str, Officer] = {}

    def __len__(self) -> int:
        return len(self.officers)

    def get(self, officer_id: str) -> Officer | None:
        return self.officers.get(officer_id)

    def apply(self, ping: OfficerLocationV1, areas: list[str] | None = None) -> Officer | None:
        """Take a ping; the officer if it is their newest (None: an older ping)."""
        known = self.officers.get(ping.officer_id)
        if known is not None and ping.at < known.at:
            return None
        if areas is None:
            areas = list(self.area_codes(ping.lat, ping.lon)) if self.area_codes else []
        officer = Officer(
            officer_id=ping.officer_id,
            lat=ping.lat,
            lon=ping.lon,
            at=ping.at,
            status=ping.status or (known.status if known else "unknown"),
            callsign=ping.callsign or (known.callsign if known else None),
            area=areas,
        )
        self.officers[ping.officer_id] = officer
        return officer

    def visible_to(self, who: Principal) -> list[Officer]:
        """The officers a client may see: analysts all, a supervisor those last seen in
        their token's areas (all if it names none), nobody else."""
        return [o for o in self.officers.values() if may_see_officer(who, o)]


def may_see_officer(who: Principal, officer: Officer) -> bool:
    """Analysts see every officer; a supervisor those last seen in the areas of their
    token (all if it names none); nobody else sees the officer board."""
    if who.role is Role.RTIC_ANALYST:
        return True
    if who.role is Role.SUPERVISOR:
        return not who.areas or bool(set(who.areas) & set(officer.area))
    return False


def officer_view(officer: Officer, board: IncidentBoard) -> dict[str, Any]:
    return officer.view(i.incident_id for i in board.jobs_of(officer.officer_id))


def travel_minutes(distance: float) -> int:
    """A rough travel time: ``ROAD_FACTOR`` times the straight line at ``URBAN_KMH``
    (whole minutes, at least 1)."""
    metres_per_minute = URBAN_KMH * 1000 / 60
    return max(1, math.ceil(distance * ROAD_FACTOR / metres_per_minute))


def candidates(
    incident: Incident,
    officers: OfficerBoard,
    now: datetime,
    limit: int = 5,
    who: Principal | None = None,
) -> list[dict[str, Any]]:
    """The nearest available officers to an incident, nearest first: status
    ``available``, a ping within ``STALE_PING``, not already a unit of it; and, if
    ``who`` is given, on the officer board as they may see it (``may_see_officer``: a
    supervisor's areas), so a distance never shows an officer the board hides."""
    lat, lon = incident.location["lat"], incident.location["lon"]
    found = []
    for officer in officers.officers.values():
        if officer.status != "available" or officer.officer_id in incident.units:
            continue
        if who is not None and not may_see_officer(who, officer):
            continue
        if now - officer.at > STALE_PING:
            continue
        metres = distance_m(lat, lon, officer.lat, officer.lon)
        found.append((metres, officer))
    found.sort(key=lambda pair: (pair[0], pair[1].officer_id))
    return [
        {
            "officer_id": o.officer_id,
            "callsign": o.callsign,
            "status": o.status,
            "distance_m": round(metres),
            "travel_minutes": travel_minutes(metres),
            "at": o.at.isoformat(),
        }
        for metres, o in found[:limit]
    ]


def workload(
    who: Principal, officers: OfficerBoard, board: IncidentBoard, now: datetime
) -> list[dict[str, Any]]:
    """Per officer the client may see: open jobs, jobs given today (the force's day,
    Europe/London; incidents closed and gone from the board no longer count), status and
    last ping; most open jobs first."""
    start_of_day = now.astimezone(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for officer in officers.visible_to(who):
        oid = officer.officer_id
        open_jobs = [i.incident_id for i in board.jobs_of(oid)]
        today = sum(
            1
            for i in board.incidents.values()
            if oid in i.assigned_at and i.assigned_at[oid] >= start_of_day
        )
        row: dict[str, Any] = {
            "officer_id": oid,
            "callsign": officer.callsign,
            "status": officer.status,
            "open_jobs": open_jobs,
            "jobs_today": today,
            "last_ping_at": officer.at.isoformat(),
            "lat": officer.lat,
            "lon": officer.lon,
        }
        rows.append((-len(open_jobs), oid, row))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [row for _, _, row in rows]


# ---- what a job update or an assignment writes -------------------------------------------


def _base_event(incident: Incident) -> dict[str, Any]:
    """The incident's grade, category, location and calls as the board holds them."""
    out: dict[str, Any] = {
        "incident_id": incident.incident_id,
        "grade": incident.grade,
        "category": incident.category,
        "location": incident.location,
    }
    if incident.call_ids:
        out["call_ids"] = list(incident.call_ids)
    return out


def job_update_event(
    incident: Incident, msg: JobUpdate, who: Principal, now: datetime
) -> dict[str, Any]:
    """The incident event an officer's job update becomes (docs/cases.md): its time is
    the device's (an update made offline keeps when it was made), never later than now."""
    kind, status = JOB_EVENTS[msg.event]
    event: dict[str, Any] = {
        **_base_event(incident),
        "event": kind,
        "at": min(msg.at, now).isoformat(),
        "units": [who.sub],
        "update_id": msg.update_id,
        "by": who.sub,
        "received_at": now.isoformat(),
    }
    if status is not None:
        event["status"] = status
    if msg.note is not None:
        event["note"] = msg.note
    if msg.result is not None:
        event["result"] = msg.result
    IncidentEventV1.model_validate(event)  # what the contract takes, or a bug here
    return event


def assign_event(incident: Incident, msg: Assign, who: Principal, now: datetime) -> dict[str, Any]:
    """The incident event an assignment becomes: ``assigned`` with the officer as its
    unit, the desk's ``assign_id``, who assigned, and the alert it answers if any."""
    event: dict[str, Any] = {
        **_base_event(incident),
        "event": "assigned",
        "at": now.isoformat(),
        "units": [msg.officer_id],
        "assign_id": msg.assign_id,
        "by": who.sub,
    }
    if msg.alert_id:
        event["alert_id"] = msg.alert_id
    if msg.note is not None:
        event["assign_note"] = msg.note  # not "note": that makes an officer's log entry
    IncidentEventV1.model_validate(event)
    return event


def position_ping(
    who: Principal,
    lat: float,
    lon: float,
    at: datetime,
    now: datetime,
    status: str | None,
    callsign: str | None,
    accuracy_m: float | None = None,
) -> dict[str, Any]:
    """The ``rtic.officer-locations.v1`` message of a device's ``position``: always for
    the token's own officer id; its time is the device's, never later than now."""
    ping: dict[str, Any] = {
        "officer_id": who.sub,
        "at": min(at, now).isoformat(),
        "lat": lat,
        "lon": lon,
    }
    if status is not None:
        ping["status"] = status
    if callsign is not None:
        ping["callsign"] = callsign
    if accuracy_m is not None:
        ping["accuracy_m"] = accuracy_m
    OfficerLocationV1.model_validate(ping)
    return ping


def attendance_targets(grade1_attend_s: float, grade2_attend_s: float) -> dict[int, int]:
    """Attendance targets in whole minutes by grade (grades 3 and 4 have none): those of
    the ``response_promise`` rule (rules/deadlines.py), so the promise a page counts
    down is the one whose breach raises the alert."""
    return {1: round(grade1_attend_s / 60), 2: round(grade2_attend_s / 60)}


__all__ = [
    "TRAVEL_BASIS",
    "BoardChange",
    "Incident",
    "IncidentBoard",
    "Officer",
    "OfficerBoard",
    "assign_event",
    "attendance_targets",
    "candidates",
    "event_key",
    "job_update_event",
    "may_see_incident",
    "may_see_officer",
    "officer_view",
    "position_ping",
    "summarise_enrichment",
    "travel_minutes",
    "workload",
]
