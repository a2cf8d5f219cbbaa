"""End to end on the real gateway (with its database and Kafka): webchat between a
citizen and a contact handler over websockets.

A message reaches the handler once and its history survives a reconnect; a citizen
of one case never gets another case's chat whatever ``case_ref`` it sends; officers,
analysts and others get nothing; ``chat_to_call`` puts a call on ``rtic.calls.v1``
with channel ``webchat`` and the case's reference; an unanswered chat is escalated
(the shared engine escalates after 4 s: tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from rtic.casework import format_case_ref
from tests.engine import Engine, next_message

pytestmark = pytest.mark.e2e


def new_ref(engine: Engine) -> str:
    return format_case_ref(engine.settings.force_code, 2026, random.randrange(8_000_000, 8_999_999))


@contextlib.asynccontextmanager
async def socket(
    engine: Engine, role: str, sub: str, **claims: Any
) -> AsyncIterator[ClientConnection]:
    token = engine.token(role, sub, **claims)
    async with connect(
        engine.ws_url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        assert orjson.loads(await ws.recv())["type"] == "hello"
        yield ws


async def send(ws: ClientConnection, **msg: Any) -> None:
    await ws.send(orjson.dumps(msg).decode())


async def collect(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    async for raw in ws:
        into.append(orjson.loads(raw))


async def start_chat(
    engine: Engine, citizen: ClientConnection, handler: ClientConnection, ref: str, text: str
) -> None:
    """The citizen says something; the handler sees it on the queue and takes the chat."""
    await send(citizen, type="chat_open")
    await next_message(citizen, "chat_history", case_ref=ref)
    await send(handler, type="chat_open")
    await next_message(handler, "chat_queue")
    mid = uuid.uuid4().hex
    await send(citizen, type="chat", message_id=mid, text=text)
    await next_message(citizen, "chat_delivered", message_id=mid, duplicate=False)
    async with asyncio.timeout(10):
        while True:
            queue = await next_message(handler, "chat_queue")
            if any(c["case_ref"] == ref for c in queue["chats"]):
                break
    await send(handler, type="chat_take", case_ref=ref)
    await next_message(handler, "chat_taken", case_ref=ref)


async def test_a_message_reaches_the_handler_once_and_history_survives_a_reconnect(
    engine: Engine,
) -> None:
    ref = new_ref(engine)
    async with (
        socket(engine, "citizen", "cit-chat-1", cases=[ref]) as citizen,
        socket(engine, "contact_handler", "CH-E2E-1") as handler,
    ):
        await send(citizen, type="chat_open")
        assert (await next_message(citizen, "chat_history"))["messages"] == []
        await send(handler, type="chat_open")
        await next_message(handler, "chat_queue")
        await send(citizen, type="chat", message_id="c-1", text="My bike was stolen")
        accepted = orjson.loads(await citizen.recv())
        assert accepted == {"type": "chat_accepted", "case_ref": ref, "message_id": "c-1"}
        await next_message(citizen, "chat_delivered", message_id="c-1", duplicate=False)
        async with asyncio.timeout(10):
            while True:
                queue = await next_message(handler, "chat_queue")
                mine = [c for c in queue["chats"] if c["case_ref"] == ref]
                if mine:
                    break
        assert mine[0]["last_text"] == "My bike was stolen" and mine[0]["status"] == "waiting"
        await send(handler, type="chat_take", case_ref=ref)
        history = await next_message(handler, "chat_history", case_ref=ref)
        assert [m["message_id"] for m in history["messages"]] == ["c-1"]

        # Sent again (a page that did not see chat_delivered): stored and pushed once.
        await send(citizen, type="chat", message_id="c-1", text="My bike was stolen")
        await next_message(citizen, "chat_delivered", message_id="c-1", duplicate=True)
        await send(handler, type="chat", message_id="h-1", text="When was it?", case_ref=ref)
        await next_message(handler, "chat_delivered", message_id="h-1")
        reply = await next_message(citizen, "chat_message", case_ref=ref)
        assert reply["text"] == "When was it?" and reply["from"]["role"] == "contact_handler"
        assert "CH-E2E-1" not in orjson.dumps(reply).decode()
        await send(citizen, type="chat", message_id="c-2", text="This morning")
        got = await next_message(handler, "chat_message", case_ref=ref)
        assert got["message_id"] == "c-2"  # not c-1 again: it reached the handler once

    async with socket(engine, "citizen", "cit-chat-1", cases=[ref]) as again:
        await send(again, type="chat_open")
        history = await next_message(again, "chat_history", case_ref=ref)
        assert [m["message_id"] for m in history["messages"]] == ["c-1", "h-1", "c-2"]
        assert history["chat"]["status"] == "taken"


async def test_a_citizen_never_gets_another_cases_chat_and_other_roles_get_nothing(
    engine: Engine,
) -> None:
    ref_a, ref_b = new_ref(engine), new_ref(engine)
    seen: dict[str, list[dict[str, Any]]] = {}
    async with (
        socket(engine, "citizen", "cit-a", cases=[ref_a]) as a,
        socket(engine, "citizen", "cit-b", cases=[ref_b]) as b,
        socket(engine, "contact_handler", "CH-E2E-2") as handler,
        socket(engine, "officer", "OFF-CHAT", cases=[ref_b]) as officer,
        socket(engine, "rtic_analyst", "an-chat") as analyst,
        socket(engine, "case_officer", "co-chat", cases=[ref_b]) as case_officer,
    ):
        # Citizen A tries every way into case B's chat.
        for msg in (
            {"type": "chat_open", "case_ref": ref_b},
            {"type": "chat", "message_id": "x-1", "text": "let me in", "case_ref": ref_b},
            {"type": "chat_take", "case_ref": ref_b},
            {"type": "chat_close", "case_ref": ref_b},
            {"type": "chat_to_call", "case_ref": ref_b, "category": "theft"},
        ):
            await send(a, **msg)
            error = await next_message(a, "error")
            assert error["code"] in ("not_found", "forbidden"), error
        await send(a, type="chat_open")
        await next_message(a, "chat_history", case_ref=ref_a)
        # The others: every chat message refused.
        others = {"officer": officer, "analyst": analyst, "case officer": case_officer}
        for ws in others.values():
            await send(ws, type="subscribe")
            await next_message(ws, "subscribed")
            for msg in (
                {"type": "chat_open"},
                {"type": "chat", "message_id": "x-2", "text": "hi", "case_ref": ref_b},
                {"type": "chat_take", "case_ref": ref_b},
            ):
                await send(ws, **msg)
                assert (await next_message(ws, "error"))["code"] == "forbidden"
        tasks = []
        for name, ws in {"citizen A": a, **others}.items():
            seen[name] = []
            tasks.append(asyncio.create_task(collect(ws, seen[name])))
        try:
            await start_chat(engine, b, handler, ref_b, "case B's private words")
            await send(handler, type="chat", message_id="h-b", text="for B only", case_ref=ref_b)
            await next_message(b, "chat_message", case_ref=ref_b)
            await asyncio.sleep(1.0)
        finally:
            for task in tasks:
                task.cancel()
    for name, frames in seen.items():
        text = orjson.dumps(frames).decode()
        assert ref_b not in text and "private words" not in text and "for B only" not in text, name
        assert not [f for f in frames if str(f.get("type", "")).startswith("chat")], name


async def test_chat_to_call_puts_a_webchat_call_on_the_calls_topic(engine: Engine) -> None:
    ref = new_ref(engine)
    async with (
        engine.tail(engine.topics.calls) as calls,
        socket(engine, "citizen", "cit-call", cases=[ref]) as citizen,
        socket(engine, "contact_handler", "CH-E2E-3") as handler,
    ):
        await start_chat(engine, citizen, handler, ref, "Someone is trying car doors on my road")
        await send(
            handler,
            type="chat_to_call",
            case_ref=ref,
            category="vehicle_crime",
            grade=2,
            location={"lat": 52.4862, "lon": -1.8904, "address": "Corporation St, Birmingham"},
        )
        calling = await next_message(handler, "chat_calling", case_ref=ref)
        called = await next_message(handler, "chat_called", case_ref=ref)
        assert called["call_id"] == calling["call_id"]
        async with asyncio.timeout(15):
            while True:
                record = await calls.getone()
                call = orjson.loads(record.value)
                if call.get("case_ref") == ref:
                    break
        assert record.key == calling["call_id"].encode()
        assert call["channel"] == "webchat" and call["call_id"] == calling["call_id"]
        assert call["category"] == "vehicle_crime" and call["grade"] == 2
        assert "Someone is trying car doors on my road" in call["description"]


async def test_an_unanswered_chat_is_escalated_to_handlers_and_supervisors(
    engine: Engine,
) -> None:
    ref = new_ref(engine)
    async with (
        socket(engine, "citizen", "cit-esc", cases=[ref]) as citizen,
        socket(engine, "contact_handler", "CH-E2E-4") as handler,
        socket(engine, "supervisor", "SUP-CHAT") as supervisor,
    ):
        await send(supervisor, type="subscribe")
        await next_message(supervisor, "subscribed")
        await send(handler, type="chat_open")
        await next_message(handler, "chat_queue")
        await send(citizen, type="chat", message_id="c-esc", text="Is anyone there?")
        await next_message(citizen, "chat_delivered", message_id="c-esc")
        escalated = await next_message(handler, "chat_escalated", timeout=15, case_ref=ref)
        assert escalated["waiting_since"] is not None
        await next_message(supervisor, "chat_escalated", timeout=5, case_ref=ref)
        async with asyncio.timeout(5):
            while True:
                queue = await next_message(handler, "chat_queue")
                mine = [c for c in queue["chats"] if c["case_ref"] == ref]
                if mine and mine[0]["escalated"]:
                    break
