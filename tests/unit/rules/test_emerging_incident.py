"""Emerging incident: K calls within R metres within T minutes raise one alert that grows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rtic.schemas import CallV1, EventKind
from rules.base import evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_call


def run(call: CallV1, others: list[dict[str, Any]]) -> list:
    rules = [r for r in default_rules() if r.spec.rule_id == "emerging_incident"]
    nearby = {"radius_m": 300.0, "window_minutes": 10.0, "count": len(others), "calls": others}
    enrichment = {"area_codes": ["E08000025"], "history": {"recent_calls_nearby": nearby}}
    return evaluate(rules, EventKind.CALL, call, enrichment, NOW)


def other(i: int, category: str = "assault") -> dict[str, Any]:
    return {
        "id": f"C-{i}",
        "category": category,
        "at": (NOW - timedelta(minutes=9 - i)).isoformat(),
    }


def call(ident: str = "C-9") -> CallV1:
    return CallV1.model_validate(make_call(call_id=ident, category="assault"))


def test_fires_on_the_fourth_call_and_not_before() -> None:
    assert run(call(), [other(0), other(1)]) == []
    (alert,) = run(call(), [other(0), other(1), other(2, "asb")])
    assert alert.rule_id == "emerging_incident" and alert.severity == "high"
    assert alert.source_event_ids == ["C-0", "C-1", "C-2", "C-9"]
    assert alert.details["calls"] == 4 and alert.details["by_category"] == {"assault": 3, "asb": 1}
    assert "4 calls within 300 m" in alert.title
    assert "threshold 4" in alert.details["why"] and "one incident" in alert.details["why"]


def test_calls_joining_the_cluster_share_its_id_and_group() -> None:
    first = run(call("C-3"), [other(0), other(1), other(2)])[0]
    later = run(call("C-4"), [other(0), other(1), other(2), other(3)])[0]
    assert later.alert_id == first.alert_id and later.group == first.group
    assert later.details["group"] == {"window_s": 600.0, "label": None}
    assert later.details["calls"] == 5


def test_the_history_enricher_is_what_counts() -> None:
    # No nearby block (Redis down, or the rule's search off): nothing fires.
    rules = [r for r in default_rules() if r.spec.rule_id == "emerging_incident"]
    assert evaluate(rules, EventKind.CALL, call(), {"area_codes": []}, NOW) == []
