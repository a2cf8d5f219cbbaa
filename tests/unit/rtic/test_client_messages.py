"""Client websocket messages: one model per type, discriminated on ``type``, with the
error code and message the client gets for each kind of mistake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from rtic.client_messages import (
    MODELS,
    Ack,
    Assign,
    BadClientMessage,
    Chat,
    ChatClose,
    ChatLocation,
    ChatOpen,
    ChatTake,
    ChatToCall,
    ClientMessage,
    JobUpdate,
    Open,
    Ping,
    Position,
    PositionPing,
    Resume,
    Snooze,
    Subscribe,
    Unsnooze,
    Verify,
    parse_client_message,
)


def parse(msg: Any) -> ClientMessage:
    return parse_client_message(orjson.dumps(msg))


def test_each_type_gives_its_model() -> None:
    assert parse({"type": "ping", "extra": 1}) == Ping(type="ping")
    sub = parse({"type": "subscribe", "areas": None, "position": {"lat": 52, "lon": -1.9}})
    assert (
        isinstance(sub, Subscribe)
        and sub.areas == []
        and sub.position == Position(lat=52, lon=-1.9)
    )
    resume = parse({"type": "resume", "since": "2026-11-24T21:00:00Z"})
    assert isinstance(resume, Resume) and resume.since == datetime(2026, 11, 24, 21, tzinfo=UTC)
    assert parse({"type": "resume", "last_alert_id": "a1", "since": 5}) == Resume(
        type="resume", last_alert_id="a1"
    )
    assert parse({"type": "ack", "alert_id": "a1"}) == Ack(type="ack", alert_id="a1", action="ack")
    snooze = parse({"type": "snooze", "vrm": "  AB12 CDE ", "minutes": 5, "area": ""})
    assert isinstance(snooze, Snooze) and (snooze.vrm, snooze.area) == ("AB12 CDE", None)
    assert parse({"type": "unsnooze", "snooze_id": "snooze-1"}) == Unsnooze(
        type="unsnooze", snooze_id="snooze-1"
    )
    assert parse({"type": "open", "alert_id": "a1"}) == Open(type="open", alert_id="a1")
    assert set(MODELS) == {
        "ping",
        "subscribe",
        "resume",
        "ack",
        "open",
        "snooze",
        "unsnooze",
        "verify",
        "job_update",
        "assign",
        "position",
        "chat_open",
        "chat",
        "chat_take",
        "chat_to_call",
        "chat_close",
    }


def test_the_people_side_messages() -> None:
    verify = parse({"type": "verify", "alert_id": "a1", "outcome": "not_a_match", "note": " x "})
    assert isinstance(verify, Verify) and (verify.outcome, verify.note) == ("not_a_match", "x")
    job = parse(
        {
            "type": "job_update",
            "update_id": "dev-1",
            "incident_id": "INC-1",
            "event": "en_route",
            "at": "2026-12-02T07:00:00+00:00",
        }
    )
    assert isinstance(job, JobUpdate) and job.at == datetime(2026, 12, 2, 7, tzinfo=UTC)
    assign = parse({"type": "assign", "assign_id": "p-1", "incident_id": "I", "officer_id": "O"})
    assert isinstance(assign, Assign) and assign.alert_id is None
    ping = parse({"type": "position", "lat": 52, "lon": -1.9, "at": "2026-12-02T07:00:00Z"})
    assert isinstance(ping, PositionPing) and ping.status is None


@pytest.mark.parametrize(
    ("msg", "code", "words"),
    [
        ({"type": "verify", "alert_id": "a1", "outcome": "maybe"}, "bad_verify", "outcome"),
        ({"type": "verify", "outcome": "verified"}, "bad_verify", "alert_id"),
        (
            {"type": "job_update", "update_id": "u", "incident_id": "i", "event": "en_route"},
            "bad_job_update",
            "at",
        ),
        (
            {
                "type": "job_update",
                "update_id": "u",
                "incident_id": "i",
                "event": "en_route",
                "at": "2026-12-02T07:00:00",
            },
            "bad_job_update",
            "timezone",
        ),
        (
            {
                "type": "job_update",
                "update_id": "u",
                "incident_id": "i",
                "event": "teleported",
                "at": "2026-12-02T07:00:00Z",
            },
            "bad_job_update",
            "event must be",
        ),
        ({"type": "assign", "incident_id": "i", "officer_id": "o"}, "bad_assign", "assign_id"),
        (
            {"type": "position", "lat": 91, "lon": 0, "at": "2026-12-02T07:00:00Z"},
            "bad_position",
            "lat",
        ),
    ],
)
def test_bad_people_side_messages(msg: dict[str, Any], code: str, words: str) -> None:
    with pytest.raises(BadClientMessage) as caught:
        parse(msg)
    assert caught.value.code == code and words in str(caught.value)


def test_the_union_is_discriminated_on_type() -> None:
    adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
    assert isinstance(adapter.validate_python({"type": "ack", "alert_id": "a"}), Ack)
    with pytest.raises(ValidationError, match=r"union_tag_invalid|does not match any"):
        adapter.validate_python({"type": "teleport"})


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"{nope", "bad_json", "not JSON"),
        (b"[1]", "bad_message", "'type'"),
        (b'{"type": 3}', "bad_message", "'type'"),
        (b'{"type": "PING"}', "unknown_type", "'PING'"),
        (b'{"type": "subscribe", "severities": ["urgent"]}', "bad_subscribe", "urgent"),
        (b'{"type": "open"}', "bad_open", "open needs an alert_id"),
        (b'{"type": "open", "alert_id": ""}', "bad_open", "open needs an alert_id"),
        (b'{"type": "subscribe", "areas": [1]}', "bad_subscribe", "'areas'"),
        (b'{"type": "subscribe", "radius_m": true}', "bad_subscribe", "radius_m"),
        (b'{"type": "subscribe", "position": {"lat": 91, "lon": 0}}', "bad_subscribe", "degrees"),
        (b'{"type": "subscribe", "events": 1}', "bad_subscribe", "true or false"),
        (b'{"type": "resume"}', "bad_resume", "last_alert_id or since"),
        (b'{"type": "resume", "since": "noon"}', "bad_resume", "ISO 8601"),
        (b'{"type": "resume", "since": "2026-11-24T21:00:00"}', "bad_resume", "timezone"),
        (b'{"type": "ack", "alert_id": ""}', "bad_ack", "alert_id"),
        (b'{"type": "ack", "alert_id": "a", "action": "eat"}', "bad_ack", "action"),
        (b'{"type": "snooze", "vrm": "AB1"}', "bad_request", "snooze: 'minutes'"),
        (b'{"type": "snooze", "minutes": 5}', "bad_request", "'area'"),
        (b'{"type": "snooze", "vrm": " ", "minutes": 5}', "bad_request", "blank"),
        (b'{"type": "unsnooze"}', "bad_request", "unsnooze: unsnooze needs a 'snooze_id'"),
    ],
)
def test_each_mistake_has_its_code_and_says_what_is_wrong(
    raw: bytes, code: str, words: str
) -> None:
    with pytest.raises(BadClientMessage) as refused:
        parse_client_message(raw)
    assert refused.value.code == code and words in str(refused.value)


def test_a_refused_message_of_a_known_type_says_its_type() -> None:
    with pytest.raises(BadClientMessage) as refused:
        parse({"type": "ack"})
    assert refused.value.msg_type == "ack"
    with pytest.raises(BadClientMessage) as unknown:
        parse({"type": "teleport"})
    assert unknown.value.msg_type is None


def test_the_chat_messages() -> None:
    chat = parse({"type": "chat", "message_id": "m-1", "text": "  my bike was stolen "})
    assert chat == Chat(type="chat", message_id="m-1", text="my bike was stolen")
    assert parse({"type": "chat_open"}) == ChatOpen(type="chat_open")
    assert parse({"type": "chat_open", "case_ref": "WM-2026-0000001"}) == ChatOpen(
        type="chat_open", case_ref="WM-2026-0000001"
    )
    assert parse({"type": "chat_take", "case_ref": "C"}) == ChatTake(type="chat_take", case_ref="C")
    call = parse(
        {
            "type": "chat_to_call",
            "case_ref": "C",
            "category": "theft",
            "grade": 3,
            "location": {"lat": 52.48, "lon": -1.9, "address": " 1 New St "},
        }
    )
    assert isinstance(call, ChatToCall) and call.location == ChatLocation(
        lat=52.48, lon=-1.9, address="1 New St"
    )
    assert parse({"type": "chat_close", "case_ref": "C"}) == ChatClose(
        type="chat_close", case_ref="C"
    )


@pytest.mark.parametrize(
    ("msg", "code", "words"),
    [
        ({"type": "chat", "text": "hi"}, "bad_chat", "message_id"),
        ({"type": "chat", "message_id": "m"}, "bad_chat", "'text'"),
        ({"type": "chat", "message_id": "m", "text": "   "}, "bad_chat", "blank"),
        ({"type": "chat", "message_id": "m", "text": 5}, "bad_chat", "must be text"),
        ({"type": "chat", "message_id": "m", "text": "x" * 2001}, "bad_chat", "longer than 2000"),
        ({"type": "chat", "message_id": "x" * 201, "text": "hi"}, "bad_chat", "message_id"),
        ({"type": "chat", "message_id": "m", "text": "hi", "case_ref": 7}, "bad_chat", "text"),
        ({"type": "chat_take"}, "bad_chat_take", "case_ref"),
        ({"type": "chat_close", "case_ref": ""}, "bad_chat_close", "case_ref"),
        ({"type": "chat_to_call", "case_ref": "C"}, "bad_chat_to_call", "category"),
        (
            {"type": "chat_to_call", "case_ref": "C", "category": "DROP TABLE"},
            "bad_chat_to_call",
            "category name",
        ),
        (
            {"type": "chat_to_call", "case_ref": "C", "category": "theft", "grade": 5},
            "bad_chat_to_call",
            "grade must be",
        ),
        (
            {
                "type": "chat_to_call",
                "case_ref": "C",
                "category": "theft",
                "location": {"lat": 95, "lon": 0},
            },
            "bad_chat_to_call",
            "location",
        ),
    ],
)
def test_bad_chat_messages(msg: dict[str, Any], code: str, words: str) -> None:
    with pytest.raises(BadClientMessage) as caught:
        parse(msg)
    assert caught.value.code == code and words in str(caught.value)
