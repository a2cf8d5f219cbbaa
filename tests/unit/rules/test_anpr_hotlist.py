"""ANPR hotlist hit: a "check the plate" alert on exact and misread matches, by severity
(never critical below the verify confidence), and not otherwise."""

from __future__ import annotations

from typing import Any

from rtic.schemas import EventKind, PlateReadV1
from rules.anpr_hotlist import Params
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

    strict = [replace(RULES[0], spec=replace(RULES[0].spec, params=Params(min_confidence=0.8)))]
    hit = {"id": "1", "vrm": "AB12CDE", "reason": "stolen", "match": "exact"}
    low = PlateReadV1.model_validate(make_read(confidence=0.5))
    assert evaluate(strict, EventKind.ANPR, low, enrichment(hit), NOW, RuleStats()) == []


def hit(entry_id: str = "HL1", reason: str = "stolen", **extra: Any) -> dict[str, Any]:
    return {"id": entry_id, "vrm": "AB12CDE", "reason": reason, "match": "exact", **extra}


def test_one_alert_per_entry_matched_each_with_its_own_id() -> None:
    read = make_read()
    alerts = run(read, enrichment(hit("HL1", "stolen"), hit("HL2", "firearms")))
    assert [a.details["hotlist_entry"]["id"] for a in alerts] == ["HL1", "HL2"]
    assert len({a.alert_id for a in alerts}) == 2
    assert [a.severity for a in alerts] == ["high", "critical"]


def test_the_alert_is_placed_timed_addressed_and_explains_its_rule() -> None:
    read = make_read(lat=52.4801, lon=-1.9025)
    (alert,) = run(read, enrichment(hit()))
    assert alert.location is not None
    assert (alert.location.lat, alert.location.lon) == (52.4801, -1.9025)
    assert alert.created_at == NOW
    assert set(alert.audience.roles) == {"rtic_analyst", "supervisor", "officer"}
    assert alert.audience.areas == alert.area == ["E08000025", "E05001197"]
    assert alert.details["rule"] == {
        "id": "anpr_hotlist_hit",
        "params": {"min_confidence": 0.0, "group_window_s": 300.0, "verify_min_confidence": 0.6},
    }
    assert alert.details["camera_id"] == read["camera_id"]
    assert alert.details["confidence"] == read["confidence"]


def test_a_read_outside_the_force_area_still_alerts_and_says_so() -> None:
    (alert,) = run(make_read(), {"areas": {}, "area_codes": [], "history": {"hotlist": [hit()]}})
    assert "outside force area" in alert.summary
    assert alert.area == [] and alert.audience.areas == []


def test_an_unknown_reason_is_medium() -> None:
    (alert,) = run(make_read(), enrichment(hit(reason="smuggling")))
    assert alert.severity == "medium"


def test_a_read_without_confidence_is_not_filtered_by_a_minimum() -> None:
    from dataclasses import replace

    strict = [replace(RULES[0], spec=replace(RULES[0].spec, params=Params(min_confidence=0.8)))]
    read = PlateReadV1.model_validate(make_read(confidence=None))
    assert len(evaluate(strict, EventKind.ANPR, read, enrichment(hit()), NOW)) == 1
    exact = PlateReadV1.model_validate(make_read(confidence=0.8))
    assert len(evaluate(strict, EventKind.ANPR, exact, enrichment(hit()), NOW)) == 1


def test_the_summary_gives_the_read_time_in_utc() -> None:
    # 22:30 at UTC+1 is 21:30Z; the summary must not print local time with a Z.
    (alert,) = run(make_read(read_at="2026-11-24T22:30:00+01:00"), enrichment(hit()))
    assert "21:30:00Z" in alert.summary
    (same,) = run(make_read(read_at="2026-11-24T21:30:00+00:00"), enrichment(hit()))
    assert "21:30:00Z" in same.summary


def test_the_alert_asks_to_check_the_plate_with_what_a_person_compares() -> None:
    read = make_read(vrm="8X15 0KT", camera_id="CAM-7", confidence=0.91)
    (alert,) = run(
        read, enrichment({"id": "HL1", "vrm": "BX15 OKT", "reason": "firearms", "match": "misread"})
    )
    assert alert.title.startswith("Check the plate: BX15 OKT")
    assert alert.details["verification"] == {
        "state": "pending",
        "read_vrm": "8X15 0KT",
        "listed_vrm": "BX15 OKT",
        "match": "misread: 8 for B, 0 for O",
        "camera_id": "CAM-7",
        "confidence": 0.91,
    }
    assert alert.severity == "critical"  # confident enough: the check itself may be critical
    (exact,) = run(make_read(), enrichment(hit()))
    assert exact.details["verification"]["match"] == "exact"
    assert "image_url" not in exact.details["verification"]


def test_the_read_image_travels_with_the_check() -> None:
    read = make_read(image_url="https://anpr.example.police.uk/reads/R1.jpg")
    (alert,) = run(read, enrichment(hit()))
    assert alert.details["verification"]["image_url"] == read["image_url"]


def test_a_low_confidence_read_of_a_wanted_plate_is_never_critical_before_verification() -> None:
    firearms = hit(reason="firearms")
    (low,) = run(make_read(confidence=0.15), enrichment(firearms))
    (unknown,) = run(make_read(confidence=None), enrichment(firearms))
    (edge,) = run(make_read(confidence=0.6), enrichment(firearms))
    assert (low.severity, unknown.severity, edge.severity) == ("high", "high", "critical")
    assert "0.15 is below 0.6" in low.details["why"]
    assert "not given" in unknown.details["why"]
    # Below critical nothing changes: a stolen car's check stays high, no insurance medium.
    (stolen,) = run(make_read(confidence=0.15), enrichment(hit(reason="stolen")))
    (uninsured,) = run(make_read(confidence=0.15), enrichment(hit(reason="no_insurance")))
    assert (stolen.severity, uninsured.severity) == ("high", "medium")


def test_the_verify_threshold_comes_from_the_settings() -> None:
    from rtic.settings import Settings

    strict = [
        r
        for r in default_rules(Settings(anpr_verify_min_confidence=0.95))
        if r.spec.rule_id == "anpr_hotlist_hit"
    ]
    read = PlateReadV1.model_validate(make_read(confidence=0.93))
    (alert,) = evaluate(strict, EventKind.ANPR, read, enrichment(hit(reason="firearms")), NOW)
    assert alert.severity == "high"


def test_misreads_name_which_character_was_taken_for_which() -> None:
    from rules.anpr_hotlist import match_kind, misreads

    assert misreads("AB12CDE", "ab12 cde") == []
    assert misreads("A812CDE", "AB12CDE") == [("8", "B")]
    assert misreads("0000", "OOOO") == [("0", "O")]
    assert match_kind("5N00ZED", "SN00ZED") == "misread: 5 for S"
    assert misreads("AB12", "AB123") == []  # other lengths are never a misread pair
