"""Who may see what, and what a client asked for. Pure: no sockets, no clock.

A client never receives what its role and scope do not allow:

- ``rtic_analyst`` and ``supervisor``: every alert and the live event feed
  (narrowed by their subscription's areas and severities).
- ``officer``: alerts addressed to them by id, and alerts whose audience
  includes officers and that fall in an area they subscribed to or within
  the radius of their position (the position they send, else their last
  device ping). No live event feed: it carries other people's data.
- ``case_officer``: alerts whose audience names the role; case updates for
  the cases in their token (all cases if the token has none).
- ``citizen``: only case updates for the case references in their token.

Only ``rtic_analyst`` and ``supervisor`` may snooze a rule for an area or a
plate (``parse_snooze``) or lift a snooze (``parse_unsnooze``); the gateway
sends the reference change these build to ``rtic.reference.v1``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from rtic.errors import ContractError
from rtic.geodesy import distance_m
from rtic.plates import canonical_vrm
from rtic.schemas import ReferenceChangeV1, Role, Severity
from rtic.tokens import Principal

FEED_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
ALL_ALERTS_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
SNOOZE_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})
MAX_RADIUS_M = 50_000.0
MAX_SNOOZE_MINUTES = 1440


@dataclass(frozen=True)
class Subscription:
    """What a client asked for (every field narrows; empty means no narrowing)."""

    areas: frozenset[str] = frozenset()
    severities: frozenset[Severity] = frozenset()
    radius_m: float | None = None
    position: tuple[float, float] | None = None
    cases: frozenset[str] = frozenset()
    events: bool = False

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


def _str_list(msg: dict[str, Any], field: str, limit: int = 500) -> list[str]:
    value = msg.get(field, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ContractError(f"'{field}' must be a list of strings")
    if len(value) > limit:
        raise ContractError(f"'{field}' lists more than {limit} values")
    return value


def parse_subscription(msg: dict[str, Any]) -> Subscription:
    """A ``subscribe`` message to a ``Subscription``, or ``ContractError`` saying what is wrong."""
    try:
        severities = frozenset(Severity(s) for s in _str_list(msg, "severities"))
    except ValueError as exc:
        raise ContractError(f"severities: {exc}") from exc
    radius = msg.get("radius_m")
    if radius is not None:
        if (
            not isinstance(radius, int | float)
            or isinstance(radius, bool)
            or not 0 < radius <= MAX_RADIUS_M
        ):
            raise ContractError(f"radius_m must be a number of metres in (0, {MAX_RADIUS_M:.0f}]")
        radius = float(radius)
    position = None
    pos = msg.get("position")
    if pos is not None:
        if not isinstance(pos, dict) or not all(
            isinstance(pos.get(k), int | float) and not isinstance(pos.get(k), bool)
            for k in ("lat", "lon")
        ):
            raise ContractError("position must be {lat, lon} in decimal degrees")
        lat, lon = float(pos["lat"]), float(pos["lon"])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ContractError("position out of range")
        position = (lat, lon)
    events = msg.get("events", False)
    if not isinstance(events, bool):
        raise ContractError("'events' must be true or false")
    return Subscription(
        areas=frozenset(_str_list(msg, "areas")),
        severities=severities,
        radius_m=radius,
        position=position,
        cases=frozenset(_str_list(msg, "cases")),
        events=events,
    )


def admits_alert(
    who: Principal,
    sub: Subscription,
    alert: dict[str, Any],
    officer_position: tuple[float, float] | None = None,
) -> bool:
    """Whether this alert may, and should, go to this client."""
    if sub.severities and alert.get("severity") not in {s.value for s in sub.severities}:
        return False
    audience = alert.get("audience") or {}
    areas = set(alert.get("area") or [])
    if who.role in ALL_ALERTS_ROLES:
        return not sub.areas or bool(sub.areas & areas)
    roles = set(audience.get("roles") or [])
    if who.role is Role.OFFICER:
        if who.sub in (audience.get("officers") or []):
            return True
        if Role.OFFICER.value not in roles:
            return False
        if sub.areas and sub.areas & (areas | set(audience.get("areas") or [])):
            return True
        position = sub.position or officer_position
        loc = alert.get("location")
        if sub.radius_m and position and loc:
            return distance_m(position[0], position[1], loc["lat"], loc["lon"]) <= sub.radius_m
        return False
    if who.role is Role.CASE_OFFICER:
        return Role.CASE_OFFICER.value in roles and (not sub.areas or bool(sub.areas & areas))
    return False  # citizens never receive alerts


def admits_event(who: Principal, sub: Subscription, event_areas: list[str]) -> bool:
    """Whether a live map event may, and should, go to this client."""
    if who.role not in FEED_ROLES or not sub.events:
        return False
    return not sub.areas or bool(sub.areas & set(event_areas))


def admits_case(who: Principal, sub: Subscription, case_ref: str) -> bool:
    """Whether a case update may go to this client."""
    if who.role is Role.CITIZEN:
        return case_ref in who.cases
    if who.role in (Role.CASE_OFFICER, Role.SUPERVISOR, Role.RTIC_ANALYST):
        in_scope = not who.cases or case_ref in who.cases
        return in_scope and (not sub.cases or case_ref in sub.cases)
    return False


def may_snooze(who: Principal) -> bool:
    """Whether this client may snooze or unsnooze (analysts and supervisors)."""
    return who.role in SNOOZE_ROLES


def snooze_id(rule_id: str | None, area: str | None, vrm: str | None) -> str:
    """The same rule, area and plate (misreads folded) always give the same snooze id,
    so snoozing again extends the snooze instead of adding another."""
    plate = canonical_vrm(vrm) if vrm else None
    digest = hashlib.sha256(orjson.dumps([rule_id, area, plate])).hexdigest()[:20]
    return f"snooze-{digest}"


def _optional_text(msg: dict[str, Any], name: str, limit: int) -> str | None:
    value = msg.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ContractError(f"'{name}' must be text")
    if not value.strip():
        raise ContractError(f"'{name}' must not be blank")
    if len(value) > limit:
        raise ContractError(f"'{name}' is longer than {limit} characters")
    return value.strip()


def parse_snooze(
    msg: dict[str, Any],
    who: Principal,
    now: datetime,
    rule_ids: Collection[str] = (),
) -> ReferenceChangeV1:
    """A ``snooze`` message to the reference change that records it (``kind: snooze``,
    ``op: upsert``), or ``ContractError`` saying what is wrong. ``rule_ids``: the rules
    that may be named (empty: any)."""
    rule_id = _optional_text(msg, "rule_id", 200)
    if rule_id is not None and rule_ids and rule_id not in rule_ids:
        raise ContractError(f"unknown rule_id {rule_id!r}; one of {', '.join(sorted(rule_ids))}")
    area = _optional_text(msg, "area", 200)
    vrm = _optional_text(msg, "vrm", 16)
    if vrm is not None and not any(c.isalnum() for c in vrm):
        raise ContractError("'vrm' must be a plate (letters and digits)")
    if area is None and vrm is None:
        raise ContractError("a snooze needs an 'area' (an area code) or a 'vrm' (a plate)")
    minutes = msg.get("minutes")
    if (
        not isinstance(minutes, int)
        or isinstance(minutes, bool)
        or not 1 <= minutes <= MAX_SNOOZE_MINUTES
    ):
        raise ContractError(f"'minutes' must be a whole number from 1 to {MAX_SNOOZE_MINUTES}")
    reason = _optional_text(msg, "reason", 500)
    entry: dict[str, Any] = {
        "rule_id": rule_id,
        "area": area,
        "vrm": vrm,
        "until": (now + timedelta(minutes=minutes)).isoformat(),
        "by": who.sub,
        "reason": reason,
    }
    change = ReferenceChangeV1(
        kind="snooze",
        op="upsert",
        id=snooze_id(rule_id, area, vrm),
        entry={k: v for k, v in entry.items() if v is not None},
    )
    change.validated_entry()  # the worker validates it again; refuse here what it would refuse
    return change


def parse_unsnooze(msg: dict[str, Any]) -> ReferenceChangeV1:
    """An ``unsnooze`` message to the reference change that lifts the snooze (``op: delete``)."""
    sid = _optional_text(msg, "snooze_id", 200)
    if sid is None:
        raise ContractError("unsnooze needs a 'snooze_id'")
    return ReferenceChangeV1(kind="snooze", op="delete", id=sid)
