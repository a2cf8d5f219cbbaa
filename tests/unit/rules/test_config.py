"""Rule files: configured by data, every problem reported with its line, last good set kept."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from enrichers.geo import GeoIndex
from rtic.errors import ConfigError
from rtic.settings import PROJECT_ROOT
from rtic.topics import Topics
from rules import anpr_hotlist, repeat_calls
from rules.catalogue import default_rules
from rules.config import RuleFileError, describe, load_rule_file
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import make_call, make_read


def test_the_shipped_default_file_is_valid_and_changes_nothing() -> None:
    rules = load_rule_file((PROJECT_ROOT / "rules" / "default.yaml").read_text(), default_rules())
    assert [r.spec for r in rules] == [r.spec for r in default_rules()]


def test_a_file_configures_severity_audience_params_and_enabled() -> None:
    text = """rules:
  anpr_hotlist_hit:
    severity: critical
    audience: {roles: [rtic_analyst]}
    params: {min_confidence: 0.7}
  repeat_calls:
    enabled: false
"""
    by_id = {r.spec.rule_id: r for r in load_rule_file(text, default_rules())}
    hot, repeat = by_id["anpr_hotlist_hit"], by_id["repeat_calls"]
    assert hot.spec.severity == "critical" and [r.value for r in hot.spec.audience_roles] == [
        "rtic_analyst"
    ]
    assert isinstance(hot.spec.params, anpr_hotlist.Params)
    assert isinstance(repeat.spec.params, repeat_calls.Params)
    assert hot.spec.params.min_confidence == 0.7
    assert repeat.spec.enabled is False and repeat.spec.params.threshold == 3
    assert "repeat_calls [off]" in describe([hot, repeat])


def test_every_problem_is_reported_with_its_line() -> None:
    text = """rules:
  anpr_hotlist_hit:
    severity: urgent
    colour: red
    params:
      min_confidence: 2
  repeat_calls:
    enabled: sometimes
    params:
      threshold: 1
      window_days: 7
  not_a_rule: {}
"""
    with pytest.raises(RuleFileError) as err:
        load_rule_file(text, default_rules(), "deploy.yaml")
    lines = [line for line, _ in err.value.problems]
    assert lines == [3, 4, 6, 8, 10, 11, 12]
    message = str(err.value)
    assert (
        "deploy.yaml line 6: anpr_hotlist_hit.params.min_confidence: must be at most 1" in message
    )
    assert "line 11: repeat_calls.params.window_days: not a tunable parameter" in message
    assert "unknown rule 'not_a_rule'" in message


@pytest.mark.parametrize("text", ["rules: [\n", "- a\n- b\n", "rules: 7\n", "other: {}\n"])
def test_files_of_the_wrong_shape_are_refused(text: str) -> None:
    with pytest.raises(RuleFileError):
        load_rule_file(text, default_rules())


def test_an_empty_file_means_the_defaults() -> None:
    assert [r.spec for r in load_rule_file("", default_rules())] == [
        r.spec for r in default_rules()
    ]


async def test_the_pipeline_reloads_a_changed_file_and_keeps_the_last_good_set(
    geo: GeoIndex, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  repeat_calls:\n    params: {threshold: 4}\n")
    topics = Topics.with_prefix("cfg.")
    pipeline = Pipeline(topics, geo, None, default_rules(), rules_file=path)
    assert {r.spec.rule_id: r.spec.params for r in pipeline.rules}["repeat_calls"] == (
        repeat_calls.Params(threshold=4)
    )
    path.write_text("rules:\n  repeat_calls:\n    enabled: false\n")
    os.utime(path, (1, 1))  # a different mtime, however fast the test runs
    pipeline._layers_checked = None
    await pipeline.process([RawRecord(topics.calls, 0, 0, b"k", orjson.dumps(make_call()))])
    assert {r.spec.rule_id: r.spec.enabled for r in pipeline.rules}["repeat_calls"] is False
    path.write_text("rules:\n  repeat_calls:\n    params: {threshold: zero}\n")
    os.utime(path, (2, 2))
    pipeline._layers_checked = None
    out = await pipeline.process([RawRecord(topics.anpr, 0, 1, b"k", orjson.dumps(make_read()))])
    assert out.messages  # the stream goes on
    assert {r.spec.rule_id: r.spec.enabled for r in pipeline.rules}[
        "repeat_calls"
    ] is False  # last good


def test_a_bad_file_stops_a_worker_at_start(geo: GeoIndex, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  nope: {}\n")
    with pytest.raises(ConfigError, match="line 2"):
        Pipeline(Topics.with_prefix("cfg."), geo, None, default_rules(), rules_file=path)


def test_audience_areas_and_officers_near_the_event() -> None:
    from rtic.schemas import CallV1, EventKind
    from rules.base import evaluate
    from tests.conftest import NOW

    text = """rules:
  vulnerable_place:
    audience:
      roles: [rtic_analyst]
      areas: [E05099999]
      officers_within_m: 800
