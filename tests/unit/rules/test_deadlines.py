"""Response promise and unacknowledged critical alert: tracking folds events into a state,
firing returns what is overdue at ``now``; each fires, does not fire, keeps its id and
explains itself."""

from __future__ import annotations

from datetime import timedelta

from rtic.schemas import AlertAckV1, AlertV1, IncidentEventV1
from rules.base import Rule, evaluate_timed
from rules.catalogue import default_rules
from rules.deadlines import track_ack, track_alert, track_incident
from tests.conftest import NOW, make_incident

AREA = ["E08000025", "E05011118"]


def rules(**params: float) -> list[Rule]:
    from dataclasses import replace

    out = []
    for r in default_rules():
        extra = {k: v for k, v in params.items() if k in type(r.spec.params).model_fields}
        out.append(replace(r, spec=replace(r.spec, params=r.spec.params.model_copy(update=extra))))
    return out


def incident(event: str, minutes: float = 0, **kw: object) -> IncidentEventV1:
    return IncidentEventV1.model_validate(
        make_incident(
            incident_id="INC-D1",
            event=event,
            at=(NOW + timedelta(minutes=minutes)).isoformat(),
            **kw,
        )
    )


def fire(state: dict, minutes: float, **params: float) -> list[AlertV1]:
    return evaluate_timed(rules(**params), "incident", state, NOW + timedelta(minutes=minutes))


# ---- response promise ---------------------------------------------------------------------


def test_grade_1_not_assigned_in_two_minutes_fires_once_the_deadline_passes() -> None:
    state = track_incident(None, incident("created", grade=1, units=[]), AREA)
    assert state is not None and "assigned_at" not in state
    assert fire(state, 1.9) == []
    (alert,) = fire(state, 2.0)
    assert alert.rule_id == "response_promise" and alert.details["stage"] == "not_assigned"
    assert alert.area == AREA and set(alert.audience.roles) == {"rtic_analyst", "supervisor"}
    assert "No unit is assigned" in alert.summary
    assert (
        "within 2 minutes" in alert.details["why"] and "still not assigned" in alert.details["why"]
    )
    # Later checks repeat the same id (shown once), and at 15 minutes attendance joins it.
    assert [a.alert_id for a in fire(state, 5)] == [alert.alert_id]
    stages = {a.details["stage"] for a in fire(state, 15)}
    assert stages == {"not_assigned", "not_attended"}


def test_assignment_meets_the_first_promise_and_arrival_ends_the_wait() -> None:
    state = track_incident(None, incident("created", grade=1, units=[]), AREA)
    state = track_incident(state, incident("assigned", 1, grade=1, units=["OFF-1"]), AREA)
    assert state is not None and state["units"] == ["OFF-1"]
    assert fire(state, 14) == []
    (late,) = fire(state, 16)
    assert late.details["stage"] == "not_attended" and late.audience.officers == ["OFF-1"]
    assert "Assigned to OFF-1" in late.summary
    assert track_incident(state, incident("arrived", 10, grade=1), AREA) is None
    assert track_incident(state, incident("closed", 10, grade=1), AREA) is None


def test_grade_2_has_an_hour_and_grades_3_and_4_have_no_promise() -> None:
    state = track_incident(None, incident("created", grade=2, units=[]), AREA)
    assert state is not None
    assert fire(state, 59) == []
    assert [a.details["stage"] for a in fire(state, 60)] == ["not_attended"]
    assert track_incident(None, incident("created", grade=3), AREA) is None
    # A downgrade drops what was owed.
    assert track_incident(state, incident("updated", 5, grade=3), AREA) is None


def test_the_clock_starts_at_creation_even_when_an_update_arrives_first() -> None:
    state = track_incident(None, incident("updated", 1, grade=1, units=[]), AREA)
    state = track_incident(state, incident("created", 0, grade=1, units=[]), AREA)
    assert state is not None and state["created_at"] == NOW.isoformat()
    assert len(fire(state, 2)) == 1


def test_promise_parameters_are_tunable() -> None:
    state = track_incident(None, incident("created", grade=1, units=[]), AREA)
    assert state is not None
    assert fire(state, 1, assign_within_s=30) != []


# ---- unacknowledged critical --------------------------------------------------------------


def alert(severity: str = "critical", rule_id: str = "officer_safety") -> AlertV1:
    return AlertV1(
        alert_id=f"{rule_id}-abc",
        rule_id=rule_id,
        severity=severity,  # type: ignore[arg-type]
        title="Officer safety: firearms at incident INC-1",
        summary="...",
        created_at=NOW,
        source_event_ids=["INC-1"],
        location=None,
        area=AREA,
        audience={"roles": ["rtic_analyst"]},  # type: ignore[arg-type]
    )


def escalate(state: dict, seconds: float, **params: float) -> list[AlertV1]:
    return evaluate_timed(
        rules(**params), "critical_alert", state, NOW + timedelta(seconds=seconds)
    )


def test_a_critical_alert_nobody_answers_goes_to_supervisors_after_60_s() -> None:
    state = track_alert(None, alert())
    assert state is not None
    assert escalate(state, 59) == []
    (up,) = escalate(state, 61)
    assert up.rule_id == "unacknowledged_critical" and up.severity == "critical"
    assert up.audience.roles == ["supervisor"] and up.area == AREA
    assert up.details["escalates"] == "officer_safety-abc"
    assert up.source_event_ids == ["INC-1"]
    assert (
        "within 60 seconds" in up.details["why"]
        and "Escalated to the supervisors" in up.details["why"]
    )
    assert escalate(state, 120)[0].alert_id == up.alert_id


def test_an_answer_ends_the_wait_and_only_critical_first_versions_start_it() -> None:
    state = track_alert(None, alert())
    ack = AlertAckV1(
        alert_id="officer_safety-abc", action="dismiss", by="a1", role="rtic_analyst", at=NOW
    )  # type: ignore[arg-type]
    assert track_ack(state, ack) is None
    assert track_alert(None, alert(severity="high")) is None
    assert track_alert(None, alert(rule_id="unacknowledged_critical")) is None
    assert track_alert(state, alert()) is state  # an update does not restart the clock


def test_the_ack_window_is_tunable() -> None:
    state = track_alert(None, alert())
    assert state is not None
    assert escalate(state, 6, ack_within_s=5) != []
