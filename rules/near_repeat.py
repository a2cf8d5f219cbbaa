"""Near-repeat burglary: after a residential burglary, the area around it is at raised risk
for about two weeks; the neighbourhood team is asked to make it a patrol priority."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field

from rtic.schemas import AlertV1, CallV1, EventKind, IncidentEventV1, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert


class Params(RuleParams):
    """What an analyst tunes for near-repeat burglary."""

    radius_m: float = Field(
        400.0, ge=50, le=2000, description="Homes within this many metres are at raised risk."
    )
    days: int = Field(14, ge=1, le=60, description="For this many days after the burglary.")


SPEC = RuleSpec(
    rule_id="near_repeat_burglary",
    title="Near-repeat burglary risk",
    description="After a burglary, homes within `radius_m` are at raised risk for `days`: "
    "a patrol priority for the neighbourhood team.",
    kinds=frozenset({EventKind.CALL, EventKind.INCIDENT}),
    severity=Severity.MEDIUM,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
    params=Params(),
)


def near_repeat_burglary(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """A patrol priority around a new burglary (a call, or an incident not raised from one)."""
    if isinstance(event, IncidentEventV1):
        if event.event != "created" or event.call_ids:
            return []  # an incident raised from a call: the call has raised it already
        ident, category, location, at = event.incident_id, event.category, event.location, event.at
    elif isinstance(event, CallV1):
        ident, category, location, at = (
            event.call_id,
            event.category,
            event.location,
            event.received_at,
        )
    else:
        return []
    if category != "burglary":
        return []
    radius, days = ctx.params.radius_m, ctx.params.days
    until = at + timedelta(days=days)
    ward = ctx.enrichment.get("areas", {}).get("ward", {}).get("name", "the area")
    return [
        make_alert(
            ctx,
            facts=(ident,),
            title=f"Near-repeat burglary risk in {ward} until {until:%d %b}",
            summary=(
                f"Burglary {ident}"
                + (f" at {location.address}" if location.address else "")
                + f": homes within {radius:.0f} m are at raised risk for {days} days. Patrol priority."
            ),
            source_event_ids=[ident],
            location=location,
            details={
                "radius_m": radius,
                "valid_until": until.isoformat(),
                "why": (
                    f"Burglaries cluster: the risk to homes within about {radius:.0f} m stays raised for "
                    f"about {days} days after one. Flagged to the neighbourhood team for {ward}."
                ),
            },
        )
    ]


RULE = Rule(SPEC, near_repeat_burglary)
