"""ANPR hotlist hit: fires on exact and misread matches, by severity, and not otherwise."""

from __future__ import annotations

from typing import Any

from rtic.schemas import EventKind, PlateReadV1
from rules.base import RuleStats, evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_read

RULES = [r for r in default_rules() if r.spec.rule_id == "anpr_hotlist_hit"]


def enrichment(*hits: dict[str, Any]) -> dict[str, Any]:
    return {
        "areas": {"ward": {"code": "E05001197", "name": "Nechells"}},
        "area_codes": ["E08000025", "E05001197"],
        "history": {"hotlist": list(hits)},
    }


def run(read: dict[str, Any], enr: dict[str, Any]) -> list:
    return evaluate(RULES, EventKind.ANPR, PlateReadV1.model_validate(read), enr, NOW)


def test_misread_of_a_firearms_plate_is_critical_and_explained() -> None:
    read = make_read(vrm="A812 CDE")
    (alert,) = run(
        read, enrichment({"id": "HL1", "vrm": "AB12 CDE", "reason": "firearms", "match": "misread"})
    )
    assert alert.severity == "critical"
    assert alert.source_event_ids == [read["read_id"]]
    assert alert.details["match"] == "misread"
    assert "misread" in alert.details["why"] and "AB12 CDE" in alert.details["why"]
    assert alert.area == ["E08000025", "E05001197"]
    assert "officer" in alert.audience.roles
    assert "Nechells" in alert.summary


def test_severity_follows_reason_and_an_entry_can_set_its_own() -> None:
    read = make_read()
    (stolen,) = run(
        read, enrichment({"id": "1", "vrm": "AB12CDE", "reason": "stolen", "match": "exact"})
    )
    (insurance,) = run(
        read, enrichment({"id": "2", "vrm": "AB12CDE", "reason": "no_insurance", "match": "exact"})
    )
    (own,) = run(
        read,
        enrichment(
            {
                "id": "3",
                "vrm": "AB12CDE",
                "reason": "other",
                "severity": "critical",
                "match": "exact",
            }
        ),
    )
    assert (stolen.severity, insurance.severity, own.severity) == ("high", "medium", "critical")


def test_no_hit_no_alert() -> None:
    assert run(make_read(), enrichment()) == []
    assert run(make_read(), {"area_codes": []}) == []


def test_same_read_same_id_other_read_other_id() -> None:
    read = make_read()
    hit = {"id": "HL9", "vrm": "AB12CDE", "reason": "stolen", "match": "exact"}
    (a,) = run(read, enrichment(hit))
    (b,) = run(read, enrichment(hit))
    (c,) = run(make_read(), enrichment(hit))
    assert a.alert_id == b.alert_id != c.alert_id


def test_low_confidence_reads_are_ignored_when_a_minimum_is_set() -> None:
    from dataclasses import replace

    strict = [replace(RULES[0], spec=replace(RULES[0].spec, params={"min_confidence": 0.8}))]
    hit = {"id": "1", "vrm": "AB12CDE", "reason": "stolen", "match": "exact"}
    low = PlateReadV1.model_validate(make_read(confidence=0.5))
    assert evaluate(strict, EventKind.ANPR, low, enrichment(hit), NOW, RuleStats()) == []
