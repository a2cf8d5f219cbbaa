"""Who may see what, and what a client asked for. Pure: no sockets, no clock.

A client never receives what its role and scope do not allow:

- ``rtic_analyst`` and ``supervisor``: every alert and the live event feed
  (narrowed by their subscription's areas and severities). The feed of a
  supervisor whose token names areas is that of their areas only, as their
  officer and incident boards are: it carries officers' positions and calls.
- ``officer``: alerts addressed to them by id, and alerts whose audience
  includes officers and that fall in an area they subscribed to or within
  the radius of their position. Their scope is bound by what the gateway
  knows, not only by what the client claims: the position is their own
  device's last ping (``rtic.officer-locations.v1``) when there is one, else
  the position they send; the radius is capped (``subscription_from``,
  ``RTIC_OFFICER_MAX_RADIUS_KM``); and a token that names areas limits them
  to alerts in those areas (alerts addressed to them by id aside). No live
  event feed: it carries other people's data.
- ``case_officer``: alerts whose audience names the role.
- ``citizen``: no alerts, no feed; only their own case.

Who may see a case (``may_see_case``, the one rule for the HTTP API and for
``case_update`` frames): a citizen the case references in their token; an
officer or case officer the cases they are in charge of or attending (or that
their token names); a supervisor the cases in the areas of their token, or
every case if the token names no area; nobody else (analysts, and any other
role). A case someone may not see is, to them, a case that does not exist:
the API answers 404, never 403. Citizens get only the timeline entries meant
for them, without staff notes (``case_update_for``, ``citizen_timeline``).

Only ``rtic_analyst`` and ``supervisor`` may snooze a rule for an area or a
plate (``snooze_change``) or lift a snooze (``unsnooze_change``); the gateway
sends the reference change these build to ``rtic.reference.v1``. The shape of
every client message is checked before it gets here, by its model in
``rtic/client_messages.py``; this module says what a valid one means.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from records.protocols import CaseRow
from rtic.client_messages import Snooze, Subscribe, Unsnooze
from rtic.client_messages import explain as explain_error
from rtic.errors import ContractError
from rtic.geodesy import distance_m
from rtic.plates import canonical_vrm
from rtic.schemas import ReferenceChangeV1, Role, Severity
from rtic.tokens import Principal

FEED_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
ALL_ALERTS_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
SNOOZE_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
CASE_LIST_ROLES = frozenset({Role.OFFICER, Role.CASE_OFFICER, Role.SUPERVISOR})
STAFF_CASE_ROLES = CASE_LIST_ROLES  # who sees a case whole (citizens see their part of it)
SEARCH_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
AUDIT_ROLES = frozenset({Role.SUPERVISOR})


@dataclass(frozen=True)
class Subscription:
    """What a client asked for (every field narrows; empty means no narrowing)."""

    areas: frozenset[str] = frozenset()
    severities: frozenset[Severity] = frozenset()
    radius_m: float | None = None
    position: tuple[float, float] | None = None
    cases: frozenset[str] = frozenset()
    events: bool = False

    @functools.cached_property
    def severity_values(self) -> frozenset[str]:
        """The severities asked for, as the strings alerts carry."""
        return frozenset(s.value for s in self.severities)

    def describe(self) -> dict[str, Any]:
        return {
            "areas": sorted(self.areas),
            "severities": sorted(s.value for s in self.severities),
            "radius_m": self.radius_m,
            "position": {"lat": self.position[0], "lon": self.position[1]}
            if self.position
            else None,
            "cases": sorted(self.cases),
            "events": self.events,
        }


def subscription_from(
    msg: Subscribe, who: Principal | None = None, max_radius_m: float | None = None
) -> Subscription:
    """The ``Subscription`` a valid ``subscribe`` message asks for; an officer's radius
    capped at ``max_radius_m`` (the ``subscribed`` reply shows the radius in force)."""
    radius = msg.radius_m
    if (
        radius is not None
        and max_radius_m is not None
        and who is not None
        and who.role is Role.OFFICER
    ):
        radius = min(radius, max_radius_m)
    return Subscription(
        areas=frozenset(msg.areas),
        severities=frozenset(Severity(s) for s in msg.severities),
        radius_m=radius,
        position=(msg.position.lat, msg.position.lon) if msg.position else None,
        cases=frozenset(msg.cases),
        events=msg.events,
    )


def parse_subscription(msg: dict[str, Any]) -> Subscription:
    """A ``subscribe`` message (as a JSON object) to a ``Subscription``, or
    ``ContractError`` saying what is wrong."""
    try:
        valid = Subscribe.model_validate({**msg, "type": "subscribe"})
    except ValidationError as exc:
        raise ContractError(explain_error(Subscribe, exc)) from exc
    return subscription_from(valid)


def admits_alert(
    who: Principal,
    sub: Subscription,
    alert: dict[str, Any],
    officer_position: tuple[float, float] | None = None,
) -> bool:
    """Whether this alert may, and should, go to this client."""
    return admits(who, sub, AlertFacts.of(alert), officer_position)


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What admission reads from an alert, taken out once per fan-out (not once per
    client: the fan-out asks about every client)."""

    severity: Any
    areas: frozenset[str]
    roles: frozenset[str]
    officers: frozenset[str]
    audience_areas: frozenset[str]
    location: tuple[float, float] | None

    @classmethod
    def of(cls, alert: dict[str, Any]) -> AlertFacts:
        """The facts of an alert as the Kafka edge read it (a location without numeric
        ``lat`` and ``lon`` is no location: nobody is admitted by radius)."""
        audience = alert.get("audience") or {}
        loc = alert.get("location")
        location: tuple[float, float] | None = None
        if isinstance(loc, dict):
            lat, lon = loc.get("lat"), loc.get("lon")
            if isinstance(lat, int | float) and isinstance(lon, int | float):
                location = (float(lat), float(lon))
        return cls(
            severity=alert.get("severity"),
            areas=frozenset(alert.get("area") or ()),
            roles=frozenset(audience.get("roles") or ()),
            officers=frozenset(audience.get("officers") or ()),
            audience_areas=frozenset(audience.get("areas") or ()),
            location=location,
        )


