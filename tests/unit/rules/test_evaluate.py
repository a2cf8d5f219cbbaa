"""The rule engine isolates a failing rule and keeps ids stable."""

from __future__ import annotations

import logging

import pytest

from rtic.schemas import CallV1, EventKind, Severity
from rules.base import Rule, RuleSpec, RuleStats, evaluate, make_alert, stable_alert_id
from tests.conftest import NOW, make_call


def boom(event, ctx):  # type: ignore[no-untyped-def]
    raise RuntimeError("rule bug")


def always(event, ctx):  # type: ignore[no-untyped-def]
    return [
        make_alert(
            ctx,
            facts=("x",),
            title="t",
            summary="s",
            source_event_ids=["e"],
            location=None,
            details={},
        )
    ]


def spec(rule_id: str, enabled: bool = True) -> RuleSpec:
    return RuleSpec(
        rule_id, rule_id, "", frozenset({EventKind.CALL}), Severity.LOW, enabled=enabled
    )


def test_a_failing_rule_is_counted_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = RuleStats()
    rules = [
        Rule(spec("broken"), boom),
        Rule(spec("fine"), always),
        Rule(spec("off", enabled=False), always),
    ]
    with caplog.at_level(logging.ERROR):
        alerts = evaluate(rules, EventKind.CALL, CallV1.model_validate(make_call()), {}, NOW, stats)
    assert [a.rule_id for a in alerts] == ["fine"]
    assert stats.errors["broken"] == 1 and stats.fired["fine"] == 1 and "off" not in stats.evaluated
    assert "broken" in caplog.text


def test_rules_only_see_their_kinds() -> None:
    rules = [Rule(spec("fine"), always)]
    assert evaluate(rules, EventKind.ANPR, CallV1.model_validate(make_call()), {}, NOW) == []


def test_stable_ids() -> None:
    assert stable_alert_id("r", "a", "b") == stable_alert_id("r", "a", "b")
    assert stable_alert_id("r", "a", "b") != stable_alert_id("r", "ab")
    assert stable_alert_id("r", "a").startswith("r-")
