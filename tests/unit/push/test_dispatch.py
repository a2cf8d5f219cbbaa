"""The job boards in the gateway: frames after subscribe and on change, job updates,
assignments and positions through the fan-out core, each id applied once, and who may
do what. No sockets, no Kafka: the sink and the once store are in memory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest

from push.dispatch import Dispatch, MemoryOnce
from push.fanout import Client, Fanout
from rtic.casework import AuditAction, AuditObject
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW, make_incident, make_officer_location
from tests.unit.push.test_fanout import Closes, make_core

BRUM, COVENTRY = "E08000025", "E08000026"
TARGETS = {1: 15, 2: 60}


def areas_at(lat: float, lon: float) -> list[str]:
    """Birmingham north of 52.45, Coventry east of -1.6 (enough for the tests)."""
    return [COVENTRY] if lon > -1.6 else [BRUM]


@dataclass
class Sink:
    """The Kafka edge's JobSink as lists; the incidents written are read back by the
    test (``echo``), as the gateway reads its own writes back from Kafka."""

    incidents: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    async def write_incident(self, event: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("kafka away")
        self.incidents.append(event)

    def write_position(self, ping: dict[str, Any]) -> None:
        self.positions.append(ping)


@dataclass
class Rig:
    core: Fanout
    jobs: Dispatch
    sink: Sink
    once: MemoryOnce

    def connect(self, role: Role, sub: str, areas: tuple[str, ...] = ()) -> Client:
        client = self.core.connect(Principal(sub, role, areas=areas), on_close=Closes())
        frames(client)  # hello
        return client

    def subscribe(self, client: Client) -> list[dict[str, Any]]:
        """Subscribe; the reply then the follow-ups (as the web edge queues them)."""
        reply = self.core.on_client_message(client, b'{"type": "subscribe"}')
        assert reply is not None
        return [orjson.loads(reply)] + [orjson.loads(f) for f in client.take_follow_ups()]

    async def send(self, client: Client, msg: dict[str, Any]) -> dict[str, Any]:
        """Send a message; its reply (at once, or from the task the handler started)."""
        reply = self.core.on_client_message(client, orjson.dumps(msg))
        if reply is not None:
            return dict(orjson.loads(reply))
        await asyncio.wait_for(asyncio.gather(*self.jobs._tasks), 2)
        replies = [
            f for f in frames(client) if f["type"] in ("job_update_ack", "assigned", "error")
        ]
        assert len(replies) == 1, replies
        return replies[0]

    def echo(self) -> None:
        """Read back what was written, as the Kafka edge would."""
        for event in self.sink.incidents:
            self.jobs.read("incident", event)
        for ping in self.sink.positions:
            self.jobs.read("officer_location", ping)


def frames(client: Client) -> list[dict[str, Any]]:
    out = []
    while not client.queue.empty():
        out.append(orjson.loads(client.queue.get_nowait()))
    return out


@pytest.fixture
def rig() -> Rig:
    core = make_core(queue_size=100)
    sink, once = Sink(), MemoryOnce()
    jobs = Dispatch(core, sink, once, TARGETS, areas_at)
    jobs.replayed()
    return Rig(core, jobs, sink, once)


def incident(rig: Rig, **overrides: Any) -> dict[str, Any]:
    event = make_incident(**overrides)
    rig.jobs.read("incident", event)
    return event


def ping(rig: Rig, officer_id: str, **overrides: Any) -> dict[str, Any]:
    event = make_officer_location(officer_id=officer_id, **overrides)
    rig.jobs.read("officer_location", event)
    return event


def job_update(incident_id: str, update_id: str, event: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "job_update",
        "update_id": update_id,
        "incident_id": incident_id,
        "event": event,
        "at": NOW.isoformat(),
        **kw,
    }


def assign(incident_id: str, officer_id: str, assign_id: str = "as-1") -> dict[str, Any]:
    return {
        "type": "assign",
        "assign_id": assign_id,
        "incident_id": incident_id,
        "officer_id": officer_id,
    }


# ---- snapshots and live frames -----------------------------------------------------------


def test_the_desk_gets_incidents_and_officers_after_subscribe_a_supervisor_their_areas(
    rig: Rig,
) -> None:
    brum = incident(rig, grade=1)
    cov = incident(rig, grade=2, at_point=(52.4081, -1.5106))
    ping(rig, "OFF-1")
    ping(rig, "OFF-2", at_point=(52.4081, -1.5106))
    analyst = rig.connect(Role.RTIC_ANALYST, "an-1")
    supervisor = rig.connect(Role.SUPERVISOR, "sup-1", (COVENTRY,))
    subscribed, incidents, officers = rig.subscribe(analyst)
    assert subscribed["type"] == "subscribed"
    assert [i["incident_id"] for i in incidents["incidents"]] == [
        brum["incident_id"],
        cov["incident_id"],
    ]
    first = incidents["incidents"][0]
    assert first["status"] == "open" and first["units"] == []
    assert first["promise"] == {
        "due_at": (NOW + timedelta(minutes=15)).isoformat(),
        "target_minutes": 15,
    }
    assert {o["officer_id"] for o in officers["officers"]} == {"OFF-1", "OFF-2"}
    _, incidents, officers = rig.subscribe(supervisor)
    assert [i["incident_id"] for i in incidents["incidents"]] == [cov["incident_id"]]
    assert [o["officer_id"] for o in officers["officers"]] == ["OFF-2"]


def test_an_officer_gets_their_open_jobs_only(rig: Rig) -> None:
    mine = incident(rig, units=["OFF-1"], event="assigned")
    incident(rig, units=["OFF-2"], event="assigned")
    officer = rig.connect(Role.OFFICER, "OFF-1")
    _, jobs = rig.subscribe(officer)
    assert jobs["type"] == "jobs"
    assert [j["incident_id"] for j in jobs["jobs"]] == [mine["incident_id"]]
    citizen = rig.connect(Role.CITIZEN, "cit-1")
    assert len(rig.subscribe(citizen)) == 1  # subscribed, nothing else


async def test_an_assignment_reaches_the_officer_and_the_desk_at_once(rig: Rig) -> None:
    inc = incident(rig, grade=1)
    ping(rig, "OFF-1")
    analyst = rig.connect(Role.RTIC_ANALYST, "an-1")
    officer = rig.connect(Role.OFFICER, "OFF-1")
    other = rig.connect(Role.OFFICER, "OFF-9")
    for c in (analyst, officer, other):
        rig.subscribe(c)
    answer = await rig.send(analyst, assign(inc["incident_id"], "OFF-1", "as-7"))
    assert answer == {
        "type": "assigned",
        "assign_id": "as-7",
        "incident_id": inc["incident_id"],
        "officer_id": "OFF-1",
        "duplicate": False,
    }
    (written,) = rig.sink.incidents
    assert written["event"] == "assigned" and written["units"] == ["OFF-1"]
    assert (written["assign_id"], written["by"], written["grade"]) == ("as-7", "an-1", 1)
    rig.echo()
    (job,) = frames(officer)
    assert job["type"] == "job" and job["change"] == "assigned"
    assert job["job"]["status"] == "assigned" and job["job"]["units"] == ["OFF-1"]
    desk = frames(analyst)
    assert [f["type"] for f in desk] == ["incident", "officer"]
    assert desk[0]["incident"]["units"] == ["OFF-1"]
    assert desk[1]["officer"]["jobs"] == [inc["incident_id"]]
    assert frames(other) == []
    (act,) = [r for r in rig.core.audit.drain() if r.action is AuditAction.JOB_ASSIGN]
    assert (act.actor, act.object_id, act.detail) == (
        "an-1",
        inc["incident_id"],
        {"assign_id": "as-7", "event": "assigned", "officer": "OFF-1"},
    )


async def test_a_job_goes_en_route_arrived_log_closed_each_written_once(rig: Rig) -> None:
    inc = incident(rig, units=["OFF-1"], event="assigned", call_ids=["CALL-1"])
    officer = rig.connect(Role.OFFICER, "OFF-1")
    supervisor = rig.connect(Role.SUPERVISOR, "sup-1", (BRUM,))
    rig.subscribe(officer)
    rig.subscribe(supervisor)
    iid = inc["incident_id"]
    steps = [
        job_update(iid, "u-1", "en_route"),
        job_update(iid, "u-2", "arrived"),
        job_update(iid, "u-3", "updated", note="Spoke to the caller"),
        job_update(iid, "u-4", "closed", result="advice_given", note="All calm"),
    ]
    for step in steps:
        answer = await rig.send(officer, step)
        assert answer == {
            "type": "job_update_ack",
            "update_id": step["update_id"],
            "duplicate": False,
        }
        again = await rig.send(officer, step)
        assert again["duplicate"] is True
    written = rig.sink.incidents
    assert [(e["event"], e.get("status")) for e in written] == [
        ("updated", "en_route"),
        ("arrived", None),
        ("updated", None),
        ("closed", None),
    ]
    assert [e["update_id"] for e in written] == ["u-1", "u-2", "u-3", "u-4"]
    assert all(e["by"] == "OFF-1" and e["units"] == ["OFF-1"] for e in written)
    assert all(e["call_ids"] == ["CALL-1"] and e["category"] == "assault" for e in written)
    assert written[3]["result"] == "advice_given"
    rig.echo()
    rig.echo()  # read twice (a redelivery): applied once
    jobs = [f for f in frames(officer) if f["type"] == "job"]
    assert [(f["change"], f["job"]["status"]) for f in jobs] == [
        ("updated", "en_route"),
        ("updated", "arrived"),
        ("updated", "arrived"),
        ("closed", "closed"),
    ]
    last = jobs[-1]["job"]
    assert last["result"] == "advice_given" and last["closed_at"] == NOW.isoformat()
    assert [(e["text"], e["update_id"]) for e in last["log"]] == [
        ("Spoke to the caller", "u-3"),
        ("All calm", "u-4"),
    ]
    desk = [f["incident"]["status"] for f in frames(supervisor) if f["type"] == "incident"]
    assert desk == ["en_route", "arrived", "arrived", "closed"]
    # each update written is in the audit trail once (the repeats wrote nothing)
    acts = [r for r in rig.core.audit.drain() if r.action is AuditAction.JOB_UPDATE]
    assert [(r.actor, r.object_type, r.object_id, r.detail["update_id"]) for r in acts] == [
        ("OFF-1", AuditObject.INCIDENT, iid, f"u-{n}") for n in range(1, 5)
    ]
    assert acts[2].reason == "Spoke to the caller" and acts[3].detail["result"] == "advice_given"


async def test_an_officer_cannot_update_someone_elses_job(rig: Rig) -> None:
    inc = incident(rig, units=["OFF-2"], event="assigned")
    officer = rig.connect(Role.OFFICER, "OFF-1")
    for target in (inc["incident_id"], "INC-NOWHERE"):
        answer = await rig.send(officer, job_update(target, "u-x", "arrived"))
        assert answer["type"] == "error" and answer["code"] == "not_found"
        assert answer["update_id"] == "u-x"
    assert rig.sink.incidents == []
    for role in (Role.RTIC_ANALYST, Role.SUPERVISOR, Role.CASE_OFFICER, Role.CITIZEN):
        someone = rig.connect(role, "OFF-2")  # even with the unit's id as subject
        answer = await rig.send(someone, job_update(inc["incident_id"], "u-y", "arrived"))
        assert (answer["type"], answer["code"]) == ("error", "forbidden"), role
    assert rig.sink.incidents == []


async def test_who_may_assign(rig: Rig) -> None:
    brum = incident(rig)
    ping(rig, "OFF-1")
    for role in (Role.OFFICER, Role.CASE_OFFICER, Role.CITIZEN, Role.CONTACT_HANDLER):
        answer = await rig.send(rig.connect(role, "x"), assign(brum["incident_id"], "OFF-1"))
        assert (answer["type"], answer["code"]) == ("error", "forbidden"), role
    elsewhere = rig.connect(Role.SUPERVISOR, "sup-cov", (COVENTRY,))
    answer = await rig.send(elsewhere, assign(brum["incident_id"], "OFF-1"))
    assert (answer["type"], answer["code"]) == ("error", "not_found")
    nobody = await rig.send(rig.connect(Role.RTIC_ANALYST, "an"), assign(brum["incident_id"], "X"))
    assert (nobody["code"], nobody["officer_id"]) == ("not_found", "X")
    assert rig.sink.incidents == []
    here = rig.connect(Role.SUPERVISOR, "sup-brum", (BRUM,))
    answer = await rig.send(here, assign(brum["incident_id"], "OFF-1"))
    assert answer["type"] == "assigned"
    anywhere = rig.connect(Role.SUPERVISOR, "sup-all")  # no areas: the whole force
    rig.echo()
    again = await rig.send(anywhere, assign(brum["incident_id"], "OFF-1", "as-2"))
    assert again["duplicate"] is True  # already a unit: nothing written
    assert len(rig.sink.incidents) == 1


async def test_a_position_is_the_tokens_officer_and_nobody_elses(rig: Rig) -> None:
    ping(rig, "OFF-1", callsign="BW-21")
    officer = rig.connect(Role.OFFICER, "OFF-1")
    msg = {
        "type": "position",
        "officer_id": "OFF-2",  # not a field: ignored
        "lat": 52.49,
        "lon": -1.89,
        "at": (NOW + timedelta(hours=1)).isoformat(),  # a clock ahead: now
        "status": "committed",
    }
    answer = await rig.send(officer, msg)
    assert answer == {"type": "position_ack", "at": NOW.isoformat()}
    (written,) = rig.sink.positions
    assert written == {
        "officer_id": "OFF-1",
        "at": NOW.isoformat(),
        "lat": 52.49,
        "lon": -1.89,
        "status": "committed",
        "callsign": "BW-21",
    }
    for role in (Role.RTIC_ANALYST, Role.SUPERVISOR, Role.CITIZEN):
        refused = await rig.send(rig.connect(role, "OFF-1"), msg)
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert len(rig.sink.positions) == 1


async def test_updates_wait_for_the_replay_and_survive_outages(rig: Rig) -> None:
    inc = incident(rig, units=["OFF-1"], event="assigned")
    officer = rig.connect(Role.OFFICER, "OFF-1")
    rig.jobs.ready = False
    answer = await rig.send(officer, job_update(inc["incident_id"], "u-1", "arrived"))
    assert answer["code"] == "unavailable" and officer.errors == 0
    rig.jobs.ready = True
    rig.sink.fail = True
    answer = await rig.send(officer, job_update(inc["incident_id"], "u-1", "arrived"))
    assert answer["code"] == "unavailable"
    assert rig.once.states == {}  # released: the device sends it again
    rig.sink.fail = False
    rig.once.fail = True
    answer = await rig.send(officer, job_update(inc["incident_id"], "u-1", "arrived"))
    assert answer["code"] == "unavailable"
    rig.once.fail = False
    answer = await rig.send(officer, job_update(inc["incident_id"], "u-1", "arrived"))
    assert answer["duplicate"] is False
    assert len(rig.sink.incidents) == 1


async def test_an_id_claimed_by_another_gateway_is_in_progress(rig: Rig) -> None:
    inc = incident(rig, units=["OFF-1"], event="assigned")
    officer = rig.connect(Role.OFFICER, "OFF-1")
    rig.once.states["job:OFF-1:u-1"] = "pending"
    answer = await rig.send(officer, job_update(inc["incident_id"], "u-1", "arrived"))
    assert answer["code"] == "in_progress"
    assert rig.sink.incidents == []


def test_enrichment_shows_markers_and_history_and_moves_an_incident_to_its_areas(
    rig: Rig,
) -> None:
    inc = incident(rig)
    enriched = {
        **inc,
        "enrichment": {
            "kind": "incident",
            "area_codes": [COVENTRY],
            "history": {
                "markers": [{"id": "m1", "marker": "weapons", "address": "1 High Street"}],
                "calls_at_address": {"count": 3, "recent": ["a", "b", "c"]},
            },
            "reference_version": "x",
            "enriched_at": NOW.isoformat(),
        },
    }
    supervisor = rig.connect(Role.SUPERVISOR, "sup-cov", (COVENTRY,))
    rig.subscribe(supervisor)
    rig.jobs.read("enriched", enriched)
    (update,) = frames(supervisor)
    assert update["incident"]["markers"] == [{"marker": "weapons", "address": "1 High Street"}]
    assert update["incident"]["history"] == {"calls_at_address": 3}
    rig.jobs.read("enriched", enriched)  # the same again: nothing new
    assert frames(supervisor) == []