def admits(
    who: Principal,
    sub: Subscription,
    alert: AlertFacts,
    officer_position: tuple[float, float] | None = None,
) -> bool:
    """``admits_alert`` on the facts of an alert. ``officer_position``: the officer's
    last ping, which wins over the position the client sent."""
    if sub.severities and alert.severity not in sub.severity_values:
        return False
    role = who.role
    if role in ALL_ALERTS_ROLES:
        return not sub.areas or not sub.areas.isdisjoint(alert.areas)
    if role is Role.OFFICER:
        if who.sub in alert.officers:
            return True
        if _OFFICER not in alert.roles:
            return False
        if who.areas and alert.areas.isdisjoint(who.areas):
            if alert.audience_areas.isdisjoint(who.areas):
                return False  # outside the areas of their token
        if sub.areas and not (
            sub.areas.isdisjoint(alert.areas) and sub.areas.isdisjoint(alert.audience_areas)
        ):
            return True
        position = officer_position or sub.position  # the device's own pings first
        loc = alert.location
        if sub.radius_m and position and loc:
            return distance_m(position[0], position[1], loc[0], loc[1]) <= sub.radius_m
        return False
    if role is Role.CASE_OFFICER:
        return _CASE_OFFICER in alert.roles and (
            not sub.areas or not sub.areas.isdisjoint(alert.areas)
        )
    return False  # citizens never receive alerts


_OFFICER = Role.OFFICER.value
_CASE_OFFICER = Role.CASE_OFFICER.value


def admits_event(who: Principal, sub: Subscription, event_areas: list[str]) -> bool:
    """Whether a live map event may, and should, go to this client."""
    if who.role not in FEED_ROLES or not sub.events:
        return False
    if who.role is Role.SUPERVISOR and who.areas and set(who.areas).isdisjoint(event_areas):
        return False  # the token's areas bound what a supervisor may see, subscribed or not
    return not sub.areas or bool(sub.areas & set(event_areas))


@dataclass(frozen=True)
class CaseScope:
    """What decides who may see a case: its reference, the officers on it, its areas."""

    case_ref: str
    officer_in_charge: str | None = None
    attending: frozenset[str] = frozenset()
    area: frozenset[str] = frozenset()

    @classmethod
    def of_row(cls, row: CaseRow) -> CaseScope:
        """The scope of a stored case."""
        return cls(
            row.case_ref, row.officer_in_charge, frozenset(row.attending), frozenset(row.area)
        )

    @classmethod
    def of_update(cls, update: dict[str, Any], attending: Iterable[str] = ()) -> CaseScope:
        """The scope a ``rtic.cases.v1`` message states (it does not list the officers
        attending: the gateway adds them from the stored case)."""
        return cls(
            str(update.get("case_ref", "")),
            update.get("officer_in_charge"),
            frozenset(attending),
            frozenset(update.get("area") or ()),
        )


def may_see_case(who: Principal, case: CaseScope) -> bool:
    """Whether ``who`` may see this case at all (HTTP and ``case_update`` frames alike)."""
    if who.role is Role.CITIZEN:
        return case.case_ref in who.cases
    if who.role in (Role.OFFICER, Role.CASE_OFFICER):
        return (
            who.sub == case.officer_in_charge
            or who.sub in case.attending
            or case.case_ref in who.cases
        )
    if who.role is Role.SUPERVISOR:
        return not who.areas or bool(case.area.intersection(who.areas))
    return False  # analysts (and any role added later) see no case until a rule says so


