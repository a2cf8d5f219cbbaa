"""The fan-out core: client messages and alerts, without sockets or Kafka.

``Client`` only has a queue and a close hook: ``on_client_message`` and the fan-out
are driven directly. The web edge is tested in test_web.py, the socket path end to
end in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from push.fanout import CLOSE_TOO_MANY_ERRORS, MAX_CLIENT_ERRORS, Client, Fanout, frame
from rtic.schemas import AlertAckV1, ReferenceChangeV1, Role, SnoozeV1
from rtic.settings import Settings
from rtic.tokens import Principal
from rules.catalogue import default_rules
from tests.conftest import NOW

RULE_IDS = frozenset(r.spec.rule_id for r in default_rules(Settings()))


class RecordingSink:
    """The core's ChangeSink as two lists (the Kafka edge in production)."""

    def __init__(self) -> None:
        self.acks: list[AlertAckV1] = []
        self.references: list[ReferenceChangeV1] = []

    def ack(self, ack: AlertAckV1) -> None:
        self.acks.append(ack)

    def reference(self, change: ReferenceChangeV1) -> None:
        self.references.append(change)

    async def settled(self) -> None:
        return None


def make_core(**overrides: Any) -> Fanout:
    kw: dict[str, Any] = {
        "sink": RecordingSink(),
        "queue_size": 10,
        "rule_ids": RULE_IDS,
        "clock": lambda: NOW,
    }
    return Fanout(**{**kw, **overrides})


@pytest.fixture
def gateway() -> Iterator[Fanout]:
    yield make_core()


