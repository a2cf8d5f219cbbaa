"""The desk's presence: ``open`` tells the analysts and supervisors who were sent an
alert who else has it open (``working`` frames), and nobody else."""

from __future__ import annotations

from typing import Any

from push.fanout import Client, Fanout
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW
from tests.unit.push.test_fanout import alert, drain, make_core, reply
from tests.unit.push.test_fanout_records import connect


def working(c: Client) -> list[dict[str, Any]]:
    return [f for f in drain(c) if f["type"] == "working"]


def test_opening_an_alert_tells_everyone_it_was_sent_to_who_has_it_open() -> None:
    core = make_core()
    an1 = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    sup = connect(core, Principal("sup-1", Role.SUPERVISOR))
    late = connect(core, Principal("an-late", Role.RTIC_ANALYST))
    core.publish_alert(alert("a1"))
    drain(an1), drain(sup)
    late.sent_alerts.clear()  # as if it connected after the alert and never resumed it
    drain(late)
    assert reply(core, an1, {"type": "open", "alert_id": "a1"}) == {
        "type": "opened",
        "alert_id": "a1",
    }
    people = [{"sub": "an-1", "role": "rtic_analyst", "since": NOW.isoformat()}]
    assert working(sup) == [{"type": "working", "alert_id": "a1", "people": people}]
    assert working(an1) == [{"type": "working", "alert_id": "a1", "people": people}]
    assert working(late) == []  # never sent the alert: not told who works it

    reply(core, sup, {"type": "open", "alert_id": "a1"})
    (seen,) = working(an1)
    assert [p["sub"] for p in seen["people"]] == ["an-1", "sup-1"]
    reply(core, sup, {"type": "open", "alert_id": "a1"})  # again: nothing changed, no frame
    assert working(an1) == []


def test_presence_moves_with_the_next_open_and_ends_on_disconnect() -> None:
    core = make_core()
    an1 = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    an2 = connect(core, Principal("an-2", Role.RTIC_ANALYST))
    core.publish_alert(alert("a1"))
    core.publish_alert(alert("a2"))
    reply(core, an1, {"type": "open", "alert_id": "a1"})
    reply(core, an2, {"type": "open", "alert_id": "a1"})
    drain(an2)
    reply(core, an1, {"type": "open", "alert_id": "a2"})
    frames = {f["alert_id"]: f["people"] for f in working(an2)}
    assert [p["sub"] for p in frames["a1"]] == ["an-2"]
    assert [p["sub"] for p in frames["a2"]] == ["an-1"]
    core.disconnect(an1)
    assert working(an2) == [{"type": "working", "alert_id": "a2", "people": []}]
    assert core.working == {"a1": {an2: NOW}}
    core.disconnect(an2)
    assert core.working == {}


def test_one_person_on_two_screens_is_listed_once_and_officers_get_no_frames() -> None:
    core: Fanout = make_core()
    tab1 = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    tab2 = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    officer = connect(core, Principal("OFF-1", Role.OFFICER), {"areas": ["E08000025"]})
    core.publish_alert({**alert("a1"), "audience": {"roles": ["rtic_analyst", "officer"]}})
    drain(officer)
    reply(core, tab1, {"type": "open", "alert_id": "a1"})
    reply(core, tab2, {"type": "open", "alert_id": "a1"})
    reply(core, officer, {"type": "open", "alert_id": "a1"})
    *_, last = working(tab1)
    assert [p["sub"] for p in last["people"]] == ["an-1", "OFF-1"]
    assert working(officer) == []
