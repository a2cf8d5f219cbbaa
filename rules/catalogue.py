"""The catalogue: every rule the engine knows, registered here only.

Each rule module declares its rule whole (``Params``, the ``RuleSpec`` that
describes it, the function; exported as ``RULE``); this list says which rules
exist and the order they run in (the order of their alerts for one event).
"""

from __future__ import annotations

from rtic.settings import Settings
from rules import (
    anpr_hotlist,
    anpr_verified,
    deadlines,
    emerging_incident,
    linked_vehicle,
    missing_person,
    near_repeat,
    officer_safety,
    repeat_calls,
    vulnerable_place,
)
from rules.base import Rule


def default_rules(settings: Settings | None = None) -> list[Rule]:
    """The rules with their default parameters (``repeat_calls``, ``anpr_hotlist_hit`` and
    ``anpr_verified_hit`` take some from settings)."""
    return [
        anpr_hotlist.rule(settings),
        anpr_verified.rule(settings),
        linked_vehicle.RULE,
        repeat_calls.rule(settings),
        officer_safety.RULE,
        vulnerable_place.RULE,
        near_repeat.RULE,
        missing_person.RULE,
        emerging_incident.RULE,
        deadlines.RESPONSE_PROMISE_RULE,
        deadlines.UNACKNOWLEDGED_CRITICAL_RULE,
    ]
