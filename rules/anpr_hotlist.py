"""ANPR hotlist hit: a plate read matches a live hotlist entry, misreads included.

Verify before action: the alert is a "check the plate" request. It carries what a
person needs to compare the read with the listed plate (``details.verification``:
state ``pending``, the plate read, the plate listed, the match, exact or which
characters were taken for which, the camera, the read's confidence, the read's image
if it has one). Someone who was sent it answers ``verify`` (``verified`` or
``not_a_match``); only a verified hit becomes the actionable alert for the units
around it (``rules/anpr_verified.py``, raised by the worker's verification agent).

A read below ``verify_min_confidence`` (``RTIC_ANPR_VERIFY_MIN_CONFIDENCE``), or one
that gives no confidence at all, never raises a critical alert before verification:
its check is at most ``high`` (an unknown confidence is not evidence either).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Any

from pydantic import BaseModel, Field

from rtic.plates import normalise_vrm
from rtic.schemas import SEVERITY_RANK, AlertV1, EventKind, LocationV1, PlateReadV1, Role, Severity
from rtic.settings import Settings
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, fixed, make_alert


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
    verify_min_confidence: float = fixed(
        0.6,
        "Reads below this confidence (or with none) raise at most a high alert until a "
        "person verifies them (RTIC_ANPR_VERIFY_MIN_CONFIDENCE).",
        ge=0.0,
        le=1.0,
    )


SPEC = RuleSpec(
    rule_id="anpr_hotlist_hit",
    title="ANPR hotlist hit: check the plate",
    description="A plate read matches a live hotlist entry, tolerating 0/O, 1/I, 5/S, 8/B "
    "misreads: a person checks the read against the listed plate before anyone acts.",
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


def listed_severity(entry: dict[str, Any]) -> Severity:
    """The severity a hotlist entry's hit deserves once verified: the entry's own, else by
    its reason (an unknown reason is medium)."""
    if entry.get("severity"):
        return Severity(entry["severity"])
    return SEVERITY_BY_REASON.get(str(entry.get("reason", "other")), Severity.MEDIUM)


def misreads(read_vrm: str, listed_vrm: str) -> list[tuple[str, str]]:
    """Which characters of the read stand for which of the listed plate (``("8", "B")``:
    an 8 read for a B), in plate order, each pair once; empty for an exact match."""
    read, listed = normalise_vrm(read_vrm), normalise_vrm(listed_vrm)
    if len(read) != len(listed):
        return []
    pairs = [(r, w) for r, w in zip(read, listed, strict=True) if r != w]
    return list(dict.fromkeys(pairs))


def match_kind(read_vrm: str, listed_vrm: str) -> str:
    """``exact``, or the misread in words: ``misread: 8 for B, 0 for O``."""
    pairs = misreads(read_vrm, listed_vrm)
    if not pairs:
        return "exact"
    return "misread: " + ", ".join(f"{r} for {w}" for r, w in pairs)


def capped(severity: Severity, confidence: float | None, minimum: float) -> Severity:
    """A check's severity before verification: never critical for a read below
    ``minimum`` confidence or one that gives none (at most high)."""
    trusted = confidence is not None and confidence >= minimum
    if not trusted and SEVERITY_RANK[severity] < SEVERITY_RANK[Severity.HIGH]:
        return Severity.HIGH
    return severity


def anpr_hotlist_hit(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """One "check the plate" alert per hotlist entry the read matches (exactly or as a
    usual misread)."""
    assert isinstance(event, PlateReadV1)
    if event.confidence is not None and event.confidence < ctx.params.min_confidence:
        return []
    alerts = []
    for hit in ctx.enrichment.get("history", {}).get("hotlist", []):
        reason = str(hit.get("reason", "other"))
        listed_as = listed_severity(hit)
        severity = capped(listed_as, event.confidence, ctx.params.verify_min_confidence)
        listed = str(hit.get("vrm", ""))
        place = ctx.enrichment.get("areas", {}).get("ward", {}).get("name", "outside force area")
        how = "read exactly" if hit["match"] == "exact" else f"read as {event.vrm} (likely misread)"
        image_url = getattr(event, "image_url", None)
        verification: dict[str, Any] = {
            "state": "pending",
            "read_vrm": event.vrm,
            "listed_vrm": listed,
            "match": "exact" if hit["match"] == "exact" else match_kind(event.vrm, listed),
            "camera_id": event.camera_id,
            "confidence": event.confidence,
        }
        if isinstance(image_url, str) and image_url:
            verification["image_url"] = image_url
        held_back = (
            f" Held at {severity.value} until verified: the read's confidence "
            + (
                f"{event.confidence:.2f} is below {ctx.params.verify_min_confidence:g}."
                if event.confidence is not None
                else "is not given."
            )
            if severity != listed_as
            else ""
        )
        alerts.append(
            make_alert(
                ctx,
                facts=(event.read_id, str(hit.get("id", listed))),
                group=(str(hit.get("id", listed)),),
                group_window_s=ctx.params.group_window_s,
                severity=severity,
                title=f"Check the plate: {listed} ({reason.replace('_', ' ')}) read as {event.vrm}",
                summary=(
                    f"{listed} ({reason.replace('_', ' ')}) {how} by camera {event.camera_id} "
                    f"in {place} at {event.read_at.astimezone(UTC):%H:%M:%S}Z"
                    + (f", heading {event.direction}" if event.direction else "")
                    + ". Verify the plate before acting."
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
                    "read_at": event.read_at.isoformat(),
                    "verification": verification,
                    "why": (
                        f"Plate {event.vrm} matches hotlist entry {listed} ({reason}); "
                        f"{'exact match' if hit['match'] == 'exact' else 'match allowing 0/O, 1/I, 5/S, 8/B misreads'}. "
                        "Check the read against the listed plate (Verify or Not a match): "
                        "only a verified hit goes to the units around it." + held_back
                    ),
                },
            )
        )
    return alerts


RULE = Rule(SPEC, anpr_hotlist_hit)


def rule(settings: Settings | None = None) -> Rule:
    """The rule with a deployment's ``verify_min_confidence`` (from settings)."""
    if settings is None:
        return RULE
    params = SPEC.params.model_copy(
        update={"verify_min_confidence": settings.anpr_verify_min_confidence}
    )
    return Rule(replace(SPEC, params=params), anpr_hotlist_hit)
