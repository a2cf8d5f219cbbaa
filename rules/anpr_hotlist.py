"""ANPR hotlist hit: a plate read matches a live hotlist entry, misreads included."""

from __future__ import annotations

from datetime import UTC

from pydantic import BaseModel

from rtic.schemas import AlertV1, LocationV1, PlateReadV1, Severity
from rules.base import RuleContext, make_alert

SEVERITY_BY_REASON = {
    "firearms": Severity.CRITICAL,
    "wanted_driver": Severity.CRITICAL,
    "stolen": Severity.HIGH,
    "missing_person": Severity.HIGH,
    "linked_to_incident": Severity.HIGH,
    "no_insurance": Severity.MEDIUM,
    "other": Severity.MEDIUM,
}


def anpr_hotlist_hit(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
    """One alert per hotlist entry the read matches (exactly or as a usual misread)."""
    assert isinstance(event, PlateReadV1)
    min_conf = float(ctx.params.get("min_confidence", 0.0))
    if event.confidence is not None and event.confidence < min_conf:
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
