"""Repeat calls: the same address or person calling N or more times within the window."""

from __future__ import annotations

from pydantic import BaseModel

from rtic.schemas import AlertV1, CallV1
from rules.base import RuleContext, make_alert


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def repeat_calls(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
    """An alert when this call makes ``threshold`` or more from one address or caller."""
    assert isinstance(event, CallV1)
    threshold = int(ctx.params.get("threshold", 3))
    if event.category == "domestic_abuse":
        threshold = int(ctx.params.get("domestic_abuse_threshold", 2))
    days = int(ctx.params.get("window_days", 28))
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
                "why": (
                    f"{h['count']} calls from the same {label} within {days} days "
                    f"(threshold {threshold}). Consider repeat victim / location safeguarding."
                ),
            },
        )
    ]