def admits_case(who: Principal, sub: Subscription, case: CaseScope) -> bool:
    """Whether a case update may, and should, go to this client: it may see the case,
    and its subscription does not narrow it away."""
    return may_see_case(who, case) and (not sub.cases or case.case_ref in sub.cases)


def citizen_entry(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A timeline entry as its citizen sees it (``at``, ``kind``, ``text``), or None for
    an entry meant for staff only."""
    if not entry.get("citizen_visible", True):
        return None
    return {"at": entry.get("at"), "kind": entry.get("kind"), "text": entry.get("text")}


def citizen_timeline(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A case's timeline (oldest first, as stored) as its citizen sees it: their entries
    only, newest first; entries of the same time newest first too (a close's outcome,
    then its "closed")."""
    shown = [e for e in (citizen_entry(entry) for entry in entries) if e is not None]
    return sorted(reversed(shown), key=lambda e: str(e["at"]), reverse=True)


def case_update_for(who: Principal, update: dict[str, Any]) -> dict[str, Any] | None:
    """The ``case_update`` frame's fields for a client allowed to see the case: staff get
    the change whole; a citizen gets the reference, status, time and kind of change,
    and the new entry only if it is meant for them (None: nothing to tell them)."""
    if who.role is not Role.CITIZEN:
        return update
    shown: dict[str, Any] = {
        "case_ref": update.get("case_ref"),
        "status": update.get("status"),
        "at": update.get("at"),
        "change": update.get("change"),
    }
    entry = update.get("entry")
    if isinstance(entry, dict):
        visible = citizen_entry(entry)
        if visible is None:
            return None
        shown["entry"] = visible
    elif update.get("change") not in ("opened", "status"):
        return None  # a new link or officer: staff business
    return shown


ALERT_SEEING_STAFF = frozenset({Role.OFFICER, Role.CASE_OFFICER})


def may_see_alert(
    who: Principal,
    sub: Subscription | None,
    alert: AlertFacts,
    officer_position: tuple[float, float] | None = None,
    *,
    was_sent: bool = False,
) -> bool:
    """Whether ``who`` may see this alert, and so open it, act on it or verify it:
    analysts and supervisors any alert; an officer or a case officer one that was sent
    to them (``was_sent``, on this connection) or that their audience and scope admit
    now (severities aside: a filter of what to be sent, not of what they may see);
    nobody else. The gateway answers an alert someone may not see exactly as an alert
    it does not know (``not_found``)."""
    if who.role in ALL_ALERTS_ROLES:
        return True
    if who.role not in ALERT_SEEING_STAFF:
        return False
    if was_sent:
        return True
    scope = Subscription() if sub is None else replace(sub, severities=frozenset())
    return admits(who, scope, alert, officer_position)


def may_snooze(who: Principal) -> bool:
    """Whether this client may snooze or unsnooze (analysts and supervisors)."""
    return who.role in SNOOZE_ROLES


def snooze_id(rule_id: str | None, area: str | None, vrm: str | None) -> str:
    """The same rule, area and plate (misreads folded) always give the same snooze id,
    so snoozing again extends the snooze instead of adding another."""
    plate = canonical_vrm(vrm) if vrm else None
    digest = hashlib.sha256(orjson.dumps([rule_id, area, plate])).hexdigest()[:20]
    return f"snooze-{digest}"


def snooze_change(
    msg: Snooze,
    who: Principal,
    now: datetime,
    rule_ids: Collection[str] = (),
) -> ReferenceChangeV1:
    """A ``snooze`` message to the reference change that records it (``kind: snooze``,
    ``op: upsert``), or ``ContractError`` saying what is wrong. ``rule_ids``: the rules
    that may be named (empty: any)."""
    if msg.rule_id is not None and rule_ids and msg.rule_id not in rule_ids:
        raise ContractError(
            f"unknown rule_id {msg.rule_id!r}; one of {', '.join(sorted(rule_ids))}"
        )
    entry: dict[str, Any] = {
        "rule_id": msg.rule_id,
        "area": msg.area,
        "vrm": msg.vrm,
        "until": (now + timedelta(minutes=msg.minutes)).isoformat(),
        "by": who.sub,
        "reason": msg.reason,
    }
    change = ReferenceChangeV1(
        kind="snooze",
        op="upsert",
        id=snooze_id(msg.rule_id, msg.area, msg.vrm),
        entry={k: v for k, v in entry.items() if v is not None},
    )
    change.validated_entry()  # the worker validates it again; refuse here what it would refuse
    return change


def unsnooze_change(msg: Unsnooze) -> ReferenceChangeV1:
    """An ``unsnooze`` message to the reference change that lifts the snooze (``op: delete``)."""
    assert msg.snooze_id is not None  # the model refuses an unsnooze without one
    return ReferenceChangeV1(kind="snooze", op="delete", id=msg.snooze_id)