"""
    rules = load_rule_file(text, default_rules())
    vp = next(r for r in rules if r.spec.rule_id == "vulnerable_place")
    assert vp.spec.audience_areas == ("E05099999",) and vp.spec.audience_within_m == 800
    assert "areas E05099999; officers within 800 m" in describe([vp])
    call = CallV1.model_validate(make_call(category="assault"))
    enrichment = {
        "area_codes": ["E08000025"],
        "nearby_places": {"school": {"name": "A School", "distance_m": 50, "id": "S1"}},
        "nearest_units": [
            {"officer_id": "OFF-NEAR", "distance_m": 400},
            {"officer_id": "OFF-FAR", "distance_m": 2500},
        ],
    }
    (alert,) = evaluate([vp], EventKind.CALL, call, enrichment, NOW)
    assert alert.audience.areas == ["E08000025", "E05099999"]
    assert alert.audience.officers == ["OFF-NEAR"]


def test_bad_audiences_are_reported_with_their_lines() -> None:
    text = """rules:
  vulnerable_place:
    audience:
      roles: [chief]
      areas: [42]
      officers_within_m: -5
      teams: [x]
"""
    with pytest.raises(RuleFileError) as err:
        load_rule_file(text, default_rules(), "deploy.yaml")
    lines = {line for line, _ in err.value.problems}
    text_ = str(err.value)
    assert lines == {4, 5, 6, 7}
    assert "roles: a list, each one of" in text_ and "areas: a list of area codes" in text_
    assert "officers_within_m: must be at least 0" in text_ and "unknown key 'teams'" in text_


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(RuleFileError) as err:
        load_rule_file(text, default_rules(), "deploy.yaml")
    assert str(err.value).startswith("deploy.yaml line ")
    return err.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  nope: {}\n", (2, "unknown rule 'nope'; the catalogue has anpr_hotlist_hit")),
        (
            "rules:\n  near_repeat_burglary:\n    params:\n      days: 7\n      radius: 100\n",
            (
                5,
                "near_repeat_burglary.params.radius: not a tunable parameter; tunable: days, radius_m",
            ),
        ),
        (
            "rules:\n  repeat_calls:\n    params: {window_days: 7}\n",
            (3, "repeat_calls.params.window_days: not a tunable parameter (window_days is set"),
        ),
        (
            "rules:\n  officer_safety:\n    params: {radius_m: 7}\n",
            (3, "officer_safety.params.radius_m: not a tunable parameter; tunable: none"),
        ),
        (
            "rules:\n  emerging_incident:\n\n    params:\n      min_calls: 3.5\n",
            (5, "emerging_incident.params.min_calls: must be an integer"),
        ),
        (
            "rules:\n  emerging_incident:\n    params:\n      radius_m: '300'\n",
            (4, "emerging_incident.params.radius_m: must be a number"),
        ),
        (
            "rules:\n  emerging_incident:\n    params:\n      radius_m: true\n",
            (4, "emerging_incident.params.radius_m: must be a number"),
        ),
        (
            "rules:\n  near_repeat_burglary:\n    params: {days: 0}\n",
            (3, "near_repeat_burglary.params.days: must be at least 1"),
        ),
        (
            "rules:\n  response_promise:\n    params:\n      attend_within_s: 7201\n",
            (4, "response_promise.params.attend_within_s: must be at most 7200"),
        ),
        (
            "rules:\n  vulnerable_place:\n    params: [distance_m]\n",
            (3, "vulnerable_place.params: must be a mapping"),
        ),
        ("rules:\n  vulnerable_place: 7\n", (2, "vulnerable_place: settings must be a mapping")),
        (
            "rules:\n  repeat_calls:\n    enabled:\n",
            (3, "repeat_calls.enabled: must be true or false"),
        ),
        (
            "rules:\n  repeat_calls:\n    enabled: 'yes'\n",
            (3, "repeat_calls.enabled: must be true or false"),
        ),
        (
            "rules:\n  repeat_calls:\n    audience: {}\n",
            (3, "repeat_calls.audience: give any of roles, areas, officers_within_m"),
        ),
        (
            "rules:\n  repeat_calls:\n    audience:\n      roles:\n        - officer\n        - chief\n",
            (5, "repeat_calls.audience.roles: a list, each one of rtic_analyst, officer"),
        ),
        (
            "rules:\n  repeat_calls:\n    audience: {officers_within_m: 20001}\n",
            (3, "repeat_calls.audience.officers_within_m: must be at most 20000"),
        ),
    ],
)
def test_each_kind_of_problem_is_told_at_its_line(text: str, expected: tuple[int, str]) -> None:
    ((line, why),) = problems(text)
    assert line == expected[0] and why.startswith(expected[1]), why


def test_a_file_sets_only_the_parameters_it_names() -> None:
    from rtic.settings import Settings

    text = "rules:\n  repeat_calls:\n    params: {domestic_abuse_threshold: 3}\n"
    catalogue = default_rules(Settings(repeat_call_threshold=6, history_days=10))
    by_id = {r.spec.rule_id: r for r in load_rule_file(text, catalogue)}
    assert by_id["repeat_calls"].spec.params == repeat_calls.Params(
        threshold=6, domestic_abuse_threshold=3, window_days=10
    )
    emerging = load_rule_file(
        "rules:\n  emerging_incident:\n    params: {radius_m: 450}\n", catalogue
    )
    (spec,) = [r.spec for r in emerging if r.spec.rule_id == "emerging_incident"]
    assert spec.params.model_dump() == {"min_calls": 4, "radius_m": 450.0, "window_minutes": 10.0}


def test_the_catalogue_reads_with_each_parameter_its_range_and_meaning() -> None:
    text = "rules:\n  repeat_calls:\n    params: {threshold: 5}\n"
    listing = describe(load_rule_file(text, default_rules()))
    assert (
        "    params:\n      threshold = 5 (2 to 50; default 3): Calls from one address" in listing
    )
    assert "      window_days = 28 (fixed by settings; at least 1): Days of call history" in listing
    assert "      min_confidence = 0.0 (0 to 1): Reads below this ANPR confidence" in listing
    assert "officer_safety [on] high, for rtic_analyst, supervisor\n" in listing
    assert "before they arrive.\n    params: none\n" in listing


async def test_the_search_the_stream_asks_for_follows_a_reloaded_file(
    geo: GeoIndex, tmp_path: Path
) -> None:
    from rules.base import RecentCallsNearby, recent_calls_search

    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  emerging_incident:\n    params: {radius_m: 500}\n")
    topics = Topics.with_prefix("cfg.")
    pipeline = Pipeline(topics, geo, None, default_rules(), rules_file=path)
    assert recent_calls_search(pipeline.rules) == RecentCallsNearby(radius_m=500.0, window_s=600.0)
    path.write_text("rules:\n  emerging_incident:\n    enabled: false\n")
    os.utime(path, (1, 1))
    pipeline._layers_checked = None
    await pipeline.process([RawRecord(topics.calls, 0, 0, b"k", orjson.dumps(make_call()))])
    assert recent_calls_search(pipeline.rules) is None
