"""Vehicle linked to an open incident seen by ANPR (for example the suspect vehicle of a
robbery in the last two hours): to the units assigned to that incident and the RTIC."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from rtic.schemas import AlertV1, EventKind, LocationV1, PlateReadV1, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert


class Params(RuleParams):
    """What an analyst tunes for vehicles of open incidents."""

    window_minutes: float = Field(
        120.0,
        ge=5,
        le=24 * 60,
        description="A read counts if it comes within this many minutes of the incident's creation.",
    )


SPEC = RuleSpec(
    rule_id="vehicle_linked_to_incident",
    title="Vehicle linked to an open incident",
    description="A vehicle of an open incident (suspect, victim, stolen...) read by ANPR "
    "within `window_minutes` of the incident: to its units and the RTIC.",
    kinds=frozenset({EventKind.ANPR}),
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
    params=Params(),
)


def vehicle_linked_to_incident(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """One alert per open incident the read plate is linked to, within the window."""
    assert isinstance(event, PlateReadV1)
    links = ctx.enrichment.get("history", {}).get("linked_incidents")
    if not links:  # nearly every read
        return []
    window = timedelta(minutes=ctx.params.window_minutes)
    place = ctx.enrichment.get("areas", {}).get("ward", {}).get("name", "outside force area")
    alerts = []
    for link in links:
        try:
            since = event.read_at - datetime.fromisoformat(link["at"])
        except (KeyError, TypeError, ValueError):
            continue
        if since > window or since < -timedelta(minutes=5):
            continue
        role = str(link.get("role") or "linked vehicle").replace("_", " ")
        category = str(link.get("category", "incident")).replace("_", " ")
        units = [str(u) for u in link.get("units") or []]
        minutes = max(int(since.total_seconds() // 60), 0)
        alerts.append(
            make_alert(
                ctx,
                facts=(event.read_id, str(link.get("incident_id"))),
                severity=Severity.HIGH if int(link.get("grade", 3)) <= 2 else Severity.MEDIUM,
                title=f"{link.get('vrm')} ({role}) of {category} {link.get('incident_id')} seen by ANPR",
                summary=(
                    f"{link.get('vrm')}, the {role} in grade {link.get('grade')} {category} "
                    f"{link.get('incident_id')} ({minutes} min ago), read by camera {event.camera_id} in {place} "
                    f"at {event.read_at:%H:%M:%S}"
                    + (f", heading {event.direction}" if event.direction else "")
                ),
                source_event_ids=[event.read_id],
                location=LocationV1(lat=event.lat, lon=event.lon),
                officers=units,
                details={
                    "vrm": str(link.get("vrm") or event.vrm),  # the plate the alert is about
                    "incident": link,
                    "vrm_read": event.vrm,
                    "camera_id": event.camera_id,
                    "why": (
                        f"Plate {event.vrm} is the {role} of open incident {link.get('incident_id')}, "
                        f"created {minutes} minutes before this read (window {window.total_seconds() / 60:.0f} min)."
                    ),
                },
            )
        )
    return alerts


RULE = Rule(SPEC, vehicle_linked_to_incident)
