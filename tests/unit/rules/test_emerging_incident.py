"""Emerging incident: calls from K distinct callers or addresses within R metres within
T minutes raise one alert that grows; one address calling again and again does not."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from rtic.schemas import CallV1, EventKind
from rules.base import evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_call

AREAS = {
    "district": {"code": "E08000025", "name": "Birmingham"},
    "ward": {"code": "E05011151", "name": "Ladywood"},
    "lsoa": {"code": "E01033620", "name": "Birmingham 138A"},
}


def run(call: CallV1, others: list[dict[str, Any]], sources: int | None = None) -> list:
    rules = [r for r in default_rules() if r.spec.rule_id == "emerging_incident"]
    nearby = {
        "radius_m": 300.0,
        "window_minutes": 10.0,
        "count": len(others),
        "sources": len(others) + 1 if sources is None else sources,
        "calls": others,
    }
    enrichment = {
        "areas": AREAS,
        "area_codes": ["E08000025"],
        "history": {"recent_calls_nearby": nearby},
    }
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
    assert "4 calls from 4 callers or addresses within 300 m" in alert.title
    assert alert.details["sources"] == 4
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


def test_calls_from_one_caller_or_address_are_not_an_emerging_incident() -> None:
    # Five calls, but from one address (or two): repeat calls, not several callers.
    assert run(call(), [other(0), other(1), other(2), other(3)], sources=1) == []
    assert run(call(), [other(0), other(1), other(2), other(3)], sources=3) == []
    (alert,) = run(call(), [other(0), other(1), other(2), other(3)], sources=4)
    assert alert.details["calls"] == 5 and alert.details["sources"] == 4
    assert "5 calls from 4 callers or addresses" in alert.title


def test_an_emerging_incident_and_repeat_calls_of_one_place_and_hour_are_one_situation() -> None:
    address = {"lat": 52.4797, "lon": -1.9090, "address": "1 Broad Street, Birmingham"}
    this = CallV1.model_validate(
        make_call(call_id="C-9", category="assault", location=address, caller=None)
    )
    (emerging,) = run(this, [other(0), other(1), other(2)])
    repeat = [r for r in default_rules() if r.spec.rule_id == "repeat_calls"]
    enrichment = {
        "areas": AREAS,
        "area_codes": ["E08000025"],
        "history": {"calls_at_address": {"count": 3, "recent": ["C-9", "C-1", "C-0"]}},
    }
    (repeated,) = evaluate(repeat, EventKind.CALL, this, enrichment, NOW)
    assert emerging.details["situation"] == repeated.details["situation"]
    assert emerging.details["situation"] == (
        f"Birmingham 138A (E01033620) {this.received_at.astimezone(UTC):%Y-%m-%d %H}:00Z"
    )
    # Another hour is another situation; so is a call outside the force's areas.
    later = CallV1.model_validate(
        make_call(
            call_id="C-10",
            category="assault",
            location=address,
            received_at=(this.received_at + timedelta(hours=1)).isoformat(),
        )
    )
    (next_hour,) = run(later, [other(0), other(1), other(2)])
    assert next_hour.details["situation"] != emerging.details["situation"]
    from rules.situation import situation

    outside = situation(this.location, {}, this.received_at)
    assert outside.startswith("near 52.480, -1.909 ")
