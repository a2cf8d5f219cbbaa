"""The webchat part of the gateway (``push/chat.py``) on the fan-out core, in memory.

The core's clients are driven directly (no sockets); the jobs the handlers queue
are run by ``work``. The socket path end to end is tests/e2e/test_chat.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from push.chat import ChatDesk, handler_name
from push.fanout import Client, Fanout
from records.memory import MemoryChatStore
from records.protocols import CaseRow, ChatRow
from rtic.casework import AuditAction, CaseStatus
from rtic.schemas import CallV1, Channel, Role
from rtic.tokens import Principal
from tests.conftest import NOW
from tests.unit.push.test_fanout import RecordingSink

CASE_A = "WM-2026-0000001"
CASE_B = "WM-2026-0000002"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Calls:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[CallV1] = []
        self.fail = fail

    async def __call__(self, call: CallV1) -> None:
        if self.fail:
            raise OSError("kafka away")
        self.calls.append(call)


class Cases:
    """Just ``get_case`` of a CaseStore."""

    async def get_case(self, case_ref: str) -> CaseRow | None:
        if case_ref != CASE_A:
            return None
        return CaseRow(
            case_ref=CASE_A,
            status=CaseStatus.ASSESSED,
            category="theft",
            grade=3,
            opened_at=NOW,
            updated_at=NOW,
        )


class Desk:
    def __init__(self) -> None:
        self.clock = Clock()
        self.core = Fanout(sink=RecordingSink(), queue_size=100, clock=self.clock)
        self.store = MemoryChatStore()
        self.calls = Calls()
        self.desk = ChatDesk(
            self.core,
            escalate_after_s=120,
            chats=self.store,
            cases=Cases(),  # type: ignore[arg-type]
            write_call=self.calls,
        )
        self.desk.register()

    def connect(self, role: Role, sub: str, cases: tuple[str, ...] = ()) -> Client:
        client = self.core.connect(Principal(sub, role, cases))
        frames(client)  # the hello
        return client

    def send(self, client: Client, **msg: Any) -> dict[str, Any]:
        out = self.core.on_client_message(client, orjson.dumps(msg))
        assert out is not None
        return dict(orjson.loads(out))

    async def work(self) -> None:
        while not self.desk.jobs.empty():
            await self.desk.jobs.get_nowait()()


def frames(client: Client) -> list[dict[str, Any]]:
    out = []
    while not client.queue.empty():
        out.append(orjson.loads(client.queue.get_nowait()))
    return out


def of_type(client: Client, msg_type: str) -> list[dict[str, Any]]:
    return [f for f in frames(client) if f["type"] == msg_type]


@pytest.fixture
def d() -> Desk:
    return Desk()


async def test_a_citizen_and_a_handler_talk_each_message_once(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    handler = d.connect(Role.CONTACT_HANDLER, "CH-1")
    queue = d.send(handler, type="chat_open")
    assert queue == {"type": "chat_queue", "chats": []}
    assert d.send(citizen, type="chat_open")["type"] == "chat_opened"
    sent = d.send(citizen, type="chat", message_id="m1", text="My bike was stolen")
    assert sent == {"type": "chat_accepted", "case_ref": CASE_A, "message_id": "m1"}
    await d.work()
    got = frames(citizen)
    assert [f["type"] for f in got] == ["chat_history", "chat_status", "chat_delivered"]
    assert got[1]["status"] == "waiting" and got[1]["handler"] is None
    assert got[2]["duplicate"] is False and got[2]["message_id"] == "m1"
    (entry,) = of_type(handler, "chat_queue")[-1]["chats"]
    assert entry["case_ref"] == CASE_A and entry["status"] == "waiting"
    assert entry["last_text"] == "My bike was stolen" and entry["escalated"] is False
    assert entry["case"] == {"category": "theft", "grade": 3, "status": "assessed"}
    assert entry["waiting_since"] == NOW.isoformat()

    taken = d.send(handler, type="chat_take", case_ref=CASE_A)
    assert taken == {"type": "chat_taken", "case_ref": CASE_A, "handler": handler_name("CH-1")}
    await d.work()
    history = of_type(handler, "chat_history")[-1]
    assert [m["text"] for m in history["messages"]] == ["My bike was stolen"]
    assert history["messages"][0]["from"] == {"role": "citizen", "name": "Citizen"}
    status = of_type(citizen, "chat_status")[-1:]
    assert status == [
        {
            "type": "chat_status",
            "case_ref": CASE_A,
            "status": "taken",
            "handler": handler_name("CH-1"),
        }
    ]

    d.send(handler, type="chat", message_id="h1", text="Sorry to hear that", case_ref=CASE_A)
    await d.work()
    (msg,) = of_type(citizen, "chat_message")
    assert msg["from"] == {"role": "contact_handler", "name": handler_name("CH-1")}
    assert "CH-1" not in orjson.dumps(msg).decode()
    # The same message sent again (a reconnect) is delivered as a duplicate, pushed never.
    d.send(citizen, type="chat", message_id="m1", text="My bike was stolen")
    await d.work()
    assert of_type(citizen, "chat_delivered")[0]["duplicate"] is True
    assert of_type(handler, "chat_message") == []
    assert [m.message_id for m in await d.store.messages(CASE_A)] == ["m1", "h1"]


async def test_a_citizen_reaches_only_the_case_their_token_names(d: Desk) -> None:
    a = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    b = d.connect(Role.CITIZEN, "cit-b", (CASE_B,))
    nobody = d.connect(Role.CITIZEN, "cit-0")
    handler = d.connect(Role.CONTACT_HANDLER, "CH-1")
    d.send(b, type="chat_open")
    for msg in (
        {"type": "chat_open", "case_ref": CASE_B},
        {"type": "chat", "message_id": "x", "text": "hi", "case_ref": CASE_B},
        {"type": "chat", "message_id": "x", "text": "hi", "case_ref": "WM-2026-9999999"},
    ):
        assert d.send(a, **msg)["code"] == "not_found"
    assert d.send(nobody, type="chat", message_id="x", text="hi")["code"] == "not_found"
    # Citizens do not take, call or close chats.
    d.send(b, type="chat", message_id="b1", text="case B's secret")
    await d.work()
    for msg_type in ("chat_take", "chat_close"):
        assert d.send(a, type=msg_type, case_ref=CASE_B)["code"] == "forbidden"
    assert d.send(a, type="chat_to_call", case_ref=CASE_B, category="theft")["code"] == (
        "forbidden"
    )
    d.send(handler, type="chat_take", case_ref=CASE_B)
    d.send(handler, type="chat", message_id="h", text="for B only", case_ref=CASE_B)
    await d.work()
    assert "secret" not in str(frames(a)) and "for B only" not in str(frames(a))
    assert [f["text"] for f in of_type(b, "chat_message")] == ["for B only"]


@pytest.mark.parametrize(
    "role", [Role.OFFICER, Role.RTIC_ANALYST, Role.SUPERVISOR, Role.CASE_OFFICER]
)
async def test_other_roles_get_nothing(d: Desk, role: Role) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    other = d.connect(role, "X-1", (CASE_A,))
    d.send(other, type="subscribe")
    d.send(citizen, type="chat", message_id="m1", text="hello")
    await d.work()
    for msg in (
        {"type": "chat_open"},
        {"type": "chat_open", "case_ref": CASE_A},
        {"type": "chat", "message_id": "x", "text": "hi", "case_ref": CASE_A},
        {"type": "chat_take", "case_ref": CASE_A},
        {"type": "chat_to_call", "case_ref": CASE_A, "category": "theft"},
        {"type": "chat_close", "case_ref": CASE_A},
    ):
        assert d.send(other, **msg)["code"] == "forbidden"
    await d.work()
    assert frames(other) == []  # replies are returned, never queued: nothing else came


async def test_the_first_handler_wins_and_others_cannot_reach_the_chat(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    first = d.connect(Role.CONTACT_HANDLER, "CH-1")
    second = d.connect(Role.CONTACT_HANDLER, "CH-2")
    assert d.send(first, type="chat_take", case_ref=CASE_A)["code"] == "not_found"
    d.send(citizen, type="chat", message_id="m1", text="hello")
    await d.work()
    d.send(second, type="chat_open")
    d.send(first, type="chat_take", case_ref=CASE_A)
    assert d.send(second, type="chat_take", case_ref=CASE_A)["code"] == "taken"
    for msg in (
        {"type": "chat_open", "case_ref": CASE_A},
        {"type": "chat", "message_id": "x", "text": "hi", "case_ref": CASE_A},
        {"type": "chat_to_call", "case_ref": CASE_A, "category": "theft"},
        {"type": "chat_close", "case_ref": CASE_A},
    ):
        assert d.send(second, **msg)["code"] == "not_found"
    await d.work()
    # The second handler's queue no longer lists it; nothing of the chat reached them.
    assert of_type(second, "chat_queue")[-1]["chats"] == []
    assert of_type(second, "chat_message") == [] and of_type(second, "chat_history") == []


async def test_an_unanswered_chat_is_escalated_once_and_a_reply_clears_it(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    handler = d.connect(Role.CONTACT_HANDLER, "CH-1")
    supervisor = d.connect(Role.SUPERVISOR, "SUP-1")
    d.send(supervisor, type="subscribe")
    officer = d.connect(Role.OFFICER, "OFF-1")
    d.send(officer, type="subscribe")
    d.send(handler, type="chat_open")
    d.send(citizen, type="chat", message_id="m1", text="anyone there?")
    await d.work()
    d.clock.now = NOW + timedelta(seconds=119)
    assert d.desk.escalate_due(d.clock.now) == []
    d.clock.now = NOW + timedelta(seconds=120)
    (chat,) = d.desk.escalate_due(d.clock.now)
    assert chat.case_ref == CASE_A
    assert d.desk.escalate_due(d.clock.now + timedelta(seconds=60)) == []  # once per wait
    for who in (handler, supervisor):
        (esc,) = of_type(who, "chat_escalated")
        assert esc["case_ref"] == CASE_A and esc["waiting_since"] == NOW.isoformat()
    assert of_type(officer, "chat_escalated") == [] and of_type(citizen, "chat_escalated") == []
    assert d.desk.queue_for("CH-1")[0]["escalated"] is True
    audit = [r for r in d.core.audit.drain() if r.action is AuditAction.CHAT_ESCALATED]
    assert [(r.object_id, r.role) for r in audit] == [(CASE_A, "system")]
    await d.work()
    stored = await d.store.get_chat(chat.chat_id)
    assert stored is not None and stored.escalated_at == d.clock.now

    d.send(handler, type="chat_take", case_ref=CASE_A)
    d.send(handler, type="chat", message_id="h1", text="Yes, hello", case_ref=CASE_A)
    await d.work()
    (entry,) = d.desk.queue_for("CH-1")
    assert entry["escalated"] is False and entry["waiting_since"] is None


async def test_an_escalated_chat_is_at_the_top_of_the_queue(d: Desk) -> None:
    a = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    b = d.connect(Role.CITIZEN, "cit-b", (CASE_B,))
    d.send(a, type="chat", message_id="a1", text="first")
    await d.work()
    d.clock.now = NOW + timedelta(seconds=130)
    d.send(b, type="chat", message_id="b1", text="second")
    await d.work()
    d.desk.escalate_due(d.clock.now)
    assert [c["case_ref"] for c in d.desk.queue_for("CH-1")] == [CASE_A, CASE_B]
    # Waiting longer puts B's escalation (later) after A's; both above any waiting chat.
    d.clock.now = NOW + timedelta(seconds=300)
    d.desk.escalate_due(d.clock.now)
    assert all(c["escalated"] for c in d.desk.queue_for("CH-1"))


async def test_a_chat_becomes_a_call_with_a_stable_id(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    handler = d.connect(Role.CONTACT_HANDLER, "CH-1")
    d.send(citizen, type="chat", message_id="m1", text="Someone broke into my car")
    await d.work()
    d.send(handler, type="chat_take", case_ref=CASE_A)
    d.send(handler, type="chat", message_id="h1", text="Is anyone hurt?", case_ref=CASE_A)
    await d.work()
    calling = d.send(
        handler,
        type="chat_to_call",
        case_ref=CASE_A,
        category="vehicle_crime",
        grade=3,
        location={"lat": 52.47, "lon": -1.88, "address": "Car park, B5"},
    )
    await d.work()
    assert calling["type"] == "chat_calling"
    (call,) = d.calls.calls
    assert call.call_id == calling["call_id"] and call.channel is Channel.WEBCHAT
    assert (call.model_extra or {})["case_ref"] == CASE_A
    assert call.category == "vehicle_crime" and call.grade == 3
    assert call.location.address == "Car park, B5"
    assert call.description is not None
    assert "Citizen: Someone broke into my car" in call.description
    assert f"{handler_name('CH-1')}: Is anyone hurt?" in call.description
    (called,) = of_type(handler, "chat_called")
    assert called == {"type": "chat_called", "case_ref": CASE_A, "call_id": call.call_id}
    again = d.send(handler, type="chat_to_call", case_ref=CASE_A, category="vehicle_crime")
    await d.work()
    assert again["call_id"] == call.call_id
    assert d.calls.calls[1].call_id == call.call_id  # the same call, written again
    assert d.calls.calls[1].location.address is not None
    assert (d.calls.calls[1].model_extra or {})["location_given"] is False
    actions = [r.action for r in d.core.audit.drain()]
    assert AuditAction.CHAT_TAKEN in actions and AuditAction.CHAT_TO_CALL in actions


async def test_a_call_kafka_refused_is_said_so(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    handler = d.connect(Role.CONTACT_HANDLER, "CH-1")
    d.send(citizen, type="chat", message_id="m1", text="hello")
    await d.work()
    d.send(handler, type="chat_take", case_ref=CASE_A)
    d.calls.fail = True
    d.send(handler, type="chat_to_call", case_ref=CASE_A, category="theft")
    await d.work()
    (err,) = of_type(handler, "error")
    assert err["code"] == "call_not_sent" and err["case_ref"] == CASE_A


async def test_closing_ends_the_chat_and_the_citizen_may_start_another(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    handler = d.connect(Role.CONTACT_HANDLER, "CH-1")
    d.send(citizen, type="chat_open")
    d.send(citizen, type="chat", message_id="m1", text="hello")
    await d.work()
    d.send(handler, type="chat_take", case_ref=CASE_A)
    assert d.send(handler, type="chat_close", case_ref=CASE_A)["type"] == "chat_closed"
    await d.work()
    assert of_type(citizen, "chat_status")[-1]["status"] == "closed"
    assert d.send(handler, type="chat", message_id="h", text="x", case_ref=CASE_A)["code"] == (
        "not_found"
    )
    d.clock.now = NOW + timedelta(minutes=5)
    d.send(citizen, type="chat", message_id="m2", text="one more thing")
    await d.work()
    chats = [c for c in d.store.chats.values() if c.case_ref == CASE_A]
    assert sorted(c.status for c in chats) == ["closed", "waiting"]
    # The history is the case's: both chats' messages.
    assert [m.text for m in await d.store.messages(CASE_A)] == ["hello", "one more thing"]


async def test_a_message_the_database_refused_is_not_delivered(d: Desk) -> None:
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))

    async def broken(message: Any) -> bool:
        raise OSError("disk full")

    d.store.add_message = broken  # type: ignore[method-assign]
    d.send(citizen, type="chat", message_id="m1", text="hello")
    await d.work()
    got = frames(citizen)
    assert [f["type"] for f in got] == ["error"]
    assert got[0]["code"] == "chat_not_saved" and got[0]["message_id"] == "m1"


async def test_the_queue_is_read_back_from_the_database(d: Desk) -> None:
    await d.store.save_chat(
        ChatRow(
            chat_id="chat-1",
            case_ref=CASE_A,
            status="waiting",
            opened_at=NOW,
            updated_at=NOW,
            waiting_since=NOW,
        )
    )
    await d.desk.load()
    (entry,) = d.desk.queue_for("CH-1")
    assert entry["case_ref"] == CASE_A and entry["case"]["category"] == "theft"
    citizen = d.connect(Role.CITIZEN, "cit-a", (CASE_A,))
    d.send(citizen, type="chat", message_id="m1", text="still here")
    await d.work()
    assert {m.chat_id for m in await d.store.messages(CASE_A)} == {"chat-1"}
