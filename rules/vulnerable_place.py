"""Vulnerable place: a violent or sexual offence, or a missing person, near a school,
care home or refuge."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rtic.schemas import AlertV1, CallV1, EventKind, IncidentEventV1, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert

TRIGGERS = {"assault", "robbery", "domestic_abuse", "sexual_offence", "missing_person"}
VULNERABLE_KINDS = ("school", "care_home", "refuge")


class Params(RuleParams):
    """What an analyst tunes for offences near vulnerable places."""

    distance_m: float = Field(
        200.0,
        ge=10,
        le=2000,
        description="How close, in metres, to a school, care home or refuge counts as near.",
    )


SPEC = RuleSpec(
    rule_id="vulnerable_place",
    title="Vulnerable place",
    description="A violent or sexual offence, or a missing person, within `distance_m` of a "
    "school, care home or refuge.",
    kinds=frozenset({EventKind.CALL, EventKind.INCIDENT}),
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
    params=Params(),
)


def vulnerable_place(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """An alert for a triggering call or incident near one or more vulnerable places."""
    if isinstance(event, IncidentEventV1):
        if event.event != "created" or event.call_ids:
            return []  # an incident raised from a call: the call has raised it already
        ident, category, location = event.incident_id, event.category, event.location
    elif isinstance(event, CallV1):
        ident, category, location = event.call_id, event.category, event.location
    else:
        return []
    if category not in TRIGGERS:
        return []
    within = ctx.params.distance_m
    near = {
        kind: place
        for kind, place in ctx.enrichment.get("nearby_places", {}).items()
        if kind in VULNERABLE_KINDS and place.get("distance_m", 1e9) <= within
    }
    if not near:
        return []
    closest_kind, closest = min(near.items(), key=lambda kv: kv[1]["distance_m"])
    names = "; ".join(
        f"{p['name']} ({k.replace('_', ' ')}, {p['distance_m']:.0f} m)" for k, p in near.items()
    )
    return [
        make_alert(
            ctx,
            facts=(ident, closest_kind, str(closest.get("id", closest["name"]))),
            title=f"{category.replace('_', ' ').capitalize()} near a {closest_kind.replace('_', ' ')}",
            summary=f"{category.replace('_', ' ')} {ident} within {within:.0f} m of {names}",
            source_event_ids=[ident],
            location=location,
            details={
                "places": near,
                "why": (
                    f"A {category.replace('_', ' ')} within {within:.0f} m of a vulnerable place: {names}. "
                    "Consider informing the premises and a visible patrol."
                ),
            },
        )
    ]


RULE = Rule(SPEC, vulnerable_place)
