"""ANPR hotlist hit: a plate read matches a live hotlist entry, misreads included."""

from __future__ import annotations

from datetime import UTC

from pydantic import BaseModel, Field

from rtic.schemas import AlertV1, EventKind, LocationV1, PlateReadV1, Role, Severity
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, make_alert


class Params(RuleParams):
    """What an analyst tunes for hotlist hits."""

    min_confidence: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Reads below this ANPR confidence are ignored; "
        "a read that gives no confidence never is.",
    )
    group_window_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="Hits on one hotlist entry this many seconds apart or closer update "
        "one alert instead of raising another (0: each hit its own alert).",
    )


SPEC = RuleSpec(
    rule_id="anpr_hotlist_hit",
    title="ANPR hotlist hit",
    description="A plate read matches a live hotlist entry, tolerating 0/O, 1/I, 5/S, 8/B misreads.",
    kinds=frozenset({EventKind.ANPR}),
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
    params=Params(),
)

SEVERITY_BY_REASON = {
    "firearms": Severity.CRITICAL,
    "wanted_driver": Severity.CRITICAL,
    "stolen": Severity.HIGH,
    "missing_person": Severity.HIGH,
    "linked_to_incident": Severity.HIGH,
    "no_insurance": Severity.MEDIUM,
    "other": Severity.MEDIUM,
}


def anpr_hotlist_hit(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """One alert per hotlist entry the read matches (exactly or as a usual misread)."""
    assert isinstance(event, PlateReadV1)
    if event.confidence is not None and event.confidence < ctx.params.min_confidence:
        return []
    alerts = []
    for hit in ctx.enrichment.get("history", {}).get("hotlist", []):
        reason = str(hit.get("reason", "other"))
        severity = (
            Severity(hit["severity"])
            if hit.get("severity")
            else SEVERITY_BY_REASON.get(reason, Severity.MEDIUM)
        )
        listed = str(hit.get("vrm", ""))
        place = ctx.enrichment.get("areas", {}).get("ward", {}).get("name", "outside force area")
        how = "read exactly" if hit["match"] == "exact" else f"read as {event.vrm} (likely misread)"
        alerts.append(
            make_alert(
                ctx,
                facts=(event.read_id, str(hit.get("id", listed))),
                group=(str(hit.get("id", listed)),),
                group_window_s=ctx.params.group_window_s,
                severity=severity,
                title=f"Hotlisted vehicle {listed}: {reason.replace('_', ' ')}",
                summary=(
                    f"{listed} ({reason.replace('_', ' ')}) {how} by camera {event.camera_id} "
                    f"in {place} at {event.read_at.astimezone(UTC):%H:%M:%S}Z"
                    + (f", heading {event.direction}" if event.direction else "")
                ),
                source_event_ids=[event.read_id],
                location=LocationV1(lat=event.lat, lon=event.lon),
                details={
                    "vrm": listed,  # the plate the alert is about (snoozes match it)
                    "vrm_read": event.vrm,
                    "vrm_listed": listed,
                    "match": hit["match"],
                    "reason": reason,
                    "hotlist_entry": hit,
                    "camera_id": event.camera_id,
                    "confidence": event.confidence,
                    "why": (
                        f"Plate {event.vrm} matches hotlist entry {listed} ({reason}); "
                        f"{'exact match' if hit['match'] == 'exact' else 'match allowing 0/O, 1/I, 5/S, 8/B misreads'}."
                    ),
                },
            )
        )
    return alerts


RULE = Rule(SPEC, anpr_hotlist_hit)
