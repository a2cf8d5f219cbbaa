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
    assert hot.spec.params["min_confidence"] == 0.7
    assert repeat.spec.enabled is False and repeat.spec.params["threshold"] == 3
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
    assert {r.spec.rule_id: r.spec.params.get("threshold") for r in pipeline.rules}[
        "repeat_calls"
    ] == 4
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
