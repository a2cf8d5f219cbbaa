"""The catalogue: every rule the engine knows, described by data, registered here only."""

from __future__ import annotations

from rtic.schemas import EventKind, Role, Severity
from rtic.settings import Settings
from rules.anpr_hotlist import anpr_hotlist_hit
from rules.base import Rule, RuleSpec
from rules.repeat_calls import repeat_calls


def default_rules(settings: Settings | None = None) -> list[Rule]:
    """The rules with their default parameters (some taken from settings)."""
    threshold = settings.repeat_call_threshold if settings else 3
    days = settings.history_days if settings else 28
    return [
        Rule(
            RuleSpec(
                rule_id="anpr_hotlist_hit",
                title="ANPR hotlist hit",
                description="A plate read matches a live hotlist entry, tolerating 0/O, 1/I, 5/S, 8/B misreads.",
                kinds=frozenset({EventKind.ANPR}),
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
                params={"min_confidence": 0.0},
            ),
            anpr_hotlist_hit,
        ),
        Rule(
            RuleSpec(
                rule_id="repeat_calls",
                title="Repeat calls",
                description="The same address or caller calls `threshold` or more times in `window_days`.",
                kinds=frozenset({EventKind.CALL}),
                severity=Severity.MEDIUM,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
                params={"threshold": threshold, "window_days": days},
            ),
            repeat_calls,
        ),
    ]
