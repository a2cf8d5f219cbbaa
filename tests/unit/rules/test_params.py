"""Each rule's parameters: a pydantic model with the defaults, bounds and descriptions an
analyst tunes, strict about types, frozen; and the enrichment a rule declares it needs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from rtic.errors import ConfigError, RuleError
from rtic.schemas import EventKind, Severity
from rtic.settings import Settings
from rules import emerging_incident, repeat_calls
from rules.base import RecentCallsNearby, Rule, RuleParams, RuleSpec, recent_calls_search
from rules.catalogue import default_rules
from rules.config import RuleFileError, load_rule_file

# Every parameter of the catalogue: (rule, name, default, lowest, highest, tunable).
PARAMS = [
    ("anpr_hotlist_hit", "min_confidence", 0.0, 0.0, 1.0, True),
    ("anpr_hotlist_hit", "group_window_s", 300.0, 0, 86_400, True),
    ("anpr_hotlist_hit", "verify_min_confidence", 0.6, 0.0, 1.0, False),
    ("anpr_verified_hit", "radius_m", 3000.0, 1, 50_000, False),
    ("anpr_verified_hit", "fix_max_age_s", 1800.0, 60, 86_400, True),
    ("vehicle_linked_to_incident", "window_minutes", 120.0, 5, 24 * 60, True),
    ("repeat_calls", "threshold", 3, 2, 50, True),
    ("repeat_calls", "domestic_abuse_threshold", 2, 2, 50, True),
    ("repeat_calls", "window_days", 28, 1, None, False),
    ("vulnerable_place", "distance_m", 200.0, 10, 2000, True),
    ("near_repeat_burglary", "radius_m", 400.0, 50, 2000, True),
    ("near_repeat_burglary", "days", 14, 1, 60, True),
    ("emerging_incident", "min_calls", 4, 2, 50, True),
    ("emerging_incident", "radius_m", 300.0, 25, 2000, True),
    ("emerging_incident", "window_minutes", 10.0, 1, 240, True),
    ("response_promise", "assign_within_s", 120.0, 10, 3600, True),
    ("response_promise", "attend_within_s", 900.0, 60, 7200, True),
    ("response_promise", "grade2_attend_within_s", 3600.0, 300, 86_400, True),
    ("unacknowledged_critical", "ack_within_s", 60.0, 5, 3600, True),
]
BY_ID = {r.spec.rule_id: r for r in default_rules()}


def model(rule_id: str) -> type[RuleParams]:
    return type(BY_ID[rule_id].spec.params)


def test_the_catalogue_has_exactly_these_parameters() -> None:
    declared = {
        (rule_id, name) for rule_id, r in BY_ID.items() for name in type(r.spec.params).model_fields
    }
    assert declared == {(rule_id, name) for rule_id, name, *_ in PARAMS}


@pytest.mark.parametrize(("rule_id", "name", "default", "low", "high", "tunable"), PARAMS)
def test_each_parameter_has_its_default_bounds_and_a_description(
    rule_id: str, name: str, default: float, low: float, high: float | None, tunable: bool
) -> None:
    params = BY_ID[rule_id].spec.params
    assert getattr(params, name) == default and type(getattr(params, name)) is type(default)
    field = model(rule_id).model_json_schema()["properties"][name]
    assert len(field["description"]) > 20
    assert (name in model(rule_id).tunable()) is tunable
    assert model(rule_id).model_validate({name: low}).model_dump()[name] == low
    with pytest.raises(ValidationError, match="greater than or equal"):
        model(rule_id).model_validate({name: low - 1})
    if high is not None:
        assert model(rule_id).model_validate({name: high}).model_dump()[name] == high
        with pytest.raises(ValidationError, match="less than or equal"):
            model(rule_id).model_validate({name: high + 1})


def test_parameters_are_strict_about_types_frozen_and_closed() -> None:
    params = emerging_incident.Params
    assert params.model_validate({"radius_m": 250}).radius_m == 250.0  # an integer is a number
    for bad in ({"radius_m": "250"}, {"radius_m": True}, {"min_calls": 3.0}, {"min_calls": "3"}):
        with pytest.raises(ValidationError):
            params.model_validate(bad)
    with pytest.raises(ValidationError, match="Extra inputs"):
        params.model_validate({"radius": 250})
    with pytest.raises(ValidationError, match="frozen"):
        params().radius_m = 1  # type: ignore[misc]


def test_rules_without_parameters_say_so() -> None:
    assert model("officer_safety").model_fields == {}
    assert model("missing_person").model_fields == {}


def test_repeat_calls_takes_its_defaults_from_settings() -> None:
    rule = repeat_calls.rule(Settings(repeat_call_threshold=5, history_days=14))
    assert rule.spec.params == repeat_calls.Params(threshold=5, window_days=14)
    assert repeat_calls.rule(None) is repeat_calls.RULE


def test_only_the_emerging_incident_rule_needs_more_enrichment() -> None:
    needing = {r.spec.rule_id: r.spec.enrichment_needed() for r in default_rules()}
    assert {k: v for k, v in needing.items() if v} == {
        "emerging_incident": RecentCallsNearby(radius_m=300.0, window_s=600.0)
    }
    assert recent_calls_search(default_rules()) == RecentCallsNearby(300.0, 600.0)


def test_the_search_follows_the_rule_file() -> None:
    off = load_rule_file("rules:\n  emerging_incident: {enabled: false}\n", default_rules())
    assert recent_calls_search(off) is None
    wider = load_rule_file(
        "rules:\n  emerging_incident:\n    params: {radius_m: 500, window_minutes: 15}\n",
        default_rules(),
    )
    assert recent_calls_search(wider) == RecentCallsNearby(radius_m=500.0, window_s=900.0)
    assert recent_calls_search([]) is None


def twin(rule_id: str, radius_m: float) -> Rule:
    """Another rule needing the recent-call search, with its own radius."""
    spec = RuleSpec(
        rule_id,
        rule_id,
        "",
        frozenset({EventKind.CALL}),
        Severity.LOW,
        params=emerging_incident.Params(radius_m=radius_m),
        needs=emerging_incident.needs,
    )
    return Rule(spec, emerging_incident.emerging_incident)


def test_rules_needing_different_searches_cannot_run_together() -> None:
    same = [emerging_incident.RULE, twin("twin", 300.0)]
    assert recent_calls_search(same) == RecentCallsNearby(300.0, 600.0)
    clash = [emerging_incident.RULE, twin("twin", 800.0)]
    with pytest.raises(
        RuleError, match=r"emerging_incident within 300 m .*; twin within 800 m"
    ) as err:
        recent_calls_search(clash)
    assert isinstance(err.value, ConfigError)
    with pytest.raises(RuleFileError, match="line 2: rules need different recent-call searches"):
        load_rule_file("rules:\n  twin: {}\n", clash)
    # Turning one off in the file makes the set usable again.
    (_, kept) = load_rule_file("rules:\n  twin: {enabled: false}\n", clash)
    assert recent_calls_search([emerging_incident.RULE, kept]) == RecentCallsNearby(300.0, 600.0)
    assert replace(kept.spec, enabled=True).enrichment_needed() == RecentCallsNearby(800.0, 600.0)
