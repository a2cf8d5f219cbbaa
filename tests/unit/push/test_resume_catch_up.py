"""Resume at gateway start and ``seen`` (issue 14): a starting gateway answers no
``resume`` until it has read its recent alerts again, never pushes what it reads
again live, and never resends what the client names as seen."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from push.fanout import Client, Fanout
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW
from tests.unit.push.test_fanout import alert, drain, make_core, reply
from tests.unit.push.test_fanout_records import connect


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def dated(alert_id: str, minutes: float, version: int = 1) -> dict[str, Any]:
    return {
        **alert(alert_id),
        "created_at": (NOW + timedelta(minutes=minutes)).isoformat(),
        "version": version,
    }


def ids(frames: list[dict[str, Any]]) -> list[Any]:
    return [f.get("alert_id", f["type"]) for f in frames]


def analyst(core: Fanout, sub: str = "an-1") -> Client:
    return connect(core, Principal(sub, Role.RTIC_ANALYST))


def test_a_resume_before_catch_up_waits_and_is_answered_from_the_whole_buffer() -> None:
    core = make_core(queue_size=100)
    core.replaying(cut=False)
    early = analyst(core)
    for i in range(3):  # read again while the client waits: kept, not pushed
        core.publish_alert(dated(f"a{i}", i), live=False)
    assert core.on_client_message(early, b'{"type": "resume", "last_alert_id": "a0"}') is None
    assert drain(early) == []
    for i in range(3, 6):
        core.publish_alert(dated(f"a{i}", i), live=False)
    core.publish_alert(dated("live1", 9))  # past the end at start: pushed at once
    assert ids(drain(early)) == ["live1"]
    core.caught_up()
    assert ids(drain(early)) == ["a1", "a2", "a3", "a4", "a5", "resumed"]
    assert core.on_client_message(early, b'{"type": "resume", "last_alert_id": "a5"}') is not None
    assert drain(early) == []  # live1 already sent on this connection


def test_alerts_read_again_at_start_are_not_pushed_to_anyone() -> None:
    core = make_core(queue_size=100)
    core.replaying(cut=False)
    watching = analyst(core)
    for i in range(5):
        core.publish_alert(dated(f"old{i}", i), live=False)
    core.caught_up()
    assert drain(watching) == []
    assert list(core.recent) == [f"old{i}" for i in range(5)]  # kept for resume


def test_a_held_resume_is_answered_not_ready_after_the_wait() -> None:
    clock = Clock()
    core = make_core(clock=clock, resume_wait_s=10.0)
    core.replaying(cut=False)
    c = analyst(core)
    assert core.on_client_message(c, b'{"type": "resume", "last_alert_id": "x"}') is None
    clock.now += timedelta(seconds=9)
    assert core.expire_resumes() == 0 and drain(c) == []
    clock.now += timedelta(seconds=2)
    assert core.expire_resumes() == 1
    (answer,) = drain(c)
    assert (answer["type"], answer["code"]) == ("error", "not_ready")
    assert answer["retry_after_s"] > 0
    assert c.errors == 0  # not the client's fault
    core.caught_up()
    assert drain(c) == []  # answered once


async def test_a_held_resume_expires_by_itself_on_a_running_loop() -> None:
    import asyncio

    core = make_core(resume_wait_s=0.05, clock=lambda: datetime.now(NOW.tzinfo))
    core.replaying(cut=False)
    c = analyst(core)
    assert core.on_client_message(c, b'{"type": "resume", "since": "2026-01-01T00:00:00Z"}') is None
    await asyncio.sleep(0.3)
    assert [f["code"] for f in drain(c)] == ["not_ready"]


def test_a_client_gone_while_held_is_not_answered() -> None:
    core = make_core()
    core.replaying(cut=False)
    c = analyst(core)
    core.on_client_message(c, b'{"type": "resume", "last_alert_id": "x"}')
    core.disconnect(c)
    core.caught_up()
    assert drain(c) == []


def test_resume_never_resends_what_the_client_names_as_seen() -> None:
    core = make_core(queue_size=100)
    for i in range(6):
        core.publish_alert(dated(f"a{i}", i))
    core.publish_alert(dated("a3", 3, version=2))  # a3 updated: now the newest in the buffer
    c = analyst(core)
    msg = {"type": "resume", "last_alert_id": "a1", "seen": {"a2": 1, "a4": 1, "a3": 1, "zz": 4}}
    assert reply(core, c, msg) == {"type": "resumed", "count": 2, "complete": True}
    frames = drain(c)
    assert ids(frames) == ["a5", "a3"]  # a2, a4 seen; a3 seen at version 1 only
    assert frames[1]["version"] == 2
    again = analyst(core, "an-2")
    msg = {"type": "resume", "last_alert_id": "a1", "seen": {"a3": 2, "a5": 1, "a2": 1, "a4": 1}}
    assert reply(core, again, msg) == {"type": "resumed", "count": 0, "complete": True}


def test_a_resume_also_sends_what_was_made_after_the_last_but_read_before_it() -> None:
    """After a restart the buffer is in the order the gateway read its partitions, not
    the order the alerts were made: "after last_alert_id" alone would miss ``later``,
    made after ``last`` on another partition but read before it. The fault suite found
    this (a gateway killed under load, six partitions)."""
    core = make_core(queue_size=100)
    core.publish_alert(dated("old", 0))
    core.publish_alert(dated("later", 6))  # partition 1, read first
    core.publish_alert(dated("last", 5))  # partition 0: the client's last
    core.publish_alert(dated("after", 7))
    c = analyst(core)
    since = (NOW + timedelta(minutes=1)).isoformat()
    msg = {"type": "resume", "last_alert_id": "last", "since": since, "seen": {"last": 1}}
    assert reply(core, c, msg) == {"type": "resumed", "count": 2, "complete": True}
    assert ids(drain(c)) == ["later", "after"]
    plain = analyst(core, "an-2")  # without since or seen: the same; "old" was made before
    msg = {"type": "resume", "last_alert_id": "last"}
    assert reply(core, plain, msg) == {"type": "resumed", "count": 2, "complete": True}
    assert ids(drain(plain)) == ["later", "after"]


def test_an_unknown_last_alert_id_with_since_sends_what_came_after_since() -> None:
    core = make_core(queue_size=100, resume_buffer=4)
    for i in range(6):
        core.publish_alert(dated(f"a{i}", i))  # a0 and a1 leave the buffer
    c = analyst(core)
    since = (NOW + timedelta(minutes=2, seconds=30)).isoformat()
    out = reply(core, c, {"type": "resume", "last_alert_id": "gone", "since": since})
    assert out == {"type": "resumed", "count": 3, "complete": True}  # nothing lost after since
    assert ids(drain(c)) == ["a3", "a4", "a5"]
    earlier = (NOW + timedelta(seconds=30)).isoformat()  # a1 was created after it: forgotten
    c2 = analyst(core, "an-2")
    out = reply(core, c2, {"type": "resume", "last_alert_id": "gone", "since": earlier})
    assert out == {"type": "resumed", "count": 4, "complete": False}
    c3 = analyst(core, "an-3")  # no since: everything kept, honestly incomplete
    assert reply(core, c3, {"type": "resume", "last_alert_id": "gone"})["complete"] is False
    assert len(drain(c3)) == 4


def test_a_start_that_does_not_read_the_topic_from_its_beginning_is_incomplete_before_it() -> None:
    core = make_core(queue_size=100)
    core.replaying(cut=True)
    for i in range(3, 6):
        core.publish_alert(dated(f"a{i}", i), live=False)
    core.caught_up()
    c = analyst(core)
    before = (NOW + timedelta(minutes=1)).isoformat()
    assert reply(core, c, {"type": "resume", "since": before})["complete"] is False
    after = (NOW + timedelta(minutes=3)).isoformat()
    assert reply(core, analyst(core, "an-2"), {"type": "resume", "since": after})["complete"]


@pytest.mark.parametrize(
    ("seen", "words"),
    [
        ({f"a{i}": 1 for i in range(1001)}, "at most 1000"),
        ({"a1": 0}, "whole number from 1"),
        ({"a1": "1"}, "whole number from 1"),
        (["a1"], "'seen' must be an object"),
        ({"x" * 201: 1}, "'seen' must be an object"),
    ],
)
def test_a_bad_seen_is_refused(seen: Any, words: str) -> None:
    core = make_core()
    out = reply(core, analyst(core), {"type": "resume", "last_alert_id": "a1", "seen": seen})
    assert out["code"] == "bad_resume" and words in out["message"], out


def test_seen_null_is_nothing_seen() -> None:
    core = make_core()
    core.publish_alert(dated("a1", 1))
    c = analyst(core)
    out = reply(core, c, {"type": "resume", "since": NOW.isoformat(), "seen": None})
    assert out == {"type": "resumed", "count": 1, "complete": True}
