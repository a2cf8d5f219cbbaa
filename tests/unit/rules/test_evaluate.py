"""The rule engine isolates a failing rule and keeps ids stable."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from rtic.schemas import AlertV1, CallV1, EventKind, Role, Severity
from rules.base import (
    Rule,
    RuleContext,
    RuleParams,
    RuleSpec,
    RuleStats,
    evaluate,
    evaluate_batch,
    make_alert,
    stable_alert_id,
)
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


class Threshold(RuleParams):
    threshold: int = 3


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


def only_for_officer_one(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
    return [
        make_alert(
            ctx,
            facts=("y",),
            title="t",
            summary="s",
            source_event_ids=["e"],
            location=None,
            details={"k": 1},
            severity=Severity.CRITICAL,
            officers=["OFF-1"],
        )
    ]


def test_a_failing_rule_is_not_counted_as_evaluated_and_errors_add_up() -> None:
    stats = RuleStats()
    rules = [Rule(spec("broken"), boom), Rule(spec("fine"), always)]
    call = CallV1.model_validate(make_call())
    for _ in range(3):
        assert [a.rule_id for a in evaluate(rules, EventKind.CALL, call, {}, NOW, stats)] == [
            "fine"
        ]
    assert stats.errors == {"broken": 3}
    assert stats.evaluated == {"fine": 3} and stats.fired == {"fine": 3}


def test_a_failing_rule_is_isolated_without_stats_too() -> None:
    rules = [Rule(spec("broken"), boom), Rule(spec("fine"), always), Rule(spec("broken2"), boom)]
    alerts = evaluate(rules, EventKind.CALL, CallV1.model_validate(make_call()), {}, NOW)
    assert [a.rule_id for a in alerts] == ["fine"]


def test_a_rule_that_returns_garbage_or_hits_bad_enrichment_is_isolated() -> None:
    def bad_enrichment(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
        return [ctx.enrichment["history"]["hotlist"][0]]  # KeyError on an empty enrichment

    stats = RuleStats()
    rules = [Rule(spec("nosy"), bad_enrichment), Rule(spec("fine"), always)]
    alerts = evaluate(rules, EventKind.CALL, CallV1.model_validate(make_call()), {}, NOW, stats)
    assert [a.rule_id for a in alerts] == ["fine"] and stats.errors["nosy"] == 1


def test_alerts_come_in_rule_order_and_a_rule_may_return_several() -> None:
    def twice(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
        return always(event, ctx) + only_for_officer_one(event, ctx)

    stats = RuleStats()
    rules = [Rule(spec("b"), twice), Rule(spec("a"), always)]
    alerts = evaluate(rules, EventKind.CALL, CallV1.model_validate(make_call()), {}, NOW, stats)
    assert [a.rule_id for a in alerts] == ["b", "b", "a"]
    assert stats.fired == {"b": 2, "a": 1}


def test_make_alert_fills_id_area_audience_and_rule_description() -> None:
    rule = Rule(
        RuleSpec(
            "r1",
            "R1",
            "",
            frozenset({EventKind.CALL}),
            Severity.LOW,
            audience_roles=(Role.OFFICER,),
            params=Threshold(threshold=2),
        ),
        only_for_officer_one,
    )
    enrichment = {"area_codes": ["E08000025", "E05001197"]}
    (alert,) = evaluate([rule], EventKind.CALL, CallV1.model_validate(make_call()), enrichment, NOW)
    assert alert.alert_id == stable_alert_id("r1", "y")
    assert alert.severity == "critical"  # the rule's own choice beats the spec's default
    assert alert.area == ["E08000025", "E05001197"] and alert.created_at == NOW
    assert alert.audience.roles == ["officer"] and alert.audience.officers == ["OFF-1"]
    assert alert.audience.areas == ["E08000025", "E05001197"]
    assert alert.details == {"k": 1, "rule": {"id": "r1", "params": {"threshold": 2}}}


FACT = st.text(max_size=12).filter(lambda s: "\x1f" not in s)


@given(st.text(min_size=1, max_size=12), st.lists(FACT, max_size=4))
def test_stable_ids_are_a_function_of_rule_and_facts(rule_id: str, facts: list[str]) -> None:
    first = stable_alert_id(rule_id, *facts)
    assert first == stable_alert_id(rule_id, *facts)
    assert first.startswith(f"{rule_id}-") and len(first) == len(rule_id) + 21


@given(st.lists(FACT, max_size=4), st.lists(FACT, max_size=4))
def test_different_facts_give_different_ids(a: list[str], b: list[str]) -> None:
    # Facts are joined with \x1f, so facts that contain \x1f themselves are left out
    # here: ("a\x1fb",) and ("a", "b") do share an id (see the report).
    if a != b:
        assert stable_alert_id("r", *a) != stable_alert_id("r", *b)


def test_facts_that_join_alike_still_get_different_ids() -> None:
    assert stable_alert_id("r", "a\x1fb") != stable_alert_id("r", "a", "b")


def test_a_batch_gives_what_each_event_gives_in_event_order_with_the_same_counts() -> None:
    def odd_calls(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
        if int(str(event.call_id)[-1]) % 2 == 0:  # type: ignore[attr-defined]
            return []
        return [
            make_alert(
                ctx,
                facts=(str(event.call_id),),  # type: ignore[attr-defined]
                title="odd",
                summary="s",
                source_event_ids=[str(event.call_id)],  # type: ignore[attr-defined]
                location=None,
                details={},
            )
        ]

    def flaky(event: BaseModel, ctx: RuleContext) -> list[AlertV1]:
        if str(event.call_id).endswith("3"):  # type: ignore[attr-defined]
            raise RuntimeError("rule bug")
        return always(event, ctx)

    rules = [
        Rule(spec("odd"), odd_calls),
        Rule(spec("off", enabled=False), always),
        Rule(spec("flaky"), flaky),
        Rule(spec("broken"), boom),
    ]
    calls = [CallV1.model_validate(make_call(call_id=f"c-{i}")) for i in range(6)]
    one_by_one, batch_stats = RuleStats(), RuleStats()
    expected = [a for c in calls for a in evaluate(rules, EventKind.CALL, c, {}, NOW, one_by_one)]
    got = evaluate_batch(rules, EventKind.CALL, ((c, {}) for c in calls), NOW, batch_stats)
    assert [a.alert_id for a in got] == [a.alert_id for a in expected]
    assert [a.rule_id for a in got][:3] == ["flaky", "odd", "flaky"]  # event by event
    assert batch_stats == one_by_one
    assert batch_stats.errors == {"flaky": 1, "broken": 6}
    assert batch_stats.evaluated == {"odd": 6, "flaky": 5}
    assert evaluate_batch(rules, EventKind.ANPR, ((c, {}) for c in calls), NOW) == []
