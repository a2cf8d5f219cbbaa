"""Officer safety, vulnerable place, near-repeat burglary and missing person: each fires,
does not fire, gives the same id for the same facts, and explains itself."""

from __future__ import annotations

from typing import Any

from rtic.schemas import CallV1, EventKind, IncidentEventV1
from rules.base import evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_call, make_incident


def only(rule_id: str) -> list:
    return [r for r in default_rules() if r.spec.rule_id == rule_id]


def run(rule_id: str, kind: EventKind, event: Any, enrichment: dict[str, Any]) -> list:
    return evaluate(only(rule_id), kind, event, {"area_codes": ["E08000025"], **enrichment}, NOW)


# ---- officer safety -----------------------------------------------------------------------

WEAPONS = {"marker": "weapons", "id": "AM-1", "address": "1 High Street"}
MENTAL_HEALTH = {"marker": "mental_health", "id": "PM-1", "person_id": "P-200"}


def test_officer_safety_goes_to_assigned_and_nearest_units_before_arrival() -> None:
    inc = IncidentEventV1.model_validate(make_incident(event="assigned", units=["OFF-7"]))
    enrichment = {
        "history": {"markers": [WEAPONS, MENTAL_HEALTH]},
        "nearest_units": [{"officer_id": "OFF-9"}],
    }
    (alert,) = run("officer_safety", EventKind.INCIDENT, inc, enrichment)
    assert alert.severity == "critical"  # weapons
    assert alert.audience.officers == ["OFF-7", "OFF-9"]
    assert "weapons" in alert.details["why"] and "before they arrive" in alert.details["why"]
    created = IncidentEventV1.model_validate(
        {**make_incident(event="created"), "incident_id": inc.incident_id}
    )
    (again,) = run("officer_safety", EventKind.INCIDENT, created, enrichment)
    assert again.alert_id == alert.alert_id  # one alert per incident and markers, not per update


def test_officer_safety_quiet_without_markers_or_once_arrived() -> None:
    assert (
        run(
            "officer_safety",
            EventKind.INCIDENT,
            IncidentEventV1.model_validate(make_incident()),
            {"history": {"markers": []}},
        )
        == []
    )
    arrived = IncidentEventV1.model_validate(make_incident(event="arrived"))
    assert (
        run("officer_safety", EventKind.INCIDENT, arrived, {"history": {"markers": [WEAPONS]}})
        == []
    )
    (mh,) = run(
        "officer_safety",
        EventKind.INCIDENT,
        IncidentEventV1.model_validate(make_incident()),
        {"history": {"markers": [MENTAL_HEALTH]}},
    )
    assert mh.severity == "high"


# ---- vulnerable place ---------------------------------------------------------------------

NEAR_SCHOOL = {
    "nearby_places": {
        "school": {"name": "Park School", "id": "S1", "distance_m": 120.0},
        "hospital": {"name": "H", "distance_m": 50.0},
    }
}


def test_violence_near_a_school_fires_and_explains() -> None:
    call = CallV1.model_validate(make_call(category="assault"))
    (alert,) = run("vulnerable_place", EventKind.CALL, call, NEAR_SCHOOL)
    assert "Park School" in alert.summary and "120 m" in alert.details["why"]
    assert list(alert.details["places"]) == ["school"]  # a hospital is not in the list
    assert run("vulnerable_place", EventKind.CALL, call, NEAR_SCHOOL)[0].alert_id == alert.alert_id


def test_vulnerable_place_quiet_when_far_or_not_violent_or_raised_by_its_call() -> None:
    far = {"nearby_places": {"school": {"name": "Far", "distance_m": 900.0}}}
    assert (
        run(
            "vulnerable_place",
            EventKind.CALL,
            CallV1.model_validate(make_call(category="assault")),
            far,
        )
        == []
    )
    assert (
        run(
            "vulnerable_place",
            EventKind.CALL,
            CallV1.model_validate(make_call(category="traffic")),
            NEAR_SCHOOL,
        )
        == []
    )
    from_call = IncidentEventV1.model_validate(make_incident(category="assault", call_ids=["C1"]))
    assert run("vulnerable_place", EventKind.INCIDENT, from_call, NEAR_SCHOOL) == []
    on_its_own = IncidentEventV1.model_validate(make_incident(category="missing_person"))
    assert len(run("vulnerable_place", EventKind.INCIDENT, on_its_own, NEAR_SCHOOL)) == 1


# ---- near-repeat burglary -----------------------------------------------------------------


def test_a_burglary_flags_its_area_for_two_weeks() -> None:
    call = CallV1.model_validate(make_call(category="burglary"))
    (alert,) = run(
        "near_repeat_burglary", EventKind.CALL, call, {"areas": {"ward": {"name": "Soho"}}}
    )
    assert "Soho" in alert.title and alert.details["radius_m"] == 400
    assert alert.details["valid_until"].startswith("2026-12-08")  # 14 days after NOW
    assert "officer" in alert.audience.roles and alert.audience.areas == ["E08000025"]
    assert (
        run(
            "near_repeat_burglary",
            EventKind.CALL,
            CallV1.model_validate(make_call(category="asb")),
            {},
        )
        == []
    )


# ---- missing person -----------------------------------------------------------------------


def test_a_call_linked_to_a_missing_person_fires() -> None:
    marker = {"marker": "missing_person", "id": "PM-9", "person_id": "P-100"}
    call = CallV1.model_validate(make_call())
    (alert,) = run("missing_person", EventKind.CALL, call, {"history": {"markers": [marker]}})
    assert alert.severity == "high" and "P-100" in alert.title
    assert "investigating team" in alert.details["why"]
    assert run("missing_person", EventKind.CALL, call, {"history": {"markers": [WEAPONS]}}) == []


# ---- vehicle linked to an open incident ---------------------------------------------------


def test_a_suspect_vehicle_seen_within_the_window_alerts_its_units() -> None:
    from datetime import timedelta

    from rtic.schemas import PlateReadV1
    from tests.conftest import make_read

    link = {
        "incident_id": "INC-1",
        "vrm": "RB12 BER",
        "role": "suspect",
        "category": "robbery",
        "grade": 1,
        "units": ["OFF-3"],
        "at": (NOW - timedelta(minutes=40)).isoformat(),
    }
    read = PlateReadV1.model_validate(make_read(vrm="RB12 BER"))
    (alert,) = run(
        "vehicle_linked_to_incident",
        EventKind.ANPR,
        read,
        {"history": {"linked_incidents": [link]}},
    )
    assert alert.severity == "high" and alert.audience.officers == ["OFF-3"]
    assert "suspect" in alert.title and "40 minutes" in alert.details["why"]
    old = {**link, "at": (NOW - timedelta(hours=3)).isoformat()}
    assert (
        run(
            "vehicle_linked_to_incident",
            EventKind.ANPR,
            read,
            {"history": {"linked_incidents": [old]}},
        )
        == []
    )
    assert (
        run("vehicle_linked_to_incident", EventKind.ANPR, read, {"history": {"hotlist": []}}) == []
    )
