"""Acting on an alert needs the right to see it (issue 14): ``ack`` (ack, assign,
dismiss), ``open``, ``verify`` and a dispatch ``assign`` naming an alert. An alert
the gateway does not know and one the client may not see get the same answer,
``not_found``, and nothing is written or audited."""

from __future__ import annotations

from typing import Any

import pytest

from push.fanout import Client, Fanout
from push.verify import Verifications
from rtic.schemas import Role, VerificationV1
from rtic.tokens import Principal
from tests.unit.push.test_dispatch import TARGETS, Sink, areas_at, assign, incident, ping
from tests.unit.push.test_dispatch import Rig as DispatchRig
from tests.unit.push.test_fanout import RecordingSink, alert, drain, make_core, reply
from tests.unit.push.test_fanout_records import connect

BRUM, COVENTRY = "E08000025", "E08000026"
NEAR_THE_ALERT = {"lat": 52.481, "lon": -1.891}  # the test alert is at 52.48, -1.89
IN_COVENTRY = {"lat": 52.4081, "lon": -1.5106}


def acts(core: Fanout) -> list[str]:
    """The actions recorded in the audit buffer so far."""
    return [r.action.value for r in core.audit.drain(1000) if r.action.value != "alert_delivered"]


def officer(core: Fanout, sub: str, where: dict[str, float], **kw: Any) -> Client:
    return connect(core, Principal(sub, Role.OFFICER, **kw), {"radius_m": 1000, "position": where})


