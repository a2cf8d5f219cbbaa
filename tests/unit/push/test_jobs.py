"""The incident and officer boards (pure), and the jobs' HTTP routes through Starlette's
TestClient: every role against every route, supervisors narrowed to their areas, and
the snapshots that follow ``subscribed`` on a real (test) websocket."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from push.dispatch import Dispatch, MemoryOnce, attendance_targets_from
from push.jobs import (
    IncidentBoard,
    OfficerBoard,
    candidates,
    travel_minutes,
    workload,
)
from push.web import create_app
from rtic.schemas import IncidentEventV1, OfficerLocationV1, Role
from rtic.settings import PROJECT_ROOT, Settings
from rtic.tokens import Principal, issue_token
from tests.conftest import NOW, make_incident, make_officer_location
from tests.unit.push.test_dispatch import COVENTRY, TARGETS, Sink, areas_at
from tests.unit.push.test_fanout import make_core

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SECRET = "jobs-unit-secret-of-thirty-two-bytes!"
CITY = (52.4862, -1.8904)


def inc(**overrides: Any) -> IncidentEventV1:
    return IncidentEventV1.model_validate(make_incident(**overrides))


def ping(officer_id: str, **overrides: Any) -> OfficerLocationV1:
    return OfficerLocationV1.model_validate(
        make_officer_location(officer_id=officer_id, **overrides)
    )


# ---- the incident board ------------------------------------------------------------------


def test_status_moves_forward_only_and_a_redelivery_changes_nothing() -> None:
    board = IncidentBoard(TARGETS, areas_at)
    created = inc(incident_id="I-1")
    assert board.apply(created) is not None
    assert board.apply(created) is None  # read again
    arrived = inc(incident_id="I-1", event="arrived", at=(NOW + timedelta(minutes=5)).isoformat())
    change = board.apply(arrived)
    assert change is not None and change.incident.status == "arrived"
    late_assign = inc(
        incident_id="I-1",
        event="assigned",
        units=["OFF-1"],
        at=(NOW + timedelta(minutes=1)).isoformat(),
    )
    change = board.apply(late_assign)
    assert change is not None
    assert change.incident.status == "arrived"  # not back to assigned
    assert change.added_units == {"OFF-1"}
    assert change.incident.arrived_at == NOW + timedelta(minutes=5)


def test_closed_incidents_stay_an_hour_and_unknown_closed_ones_never_show() -> None:
    board = IncidentBoard(TARGETS)
    board.apply(inc(incident_id="I-1"))
    board.apply(inc(incident_id="I-1", event="closed", at=(NOW + timedelta(minutes=1)).isoformat()))
    assert board.apply(inc(incident_id="I-2", event="closed")) is None
    assert board.expire(NOW + timedelta(minutes=60)) == []
    assert [i.incident_id for i in board.expire(NOW + timedelta(minutes=61))] == ["I-1"]
    assert len(board) == 0


def test_promises_by_grade_from_the_response_promise_rule(tmp_path: Any) -> None:
    assert attendance_targets_from(Settings()) == {1: 15, 2: 60}
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  response_promise:\n    params: {attend_within_s: 1200}\n")
    assert attendance_targets_from(Settings(rules_file=rules)) == {1: 20, 2: 60}
    board = IncidentBoard({1: 20, 2: 60})
    change = board.apply(inc(incident_id="I-3", grade=3))
    assert change is not None and board.view(change.incident)["promise"] is None


def test_candidates_are_the_nearest_available_officers_with_rough_travel_times() -> None:
    board, officers = IncidentBoard(TARGETS), OfficerBoard()
    change = board.apply(inc(incident_id="I-1", units=["OFF-ON"], event="assigned"))
    assert change is not None
    officers.apply(ping("OFF-FAR", at_point=(52.52, -1.89)))  # about 3.8 km north
    officers.apply(ping("OFF-NEAR", at_point=(52.4872, -1.8904)))  # about 110 m
    officers.apply(ping("OFF-BUSY", at_point=CITY, status="committed"))
    officers.apply(ping("OFF-ON", at_point=CITY))  # already on it
    old = (NOW - timedelta(hours=2)).isoformat()
    officers.apply(ping("OFF-STALE", at_point=CITY, at=old))
    found = candidates(change.incident, officers, NOW, limit=5)
    assert [c["officer_id"] for c in found] == ["OFF-NEAR", "OFF-FAR"]
    assert 100 <= found[0]["distance_m"] <= 120 and found[0]["travel_minutes"] == 1
    assert found[1]["travel_minutes"] == travel_minutes(found[1]["distance_m"]) == 10
    assert candidates(change.incident, officers, NOW, limit=1) == found[:1]


def test_candidates_are_only_officers_the_caller_may_see_on_the_board() -> None:
    """A distance would show where an officer is: a supervisor whose areas are Coventry is
    offered no officer last seen in Birmingham, however near."""
    board, officers = IncidentBoard(TARGETS, areas_at), OfficerBoard(areas_at)
    change = board.apply(inc(incident_id="I-1", at_point=(52.4081, -1.5106)))
    assert change is not None
    officers.apply(ping("OFF-BRUM", at_point=CITY))
    officers.apply(ping("OFF-COV", at_point=(52.41, -1.51)))
    coventry = Principal("sup", Role.SUPERVISOR, areas=(COVENTRY,))
    shown = candidates(change.incident, officers, NOW, 10, coventry)
    assert [c["officer_id"] for c in shown] == ["OFF-COV"]
    everyone = candidates(change.incident, officers, NOW, 10, Principal("an", Role.RTIC_ANALYST))
    assert [c["officer_id"] for c in everyone] == ["OFF-COV", "OFF-BRUM"]
    assert candidates(change.incident, officers, NOW, 10) == everyone


def test_workload_counts_open_jobs_and_todays_jobs_a_supervisor_sees_their_areas() -> None:
    board, officers = IncidentBoard(TARGETS, areas_at), OfficerBoard(areas_at)
    officers.apply(ping("OFF-1"))
    officers.apply(ping("OFF-2", at_point=(52.4081, -1.5106)))
    board.apply(inc(incident_id="I-1", event="assigned", units=["OFF-1"]))
    board.apply(inc(incident_id="I-2", event="assigned", units=["OFF-1"]))
    board.apply(inc(incident_id="I-2", event="closed", at=(NOW + timedelta(minutes=9)).isoformat()))
    yesterday = (NOW - timedelta(days=1)).isoformat()
    board.apply(inc(incident_id="I-3", event="assigned", units=["OFF-1"], at=yesterday))
    analyst = Principal("an", Role.RTIC_ANALYST)
    rows = workload(analyst, officers, board, NOW + timedelta(minutes=10))
    assert [(r["officer_id"], r["open_jobs"], r["jobs_today"]) for r in rows] == [
        ("OFF-1", ["I-3", "I-1"], 2),
        ("OFF-2", [], 0),
    ]
    coventry = Principal("sup", Role.SUPERVISOR, areas=(COVENTRY,))
    assert [r["officer_id"] for r in workload(coventry, officers, board, NOW)] == ["OFF-2"]


def test_an_older_ping_read_late_does_not_move_an_officer_back() -> None:
    officers = OfficerBoard()
    officers.apply(ping("OFF-1", callsign="BW-1", at=(NOW + timedelta(minutes=1)).isoformat()))
    assert officers.apply(ping("OFF-1", at=NOW.isoformat())) is None
    newer = officers.apply(
        ping("OFF-1", callsign=None, status=None, at=(NOW + timedelta(minutes=2)).isoformat())
    )
    assert newer is not None and (newer.callsign, newer.status) == ("BW-1", "available")


# ---- HTTP and the websocket's snapshots ----------------------------------------------------


@pytest.fixture
def http() -> Iterator[TestClient]:
    core = make_core(queue_size=50)
    jobs = Dispatch(core, Sink(), MemoryOnce(), TARGETS, areas_at)
    jobs.replayed()
    app = create_app(core, secret=SECRET, data_dir=PROJECT_ROOT / "data", consuming=lambda: True)
    app.state.dispatch = jobs
    jobs.read("incident", make_incident(incident_id="I-BRUM"))
    jobs.read("incident", make_incident(incident_id="I-COV", at_point=(52.4081, -1.5106)))
    jobs.read("officer_location", make_officer_location(officer_id="OFF-B"))
    jobs.read(
        "officer_location", make_officer_location(officer_id="OFF-C", at_point=(52.41, -1.51))
    )
    with TestClient(app) as client:
        yield client


def bearer(role: str, sub: str = "someone", **kw: Any) -> dict[str, str]:
    token = issue_token(SECRET, sub=sub, role=role, now=NOW, ttl_seconds=3600, **kw)
    return {"Authorization": f"Bearer {token}"}


ROUTES = [
    "/api/incidents",
    "/api/incidents/I-BRUM/candidates",
    "/api/officers/workload",
]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("role", ["officer", "case_officer", "citizen", "contact_handler"])
def test_only_analysts_and_supervisors_use_the_job_routes(
    http: TestClient, path: str, role: str
) -> None:
    answer = http.get(path, headers=bearer(role))
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    assert http.get(path).status_code == 401


def test_the_board_and_workload_narrowed_to_a_supervisors_areas(http: TestClient) -> None:
    analyst, coventry = bearer("rtic_analyst"), bearer("supervisor", areas=[COVENTRY])
    everywhere = bearer("supervisor")  # no areas: the whole force
    board = http.get("/api/incidents", headers=analyst).json()
    assert {i["incident_id"] for i in board["incidents"]} == {"I-BRUM", "I-COV"}
    assert board["complete"] is True
    mine = http.get("/api/incidents", headers=coventry).json()["incidents"]
    assert [i["incident_id"] for i in mine] == ["I-COV"]
    assert len(http.get("/api/incidents", headers=everywhere).json()["incidents"]) == 2
    rows = http.get("/api/officers/workload", headers=coventry).json()["officers"]
    assert [r["officer_id"] for r in rows] == ["OFF-C"]
    rows = http.get("/api/officers/workload", headers=analyst).json()["officers"]
    assert {r["officer_id"] for r in rows} == {"OFF-B", "OFF-C"}


def test_candidates_of_an_incident_the_caller_may_see(http: TestClient) -> None:
    answer = http.get("/api/incidents/I-BRUM/candidates?limit=1", headers=bearer("rtic_analyst"))
    assert answer.status_code == 200
    body = answer.json()
    assert [c["officer_id"] for c in body["candidates"]] == ["OFF-B"]
    assert "rough" in body["travel_basis"]
    coventry = bearer("supervisor", areas=[COVENTRY])
    hidden = http.get("/api/incidents/I-BRUM/candidates", headers=coventry)
    assert hidden.status_code == 404  # another area's incident: as if there were none
    missing = http.get("/api/incidents/NOPE/candidates", headers=bearer("rtic_analyst"))
    assert missing.status_code == 404
    for bad in ("0", "x", "51"):
        refused = http.get(f"/api/incidents/I-BRUM/candidates?limit={bad}", headers=coventry)
        assert refused.status_code == 400


def test_snapshots_follow_subscribed_on_the_socket(http: TestClient) -> None:
    token = bearer("rtic_analyst")["Authorization"][7:]
    with http.websocket_connect(f"/ws?token={token}") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "subscribe"})
        assert [ws.receive_json()["type"] for _ in range(3)] == [
            "subscribed",
            "incidents",
            "officers",
        ]
