"""Officer safety: an incident at an address, or involving a person, with a warning marker.

Raised when the incident is created, updated or assigned (before anyone
arrives), for the assigned units, the nearest available units and the RTIC.
"""

from __future__ import annotations

from pydantic import BaseModel

from rtic.schemas import AlertV1, EventKind, IncidentEventV1, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert

DANGEROUS = {"weapons", "firearms", "violence_to_officers", "violent"}


class Params(RuleParams):
    """None: every warning marker is told."""


SPEC = RuleSpec(
    rule_id="officer_safety",
    title="Officer safety",
    description="An incident at an address, or with a person, that has a warning marker: "
    "to the assigned and nearest units before they arrive.",
    kinds=frozenset({EventKind.INCIDENT}),
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
    params=Params(),
)


def officer_safety(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """One alert per incident and set of markers, critical when a marker means danger."""
    assert isinstance(event, IncidentEventV1)
    if event.event not in ("created", "updated", "assigned"):
        return []
    markers = ctx.enrichment.get("history", {}).get("markers", [])
    if not markers:
        return []
    kinds = sorted({str(m.get("marker")) for m in markers})
    severity = Severity.CRITICAL if DANGEROUS & set(kinds) else Severity.HIGH
    units = list(event.units or [])
    nearest = [
        u["officer_id"] for u in ctx.enrichment.get("nearest_units", []) if u.get("officer_id")
    ]
    on = []
    for m in markers:
        what = str(m.get("marker", "marker")).replace("_", " ")
        on.append(
            f"{what} ({'person ' + str(m['person_id']) if m.get('person_id') else 'address'})"
        )
    return [
        make_alert(
            ctx,
            # One alert per incident and set of markers: assignment updates do not repeat it.
            facts=(event.incident_id, *kinds),
            severity=severity,
            title=f"Officer safety: {', '.join(k.replace('_', ' ') for k in kinds)} at incident {event.incident_id}",
            summary=(
                f"Grade {event.grade} {event.category.replace('_', ' ')} incident"
                + (f" at {event.location.address}" if event.location.address else "")
                + f": warning markers {'; '.join(on)}. Approach with care."
            ),
            source_event_ids=[event.incident_id],
            location=event.location,
            officers=sorted(set(units + nearest)),
            details={
                "markers": markers,
                "assigned_units": units,
                "nearest_units": nearest,
                "why": (
                    "The incident's address or a person in it carries warning markers: "
                    + "; ".join(on)
                    + ". Sent to the assigned and nearest units before they arrive."
                ),
            },
        )
    ]


RULE = Rule(SPEC, officer_safety)