def answer_to(core: Fanout, c: Client, msg_type: str, alert_id: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": msg_type, "alert_id": alert_id}
    if msg_type == "ack":
        msg["action"] = "dismiss"
    return reply(core, c, msg)


@pytest.mark.parametrize("msg_type", ["ack", "open"])
def test_an_unknown_alert_is_not_found_and_nothing_is_written(msg_type: str) -> None:
    core = make_core()
    analyst = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    out = answer_to(core, analyst, msg_type, "no-such-alert")
    assert (out["type"], out["code"]) == ("error", "not_found")
    assert isinstance(core.sink, RecordingSink) and core.sink.acks == []
    assert acts(core) == []


@pytest.mark.parametrize("msg_type", ["ack", "open"])
def test_another_officers_alert_is_not_found_exactly_as_an_unknown_one(msg_type: str) -> None:
    core = make_core()
    near = officer(core, "OFF-NEAR", NEAR_THE_ALERT)
    far = officer(core, "OFF-FAR", IN_COVENTRY)
    core.publish_alert(alert("a1"))
    assert [f["alert_id"] for f in drain(near)] == ["a1"] and drain(far) == []
    theirs = answer_to(core, far, msg_type, "a1")
    unknown = answer_to(core, far, msg_type, "a9")
    assert theirs["code"] == unknown["code"] == "not_found"
    assert theirs["message"].replace("a1", "X") == unknown["message"].replace("a9", "X")
    assert isinstance(core.sink, RecordingSink) and core.sink.acks == []
    assert acts(core) == []
    mine = answer_to(core, near, msg_type, "a1")
    assert mine["type"] == ("acked" if msg_type == "ack" else "opened")
    if msg_type == "ack":
        (ack,) = core.sink.acks
        assert (ack.alert_id, ack.by, ack.action) == ("a1", "OFF-NEAR", "dismiss")


def test_an_officer_may_act_on_what_was_sent_even_after_moving_away() -> None:
    core = make_core()
    near = officer(core, "OFF-1", NEAR_THE_ALERT)
    core.publish_alert(alert("a1"))
    reply(core, near, {"type": "subscribe", "radius_m": 1000, "position": IN_COVENTRY})
    assert answer_to(core, near, "ack", "a1")["type"] == "acked"  # sent on this connection
    again = officer(core, "OFF-1", IN_COVENTRY)  # a new connection, far away: never sent it
    assert answer_to(core, again, "ack", "a1")["code"] == "not_found"


def test_an_officer_named_by_the_alert_may_act_on_it_whatever_their_scope() -> None:
    core = make_core()
    named = connect(core, Principal("OFF-7", Role.OFFICER))  # no area, no radius
    core.publish_alert({**alert("a1"), "audience": {"roles": [], "officers": ["OFF-7"]}})
    assert answer_to(core, named, "ack", "a1")["type"] == "acked"


def test_who_else_may_act_analysts_supervisors_case_officers_by_audience() -> None:
    core = make_core()
    core.publish_alert(alert("a1"))  # audience: analysts and officers
    core.publish_alert({**alert("c1"), "audience": {"roles": ["case_officer"]}})
    # An analyst subscribed to critical alerts only was never sent a1: may still act.
    critical_only = connect(
        core, Principal("an-1", Role.RTIC_ANALYST), {"severities": ["critical"]}
    )
    supervisor = connect(core, Principal("sup-1", Role.SUPERVISOR), {"areas": [COVENTRY]})
    assert answer_to(core, critical_only, "ack", "a1")["type"] == "acked"
    assert answer_to(core, supervisor, "open", "a1")["type"] == "opened"
    case_officer = connect(core, Principal("co-1", Role.CASE_OFFICER))
    assert answer_to(core, case_officer, "ack", "c1")["type"] == "acked"
    assert answer_to(core, case_officer, "ack", "a1")["code"] == "not_found"
    handler = connect(core, Principal("ch-1", Role.CONTACT_HANDLER))
    assert answer_to(core, handler, "ack", "a1")["code"] == "not_found"
    assert answer_to(core, handler, "open", "a1")["code"] == "not_found"
    citizen = connect(core, Principal("cit-1", Role.CITIZEN))
    assert answer_to(core, citizen, "ack", "a1")["code"] == "bad_ack"  # as before
    assert answer_to(core, citizen, "open", "a1")["code"] == "forbidden"


def test_an_alert_older_than_the_resume_buffer_is_still_known() -> None:
    core = make_core(resume_buffer=2)
    analyst = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    for i in range(5):
        core.publish_alert(alert(f"a{i}"))
    assert "a0" not in core.recent
    assert answer_to(core, analyst, "ack", "a0")["type"] == "acked"


def test_verify_follows_the_same_rule() -> None:
    core = make_core()
    sink: list[VerificationV1] = []

    class Written:
        def verification(self, verification: VerificationV1) -> None:
            sink.append(verification)

    Verifications(core, Written())
    check = {"state": "pending", "vrm_read": "AB12CDE", "vrm_listed": "AB12CDE"}
    core.publish_alert({**alert("h1"), "details": {"verification": check}})
    far = officer(core, "OFF-FAR", IN_COVENTRY)
    out = reply(core, far, {"type": "verify", "alert_id": "h1", "outcome": "verified"})
    assert out["code"] == "not_found" and sink == []
    near = officer(core, "OFF-NEAR", NEAR_THE_ALERT)
    out = reply(core, near, {"type": "verify", "alert_id": "h1", "outcome": "verified"})
    assert out["type"] == "verify_ack" and len(sink) == 1


async def test_a_dispatch_assign_naming_an_alert_needs_the_right_to_see_it() -> None:
    from push.dispatch import Dispatch, MemoryOnce

    core = make_core(queue_size=100)
    sink, once = Sink(), MemoryOnce()
    jobs = Dispatch(core, sink, once, TARGETS, areas_at)
    jobs.replayed()
    rig = DispatchRig(core, jobs, sink, once)
    brum = incident(rig)
    ping(rig, "OFF-1")
    desk = rig.connect(Role.RTIC_ANALYST, "an-1")
    named = {**assign(brum["incident_id"], "OFF-1"), "alert_id": "no-such-alert"}
    answer = await rig.send(desk, named)
    assert (answer["code"], answer["alert_id"]) == ("not_found", "no-such-alert")
    assert sink.incidents == []
    core.publish_alert(alert("a1"))
    answer = await rig.send(desk, {**named, "alert_id": "a1", "assign_id": "as-2"})
    assert answer["type"] == "assigned" and sink.incidents[0]["alert_id"] == "a1"
