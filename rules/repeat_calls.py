"""Repeat calls: the same address or person calling N or more times within the window."""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, Field

from rtic.schemas import AlertV1, CallV1, EventKind, Role, Severity
from rtic.settings import Settings
from rules.base import Rule, RuleContext, RuleParams, RuleSpec, fixed, make_alert
from rules.situation import situation


class Params(RuleParams):
    """What an analyst tunes for repeat calls; the window is the history kept."""

    threshold: int = Field(
        3,
        ge=2,
        le=50,
        description="Calls from one address or caller within the window that raise an alert "
        "(default: RTIC_REPEAT_CALL_THRESHOLD).",
    )
    domestic_abuse_threshold: int = Field(
        2, ge=2, le=50, description="The same for a domestic abuse call."
    )
    window_days: int = fixed(
        28, "Days of call history counted: the history kept (RTIC_HISTORY_DAYS).", ge=1
    )


SPEC = RuleSpec(
    rule_id="repeat_calls",
    title="Repeat calls",
    description="The same address or caller calls `threshold` or more times in `window_days`.",
    kinds=frozenset({EventKind.CALL}),
    severity=Severity.MEDIUM,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
    params=Params(),
)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def repeat_calls(event: BaseModel, ctx: RuleContext[Params]) -> list[AlertV1]:
    """An alert when this call makes ``threshold`` or more from one address or caller."""
    assert isinstance(event, CallV1)
    threshold = ctx.params.threshold
    if event.category == "domestic_abuse":
        threshold = ctx.params.domestic_abuse_threshold
    days = ctx.params.window_days
    history = ctx.enrichment.get("history", {})
    found = []
    for field, label, who in (
        ("calls_at_address", "address", event.location.address),
        ("calls_by_person", "caller", event.caller.person_id if event.caller else None),
    ):
        h = history.get(field)
        if who and h and h["count"] >= threshold:
            found.append((label, who, h))
    if not found:
        return []
    label, who, h = max(found, key=lambda f: f[2]["count"])
    return [
        make_alert(
            ctx,
            facts=(label, who.upper(), event.call_id),
            # Further calls from the same address or caller within the window update this
            # alert (a new version with the new count) instead of raising another.
            group=(label, who.upper()),
            group_window_s=days * 86_400.0,
            group_label=None,
            title=f"Repeat calls: {h['count']} from the same {label} in {days} days",
            summary=(
                f"{event.category.replace('_', ' ')} call {event.call_id}: the {ordinal(h['count'])} call "
                f"in {days} days from {'this address' if label == 'address' else 'this caller'}"
                + (f" ({event.location.address})" if event.location.address else "")
            ),
            source_event_ids=[event.call_id],
            location=event.location,
            details={
                "matched_on": label,
                "key": who,
                "count": h["count"],
                "recent_call_ids": h["recent"],
                # The same text as an emerging incident's of this place and hour.
                "situation": situation(event.location, ctx.enrichment, event.received_at),
                "why": (
                    f"{h['count']} calls from the same {label} within {days} days "
                    f"(threshold {threshold}). Consider repeat victim / location safeguarding."
                ),
            },
        )
    ]


RULE = Rule(SPEC, repeat_calls)


def rule(settings: Settings | None = None) -> Rule:
    """The rule with a deployment's defaults: ``threshold`` and ``window_days`` from settings."""
    if settings is None:
        return RULE
    # Not validated again: the settings check their own values, and a rule file that
    # changes the threshold is checked against the bounds above.
    params = SPEC.params.model_copy(
        update={"threshold": settings.repeat_call_threshold, "window_days": settings.history_days}
    )
    return Rule(replace(SPEC, params=params), repeat_calls)
