"""The deadline book over plain mappings (Faust tables in the worker): states in, each due
alert out once, states dropped when nothing is owed."""

from __future__ import annotations

from datetime import timedelta

from rtic.schemas import AlertAckV1, AlertV1, IncidentEventV1
from rules.catalogue import default_rules
from streams.deadlines import DeadlineBook
from tests.conftest import NOW, make_incident


def test_incidents_are_tracked_fired_once_and_dropped_on_arrival() -> None:
    promises: dict[bytes, bytes] = {}
    book = DeadlineBook(promises, {}, lambda lat, lon: ["E08000025"])
    created = IncidentEventV1.model_validate(make_incident(incident_id="INC-B1", units=[]))
    book.on_incident(created)
    assert list(promises) == [b"INC-B1"]
    rules = default_rules()
    assert book.due(rules, NOW + timedelta(minutes=1)) == []
    (first,) = book.due(rules, NOW + timedelta(minutes=3))
    assert first.area == ["E08000025"]
    assert book.due(rules, NOW + timedelta(minutes=4)) == []  # sent already
    arrived = IncidentEventV1.model_validate(
        make_incident(incident_id="INC-B1", event="arrived", units=["OFF-1"])
    )
    book.on_incident(arrived)
    assert promises == {} and book.due(rules, NOW + timedelta(hours=2)) == []


def test_critical_alerts_wait_for_an_ack() -> None:
    critical: dict[bytes, bytes] = {}
    book = DeadlineBook({}, critical, lambda lat, lon: [])
    alert = AlertV1(
        alert_id="anpr_hotlist_hit-1",
        rule_id="anpr_hotlist_hit",
        severity="critical",  # type: ignore[arg-type]
        title="Firearms plate",
        summary="...",
        created_at=NOW,
        source_event_ids=["R-1"],
        location=None,
        area=[],
        audience={"roles": ["rtic_analyst"]},  # type: ignore[arg-type]
    )
    book.on_alert(alert)
    assert list(critical) == [b"anpr_hotlist_hit-1"]
    (up,) = book.due(default_rules(), NOW + timedelta(seconds=61))
    assert up.details["escalates"] == "anpr_hotlist_hit-1"
    ack = AlertAckV1(alert_id=alert.alert_id, action="ack", by="s1", role="supervisor", at=NOW)  # type: ignore[arg-type]
    book.on_ack(ack)
    assert critical == {}
