"""Emerging incident: K or more calls within R metres within T minutes.

A burst of calls about one thing (a fight outside a club, a fire, a crash)
reaches several call handlers at once; nobody sees that it is one incident
until the RTIC does. The history enricher lists, for each call, the other
calls within ``radius_m`` in the last ``window_minutes`` (one Redis script
for the batch). When this call makes ``min_calls``, the rule raises one alert
for the cluster, and every further call that joins it updates that alert (same
id, a higher version, the calls counted) instead of raising another: the
cluster is named by its first call, and stays open while calls keep joining
within the window.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rtic.schemas import AlertV1, CallV1
from rules.base import RuleContext, make_alert


def emerging_incident(event: Any, ctx: RuleContext) -> list[AlertV1]:
    assert isinstance(event, CallV1)
    k = int(ctx.params["min_calls"])
    radius = float(ctx.params["radius_m"])
    minutes = float(ctx.params["window_minutes"])
    nearby = ctx.enrichment.get("history", {}).get("recent_calls_nearby")
    if not nearby or nearby["count"] + 1 < k:
        return []
    others = nearby["calls"]
    count = nearby["count"] + 1
    first = others[0] if others else {"id": event.call_id, "at": event.received_at.isoformat()}
    categories = Counter([c["category"] for c in others] + [event.category])
    what = ", ".join(
        f"{n} {c.replace('_', ' ')}" for c, n in categories.most_common()
    )  # "3 assault, 1 asb"
    place = event.location.address or f"{event.location.lat:.4f}, {event.location.lon:.4f}"
    return [
        make_alert(
            ctx,
            facts=(first["id"],),
            group=(first["id"],),
            group_window_s=minutes * 60,
            group_label=None,  # the title counts the calls
            title=f"Emerging incident: {count} calls within {radius:g} m in {minutes:g} min",
            summary=f"{count} calls near {place} since {first['at'][11:19]}Z: {what}.",
            source_event_ids=[c["id"] for c in others] + [event.call_id],
            location=event.location,
            details={
                "calls": count,
                "first_call_id": first["id"],
                "by_category": dict(categories),
                "call_ids": [c["id"] for c in others] + [event.call_id],
                "why": (
                    f"{count} calls within {radius:g} m of each other's latest within "
                    f"{minutes:g} minutes (threshold {k}): likely one incident being reported by "
                    "several callers. Consider one incident and one response."
                ),
            },
        )
    ]
