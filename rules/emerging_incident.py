"""Emerging incident: calls from K or more distinct callers or addresses within R metres
within T minutes.

A burst of calls about one thing (a fight outside a club, a fire, a crash)
reaches several call handlers at once; nobody sees that it is one incident
until the RTIC does. The rule declares the search it needs
(``RecentCallsNearby``, from its ``radius_m`` and ``window_minutes``); the
stream asks the configured rule set for it, and the history enricher's call
index, in the worker's memory, lists for each call of a batch the other calls
within that radius in that window (``recent_calls_nearby``) before the rules
run, with how many distinct callers or addresses made them (``sources``: calls that
share a caller or an address count once, so one address calling five times is not
an emerging incident; that is ``repeat_calls``). When this call makes ``min_calls``
distinct sources, the rule raises one alert
for the cluster, and every further call that joins it updates that alert (same
id, a higher version, the calls counted) instead of raising another: the
cluster is named by its first call, and stays open while calls keep joining
within the window. ``details.situation`` (``rules/situation.py``) is the text a
``repeat_calls`` alert of the same place and hour carries too.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import Field

from rtic.schemas import AlertV1, CallV1, EventKind, Role, Severity
from rules.base import RecentCallsNearby, Rule, RuleContext, RuleParams, RuleSpec, make_alert
from rules.situation import situation


class Params(RuleParams):
    """What an analyst tunes for emerging incidents."""

    min_calls: int = Field(
        4,
        ge=2,
        le=50,
        description="Distinct callers or addresses (calls sharing either count once), the "
        "latest call's included, that make an emerging incident.",
    )
    radius_m: float = Field(
        300.0,
        ge=25,
        le=2000,
        description="How close, in metres, the others are to the latest call.",
    )
    window_minutes: float = Field(
        10.0, ge=1, le=240, description="How recent, in minutes before the latest call, they are."
    )


def needs(params: Params) -> RecentCallsNearby:
    """The recent-call search this rule reads, as its parameters say."""
    return RecentCallsNearby(radius_m=params.radius_m, window_s=params.window_minutes * 60)


SPEC = RuleSpec(
    rule_id="emerging_incident",
    title="Emerging incident",
    description="Calls from `min_calls` or more distinct callers or addresses within "
    "`radius_m` within `window_minutes`: one alert that grows as calls join it.",
    kinds=frozenset({EventKind.CALL}),
    severity=Severity.HIGH,
    audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
    params=Params(),
    needs=needs,
)


def emerging_incident(event: Any, ctx: RuleContext[Params]) -> list[AlertV1]:
    """One alert for the cluster this call completes or joins (same id while it grows)."""
    assert isinstance(event, CallV1)
    k, radius, minutes = ctx.params.min_calls, ctx.params.radius_m, ctx.params.window_minutes
    nearby = ctx.enrichment.get("history", {}).get("recent_calls_nearby")
    if not nearby:
        return []
    count = nearby["count"] + 1
    # An enrichment from before distinct sources were counted: every call its own.
    sources = int(nearby.get("sources", count))
    if sources < k:
        return []
    others = nearby["calls"]
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
            title=(
                f"Emerging incident: {count} calls from {sources} callers or addresses "
                f"within {radius:g} m in {minutes:g} min"
            ),
            summary=f"{count} calls near {place} since {first['at'][11:19]}Z: {what}.",
            source_event_ids=[c["id"] for c in others] + [event.call_id],
            location=event.location,
            details={
                "calls": count,
                "sources": sources,
                "situation": situation(event.location, ctx.enrichment, event.received_at),
                "first_call_id": first["id"],
                "by_category": dict(categories),
                "call_ids": [c["id"] for c in others] + [event.call_id],
                "why": (
                    f"{count} calls from {sources} distinct callers or addresses within "
                    f"{radius:g} m of the latest within {minutes:g} minutes (threshold {k}): "
                    "likely one incident being reported by several callers. Consider one "
                    "incident and one response."
                ),
            },
        )
    ]


RULE = Rule(SPEC, emerging_incident)
