"""The fan-out core's part in the records: audit of deliveries and acts, ``open``,
``case_update`` frames to the right clients only, and clients of revoked tokens closed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from push.access import CaseScope
from push.fanout import CLOSE_INVALID_TOKEN, Client, Fanout
from records.protocols import Revocations
from rtic.casework import AuditAction, AuditObject
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW
from tests.unit.push.conftest import BRUM
from tests.unit.push.test_fanout import Closes, alert, drain, make_core, reply

REF = "WM-2026-0000001"


def connect(core: Fanout, who: Principal, subscribe: dict[str, Any] | None = None) -> Client:
    c = core.connect(who, on_close=Closes(), origin="10.0.0.7")
    drain(c)  # hello
    reply(core, c, {"type": "subscribe", **(subscribe or {})})
    return c


def test_one_delivery_record_per_alert_version_listing_the_clients_reached() -> None:
    core = make_core()
    an1, an2 = (
        connect(core, Principal("an-1", Role.RTIC_ANALYST)),
        connect(core, Principal("an-2", Role.RTIC_ANALYST)),
    )
    officer = connect(core, Principal("OFF-9", Role.OFFICER))  # not for them
    core.publish_alert(alert("a1"))
    core.publish_alert(alert("a1"))  # a redelivery: not delivered, not recorded again
    core.publish_alert({**alert("a1"), "version": 2})
    (v1, v2) = core.audit.drain()
    assert v1.action is AuditAction.ALERT_DELIVERED and v1.object_id == "a1"
    assert {r["sub"] for r in v1.detail["recipients"]} == {"an-1", "an-2"}
    assert {r["origin"] for r in v1.detail["recipients"]} == {"10.0.0.7"}
    assert {r["connection"] for r in v1.detail["recipients"]} == {an1.connection, an2.connection}
    assert v2.detail["version"] == 2 and v2.detail["count"] == 2
    assert "OFF-9" not in str(v1.detail) and drain(officer) == []


def test_a_resumed_alert_is_recorded_as_delivered_to_that_client() -> None:
    core = make_core()
    core.publish_alert(alert("a1"))
    assert core.audit.drain() == []  # nobody connected: delivered to no one
    late = connect(core, Principal("an-3", Role.RTIC_ANALYST))
    reply(core, late, {"type": "resume", "since": (NOW - timedelta(hours=1)).isoformat()})
    (record,) = core.audit.drain()
    assert [r["sub"] for r in record.detail["recipients"]] == ["an-3"]


def test_open_ack_and_snooze_are_audited_with_who_where_and_why() -> None:
    core = make_core()
    an = connect(core, Principal("an-1", Role.RTIC_ANALYST, jti="t1"))
    core.publish_alert(alert("a1"))
    core.audit.drain()
    assert reply(core, an, {"type": "open", "alert_id": "a1"}) == {
        "type": "opened",
        "alert_id": "a1",
    }
    reply(core, an, {"type": "ack", "alert_id": "a1", "action": "assign", "note": "BW-21"})
    reply(core, an, {"type": "ack", "alert_id": "a1", "action": "dismiss"})
    snoozed = reply(
        core, an, {"type": "snooze", "vrm": "AB12CDE", "minutes": 30, "reason": "known car"}
    )
    reply(core, an, {"type": "unsnooze", "snooze_id": snoozed["snooze_id"]})
    opened, assigned, dismissed, snooze, unsnooze = core.audit.drain()
    assert (opened.action, opened.object_type, opened.object_id) == (
        AuditAction.ALERT_OPENED,
        AuditObject.ALERT,
        "a1",
    )
    assert (opened.actor, opened.role, opened.origin, opened.at) == (
        "an-1",
        Role.RTIC_ANALYST,
        "10.0.0.7",
        NOW,
    )
    assert opened.detail == {"version": 1}
    assert (assigned.action, assigned.reason) == (AuditAction.ALERT_ASSIGN, "BW-21")
    assert dismissed.action is AuditAction.ALERT_DISMISS
    assert (snooze.action, snooze.object_id, snooze.reason) == (
        AuditAction.SNOOZE,
        snoozed["snooze_id"],
        "known car",
    )
    assert snooze.detail["vrm"] == "AB12CDE" and snooze.detail["until"] == snoozed["until"]
    assert (unsnooze.action, unsnooze.object_id) == (AuditAction.UNSNOOZE, snoozed["snooze_id"])
    assert len({r.audit_id for r in (opened, assigned, dismissed, snooze, unsnooze)}) == 5


def test_refused_acts_are_not_recorded_and_citizens_cannot_open_alerts() -> None:
    core = make_core()
    citizen = connect(core, Principal("cit", Role.CITIZEN, cases=(REF,)))
    officer = connect(core, Principal("OFF-1", Role.OFFICER))
    assert reply(core, citizen, {"type": "open", "alert_id": "a1"})["code"] == "forbidden"
    assert reply(core, citizen, {"type": "ack", "alert_id": "a1"})["code"] == "bad_ack"
    assert reply(core, officer, {"type": "snooze", "area": BRUM, "minutes": 5})["code"] == (
        "forbidden"
    )
    assert reply(core, officer, {"type": "open"})["code"] == "bad_open"
    assert core.audit.drain() == []


def update(change: str = "timeline", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "update_id": f"u-{change}",
        "case_ref": REF,
        "at": NOW.isoformat(),
        "change": change,
        "status": "under_investigation",
        "category": "burglary",
        "officer_in_charge": "OFF-1",
        "area": [BRUM],
        "entry": {
            "entry_id": "e1",
            "case_ref": REF,
            "kind": "officer_attended",
            "at": NOW.isoformat(),
            "text": "An officer visited",
            "citizen_visible": True,
            "staff_note": "suspect known to us",
        },
    }
    return {**base, **overrides}


def test_case_updates_reach_exactly_those_who_may_see_the_case() -> None:
    core = make_core()
    scope = CaseScope(REF, "OFF-1", frozenset({"OFF-2"}), frozenset({BRUM}))
    sees = {
        "in charge": connect(core, Principal("OFF-1", Role.OFFICER)),
        "attending": connect(core, Principal("OFF-2", Role.OFFICER)),
        "case officer": connect(core, Principal("OFF-1", Role.CASE_OFFICER)),
        "supervisor here": connect(core, Principal("s1", Role.SUPERVISOR, areas=(BRUM,))),
        "force supervisor": connect(core, Principal("s2", Role.SUPERVISOR)),
        "citizen": connect(core, Principal("cit", Role.CITIZEN, cases=(REF,))),
    }
    blind = {
        "other officer": connect(core, Principal("OFF-3", Role.OFFICER)),
        "other case officer": connect(core, Principal("co", Role.CASE_OFFICER)),
        "supervisor elsewhere": connect(core, Principal("s3", Role.SUPERVISOR, areas=("X",))),
        "analyst": connect(core, Principal("an", Role.RTIC_ANALYST)),
        "other citizen": connect(core, Principal("cit2", Role.CITIZEN, cases=("WM-2026-0000002",))),
        "narrowed away": connect(
            core, Principal("s4", Role.SUPERVISOR), {"cases": ["WM-2026-0000002"]}
        ),
    }
    unsubscribed = core.connect(Principal("OFF-1", Role.OFFICER))
    drain(unsubscribed)
    core.publish_case(update(), scope)
    core.publish_case(update(), scope)  # a redelivery: pushed once
    for name, c in sees.items():
        frames = drain(c)
        assert [f["type"] for f in frames] == ["case_update"], name
    for name, c in {**blind, "unsubscribed": unsubscribed}.items():
        assert drain(c) == [], name


def test_staff_get_the_whole_update_and_a_citizen_only_their_part() -> None:
    core = make_core()
    scope = CaseScope(REF, "OFF-1")
    officer = connect(core, Principal("OFF-1", Role.OFFICER))
    citizen = connect(core, Principal("cit", Role.CITIZEN, cases=(REF,)))
    core.publish_case(update(), scope)
    (staff_frame,) = drain(officer)
    assert staff_frame == {"type": "case_update", **update()}
    (citizen_frame,) = drain(citizen)
    assert citizen_frame == {
        "type": "case_update",
        "case_ref": REF,
        "status": "under_investigation",
        "at": NOW.isoformat(),
        "change": "timeline",
        "entry": {"at": NOW.isoformat(), "kind": "officer_attended", "text": "An officer visited"},
    }
    hidden = update(update_id="u-hidden")
    hidden["entry"] = {**hidden["entry"], "citizen_visible": False}
    core.publish_case(hidden, scope)
    assert len(drain(officer)) == 1 and drain(citizen) == []
    core.publish_case(update("link", entry=None, link={"kind": "alert", "id": "a1"}), scope)
    assert len(drain(officer)) == 1 and drain(citizen) == []


def test_a_case_update_without_an_id_or_reference_is_ignored() -> None:
    core = make_core()
    officer = connect(core, Principal("OFF-1", Role.OFFICER))
    core.publish_case(update(update_id=None), CaseScope(REF, "OFF-1"))
    core.publish_case(update(), CaseScope("", "OFF-1"))
    assert drain(officer) == []


def test_publish_case_from_the_update_alone_uses_the_scope_it_states() -> None:
    core = make_core()
    officer = connect(core, Principal("OFF-1", Role.OFFICER))
    attending = connect(core, Principal("OFF-2", Role.OFFICER))
    core.publish("case", update())
    assert len(drain(officer)) == 1 and drain(attending) == []


def test_a_client_too_slow_for_case_updates_is_closed_1013() -> None:
    core = make_core(queue_size=10)
    officer = connect(core, Principal("OFF-1", Role.OFFICER))
    for i in range(12):
        core.publish_case(update(update_id=f"u{i}"), CaseScope(REF, "OFF-1"))
    assert officer.close_request is not None and officer.close_request[0] == 1013


def test_clients_of_revoked_tokens_are_closed_with_invalid_token() -> None:
    core = make_core()
    revoked = connect(core, Principal("an-1", Role.RTIC_ANALYST, jti="t-revoked"))
    everyone_of = connect(core, Principal("OFF-7", Role.OFFICER, jti="t2", issued_at=NOW))
    newer = connect(
        core, Principal("OFF-7", Role.OFFICER, jti="t3", issued_at=NOW + timedelta(hours=1))
    )
    kept = connect(core, Principal("an-2", Role.RTIC_ANALYST, jti="t4"))
    closed = core.revoke(
        Revocations(frozenset({"t-revoked"}), {"OFF-7": NOW + timedelta(minutes=1)})
    )
    assert closed == 2
    assert revoked.close_request == CLOSE_INVALID_TOKEN == (1008, "invalid token")
    assert everyone_of.close_request == CLOSE_INVALID_TOKEN
    assert newer.close_request is None and kept.close_request is None
    assert core.revoke(Revocations(frozenset({"t-revoked"}))) == 0  # already closing
    assert core.metrics.value("rtic_gateway_revoked_closes_total") == 2
