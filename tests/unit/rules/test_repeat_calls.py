"""Repeat calls: the third call from one address or caller in 28 days raises one alert."""

from __future__ import annotations

from typing import Any

import pytest

from rtic.schemas import CallV1, EventKind
from rtic.settings import Settings
from rules.base import evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_call

RULES = [r for r in default_rules() if r.spec.rule_id == "repeat_calls"]


def run(call: dict, history: dict) -> list:
    return evaluate(
        RULES,
        EventKind.CALL,
        CallV1.model_validate(call),
        {"history": history, "area_codes": ["E08000025"]},
        NOW,
    )


def test_third_call_from_an_address_fires_with_history() -> None:
    call = make_call()
    (alert,) = run(
        call, {"calls_at_address": {"count": 3, "recent": [call["call_id"], "C2", "C1"]}}
    )
    assert alert.rule_id == "repeat_calls"
    assert alert.details["matched_on"] == "address"
    assert alert.details["recent_call_ids"][0] == call["call_id"]
    assert "3 calls" in alert.details["why"]


def test_caller_counts_too_and_the_larger_count_is_reported() -> None:
    call = make_call()
    (alert,) = run(
        call,
        {
            "calls_at_address": {"count": 3, "recent": []},
            "calls_by_person": {"count": 5, "recent": []},
        },
    )
    assert alert.details["matched_on"] == "caller" and alert.details["count"] == 5


def test_two_calls_do_not_fire() -> None:
    assert (
        run(
            make_call(category="asb"),
            {
                "calls_at_address": {"count": 2, "recent": []},
                "calls_by_person": {"count": 1, "recent": []},
            },
        )
        == []
    )
    assert run(make_call(), {}) == []


def test_domestic_abuse_fires_on_the_second_call() -> None:
    two = {"calls_at_address": {"count": 2, "recent": []}}
    (alert,) = run(make_call(category="domestic_abuse"), two)
    assert "threshold 2" in alert.details["why"] and "the 2nd call" in alert.summary
    assert (
        run(make_call(category="domestic_abuse"), {"calls_at_address": {"count": 1, "recent": []}})
        == []
    )
    assert run(make_call(category="burglary"), two) == []


def test_a_redelivered_call_gives_the_same_alert_id() -> None:
    call = make_call()
    history = {"calls_at_address": {"count": 4, "recent": []}}
    assert run(call, history)[0].alert_id == run(call, history)[0].alert_id


def test_the_threshold_and_window_come_from_settings() -> None:
    rules = [
        r
        for r in default_rules(Settings(repeat_call_threshold=5, history_days=14))
        if r.spec.rule_id == "repeat_calls"
    ]
    call = CallV1.model_validate(make_call(category="burglary"))

    def enrichment(count: int) -> dict[str, Any]:
        return {"history": {"calls_at_address": {"count": count, "recent": []}}}

    assert evaluate(rules, EventKind.CALL, call, enrichment(4), NOW) == []
    (alert,) = evaluate(rules, EventKind.CALL, call, enrichment(5), NOW)
    assert "14 days" in alert.title and "threshold 5" in alert.details["why"]


def test_no_address_and_no_caller_means_nothing_to_match_on() -> None:
    call = make_call(location={"lat": 52.48, "lon": -1.89}, caller=None)
    history = {
        "calls_at_address": {"count": 9, "recent": []},
        "calls_by_person": {"count": 9, "recent": []},
    }
    assert run(call, history) == []


def test_the_alert_is_for_analysts_and_supervisors_at_the_call() -> None:
    call = make_call()
    (alert,) = run(call, {"calls_at_address": {"count": 3, "recent": []}})
    assert set(alert.audience.roles) == {"rtic_analyst", "supervisor"}
    assert alert.severity == "medium" and alert.source_event_ids == [call["call_id"]]
    assert alert.location is not None and alert.location.address == call["location"]["address"]
    assert alert.area == ["E08000025"]


def test_every_call_past_the_threshold_is_its_own_alert() -> None:
    history = {"calls_at_address": {"count": 3, "recent": []}}
    assert run(make_call(), history)[0].alert_id != run(make_call(), history)[0].alert_id


def test_the_address_case_does_not_change_the_alert_id() -> None:
    call = make_call()
    shouting = {
        **call,
        "location": {**call["location"], "address": call["location"]["address"].upper()},
    }
    history = {"calls_at_address": {"count": 3, "recent": []}}
    assert run(call, history)[0].alert_id == run(shouting, history)[0].alert_id


@pytest.mark.parametrize(("count", "ordinal"), [(3, "3rd"), (2, "2nd"), (21, "21st")])
def test_the_summary_uses_proper_ordinals(count: int, ordinal: str) -> None:
    rules = [
        r
        for r in default_rules(Settings(repeat_call_threshold=2))
        if r.spec.rule_id == "repeat_calls"
    ]
    call = CallV1.model_validate(make_call())
    enrichment = {"history": {"calls_at_address": {"count": count, "recent": []}}}
    (alert,) = evaluate(rules, EventKind.CALL, call, enrichment, NOW)
    assert f"the {ordinal} call" in alert.summary
