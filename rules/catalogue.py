"""The catalogue: every rule the engine knows, described by data, registered here only."""

from __future__ import annotations

from rtic.schemas import EventKind, Role, Severity
from rtic.settings import Settings
from rules.anpr_hotlist import anpr_hotlist_hit
from rules.base import Rule, RuleSpec
from rules.deadlines import response_promise, unacknowledged_critical
from rules.emerging_incident import emerging_incident
from rules.linked_vehicle import vehicle_linked_to_incident
from rules.missing_person import missing_person_match
from rules.near_repeat import near_repeat_burglary
from rules.officer_safety import officer_safety
from rules.repeat_calls import repeat_calls
from rules.vulnerable_place import vulnerable_place


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
                params={"min_confidence": 0.0, "group_window_s": 300.0},
            ),
            anpr_hotlist_hit,
        ),
        Rule(
            RuleSpec(
                rule_id="vehicle_linked_to_incident",
                title="Vehicle linked to an open incident",
                description="A vehicle of an open incident (suspect, victim, stolen...) read by ANPR "
                "within `window_minutes` of the incident: to its units and the RTIC.",
                kinds=frozenset({EventKind.ANPR}),
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
                params={"window_minutes": 120.0},
            ),
            vehicle_linked_to_incident,
        ),
        Rule(
            RuleSpec(
                rule_id="repeat_calls",
                title="Repeat calls",
                description="The same address or caller calls `threshold` or more times in `window_days`.",
                kinds=frozenset({EventKind.CALL}),
                severity=Severity.MEDIUM,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
                params={"threshold": threshold, "domestic_abuse_threshold": 2, "window_days": days},
            ),
            repeat_calls,
        ),
        Rule(
            RuleSpec(
                rule_id="officer_safety",
                title="Officer safety",
                description="An incident at an address, or with a person, that has a warning marker: "
                "to the assigned and nearest units before they arrive.",
                kinds=frozenset({EventKind.INCIDENT}),
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
            ),
            officer_safety,
        ),
        Rule(
            RuleSpec(
                rule_id="vulnerable_place",
                title="Vulnerable place",
                description="A violent or sexual offence, or a missing person, within `distance_m` of a "
                "school, care home or refuge.",
                kinds=frozenset({EventKind.CALL, EventKind.INCIDENT}),
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
                params={"distance_m": 200.0},
            ),
            vulnerable_place,
        ),
        Rule(
            RuleSpec(
                rule_id="near_repeat_burglary",
                title="Near-repeat burglary risk",
                description="After a burglary, homes within `radius_m` are at raised risk for `days`: "
                "a patrol priority for the neighbourhood team.",
                kinds=frozenset({EventKind.CALL, EventKind.INCIDENT}),
                severity=Severity.MEDIUM,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
                params={"radius_m": 400.0, "days": 14},
            ),
            near_repeat_burglary,
        ),
        Rule(
            RuleSpec(
                rule_id="missing_person",
                title="Missing person",
                description="A call from or about a person, or at an address, linked to an open "
                "missing-person report (marker `missing_person`).",
                kinds=frozenset({EventKind.CALL}),
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR, Role.OFFICER),
            ),
            missing_person_match,
        ),
        Rule(
            RuleSpec(
                rule_id="emerging_incident",
                title="Emerging incident",
                description="`min_calls` or more calls within `radius_m` within `window_minutes`: "
                "one alert that grows as calls join it.",
                kinds=frozenset({EventKind.CALL}),
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
                params={"min_calls": 4, "radius_m": 300.0, "window_minutes": 10.0},
            ),
            emerging_incident,
        ),
        Rule(
            RuleSpec(
                rule_id="response_promise",
                title="Response promise at risk",
                description="A grade 1 incident not assigned within `assign_within_s` or not "
                "attended within `attend_within_s`; a grade 2 not attended within "
                "`grade2_attend_within_s`. On a timer: the wall clock live, the event clock in replays.",
                kinds=frozenset(),
                tracks="incident",
                severity=Severity.HIGH,
                audience_roles=(Role.RTIC_ANALYST, Role.SUPERVISOR),
                params={
                    "assign_within_s": 120.0,
                    "attend_within_s": 900.0,
                    "grade2_attend_within_s": 3600.0,
                },
            ),
            response_promise,
        ),
        Rule(
            RuleSpec(
                rule_id="unacknowledged_critical",
                title="Unacknowledged critical alert",
                description="A critical alert that nobody acknowledges, assigns or dismisses "
                "within `ack_within_s` is escalated to the supervisors.",
                kinds=frozenset(),
                tracks="critical_alert",
                severity=Severity.CRITICAL,
                audience_roles=(Role.SUPERVISOR,),
                params={"ack_within_s": 60.0},
            ),
            unacknowledged_critical,
        ),
    ]