class Closes:
    """A client's close hook that remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def __call__(self, code: int, reason: str) -> None:
        self.calls.append((code, reason))


def client(role: Role = Role.RTIC_ANALYST, sub: str = "an", cases: tuple[str, ...] = ()) -> Client:
    return Client(Principal(sub, role, cases), queue_size=10, on_close=Closes())


def reply(gw: Fanout, c: Client, msg: Any) -> dict[str, Any]:
    raw = msg if isinstance(msg, (str, bytes)) else orjson.dumps(msg)
    out = gw.on_client_message(c, raw)
    assert out is not None
    return orjson.loads(out)


def drain(c: Client) -> list[dict[str, Any]]:
    out = []
    while not c.queue.empty():
        out.append(orjson.loads(c.queue.get_nowait()))
    return out


def test_nonsense_gets_clear_error_frames(gateway: Fanout) -> None:
    c = client()
    assert reply(gateway, c, b"{nope")["code"] == "bad_json"
    assert reply(gateway, c, b"[1]")["code"] == "bad_message"
    assert reply(gateway, c, {"no": "type"})["code"] == "bad_message"
    assert reply(gateway, c, {"type": "teleport"})["code"] == "unknown_type"
    assert (
        reply(gateway, c, {"type": "subscribe", "severities": ["urgent"]})["code"]
        == "bad_subscribe"
    )
    assert reply(gateway, c, {"type": "resume", "last_alert_id": "x"})["code"] == "bad_resume"
    assert c.errors == 6


def test_ping_subscribe_and_ack(gateway: Fanout) -> None:
    c = client()
    assert reply(gateway, c, {"type": "ping"})["type"] == "pong"
    sub = reply(gateway, c, {"type": "subscribe", "severities": ["critical"], "events": True})
    assert sub["type"] == "subscribed" and sub["filters"]["severities"] == ["critical"]
    assert (
        reply(gateway, c, {"type": "ack", "alert_id": "a1", "action": "teleport"})["code"]
        == "bad_ack"
    )
    assert (
        reply(gateway, client(Role.CITIZEN, "cit"), {"type": "ack", "alert_id": "a1"})["code"]
        == "bad_ack"
    )


async def test_ack_is_recorded_through_the_producer(gateway: Fanout) -> None:
    assert isinstance(gateway.sink, RecordingSink)
    recorded = gateway.sink.acks
    gateway.publish_alert(alert("a1"))  # acting on an alert needs the gateway to know it
    out = reply(
        gateway,
        client(sub="an-1"),
        {"type": "ack", "alert_id": "a1", "action": "assign", "note": "BW-21"},
    )
    assert out == {"type": "acked", "alert_id": "a1", "action": "assign"}
    await asyncio.sleep(0)
    ((ack),) = recorded
    assert (ack.alert_id, ack.by, ack.role, ack.action, ack.note) == (
        "a1",
        "an-1",
        "rtic_analyst",
        "assign",
        "BW-21",
    )


def alert(alert_id: str, severity: str = "high") -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "severity": severity,
        "created_at": NOW.isoformat(),
        "area": ["E08000025"],
        "location": {"lat": 52.48, "lon": -1.89},
        "audience": {"roles": ["rtic_analyst", "officer"], "areas": ["E08000025"], "officers": []},
    }


async def test_alerts_fan_out_once_per_id_and_by_access(gateway: Fanout) -> None:
    analyst, officer, unsubscribed = client(), client(Role.OFFICER, "OFF-1"), client()
    reply(gateway, analyst, {"type": "subscribe"})
    reply(gateway, officer, {"type": "subscribe"})  # no area, no radius: nothing for them
    gateway.clients.update({analyst, officer, unsubscribed})
    gateway.publish_alert(alert("a1"))
    gateway.publish_alert(alert("a1"))  # redelivery
    gateway.publish_alert(alert("a2", "low"))
    assert [m["alert_id"] for m in drain(analyst)] == ["a1", "a2"]
    assert drain(officer) == [] and drain(unsubscribed) == []


async def test_resume_sends_what_was_missed(gateway: Fanout) -> None:
    for i in range(5):
        gateway.publish_alert(alert(f"a{i}"))
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    done = reply(gateway, c, {"type": "resume", "last_alert_id": "a2"})
    assert [m["alert_id"] for m in drain(c)] == ["a3", "a4"]
    assert done == {"type": "resumed", "count": 2, "complete": True}
    c2 = client()
    reply(gateway, c2, {"type": "subscribe"})
    assert reply(gateway, c2, {"type": "resume", "last_alert_id": "older"})["complete"] is False
    assert len(drain(c2)) == 5


async def test_a_slow_client_is_closed_not_silently_dropped(gateway: Fanout) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe", "events": True})
    gateway.clients.add(c)
    for i in range(10):
        gateway.publish_enriched(
            {
                "officer_id": f"O{i}",
                "lat": 52.48,
                "lon": -1.89,
                "enrichment": {"kind": "officer_location", "area_codes": []},
            }
        )
    assert c.dropped_events == 5  # events stop at half the queue
    for i in range(10):
        gateway.publish_alert(alert(f"s{i}"))
    await asyncio.sleep(0)
    assert c.overflowed and c.close_request is not None and c.close_request[0] == 1013
    assert c._on_close.calls == [c.close_request]  # type: ignore[attr-defined]


# ---- more nonsense, each answered with its own error code ---------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "bad_json"),
        (b"\xff\xfe{}", "bad_json"),
        ("{'type': 'ping'}", "bad_json"),
        (b'"ping"', "bad_message"),
        (b"null", "bad_message"),
        (b'{"type": 1}', "bad_message"),
        (b'{"type": null}', "bad_message"),
        (b'{"type": "PING"}', "unknown_type"),
        (b'{"type": ""}', "unknown_type"),
    ],
)
def test_each_kind_of_nonsense_gets_its_code(gateway: Fanout, raw: bytes | str, code: str) -> None:
    c = client()
    out = reply(gateway, c, raw)
    assert out["type"] == "error" and out["code"] == code and out["message"]
    assert c.errors == 1


def test_errors_are_counted_per_client_and_good_messages_are_not(gateway: Fanout) -> None:
    noisy, quiet = client(), client()
    for _ in range(3):
        reply(gateway, noisy, b"{nope")
    reply(gateway, quiet, {"type": "ping"})
    assert (noisy.errors, quiet.errors) == (3, 0)


def test_ping_answers_with_the_gateway_clock(gateway: Fanout) -> None:
    assert reply(gateway, client(), {"type": "ping"}) == {"type": "pong", "at": NOW.isoformat()}


def test_subscribe_answers_with_the_filters_understood_and_a_new_one_replaces_it(
    gateway: Fanout,
) -> None:
    c = client(Role.OFFICER, "OFF-1")
    first = reply(
        gateway,
        c,
        {
            "type": "subscribe",
            "areas": ["E08000025"],
            "radius_m": 800,
            "position": {"lat": 52.48, "lon": -1.89},
        },
    )
    assert first["filters"]["areas"] == ["E08000025"] and first["filters"]["radius_m"] == 800.0
    second = reply(gateway, c, {"type": "subscribe"})
    assert second["filters"]["areas"] == [] and c.subscription is not None
    assert c.subscription.radius_m is None


def test_a_bad_subscribe_keeps_the_previous_subscription(gateway: Fanout) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe", "severities": ["critical"]})
    out = reply(gateway, c, {"type": "subscribe", "severities": ["urgent"]})
    assert out["code"] == "bad_subscribe" and "urgent" in out["message"]
    assert c.subscription is not None and c.subscription.severities == {"critical"}


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        ({"type": "resume"}, "last_alert_id or since"),
        ({"type": "resume", "since": "yesterday"}, "ISO 8601"),
        ({"type": "resume", "since": "2026-11-24T21:00:00"}, "timezone"),
        ({"type": "resume", "last_alert_id": 5}, "last_alert_id or since"),
    ],
)
def test_bad_resumes_are_refused(gateway: Fanout, msg: dict[str, Any], words: str) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    out = reply(gateway, c, msg)
    assert out["code"] == "bad_resume" and words in out["message"]


def test_resume_before_subscribe_says_so(gateway: Fanout) -> None:
    out = reply(gateway, client(), {"type": "resume", "since": NOW.isoformat()})
    assert out["code"] == "bad_resume" and "subscribe before resume" in out["message"]


async def test_resume_since_a_time_sends_later_alerts_in_order(gateway: Fanout) -> None:
    for minute in range(4):
        a = alert(f"t{minute}")
        a["created_at"] = (NOW + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
        gateway.publish_alert(a)
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    since = (NOW + timedelta(minutes=1)).isoformat()
    assert reply(gateway, c, {"type": "resume", "since": since}) == {
        "type": "resumed",
        "count": 2,
        "complete": True,
    }
    assert [m["alert_id"] for m in drain(c)] == ["t2", "t3"]


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        ({"type": "ack"}, "alert_id"),
        ({"type": "ack", "alert_id": ""}, "alert_id"),
        ({"type": "ack", "alert_id": 7}, "alert_id"),
        ({"type": "ack", "alert_id": "a1", "note": 5}, "note"),
        ({"type": "ack", "alert_id": "a1", "action": ["ack"]}, "action"),
    ],
)
def test_bad_acks_are_refused(gateway: Fanout, msg: dict[str, Any], words: str) -> None:
    out = reply(gateway, client(), msg)
    assert out["code"] == "bad_ack" and words in out["message"]


def test_a_citizen_cannot_ack_anything(gateway: Fanout) -> None:
    out = reply(
        gateway, client(Role.CITIZEN, "cit"), {"type": "ack", "alert_id": "a1", "action": "ack"}
    )
    assert out["code"] == "bad_ack" and "citizens" in out["message"]


# ---- fan-out: once per id, only where allowed -------------------------------------------


async def test_an_alert_is_queued_once_even_if_resumed_after_it_arrived(gateway: Fanout) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    gateway.clients.add(c)
    gateway.publish_alert(alert("a1"))
    gateway.publish_alert(alert("a2"))
    reply(gateway, c, {"type": "resume", "last_alert_id": "a1"})  # a2 is already queued
    gateway.publish_alert(alert("a2"))
    assert [m["alert_id"] for m in drain(c)] == ["a1", "a2"]
    assert gateway.stats["alerts"] == 2


def test_an_alert_without_a_text_id_is_ignored(gateway: Fanout) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    gateway.clients.add(c)
    for bad_id in (None, 5, ["a"]):
        gateway.publish_alert({**alert("x"), "alert_id": bad_id})
    assert drain(c) == [] and not gateway.recent


def test_the_resume_buffer_is_bounded() -> None:
    gw = make_core(resume_buffer=3)
    for i in range(5):
        gw.publish_alert(alert(f"a{i}"))
    assert list(gw.recent) == ["a2", "a3", "a4"]
    gw.publish_alert(alert("a0"))  # fell out of the buffer: it is new again
    assert list(gw.recent) == ["a3", "a4", "a0"]


async def test_citizens_get_no_alerts_no_events_and_no_acks(gateway: Fanout) -> None:
    citizen = client(Role.CITIZEN, "cit", cases=("CASE-1",))
    reply(gateway, citizen, {"type": "subscribe", "events": True, "cases": ["CASE-1"]})
    gateway.clients.add(citizen)
    everyone = alert("a1")
    everyone["audience"] = {"roles": [r.value for r in Role], "areas": [], "officers": ["cit"]}
    gateway.publish_alert(everyone)
    gateway.publish_enriched(
        {
            "call_id": "C1",
            "lat": 52.48,
            "lon": -1.89,
            "enrichment": {"kind": "call", "area_codes": []},
        }
    )
    gateway.publish_ack({"alert_id": "a1", "action": "ack", "by": "an"})
    assert drain(citizen) == []
    assert reply(gateway, citizen, {"type": "resume", "last_alert_id": "older"})["count"] == 0
    assert drain(citizen) == []


async def test_events_go_to_analysts_who_asked_and_not_to_officers(gateway: Fanout) -> None:
    asked, not_asked, officer = client(), client(), client(Role.OFFICER, "OFF-1")
    reply(gateway, asked, {"type": "subscribe", "events": True})
    reply(gateway, not_asked, {"type": "subscribe"})
    reply(gateway, officer, {"type": "subscribe", "events": True, "areas": ["E08000025"]})
    gateway.clients.update({asked, not_asked, officer})
    gateway.publish_enriched(
        {
            "camera_id": "CAM-1",
            "reads": [
                {"read_id": "R1", "enrichment": {"kind": "anpr", "area_codes": ["E08000025"]}},
                {"read_id": "R2", "enrichment": {"kind": "anpr", "area_codes": []}},
            ],
        }
    )
    events = drain(asked)
    assert [(e["type"], e["kind"], e["event"]["read_id"]) for e in events] == [
        ("event", "anpr", "R1"),
        ("event", "anpr", "R2"),
    ]
    assert drain(not_asked) == [] and drain(officer) == []


async def test_an_officer_ping_places_the_officer_for_radius_alerts(gateway: Fanout) -> None:
    officer = client(Role.OFFICER, "OFF-7")
    reply(gateway, officer, {"type": "subscribe", "radius_m": 1000})
    gateway.clients.add(officer)
    gateway.publish_alert(alert("before"))  # position unknown: not for them
    gateway.publish_enriched(
        {
            "officer_id": "OFF-7",
            "lat": 52.481,
            "lon": -1.891,
            "enrichment": {"kind": "officer_location", "area_codes": []},
        }
    )
    gateway.publish_alert(alert("after"))
    assert [m["alert_id"] for m in drain(officer)] == ["after"]


# ---- property: nothing a client sends can break the gateway --------------------------------

# No "ack": a valid one starts a task on the running loop (tested above, in a loop).
MESSAGE_TYPES = st.sampled_from(["ping", "subscribe", "resume", "teleport", "", 3, None])
INTS = st.integers(-(2**63), 2**63 - 1)  # what JSON through orjson can carry


# The gateway fixture is shared by the examples on purpose: each example has its own
# client, and on_client_message changes nothing on the gateway but through the client.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.binary(max_size=60)
    | st.text(max_size=60)
    | st.fixed_dictionaries(
        {"type": MESSAGE_TYPES},
        optional={
            "severities": st.lists(st.text(max_size=8), max_size=2) | st.text(max_size=4),
            "areas": st.lists(st.text(max_size=8), max_size=2) | INTS,
            "radius_m": st.none() | INTS | st.floats() | st.text(max_size=3),
            "position": st.none() | st.dictionaries(st.sampled_from(["lat", "lon"]), st.floats()),
            "events": st.booleans() | INTS,
            "last_alert_id": st.none() | st.text(max_size=5) | INTS,
            "since": st.none() | st.text(max_size=30),
        },
    ).map(orjson.dumps)
)
def test_any_message_gets_a_frame_and_never_an_exception(gateway: Fanout, raw: bytes | str) -> None:
    c = client()
    errors_before = c.errors
    out = orjson.loads(gateway.on_client_message(c, raw) or b"null")
    assert isinstance(out, dict) and out["type"] in {"error", "pong", "subscribed", "resumed"}
    assert (out["type"] == "error") == (c.errors == errors_before + 1)


async def test_an_update_of_an_alert_is_pushed_once_and_replaces_it_for_resume(
    gateway: Fanout,
) -> None:
    c = client()
    reply(gateway, c, {"type": "subscribe"})
    gateway.clients.add(c)
    gateway.publish_alert({**alert("g1"), "version": 1})
    gateway.publish_alert({**alert("g1"), "version": 2})
    gateway.publish_alert({**alert("g1"), "version": 2})  # a redelivery of the update
    gateway.publish_alert({**alert("g1"), "version": 1})  # late and stale
    assert [(m["alert_id"], m["version"]) for m in drain(c)] == [("g1", 1), ("g1", 2)]
    assert gateway.recent["g1"]["version"] == 2
    late = client(sub="late")
    reply(gateway, late, {"type": "subscribe"})
    reply(gateway, late, {"type": "resume", "since": "2000-01-01T00:00:00+00:00"})
    assert [(m["alert_id"], m["version"]) for m in drain(late) if m["type"] == "alert"] == [
        ("g1", 2)
    ]


# ---- snoozes -------------------------------------------------------------------------------


@pytest.fixture
def references(gateway: Fanout) -> list[ReferenceChangeV1]:
    """What the gateway sends to rtic.reference.v1 (its producer replaced by a list)."""
    assert isinstance(gateway.sink, RecordingSink)
    return gateway.sink.references


async def test_an_analyst_snoozes_a_rule_for_a_plate_through_the_reference_topic(
    gateway: Fanout, references: list[ReferenceChangeV1]
) -> None:
    msg = {
        "type": "snooze",
        "rule_id": "anpr_hotlist_hit",
        "vrm": "BX15 OKT",
        "minutes": 60,
        "reason": "recovered, owner driving",
    }
    out = reply(gateway, client(sub="an-7"), msg)
    until = (NOW + timedelta(minutes=60)).isoformat()
    assert out["type"] == "snoozed" and out["until"] == until
    assert out["snooze_id"].startswith("snooze-")
    assert (out["rule_id"], out["vrm"], out["area"]) == ("anpr_hotlist_hit", "BX15 OKT", None)
    await asyncio.sleep(0)
    (change,) = references
    assert (change.kind, change.op, change.id) == ("snooze", "upsert", out["snooze_id"])
    entry = change.validated_entry()
    assert isinstance(entry, SnoozeV1)
    assert (entry.rule_id, entry.vrm, entry.area, entry.by) == (
        "anpr_hotlist_hit",
        "BX15 OKT",
        None,
        "an-7",
    )
    assert entry.until == NOW + timedelta(minutes=60) and entry.reason == "recovered, owner driving"


async def test_the_same_snooze_again_has_the_same_id_and_unsnooze_lifts_it(
    gateway: Fanout, references: list[ReferenceChangeV1]
) -> None:
    sup = client(Role.SUPERVISOR, "sup-1")
    first = reply(gateway, sup, {"type": "snooze", "area": "E05001197", "minutes": 30})
    misread = reply(gateway, client(), {"type": "snooze", "vrm": "8X15 0KT", "minutes": 5})
    again = reply(gateway, client(), {"type": "snooze", "vrm": "bx15okt", "minutes": 90})
    assert first["type"] == "snoozed" and first["rule_id"] is None  # every rule in that ward
    assert misread["snooze_id"] == again["snooze_id"] != first["snooze_id"]
    lifted = reply(gateway, sup, {"type": "unsnooze", "snooze_id": first["snooze_id"]})
    assert lifted == {"type": "unsnoozed", "snooze_id": first["snooze_id"]}
    await asyncio.sleep(0)
    assert [(c.op, c.id) for c in references] == [
        ("upsert", first["snooze_id"]),
        ("upsert", misread["snooze_id"]),
        ("upsert", again["snooze_id"]),
        ("delete", first["snooze_id"]),
    ]
    assert references[3].entry is None


@pytest.mark.parametrize(
    "role", [Role.OFFICER, Role.CASE_OFFICER, Role.CITIZEN], ids=lambda r: r.value
)
async def test_only_analysts_and_supervisors_may_snooze(
    gateway: Fanout, references: list[ReferenceChangeV1], role: Role
) -> None:
    c = client(role, "someone")
    good = {"type": "snooze", "rule_id": "anpr_hotlist_hit", "vrm": "BX15OKT", "minutes": 60}
    out = reply(gateway, c, good)
    assert out["type"] == "error" and out["code"] == "forbidden"
    assert role.value in out["message"]
    assert reply(gateway, c, {"type": "unsnooze", "snooze_id": "snooze-1"})["code"] == "forbidden"
    await asyncio.sleep(0)
    assert references == [] and c.errors == 2


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        ({"rule_id": "anpr_hotlist_hit", "minutes": 60}, "'area'"),
        ({"vrm": "BX15OKT"}, "'minutes'"),
        ({"vrm": "BX15OKT", "minutes": 0}, "1 to 1440"),
        ({"vrm": "BX15OKT", "minutes": 1441}, "1 to 1440"),
        ({"vrm": "BX15OKT", "minutes": 1.5}, "whole number"),
        ({"vrm": "BX15OKT", "minutes": True}, "whole number"),
        ({"vrm": "BX15OKT", "minutes": "60"}, "whole number"),
        ({"vrm": "BX15OKT", "minutes": 60, "rule_id": "nap_time"}, "unknown rule_id"),
        ({"vrm": "BX15OKT", "minutes": 60, "rule_id": 7}, "'rule_id' must be text"),
        ({"vrm": ["BX15OKT"], "minutes": 60}, "'vrm' must be text"),
        ({"vrm": "--", "minutes": 60}, "plate"),
        ({"vrm": "A" * 17, "minutes": 60}, "longer than 16"),
        ({"area": {"code": "E05001197"}, "minutes": 60}, "'area' must be text"),
        ({"area": "E05001197", "minutes": 60, "reason": 3}, "'reason' must be text"),
    ],
)
async def test_bad_snoozes_get_a_bad_request_frame_saying_why(
    gateway: Fanout, references: list[ReferenceChangeV1], msg: dict[str, Any], words: str
) -> None:
    c = client()
    out = reply(gateway, c, {"type": "snooze", **msg})
    assert out["type"] == "error" and out["code"] == "bad_request"
    assert out["message"].startswith("snooze: ") and words in out["message"]
    await asyncio.sleep(0)
    assert references == [] and c.errors == 1


def test_an_unsnooze_needs_a_snooze_id(gateway: Fanout) -> None:
    for msg in ({}, {"snooze_id": ""}, {"snooze_id": 42}):
        out = reply(gateway, client(), {"type": "unsnooze", **msg})
        assert out["code"] == "bad_request" and "snooze_id" in out["message"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["snooze", "unsnooze"])},
        optional={
            "rule_id": st.none() | st.sampled_from(["anpr_hotlist_hit", "x"]) | INTS,
            "area": st.none() | st.text(max_size=12) | INTS | st.lists(st.text(max_size=3)),
            "vrm": st.none() | st.text(max_size=20) | st.floats(),
            "minutes": st.none() | INTS | st.floats() | st.booleans() | st.text(max_size=4),
            "reason": st.none() | st.text(max_size=20) | INTS,
            "snooze_id": st.none() | st.text(max_size=10) | INTS,
        },
    )
)
async def test_any_snooze_message_gets_a_frame_and_never_an_exception(
    gateway: Fanout, references: list[ReferenceChangeV1], msg: dict[str, Any]
) -> None:
    out = reply(gateway, client(), msg)
    assert out["type"] in {"error", "snoozed", "unsnoozed"}
    if out["type"] == "error":
        assert out["code"] == "bad_request"
    await asyncio.sleep(0)


# ---- the core's own bookkeeping: hello, close requests, metrics ---------------------------


def test_a_connected_client_is_greeted_counted_and_forgotten() -> None:
    core = make_core()
    c = core.connect(Principal("sup-1", Role.SUPERVISOR))
    assert drain(c) == [{"type": "hello", "role": "supervisor", "sub": "sup-1"}]
    assert core.metrics.value("rtic_gateway_clients", role="supervisor") == 1
    assert core.stats["clients_total"] == 1
    core.disconnect(c)
    core.disconnect(c)  # twice: counted once
    assert not core.clients and core.metrics.value("rtic_gateway_clients", role="supervisor") == 0


def test_too_many_bad_messages_ask_the_edge_to_close_once() -> None:
    core = make_core()
    closes = Closes()
    c = core.connect(Principal("an", Role.RTIC_ANALYST), on_close=closes)
    for _ in range(MAX_CLIENT_ERRORS - 1):
        reply(core, c, b"{nope")
    assert closes.calls == []
    reply(core, c, {"type": "teleport"})
    reply(core, c, {"type": "teleport"})
    assert closes.calls == [CLOSE_TOO_MANY_ERRORS] and c.close_request == CLOSE_TOO_MANY_ERRORS


def test_client_messages_are_counted_by_type_and_result_never_by_what_was_sent() -> None:
    core = make_core()
    c = client()
    reply(core, c, {"type": "ping"})
    reply(core, c, {"type": "subscribe", "severities": ["urgent"]})
    reply(core, c, {"type": "x" * 50})
    reply(core, c, b"{nope")
    reply(core, client(Role.OFFICER, "OFF-1"), {"type": "snooze", "vrm": "AB12CDE", "minutes": 5})
    value = core.metrics.value
    assert value("rtic_gateway_client_messages_total", type="ping", result="ok") == 1
    assert (
        value("rtic_gateway_client_messages_total", type="subscribe", result="bad_subscribe") == 1
    )
    assert value("rtic_gateway_client_messages_total", type="unknown", result="unknown_type") == 1
    assert value("rtic_gateway_client_messages_total", type="invalid", result="bad_json") == 1
    assert value("rtic_gateway_client_messages_total", type="snooze", result="forbidden") == 1
    assert b"x" * 50 not in core.metrics.exposition()


async def test_drops_and_overflow_closes_are_counted() -> None:
    core = make_core()
    c = core.connect(Principal("an", Role.RTIC_ANALYST))
    reply(core, c, {"type": "subscribe", "events": True})
    for i in range(8):
        core.publish("enriched", {"call_id": f"C{i}", "enrichment": {"kind": "call"}})
    for i in range(10):
        core.publish("alert", alert(f"o{i}"))
    metrics = core.metrics
    assert metrics.value("rtic_gateway_events_dropped_total") == c.dropped_events > 0
    assert metrics.value("rtic_gateway_overflow_closes_total") == 1 and c.overflowed
    assert core.stats["events"] == 8 and core.stats["alerts"] == 10


def test_acks_reach_only_subscribed_analysts_and_supervisors() -> None:
    core = make_core()
    analyst, supervisor, officer, idle = (
        client(),
        client(Role.SUPERVISOR, "sup"),
        client(Role.OFFICER, "OFF-1"),
        client(sub="idle"),
    )
    for c in (analyst, supervisor, officer):
        reply(core, c, {"type": "subscribe"})
    core.clients.update({analyst, supervisor, officer, idle})
    core.publish("ack", {"alert_id": "a1", "action": "assign", "by": "an"})
    core.publish("ack", {"action": "ack"})  # no alert id: nothing to tell
    assert [m["type"] for m in drain(analyst)] == ["alert_ack"]
    assert [m["alert_id"] for m in drain(supervisor)] == ["a1"]
    assert drain(officer) == [] and drain(idle) == [] and core.stats["acks"] == 1


def test_a_message_no_part_handles_is_refused_and_a_registered_handler_answers() -> None:
    gateway = make_core()
    c = client(Role.OFFICER, "PC1")
    msg = {"type": "verify", "alert_id": "a1", "outcome": "verified"}
    assert reply(gateway, c, msg)["code"] == "unsupported"
    gateway.handle("verify", lambda client, m: frame("verified", {"alert_id": m.alert_id}))
    assert reply(gateway, c, msg) == {"type": "verified", "alert_id": "a1"}
