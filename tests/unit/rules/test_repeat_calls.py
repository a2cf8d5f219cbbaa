"""Repeat calls: the third call from one address or caller in 28 days raises one alert."""

from __future__ import annotations

from rtic.schemas import CallV1, EventKind
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
            make_call(),
            {
                "calls_at_address": {"count": 2, "recent": []},
                "calls_by_person": {"count": 1, "recent": []},
            },
        )
        == []
    )
    assert run(make_call(), {}) == []


def test_a_redelivered_call_gives_the_same_alert_id() -> None:
    call = make_call()
    history = {"calls_at_address": {"count": 4, "recent": []}}
    assert run(call, history)[0].alert_id == run(call, history)[0].alert_id
