"""Verified hotlist hit: a person checked a "check the plate" alert and said the read is
the listed vehicle. Now it is actionable.

Not raised by an event: the worker's verification agent (``streams/verifications.py``)
runs it on the first ``verified`` decision for a pending ``anpr_hotlist_hit`` alert
(``rtic.verifications.v1``), with the officers' last fixes. Pure: the subject
(``VerifiedCheck``) holds everything it reads.

The alert's id is stable from the pending alert's id (a redelivered decision gives the
same alert); its version is the pending alert's, so a later read folded into the same
pending alert and verified again updates it (same id, higher version). Its severity is
the hotlist entry's (``critical`` for firearms or a wanted driver: what the pending
check may have been held back from). It goes to analysts and supervisors, and to the
officers on duty whose last fix, no older than ``fix_max_age_s``, is within
``radius_m`` of the read (and to the officer who verified it). ``source_event_ids``:
the pending alert's, then the verification's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from rtic.geodesy import distance_m
from rtic.schemas import (
    AlertV1,
    AudienceV1,
    LocationV1,
    Role,
    Severity,
    VerificationV1,
)
from rtic.settings import Settings
from rules.anpr_hotlist import listed_severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, fixed, stable_alert_id

RULE_ID = "anpr_verified_hit"
PENDING_RULE_ID = "anpr_hotlist_hit"


class Params(RuleParams):
    """Who a verified hit goes to."""

    radius_m: float = fixed(
        3000.0,
        "Officers whose last fix is within this many metres of the read are sent the "
        "verified hit (RTIC_ANPR_VERIFIED_RADIUS_M).",
        ge=1,
        le=50_000,
    )
    fix_max_age_s: float = Field(
        1800.0,
        ge=60,
        le=86_400,
        description="An officer's last fix older than this many seconds says nothing about "
        "where they are now: not counted as around the read.",
    )


SPEC = RuleSpec(
    rule_id=RULE_ID,
    title="Verified hotlist hit",
    description="A person verified a 'check the plate' alert: the hit goes, at the hotlist "
    "entry's severity, to the officers within `radius_m` of the read and to the desk.",
    kinds=frozenset(),  # no event raises it: the verification agent runs it
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
    params=Params(),
)


@dataclass(frozen=True)
class VerifiedCheck:
    """What the rule reads: the decision, and the officers' last pings by officer id
    (``{lat, lon, at, status, callsign}``, as the reference store keeps them)."""

    verification: VerificationV1
    officers: Mapping[str, Mapping[str, Any]]


def officers_near(
    officers: Mapping[str, Mapping[str, Any]],
    lat: float,
    lon: float,
    radius_m: float,
    now: datetime,
    max_age_s: float,
) -> list[str]:
    """Officers on duty (any status but ``off_duty``) whose last fix, no older than
    ``max_age_s``, is within ``radius_m``: nearest first. Fixes that cannot be read are
    left out."""
    found: list[tuple[float, str]] = []
    for officer_id, state in officers.items():
        if state.get("status") == "off_duty":
            continue
        try:
            at = datetime.fromisoformat(str(state["at"]))
            olat, olon = float(state["lat"]), float(state["lon"])
        except (KeyError, TypeError, ValueError):
            continue
        if at.tzinfo is None or (now - at).total_seconds() > max_age_s:
            continue
        d = distance_m(lat, lon, olat, olon)
        if d <= radius_m:
            found.append((d, officer_id))
    return [officer_id for _, officer_id in sorted(found)]


def anpr_verified_hit(check: Any, ctx: RuleContext[Params]) -> list[AlertV1]:
    """The actionable alert for a verified check (none for a decision that is not
    ``verified`` or an alert that is not a pending plate check)."""
    assert isinstance(check, VerifiedCheck)
    v = check.verification
    pending = AlertV1.model_validate(v.alert)
    details = pending.details
    if v.outcome != "verified" or pending.rule_id != PENDING_RULE_ID:
        return []
    entry = details.get("hotlist_entry") or {"reason": details.get("reason", "other")}
    severity = listed_severity(entry)
    reason = str(details.get("reason", "other")).replace("_", " ")
    listed = str(details.get("vrm_listed", details.get("vrm", "")))
    location = pending.location
    near: list[str] = []
    if location is not None:
        near = officers_near(
            check.officers,
            location.lat,
            location.lon,
            ctx.params.radius_m,
            ctx.now,
            ctx.params.fix_max_age_s,
        )
    verifier = [v.by] if v.role is Role.OFFICER else []
    verification = {
        **(details.get("verification") or {}),
        "state": "verified",
        "verification_id": v.verification_id,
    }
    verified_by = {"by": v.by, "role": v.role.value, "at": v.at.isoformat(), "note": v.note}
    keep = {k: val for k, val in details.items() if k not in ("rule", "group", "hits", "why")}
    return [
        AlertV1(
            alert_id=stable_alert_id(RULE_ID, pending.alert_id),
            rule_id=RULE_ID,
            severity=severity,
            title=f"Verified hotlist hit: {listed} ({reason})",
            summary=(
                f"{pending.summary.removesuffix(' Verify the plate before acting.')} "
                f"Verified by {v.role.value.replace('_', ' ')} {v.by} at "
                f"{v.at.astimezone(UTC):%H:%M:%S}Z."
            ),
            created_at=ctx.now,
            source_event_ids=[*pending.source_event_ids, v.verification_id],
            location=LocationV1.model_validate(location.model_dump()) if location else None,
            area=list(pending.area),
            audience=AudienceV1(
                roles=list(ctx.spec.audience_roles),
                areas=list(pending.audience.areas),
                officers=list(dict.fromkeys([*verifier, *near])),
            ),
            version=pending.version,
            details={
                **keep,
                "pending_alert_id": pending.alert_id,
                "verification": verification,
                "verified_by": verified_by,
                "officers_within_m": ctx.params.radius_m,
                "why": (
                    f"{v.role.value.replace('_', ' ').capitalize()} {v.by} checked the read "
                    f"against hotlist entry {listed} ({reason}) and verified it: act on it. "
                    f"Sent to the officers within {ctx.params.radius_m:g} m of the read."
                ),
                "rule": {"id": RULE_ID, "params": ctx.params.model_dump()},
            },
        )
    ]


RULE = Rule(SPEC, anpr_verified_hit)


def rule(settings: Settings | None = None) -> Rule:
    """The rule with a deployment's ``radius_m`` (from settings)."""
    if settings is None:
        return RULE
    params = SPEC.params.model_copy(update={"radius_m": settings.anpr_verified_radius_m})
    return Rule(replace(SPEC, params=params), anpr_verified_hit)
