"""Webchat between a citizen and a contact handler, over the gateway's websocket.

A part of the gateway that plugs into the fan-out core with ``Fanout.handle``
(``register``). Its handlers never await: they check who may do what against the
chats held in memory, change that state at once where the answer depends on it
(a take, a close: the first wins), answer with a frame, and put the I/O (the
database, the call on ``rtic.calls.v1``) on a queue of jobs that one task
(``run``) works through in order, so a chat's messages are stored and pushed in
the order they came.

Who reaches what (``push/access.py`` has the rest of the gateway's rules):

- ``citizen``: only the chat of the case their token names (a ``case_ref`` they
  send is checked against the token: any other case is ``not_found``).
- ``contact_handler``: the queue (waiting chats of every case, with the case's
  context, and the chats they hold) and the conversations of the chats they hold.
  A waiting chat's conversation is theirs once they take it (``chat_take``: the
  first handler wins; another gets ``taken``).
- ``supervisor``: ``chat_escalated`` frames (on a subscribed socket), nothing else.
- every other role: nothing (a chat message from them is ``forbidden``).

Delivery: a ``chat`` is answered ``chat_accepted`` at once; once the message is
stored with the case (``ChatStore.add_message``, unique per case and
``message_id``) the sender gets ``chat_delivered`` and the other side
``chat_message``. A repeated ``message_id`` (a page sending again after a
reconnect) is stored and pushed once: the sender gets ``chat_delivered`` with
``duplicate: true``. A message the database refused is ``chat_not_saved`` (an
error frame naming the ``message_id``): the page keeps it and sends it again.

Escalation: a chat whose citizen has waited ``escalate_after_s`` (the setting
``chat_escalate_after_s``) for a handler's reply is escalated once per wait:
flagged at the top of the queue, ``chat_escalated`` to every handler and
supervisor connected, and recorded in the audit trail. A handler's reply ends
the wait and clears the flag.

A handler's name as the citizen reads it is ``Handler`` and four characters made
from their token's subject (``handler_name``): never their identity.

State is one gateway's: the open chats are read from the database at start
(``run``); several gateways would each hold their own queue (said in
docs/contract.md as a limit of this version).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from push.audit import act_record
from push.fanout import Client, Fanout, frame
from records.protocols import CaseStore, ChatMessageRow, ChatRow, ChatStore
from rtic.casework import AuditAction, AuditObject, AuditV1, stable_id
from rtic.client_messages import (
    BadClientMessage,
    Chat,
    ChatClose,
    ChatOpen,
    ChatTake,
    ChatToCall,
)
from rtic.geodesy import FORCE_CENTRE
from rtic.schemas import CallV1, Channel, LocationV1, Role

log = logging.getLogger(__name__)

CallWriter = Callable[[CallV1], Awaitable[None]]  # on rtic.calls.v1; raises if not written
Job = Callable[[], Awaitable[None]]

HISTORY_LIMIT = 500  # messages in a chat_history frame (the newest)
SUMMARY_LIMIT = 4000  # characters of a call's description made from a chat
MAX_JOBS = 10_000
TICK_S = 1.0  # how often waits are checked for escalation
CITIZEN_NAME = "Citizen"
NO_LOCATION = "Location not given in the web chat"
CHAT_ROLES = frozenset({Role.CITIZEN, Role.CONTACT_HANDLER})
ESCALATION_ROLES = frozenset({Role.CONTACT_HANDLER, Role.SUPERVISOR})
GATEWAY_ACTOR = "gateway"


def handler_name(sub: str) -> str:
    """What a citizen is told of the handler: 'Handler' and a short code of their id."""
    return "Handler " + hashlib.sha256(sub.encode()).hexdigest()[:4].upper()


def message_frame(msg: ChatMessageRow) -> dict[str, Any]:
    """A stored message as a ``chat_message`` frame's payload (no staff identity)."""
    return {
        "case_ref": msg.case_ref,
        "message_id": msg.message_id,
        "from": {"role": msg.sender_role, "name": msg.sender_name},
        "text": msg.text,
        "at": msg.at.isoformat(),
    }


