"""Near-repeat burglary: after a residential burglary, the area around it is at raised risk
for about two weeks; the neighbourhood team is asked to make it a patrol priority."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from rtic.schemas import AlertV1, CallV1, IncidentEventV1
from rules.base import RuleContext, make_alert


def near_repeat_burglary(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
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
    radius = float(ctx.params.get("radius_m", 400))
    days = int(ctx.params.get("days", 14))
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