def summary(case_ref: str, messages: list[ChatMessageRow]) -> str:
    """The conversation as a call's description: who said what, oldest first."""
    head = f"Web chat about case {case_ref}, {len(messages)} message(s)."
    lines = [head, *(f"{m.sender_name}: {m.text}" for m in messages)]
    text = "\n".join(lines)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def _error(code: str, message: str, **about: str) -> bytes:
    """An error frame that says what it is about (the message or case it answers)."""
    return frame("error", {"code": code, "message": message, **about})


def _not_found(msg_type: str) -> BadClientMessage:
    return BadClientMessage("not_found", "no such chat", msg_type)


class ChatDesk:
    """The webchats of one gateway: the open chats, who watches which, and the jobs that
    store and push them."""

    def __init__(
        self,
        core: Fanout,
        *,
        escalate_after_s: float = 120.0,
        chats: ChatStore | None = None,
        cases: CaseStore | None = None,
        write_call: CallWriter | None = None,
    ) -> None:
        """``chats`` and ``cases``: the database (set later by the gateway if not known
        yet); ``write_call``: puts a call on ``rtic.calls.v1``."""
        self.core = core
        self.escalate_after = timedelta(seconds=escalate_after_s)
        self.store = chats
        self.cases = cases
        self.write_call = write_call
        self.open: dict[str, ChatRow] = {}  # case_ref -> its chat not closed
        self.last_text: dict[str, str] = {}  # case_ref -> the chat's last message
        self.context: dict[str, dict[str, Any]] = {}  # case_ref -> category, grade, status
        self.watching: dict[Client, set[str]] = {}  # the cases whose messages a client gets
        self.queue_watchers: set[Client] = set()
        self.jobs: asyncio.Queue[Job] = asyncio.Queue(maxsize=MAX_JOBS)
        self.loaded = False

    def register(self) -> None:
        """Answer the chat messages of the core's clients."""
        self.core.handle("chat_open", self.on_open)
        self.core.handle("chat", self.on_chat)
        self.core.handle("chat_take", self.on_take)
        self.core.handle("chat_to_call", self.on_to_call)
        self.core.handle("chat_close", self.on_close)

    # ---- who may reach which chat ------------------------------------------------------

    def _role(self, client: Client, msg_type: str) -> Role:
        role = client.principal.role
        if role not in CHAT_ROLES:
            raise BadClientMessage("forbidden", f"a {role.value} cannot use the webchat", msg_type)
        return role

    def _citizen_case(self, client: Client, case_ref: str | None, msg_type: str) -> str:
        """The case a citizen's token names (the one they named, if the token has it)."""
        cases = client.principal.cases
        if case_ref is not None:
            if case_ref not in cases:
                raise _not_found(msg_type)
            return case_ref
        if len(cases) != 1:
            raise _not_found(msg_type)
        return cases[0]

    def _held(self, client: Client, case_ref: str | None, msg_type: str) -> ChatRow:
        """The chat of ``case_ref`` that this handler holds."""
        chat = self.open.get(case_ref) if case_ref is not None else None
        if chat is None or chat.status != "taken" or chat.handler != client.principal.sub:
            raise _not_found(msg_type)
        return chat

    # ---- handlers (never await) --------------------------------------------------------

    def on_open(self, client: Client, msg: ChatOpen) -> bytes:
        """``chat_open``: a citizen's chat, a handler's queue or a chat they hold."""
        role = self._role(client, msg.type)
        if role is Role.CONTACT_HANDLER and msg.case_ref is None:
            self.queue_watchers.add(client)
            return self._queue_frame(client)
        if role is Role.CITIZEN:
            case_ref = self._citizen_case(client, msg.case_ref, msg.type)
        else:
            case_ref = self._held(client, msg.case_ref, msg.type).case_ref
        self.watching.setdefault(client, set()).add(case_ref)
        self._enqueue(functools.partial(self._send_history, client, case_ref))
        return frame("chat_opened", {"case_ref": case_ref, "chat": self._chat_state(case_ref)})

    def on_chat(self, client: Client, msg: Chat) -> bytes:
        """``chat``: store the message, then push it (``chat_accepted`` now)."""
        role = self._role(client, msg.type)
        if role is Role.CITIZEN:
            case_ref = self._citizen_case(client, msg.case_ref, msg.type)
        else:
            case_ref = self._held(client, msg.case_ref, msg.type).case_ref
        self.watching.setdefault(client, set()).add(case_ref)
        at = self.core.clock()
        text = msg.text or ""
        self._enqueue(
            functools.partial(self._store_message, client, case_ref, msg.message_id, text, at)
        )
        return frame("chat_accepted", {"case_ref": case_ref, "message_id": msg.message_id})

    def on_take(self, client: Client, msg: ChatTake) -> bytes:
        """``chat_take``: a handler takes a waiting chat (the first wins)."""
        if self._role(client, msg.type) is not Role.CONTACT_HANDLER:
            raise BadClientMessage("forbidden", "only a contact handler takes chats", msg.type)
        who = client.principal
        chat = self.open.get(msg.case_ref)
        if chat is None:
            raise _not_found(msg.type)
        if chat.status == "taken" and chat.handler != who.sub:
            raise BadClientMessage("taken", "another handler has taken this chat", msg.type)
        name = handler_name(who.sub)
        if chat.handler != who.sub:
            now = self.core.clock()
            chat = chat.model_copy(
                update={
                    "status": "taken",
                    "handler": who.sub,
                    "handler_name": name,
                    "updated_at": now,
                }
            )
            self.open[chat.case_ref] = chat
            self._audit(client, AuditAction.CHAT_TAKEN, chat)
            self._enqueue(functools.partial(self._save, chat))
            self._push_status(chat)
            self._push_queue()
        self.watching.setdefault(client, set()).add(chat.case_ref)
        case_ref = chat.case_ref
        self._enqueue(functools.partial(self._send_history, client, case_ref))
        return frame("chat_taken", {"case_ref": case_ref, "handler": name})

    def on_to_call(self, client: Client, msg: ChatToCall) -> bytes:
        """``chat_to_call``: the conversation becomes a call (``chat_called`` when written)."""
        if self._role(client, msg.type) is not Role.CONTACT_HANDLER:
            raise BadClientMessage("forbidden", "only a contact handler makes calls", msg.type)
        chat = self._held(client, msg.case_ref, msg.type)
        call_id = chat.call_id or stable_id("call-webchat", chat.chat_id)
        self._enqueue(functools.partial(self._make_call, client, chat.case_ref, call_id, msg))
        return frame("chat_calling", {"case_ref": chat.case_ref, "call_id": call_id})

    def on_close(self, client: Client, msg: ChatClose) -> bytes:
        """``chat_close``: the handler holding the chat ends it."""
        if self._role(client, msg.type) is not Role.CONTACT_HANDLER:
            raise BadClientMessage("forbidden", "only a contact handler closes chats", msg.type)
        chat = self._held(client, msg.case_ref, msg.type)
        now = self.core.clock()
        closed = chat.model_copy(
            update={"status": "closed", "closed_at": now, "updated_at": now, "waiting_since": None}
        )
        del self.open[chat.case_ref]
        self._audit(client, AuditAction.CHAT_CLOSED, closed)
        self._enqueue(functools.partial(self._save, closed))
        self._push_status(closed)
        self._push_queue()
        return frame("chat_closed", {"case_ref": chat.case_ref})

    # ---- escalation --------------------------------------------------------------------

    def escalate_due(self, now: datetime) -> list[ChatRow]:
        """Escalate every chat whose citizen has waited too long for a reply (once per
        wait); the chats escalated now."""
        due = [
            chat
            for chat in self.open.values()
            if chat.waiting_since is not None
            and chat.escalated_at is None
            and now - chat.waiting_since >= self.escalate_after
        ]
        for chat in due:
            escalated = chat.model_copy(update={"escalated_at": now, "updated_at": now})
            self.open[chat.case_ref] = escalated
            self._enqueue(functools.partial(self._save, escalated))
            waited = (now - chat.waiting_since).total_seconds() if chat.waiting_since else 0.0
            self.core.audit.act(
                AuditV1(
                    audit_id=stable_id("audit", "chat_escalated", chat.chat_id, now.isoformat()),
                    at=now,
                    actor=GATEWAY_ACTOR,
                    role="system",
                    action=AuditAction.CHAT_ESCALATED,
                    object_type=AuditObject.CASE,
                    object_id=chat.case_ref,
                    reason=f"no reply from a handler for {waited:.0f} s",
                    detail={"chat_id": chat.chat_id, "handler": chat.handler},
                )
            )
            data = frame(
                "chat_escalated",
                {
                    "case_ref": chat.case_ref,
                    "waiting_since": escalated.waiting_since.isoformat()
                    if escalated.waiting_since
                    else None,
                    "escalated_at": now.isoformat(),
                    "taken_by": escalated.handler_name,
                },
            )
            for client in list(self.core.clients):
                role = client.principal.role
                if role is Role.CONTACT_HANDLER or (
                    role is Role.SUPERVISOR and client.subscription is not None
                ):
                    client.send_now(data)
            log.info("chat of case %s escalated: no reply within %s", chat.case_ref, waited)
        if due:
            self._push_queue()
        return due

    # ---- frames ------------------------------------------------------------------------

    def _chat_state(self, case_ref: str) -> dict[str, Any] | None:
        chat = self.open.get(case_ref)
        if chat is None:
            return None
        return {"status": chat.status, "handler": chat.handler_name}

    def queue_for(self, who_sub: str) -> list[dict[str, Any]]:
        """The queue a handler sees: waiting chats and those they hold; escalated first,
        then the longest wait."""
        chats = [c for c in self.open.values() if c.status == "waiting" or c.handler == who_sub]
        far = datetime.max.replace(tzinfo=self.core.clock().tzinfo)

        def order(c: ChatRow) -> tuple[int, datetime, datetime]:
            return (0 if c.escalated_at else 1, c.waiting_since or far, c.opened_at)

        return [
            {
                "case_ref": c.case_ref,
                "status": c.status,
                "opened_at": c.opened_at.isoformat(),
                "waiting_since": c.waiting_since.isoformat() if c.waiting_since else None,
                "taken_by": c.handler_name,
                "mine": c.handler == who_sub,
                "last_text": self.last_text.get(c.case_ref),
                "escalated": c.escalated_at is not None,
                "case": self.context.get(c.case_ref),
            }
            for c in sorted(chats, key=order)
        ]

    def _queue_frame(self, client: Client) -> bytes:
        return frame("chat_queue", {"chats": self.queue_for(client.principal.sub)})

    def _live(self, client: Client) -> bool:
        if client in self.core.clients and client.close_request is None:
            return True
        self.queue_watchers.discard(client)
        self.watching.pop(client, None)
        return False

    def _push_queue(self) -> None:
        for client in list(self.queue_watchers):
            if self._live(client):
                client.send_now(self._queue_frame(client))

    def _parties(self, chat: ChatRow) -> list[Client]:
        """The sockets of the chat's citizen and of the handler holding it that watch it."""
        found = []
        for client in list(self.watching):
            if not self._live(client):
                continue
            who = client.principal
            if chat.case_ref not in self.watching[client]:
                continue
            if (who.role is Role.CITIZEN and chat.case_ref in who.cases) or (
                who.role is Role.CONTACT_HANDLER and who.sub == chat.handler
            ):
                found.append(client)
        return found

    def _push_status(self, chat: ChatRow) -> None:
        data = frame(
            "chat_status",
            {"case_ref": chat.case_ref, "status": chat.status, "handler": chat.handler_name},
        )
        for client in self._parties(chat):
            client.send_now(data)

    def _audit(self, client: Client, action: AuditAction, chat: ChatRow, **detail: Any) -> None:
        self.core.audit.act(
            act_record(
                client.principal,
                action,
                AuditObject.CASE,
                chat.case_ref,
                self.core.clock(),
                origin=client.origin,
                detail={"chat_id": chat.chat_id, **detail},
            )
        )

    # ---- jobs (I/O, in order) ----------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        try:
            self.jobs.put_nowait(job)
        except asyncio.QueueFull as exc:
            log.error("webchat jobs are not being done (database stuck?): refusing")
            raise BadClientMessage("busy", "the chat is busy: try again shortly") from exc

    async def _save(self, chat: ChatRow) -> None:
        if self.store is None:
            raise RuntimeError("no database for chats")
        await self.store.save_chat(chat)

    async def _context(self, case_ref: str) -> None:
        """The case's category, grade and status for the queue (read once)."""
        if case_ref in self.context:
            return
        row = await self.cases.get_case(case_ref) if self.cases is not None else None
        self.context[case_ref] = (
            {"category": row.category, "grade": row.grade, "status": row.status.value}
            if row is not None
            else {"category": None, "grade": None, "status": "received"}
        )

    async def _send_history(self, client: Client, case_ref: str) -> None:
        try:
            if self.store is None:
                raise RuntimeError("no database for chats")
            messages = await self.store.messages(case_ref, HISTORY_LIMIT)
        except Exception as exc:
            log.error("chat history of %s not read: %r", case_ref, exc)
            text = "the conversation could not be read: open it again"
            client.send_now(_error("chat_unavailable", text, case_ref=case_ref))
            return
        client.send_now(
            frame(
                "chat_history",
                {
                    "case_ref": case_ref,
                    "chat": self._chat_state(case_ref),
                    "messages": [message_frame(m) for m in messages],
                },
            )
        )

    async def _store_message(
        self, client: Client, case_ref: str, message_id: str, text: str, at: datetime
    ) -> None:
        """Store a message, push it, tell the sender; or tell them it was not saved."""
        try:
            await self._store_message_now(client, case_ref, message_id, text, at)
        except BadClientMessage as exc:
            client.send_now(_error(exc.code, str(exc), message_id=message_id))
        except Exception as exc:
            log.error("chat message of case %s not saved: %r", case_ref, exc)
            text = "the message was not saved: it will be sent again"
            client.send_now(_error("chat_not_saved", text, message_id=message_id))

    async def _store_message_now(
        self, client: Client, case_ref: str, message_id: str, text: str, at: datetime
    ) -> None:
        who = client.principal
        if self.store is None:
            raise RuntimeError("no database for chats")
        chat = self.open.get(case_ref)
        is_citizen = who.role is Role.CITIZEN
        started = chat is None
        if chat is None:
            if not is_citizen:  # closed meanwhile: a handler cannot reopen it
                raise BadClientMessage("not_found", "no such chat", "chat")
            chat = ChatRow(
                chat_id=stable_id("chat", case_ref, at.isoformat()),
                case_ref=case_ref,
                status="waiting",
                opened_at=at,
                updated_at=at,
            )
            await self.store.save_chat(chat)
            self.open[case_ref] = chat
        row = ChatMessageRow(
            message_id=message_id,
            chat_id=chat.chat_id,
            case_ref=case_ref,
            at=at,
            sender_role=who.role.value,
            sender=who.sub,
            sender_name=CITIZEN_NAME if is_citizen else handler_name(who.sub),
            text=text,
        )
        new = await self.store.add_message(row)
        if new:
            chat = self.open.get(case_ref, chat)
            changed: dict[str, datetime | None]
            if is_citizen:
                changed = {"updated_at": at, "waiting_since": chat.waiting_since or at}
            else:  # a reply ends the wait, and its escalation
                changed = {"updated_at": at, "waiting_since": None, "escalated_at": None}
            chat = chat.model_copy(update=changed)
            if case_ref in self.open:
                self.open[case_ref] = chat
            await self.store.save_chat(chat)
            self.last_text[case_ref] = text
            await self._context(case_ref)
            if started:  # the citizen's screens: "waiting for a handler"
                self._push_status(chat)
            data = frame("chat_message", message_frame(row))
            for party in self._parties(chat):
                if party is not client:
                    party.send_now(data)
            self._push_queue()
        delivered = {"case_ref": case_ref, "message_id": message_id, "at": at.isoformat()}
        client.send_now(frame("chat_delivered", {**delivered, "duplicate": not new}))

    async def _make_call(
        self, client: Client, case_ref: str, call_id: str, msg: ChatToCall
    ) -> None:
        """Write the call; ``chat_called`` when it is on the topic, else ``call_not_sent``."""
        try:
            await self._make_call_now(client, case_ref, call_id, msg)
        except Exception as exc:
            log.error("call %s from the chat of %s not sent: %r", call_id, case_ref, exc)
            text = "the call was not made: try again"
            client.send_now(_error("call_not_sent", text, case_ref=case_ref, call_id=call_id))

    async def _make_call_now(
        self, client: Client, case_ref: str, call_id: str, msg: ChatToCall
    ) -> None:
        if self.store is None or self.write_call is None:
            raise RuntimeError("no database or Kafka for chats")
        messages = await self.store.messages(case_ref, HISTORY_LIMIT)
        where = msg.location
        location = (
            LocationV1(lat=where.lat, lon=where.lon, address=where.address)
            if where is not None
            else LocationV1(lat=FORCE_CENTRE[0], lon=FORCE_CENTRE[1], address=NO_LOCATION)
        )
        call = CallV1.model_validate(
            {
                "call_id": call_id,
                "received_at": self.core.clock(),
                "channel": Channel.WEBCHAT,
                "category": msg.category,
                "grade": msg.grade,
                "location": location,
                "description": summary(case_ref, messages),
                "case_ref": case_ref,
                "location_given": where is not None,
            }
        )
        await self.write_call(call)
        chat = self.open.get(case_ref)
        if chat is not None:
            chat = chat.model_copy(update={"call_id": call_id})
            self.open[case_ref] = chat
            await self.store.save_chat(chat)
            self._audit(client, AuditAction.CHAT_TO_CALL, chat, call_id=call_id)
        client.send_now(frame("chat_called", {"case_ref": case_ref, "call_id": call_id}))

    async def load(self) -> None:
        """The open chats from the database (the queue as it was)."""
        if self.store is None:
            return
        for chat in await self.store.open_chats():
            self.open[chat.case_ref] = chat  # oldest first: the newest of a case wins
            messages = await self.store.messages(chat.case_ref, 1)
            if messages:
                self.last_text[chat.case_ref] = messages[-1].text
            await self._context(chat.case_ref)
        self.loaded = True

    async def run(self) -> None:
        """Load the open chats, then do the jobs in order and check waits every second,
        until cancelled."""
        while not self.loaded:
            try:
                await self.load()
                self.loaded = True
            except Exception as exc:
                log.error("could not read the open chats: %r; trying again", exc)
                await asyncio.sleep(1.0)
        ticker = asyncio.create_task(self._tick(), name="gateway-chat-escalation")
        try:
            while True:
                job = await self.jobs.get()
                try:
                    await job()
                except Exception:
                    log.exception("a webchat job failed")
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.escalate_due(self.core.clock())
            except Exception:
                log.exception("webchat escalation check failed")
