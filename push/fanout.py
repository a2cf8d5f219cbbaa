"""The gateway's fan-out core: clients, their queues, resume and dedup. No I/O.

Kafka and sockets live at the edges (``push/kafka_edge.py``, ``push/web.py``);
this module only decides, for each alert, live event and ack the Kafka edge
hands it, which clients get which frame, and answers each message a client
sends with a frame. Who may see what is ``push/access.py``; the shape of client
messages is ``rtic/client_messages.py``. Everything here runs on the event
loop's thread and never awaits, so it is tested without sockets or a broker.

Backpressure, stated where the fan-out happens: every client has its own
bounded queue, drained by its own sender at the web edge, so one slow or dead
device never delays anyone else. Live map events are best-effort: when a
client's queue is half full, events for it are dropped (and counted). Alerts
are never dropped silently: a client whose queue is full is closed with code
1013 ("try again later") and, on reconnecting, sends ``resume`` with the last
alert id it saw to be sent what it missed from the buffer of recent alerts.
A client that sends ``MAX_CLIENT_ERRORS`` bad messages is closed with 1008.

Resume, stated where it is answered (``_resume``): ``last_alert_id`` means the
client has seen everything up to and including that alert; what it names in
``seen`` (alert id -> version) is never sent again. A gateway that has just
started reads the recent alerts again (``replaying``) and answers no ``resume``
until it has read them (``caught_up``): a resume is held meanwhile, and answered
``not_ready`` (with ``retry_after_s``) if that takes longer than
``RESUME_WAIT_S``. The alerts it reads again are kept for resume but not pushed
live: they were pushed by the gateway before it, and a client that missed them
asks. docs/contract.md has the whole rule.

Acting on an alert (``ack``, ``open``; ``verify`` in ``push/verify.py``; the
``alert_id`` of a dispatch ``assign``) needs the right to see it
(``may_see``): the gateway must know the alert (its index of the last
``ALERTS_KNOWN`` alerts it read) and ``push.access.may_see_alert`` admit the
client. An alert it does not know and one the client may not see get the same
answer, ``not_found``, so the answer says nothing about alerts that are not
yours.

Every alert version is pushed to a client once: a redelivered alert (same id,
same version) is recognised in the buffer and not sent again; an update (same
id, higher version: repeated hits folded into one open alert) is sent, and
clients replace what they show.

Case updates (``rtic.cases.v1``) go as ``case_update`` frames to the clients
that may see the case (``push.access.may_see_case``), each update once;
citizens get their part of it only. Like alerts they are never dropped
silently: a client whose queue is full is closed with 1013 (and reloads the
case when it reconnects).

Audit: every alert version queued for clients, every ``open``, ``ack``,
``snooze`` and ``unsnooze`` is recorded in the audit buffer
(``push/audit.py``), which never blocks; the Kafka edge drains it. A client
whose token is revoked is closed with 1008 "invalid token" when the gateway
learns of the revocation (``revoke``).

Presence: an ``open`` also says who is working the alert. The analysts and
supervisors who were sent it (or have it open) get ``working {alert_id, people:
[{sub, role, since}]}`` whenever that list changes: a client works one alert at
a time (the one it last opened) until it opens another or disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import orjson

from push.access import (
    AlertFacts,
    CaseScope,
    Subscription,
    admits,
    admits_case,
    admits_event,
    case_update_for,
    may_see_alert,
    may_snooze,
    snooze_change,
    subscription_from,
    unsnooze_change,
)
from push.audit import AuditBuffer, Recipient, act_record
from push.metrics import GatewayMetrics
from records.protocols import Revocations
from rtic.casework import AuditAction, AuditObject
from rtic.client_messages import (
    Ack,
    BadClientMessage,
    ClientMessage,
    Open,
    Ping,
    Resume,
    Snooze,
    Subscribe,
    Unsnooze,
    error_code,
    error_text,
    parse_client_message,
)
from rtic.clock import utc_now
from rtic.errors import ContractError
from rtic.geodesy import distances_m
from rtic.schemas import AlertAckV1, ReferenceChangeV1, Role
from rtic.tokens import Principal

log = logging.getLogger(__name__)

MAX_CLIENT_ERRORS = 20
SENT_ALERTS_LIMIT = 50_000  # alert ids remembered per client; the resume buffer still dedups
CLOSE_TOO_SLOW = (1013, "too slow: reconnect and resume")
CLOSE_TOO_MANY_ERRORS = (1008, "too many bad messages")
CLOSE_INVALID_TOKEN = (1008, "invalid token")  # revoked: never says more than "invalid"
CASE_UPDATES_REMEMBERED = 10_000  # update ids kept to push each update once
ALERTS_KNOWN = 50_000  # alerts the gateway remembers the audience of (acts need the right to see)
RESUME_WAIT_S = 15.0  # a resume waits this long for a starting gateway to read its alerts
RESUME_RETRY_S = 2  # the ``retry_after_s`` of a ``not_ready`` answer
OFFICER_MAX_RADIUS_M = 5000.0  # RTIC_OFFICER_MAX_RADIUS_KM's default
ACK_ROLES = frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR})  # told when someone acts
OFFICER_ROLE = Role.OFFICER.value
Clock = Callable[[], datetime]
CloseHook = Callable[[int, str], None]
# A handler for one type of client message that the core does not handle itself
# (``Fanout.handle``): it answers with a frame, never awaits, and raises
# ``BadClientMessage`` or ``ContractError`` to answer an error frame. ``None``: the
# handler answers later itself (``Client.send_now``, from a task it started for I/O).
Handler = Callable[["Client", Any], bytes | None]
# What a part of the gateway sends a client after its ``subscribe`` is answered
# (``Fanout.on_subscribe``): snapshots, in order.
SubscribeHook = Callable[["Client"], list[bytes]]
Kind = Literal["alert", "enriched", "ack", "case", "incident", "officer_location", "verification"]
ACK_ACTIONS = {
    "ack": AuditAction.ALERT_ACK,
    "assign": AuditAction.ALERT_ASSIGN,
    "dismiss": AuditAction.ALERT_DISMISS,
}


def frame(msg_type: str, payload: dict[str, Any]) -> bytes:
    """A frame for a client: a JSON object with its ``type`` first."""
    return orjson.dumps({"type": msg_type, **payload})


class ChangeSink(Protocol):
    """Where the changes clients make go (the Kafka edge; a list in tests)."""

    def ack(self, ack: AlertAckV1) -> None:
        """Record an acknowledgement (``rtic.alert-acks.v1``); must not block."""
        ...

    def reference(self, change: ReferenceChangeV1) -> None:
        """Record a reference change (a snooze, ``rtic.reference.v1``); must not block."""
        ...

    async def settled(self) -> None:
        """Until what was recorded so far is written (or has failed)."""
        ...


def _no_close(code: int, reason: str) -> None:
    return None


class Client:
    """One connected client: who it is, what it asked for, and its own send queue.

    ``on_close`` is the edge's way to close the socket; the core calls it (once) when
    the client must go, and records why in ``close_request``.
    """

    subscriptions_changed = 0  # every client's, counted: the fan-out's roster is then stale

    def __init__(
        self,
        principal: Principal,
        queue_size: int,
        on_close: CloseHook = _no_close,
        metrics: GatewayMetrics | None = None,
        *,
        origin: str | None = None,
        connection: str = "",
    ) -> None:
        """``origin``: the client's address (for the audit trail); ``connection``: this
        socket's id, unique in the gateway's life."""
        self.principal = principal
        self.origin = origin
        self.connection = connection or uuid.uuid4().hex[:12]
        # This client as a delivery's audit record lists it (made once: fan-out is hot).
        self.recipient = Recipient(principal.sub, principal.role.value, origin, self.connection)
        self._subscription: Subscription | None = None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.sent_alerts: dict[str, int] = {}  # alert id -> version sent
        self.dropped_events = 0
        self.errors = 0
        self.close_request: tuple[int, str] | None = None
        self.working_on: str | None = None  # the alert whose detail it last opened
        self.follow_ups: list[bytes] = []  # frames to queue right after the current reply
        self._on_close = on_close
        self._metrics = metrics

    @property
    def subscription(self) -> Subscription | None:
        """What the client asked for (None until it subscribes)."""
        return self._subscription

    @subscription.setter
    def subscription(self, value: Subscription | None) -> None:
        self._subscription = value
        Client.subscriptions_changed += 1  # the fan-out's roster is rebuilt (Roster)

    @property
    def overflowed(self) -> bool:
        """Whether the client was closed for being too slow."""
        return self.close_request == CLOSE_TOO_SLOW

    def request_close(self, code: int, reason: str) -> None:
        """Ask the edge to close the socket (the first request wins)."""
        if self.close_request is None:
            self.close_request = (code, reason)
            self._on_close(code, reason)

    def offer_event(self, data: bytes) -> None:
        """Queue a live event unless the queue is half full (events are best-effort)."""
        if self.queue.qsize() * 2 >= self.queue.maxsize:
            self.dropped_events += 1
            if self._metrics is not None:
                self._metrics.events_dropped.inc()
            return
        self.queue.put_nowait(data)

    def offer_alert(self, alert_id: str, data: bytes, version: int = 1) -> bool:
        """Queue an alert (or a newer version of it) once; on overflow, close so the client
        resumes (never drop silently). True if it was queued now."""
        if self.sent_alerts.get(alert_id, 0) >= version or self.close_request is not None:
            return False
        if not self._queue_or_close(data):
            return False
        self.sent_alerts[alert_id] = version
        if len(self.sent_alerts) > SENT_ALERTS_LIMIT:
            self.sent_alerts.clear()  # bounded memory; the resume buffer still dedups
        return True

    def offer_case(self, data: bytes) -> bool:
        """Queue a case update; on overflow, close (the page reloads the case)."""
        return self.close_request is None and self._queue_or_close(data)

    def _queue_or_close(self, data: bytes) -> bool:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("client %s too slow: closing so it resumes", self.principal.sub)
            if self._metrics is not None:
                self._metrics.overflow_closes.inc()
            self.request_close(*CLOSE_TOO_SLOW)
            return False
        return True

    def take_follow_ups(self) -> list[bytes]:
        """The frames that follow the reply just sent (the web edge queues them after it)."""
        frames, self.follow_ups = self.follow_ups, []
        return frames

    def send_now(self, data: bytes) -> None:
        """Queue a control frame (a reply, an ack notice); dropped if the queue is full."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(data)


class ClientSet(set[Client]):
    """The connected clients: a set that counts its changes (the roster is then stale)."""

    changes = 0

    def add(self, client: Client) -> None:
        super().add(client)
        self.changes += 1

    def discard(self, client: object) -> None:
        super().discard(client)
        self.changes += 1

    def remove(self, client: Client) -> None:
        super().remove(client)
        self.changes += 1

    def update(self, *others: Iterable[Client]) -> None:
        super().update(*others)
        self.changes += 1

    def pop(self) -> Client:
        self.changes += 1
        return super().pop()

    def clear(self) -> None:
        super().clear()
        self.changes += 1


RADIUS_MARGIN_M = 1.0  # the numpy pre-filter's slack; ``admits`` then decides exactly


class Roster:
    """The subscribed clients, sorted for the fan-out of an alert.

    Most clients are officers subscribed by their position and a radius: rather than
    asking ``admits`` about each of thousands for every alert, their positions are
    kept in arrays and one numpy pass finds those within reach (with a metre of
    slack); ``admits`` then decides for them, as for everyone else. An officer's
    position is their device's last ping, else the position they sent (as in
    ``admits``). Officers that only a radius could admit but whose position is not
    known yet, like officers with no radius, can only be named by the alert. Built
    again when a client comes, goes or subscribes, or when an officer without a
    position pings; an officer who moves is moved in the arrays (``move``).
    """

    def __init__(self, clients: set[Client], positions: dict[str, tuple[float, float]]) -> None:
        self.others: list[Client] = []  # asked about for every alert
        self.near: list[Client] = []  # officers by radius, in the arrays' order
        self.officers: dict[str, list[Client]] = {}  # every officer, by id: named in alerts
        self.unplaced: set[str] = set()  # officers by radius without a position yet
        self.rows: dict[str, list[int]] = {}  # officer id -> their rows in the arrays
        lats: list[float] = []
        lons: list[float] = []
        radii: list[float] = []
        for client in clients:
            sub = client.subscription
            if sub is None or client.principal.role is Role.CITIZEN:
                continue  # citizens never receive alerts
            if client.principal.role is not Role.OFFICER:
                self.others.append(client)
                continue
            self.officers.setdefault(client.principal.sub, []).append(client)
            if sub.areas:
                self.others.append(client)
            elif sub.radius_m:
                officer_id = client.principal.sub
                position = positions.get(officer_id) or sub.position
                if position is None:
                    self.unplaced.add(officer_id)
                else:
                    self.rows.setdefault(officer_id, []).append(len(self.near))
                    self.near.append(client)
                    lats.append(position[0])
                    lons.append(position[1])
                    radii.append(sub.radius_m + RADIUS_MARGIN_M)
        self.lats = np.array(lats, dtype=float)
        self.lons = np.array(lons, dtype=float)
        self.radii = np.array(radii, dtype=float)

    def move(self, officer_id: str, lat: float, lon: float) -> bool:
        """An officer pinged from here: moved in the arrays. False if the roster must be
        built again (an officer by radius who had no position)."""
        if officer_id in self.unplaced:
            return False
        for row in self.rows.get(officer_id, ()):
            self.lats[row] = lat
            self.lons[row] = lon
        return True

    def candidates(self, alert: AlertFacts) -> list[Client]:
        """Every client ``admits`` might admit for this alert (each once)."""
        found = list(self.others)
        if self.near and alert.location is not None and OFFICER_ROLE in alert.roles:
            lat, lon = np.asarray(alert.location[0]), np.asarray(alert.location[1])
            within = distances_m(self.lats, self.lons, lat, lon)
            found.extend(self.near[i] for i in np.flatnonzero(within <= self.radii))
        for officer_id in alert.officers:
            found.extend(self.officers.get(officer_id, ()))
        return list(dict.fromkeys(found)) if alert.officers else found


@dataclass(frozen=True, slots=True)
class HeldResume:
    """A ``resume`` a starting gateway answers once it has read its recent alerts."""

    client: Client
    msg: Resume
    deadline: datetime


def _created_at(alert: dict[str, Any]) -> datetime | None:
    """When an alert was created (None if it does not say, readably)."""
    value = alert.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


class Fanout:
    """Clients, the buffer of recent alerts, officers' last positions, and the rules of
    who gets what. Fed by the Kafka edge; its clients are served by the web edge."""

    def __init__(
        self,
        *,
        sink: ChangeSink,
        queue_size: int = 2000,
        resume_buffer: int = 5000,
        rule_ids: frozenset[str] = frozenset(),
        clock: Clock = utc_now,
        metrics: GatewayMetrics | None = None,
        audit: AuditBuffer | None = None,
        officer_max_radius_m: float = OFFICER_MAX_RADIUS_M,
        resume_wait_s: float = RESUME_WAIT_S,
    ) -> None:
        """``rule_ids``: the rules a snooze may name (empty: any); ``audit``: where acts
        and deliveries are recorded (a buffer of its own if not given);
        ``officer_max_radius_m``: the largest radius an officer may subscribe with;
        ``resume_wait_s``: how long a resume waits for a starting gateway."""
        self.sink = sink
        self.queue_size = queue_size
        self.resume_buffer = resume_buffer
        self.rule_ids = rule_ids
        self.clock = clock
        self.metrics = metrics or GatewayMetrics()
        # Not ``audit or ...``: an empty buffer is falsy (it has a length).
        self.audit = audit if audit is not None else AuditBuffer(self.metrics)
        self.clients: set[Client] = ClientSet()
        self._roster: Roster | None = None
        self._roster_made_at = (-1, -1)  # (clients' changes, subscriptions' changes)
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # The audience of the last ALERTS_KNOWN alerts read: who may act on them.
        self.known: OrderedDict[str, AlertFacts] = OrderedDict()
        # Alerts created up to this time may be missing from ``recent`` (evicted, or
        # before what a starting gateway read again): a resume since then is incomplete.
        self.forgot_before: datetime | None = None
        self.officer_max_radius_m = officer_max_radius_m
        self.resume_wait_s = resume_wait_s
        self._catching_up = False  # reading the recent alerts again at start
        self._history_cut = False  # ... and not from the topic's beginning
        self._held: list[HeldResume] = []
        self.officer_positions: dict[str, tuple[float, float]] = {}
        self.case_updates_seen: OrderedDict[str, None] = OrderedDict()
        self.handlers: dict[str, Handler] = {}
        # Who has which alert open (``open``), since when: the desk's presence.
        self.working: dict[str, dict[Client, datetime]] = {}
        self.subscribe_hooks: list[SubscribeHook] = []
        self._instance = uuid.uuid4().hex[:8]  # connection ids unique across restarts
        self._connections = itertools.count(1)

    @property
    def stats(self) -> dict[str, int]:
        """What was fanned out so far (for ``/healthz``)."""
        m = self.metrics
        return {
            "alerts": int(m.value("rtic_gateway_published_total", kind="alert")),
            "events": int(m.value("rtic_gateway_published_total", kind="event")),
            "acks": int(m.value("rtic_gateway_published_total", kind="ack")),
            "clients_total": int(
                sum(m.value("rtic_gateway_connections_total", role=r.value) for r in Role)
            ),
        }

    def handle(self, msg_type: str, handler: Handler) -> None:
        """Let ``handler`` answer client messages of ``msg_type`` (a type in
        ``rtic.client_messages.MODELS``): how the gateway's other parts (jobs,
        verification, chat) plug into the core without it knowing them."""
        self.handlers[msg_type] = handler

    def on_subscribe(self, hook: SubscribeHook) -> None:
        """Let ``hook`` add frames (snapshots) that follow a client's ``subscribed``."""
        self.subscribe_hooks.append(hook)

    # ---- clients ---------------------------------------------------------------------

    def connect(
        self, principal: Principal, on_close: CloseHook = _no_close, origin: str | None = None
    ) -> Client:
        """A new client, greeted with ``hello``; it gets nothing else until it subscribes.
        ``origin``: its address, for the audit trail."""
        client = Client(
            principal,
            self.queue_size,
            on_close,
            self.metrics,
            origin=origin,
            connection=f"{self._instance}-{next(self._connections)}",
        )
        self.clients.add(client)
        self.metrics.clients.labels(principal.role.value).inc()
        self.metrics.connections.labels(principal.role.value).inc()
        client.send_now(frame("hello", {"role": principal.role.value, "sub": principal.sub}))
        return client

    def disconnect(self, client: Client) -> None:
        """Forget a client whose socket closed."""
        if client in self.clients:
            self.clients.discard(client)
            self.metrics.clients.labels(client.principal.role.value).dec()
        self._stop_working(client)
        self._held = [h for h in self._held if h.client is not client]

    def revoke(self, revocations: Revocations) -> int:
        """Close every client whose token the revocation list now refuses; how many."""
        closed = 0
        for client in list(self.clients):
            who = client.principal
            if client.close_request is None and revocations.refuses(
                who.jti, who.sub, who.issued_at
            ):
                client.request_close(*CLOSE_INVALID_TOKEN)
                self.metrics.revoked_closes.inc()
                closed += 1
        return closed

    # ---- Kafka -> clients ------------------------------------------------------------

    def publish(self, kind: Kind, message: dict[str, Any], *, replayed: bool = False) -> None:
        """Fan out one message the Kafka edge read (``replayed``: an alert read again at
        start, kept for resume, not pushed)."""
        if kind == "alert":
            self.publish_alert(message, live=not replayed)
        elif kind == "enriched":
            self.publish_enriched(message)
        elif kind == "case":  # the gateway adds who attends first (push/casefeed.py)
            self.publish_case(message, CaseScope.of_update(message))
        elif kind == "ack":
            self.publish_ack(message)
        # incident events and pings go to the job boards (push/dispatch.py), not here;
        # "verification": the gateway hands it to its verification part (push/verify.py)

    def publish_alert(self, alert: dict[str, Any], *, live: bool = True) -> None:
        """Remember an alert for resume and push it to every client it is for (unless
        it is not ``live``: read again at start, it was pushed by the gateway before)."""
        alert_id = alert.get("alert_id")
        if not isinstance(alert_id, str):
            return
        try:
            version = int(alert.get("version") or 1)
        except (TypeError, ValueError):
            return  # not an alert the worker wrote
        known = self.recent.get(alert_id)
        if known is not None and int(known.get("version") or 1) >= version:
            return  # a redelivery: already pushed
        if self._history_cut:  # the first alert read again: older ones were not read
            self._history_cut = False
            self._forget(alert)
        self.recent.pop(alert_id, None)
        self.recent[alert_id] = alert  # the newest version, at the end of the buffer
        while len(self.recent) > self.resume_buffer:
            self._forget(self.recent.popitem(last=False)[1])
        facts = AlertFacts.of(alert)  # once, not once per client
        self.known.pop(alert_id, None)
        self.known[alert_id] = facts
        while len(self.known) > ALERTS_KNOWN:
            self.known.popitem(last=False)
        self.metrics.published.labels("alert").inc()
        if not live:
            return
        data = frame("alert", alert)
        positions = self.officer_positions
        reached = [
            client.recipient
            for client in self.roster().candidates(facts)
            if client.subscription is not None
            and admits(
                client.principal,
                client.subscription,
                facts,
                positions.get(client.principal.sub),
            )
            and client.offer_alert(alert_id, data, version)
        ]
        self.audit.delivered(alert_id, version, self.clock(), reached)

    def _forget(self, alert: dict[str, Any]) -> None:
        """An alert is no longer kept for resume (or one before it was never read)."""
        created = _created_at(alert)
        if created is not None and (self.forgot_before is None or created > self.forgot_before):
            self.forgot_before = created

    # ---- a starting gateway reads its recent alerts again ------------------------------

    def replaying(self, cut: bool) -> None:
        """The Kafka edge starts reading the recent alerts again (``cut``: not from the
        topic's beginning); resumes wait until ``caught_up``."""
        self._catching_up = True
        self._history_cut = cut

    def caught_up(self) -> None:
        """The recent alerts are read: answer the resumes that waited."""
        self._catching_up = False
        self._history_cut = False
        held, self._held = self._held, []
        for h in held:
            if h.client.close_request is None:
                h.client.send_now(self._resume_now(h.client, h.msg))

    @property
    def catching_up(self) -> bool:
        """Whether the gateway still reads its recent alerts again (resumes wait)."""
        return self._catching_up

    def expire_resumes(self) -> int:
        """Answer ``not_ready`` to the resumes that waited ``resume_wait_s``; how many."""
        now = self.clock()
        late = [h for h in self._held if h.deadline <= now]
        if not late:
            return 0
        self._held = [h for h in self._held if h.deadline > now]
        data = frame(
            "error",
            {
                "code": "not_ready",
                "message": "the gateway is still reading its recent alerts: resume again",
                "retry_after_s": RESUME_RETRY_S,
            },
        )
        for h in late:
            h.client.send_now(data)
        return len(late)

    def may_see(self, client: Client, alert_id: str) -> bool:
        """Whether the client may see this alert, and so open, act on or verify it: the
        gateway knows it, and ``push.access.may_see_alert`` admits the client."""
        facts = self.known.get(alert_id)
        if facts is None:
            return False
        who = client.principal
        return may_see_alert(
            who,
            client.subscription,
            facts,
            self.officer_positions.get(who.sub),
            was_sent=alert_id in client.sent_alerts,
        )

    def roster(self) -> Roster:
        """The subscribed clients sorted for the fan-out of alerts (built again when
        stale)."""
        if not isinstance(self.clients, ClientSet):  # replaced by a plain set: no counts
            return Roster(self.clients, self.officer_positions)
        made_at = (self.clients.changes, Client.subscriptions_changed)
        if self._roster is None or made_at != self._roster_made_at:
            self._roster = Roster(self.clients, self.officer_positions)
            self._roster_made_at = made_at
        return self._roster

    def publish_case(self, update: dict[str, Any], scope: CaseScope) -> None:
        """Push a case update, once, to every subscribed client that may see the case
        (citizens: their part of it only)."""
        update_id = update.get("update_id")
        if not isinstance(update_id, str) or not scope.case_ref:
            return
        if update_id in self.case_updates_seen:
            return  # a redelivery: already pushed
        self.case_updates_seen[update_id] = None
        while len(self.case_updates_seen) > CASE_UPDATES_REMEMBERED:
            self.case_updates_seen.popitem(last=False)
        self.metrics.case_updates.labels("read").inc()
        staff_frame: bytes | None = None
        for client in self.clients:
            if client.subscription is None:
                continue
            if not admits_case(client.principal, client.subscription, scope):
                continue
            shown = case_update_for(client.principal, update)
            if shown is None:
                continue
            if shown is update:
                staff_frame = staff_frame or frame("case_update", update)
                data = staff_frame
            else:
                data = frame("case_update", shown)
            if client.offer_case(data):
                self.metrics.case_updates.labels("frame").inc()

    def publish_enriched(self, message: dict[str, Any]) -> None:
        """Turn an enriched message into live map events (one per read of a camera batch)."""
        events = message.get("reads") if "reads" in message else [message]
        for event in events or []:
            enrichment = event.get("enrichment") or {}
            kind = enrichment.get("kind", "unknown")
            lat, lon = event.get("lat"), event.get("lon")
            if (
                kind == "officer_location"
                and isinstance(event.get("officer_id"), str)
                and isinstance(lat, int | float)
                and isinstance(lon, int | float)
            ):
                officer_id = event["officer_id"]
                self.officer_positions[officer_id] = (float(lat), float(lon))
                if self._roster is not None and not self._roster.move(officer_id, lat, lon):
                    self._roster = None  # an officer by radius has a position now
            self.metrics.published.labels("event").inc()
            areas = enrichment.get("area_codes") or []
            data: bytes | None = None
            for client in self.clients:
                if client.subscription is None:
                    continue
                if admits_event(client.principal, client.subscription, areas):
                    data = data or frame("event", {"kind": kind, "event": event})
                    client.offer_event(data)

    def publish_ack(self, ack: dict[str, Any]) -> None:
        """Tell analysts and supervisors that someone acted on an alert."""
        if not isinstance(ack.get("alert_id"), str):
            return
        self.metrics.published.labels("ack").inc()
        data = frame("alert_ack", ack)
        for client in self.clients:
            if client.subscription is not None and client.principal.role in ACK_ROLES:
                client.send_now(data)

    def _admits(self, client: Client, alert: dict[str, Any]) -> bool:
        if client.subscription is None:
            return False
        position = self.officer_positions.get(client.principal.sub)
        return admits(client.principal, client.subscription, AlertFacts.of(alert), position)

    # ---- client -> gateway -----------------------------------------------------------

    def on_client_message(self, client: Client, raw: str | bytes) -> bytes | None:
        """Handle one client message; the reply frame (an error frame for nonsense).
        A client that has sent too many bad messages is asked to close."""
        msg_type = "invalid"
        try:
            msg = parse_client_message(raw)
            msg_type = msg.type
            reply = self._handle(client, msg)
            result = "ok"
        except BadClientMessage as exc:
            if exc.msg_type is not None:
                msg_type = exc.msg_type
            elif exc.code == "unknown_type":
                msg_type = "unknown"  # never a label from what the client sent
            reply, result = self._error(client, exc.code, str(exc)), exc.code
        except ContractError as exc:
            code = error_code(msg_type)
            reply, result = self._error(client, code, error_text(msg_type, str(exc))), code
        self.metrics.client_messages.labels(msg_type, result).inc()
        if client.errors >= MAX_CLIENT_ERRORS:
            client.request_close(*CLOSE_TOO_MANY_ERRORS)
        return reply

    def _error(self, client: Client, code: str, message: str) -> bytes:
        client.errors += 1
        return frame("error", {"code": code, "message": message})

    def _handle(self, client: Client, msg: ClientMessage) -> bytes | None:
        match msg:
            case Ping():
                return frame("pong", {"at": self.clock().isoformat()})
            case Subscribe():
                client.subscription = subscription_from(
                    msg, client.principal, self.officer_max_radius_m
                )
                client.follow_ups = [f for hook in self.subscribe_hooks for f in hook(client)]
                return frame("subscribed", {"filters": client.subscription.describe()})
            case Resume():
                return self._resume(client, msg)
            case Ack():
                return self._ack(client, msg)
            case Open():
                return self._open(client, msg)
            case Snooze() | Unsnooze():
                return self._snooze(client, msg)
        handler = self.handlers.get(msg.type)
        if handler is None:
            raise BadClientMessage(
                "unsupported", f"this gateway does not handle {msg.type!r} messages", msg.type
            )
        return handler(client, msg)

    def _resume(self, client: Client, msg: Resume) -> bytes | None:
        """``resume``: answered now, or held while a starting gateway reads its recent
        alerts (``caught_up`` answers it; ``expire_resumes`` says ``not_ready``)."""
        if client.subscription is None:
            raise ContractError("subscribe before resume")
        if not self._catching_up:
            return self._resume_now(client, msg)
        self._held.append(
            HeldResume(client, msg, self.clock() + timedelta(seconds=self.resume_wait_s))
        )
        with contextlib.suppress(RuntimeError):  # no loop running: expire_resumes by hand
            asyncio.get_running_loop().call_later(self.resume_wait_s + 0.05, self.expire_resumes)
        return None

    def _resume_now(self, client: Client, msg: Resume) -> bytes:
        """Send what the client missed, never what it names as seen.

        - ``last_alert_id`` in the buffer: the alerts after it, in the order this gateway
          read them, and any made after it that the buffer holds before it (a restarted
          gateway reads its partitions in an order of its own, so "after" alone could
          miss one) (``complete``).
        - else, with ``since``: the alerts created after ``since`` (``complete`` if the
          buffer forgot none created after it).
        - else (``last_alert_id`` older than the buffer, no ``since``): every alert kept
          (not ``complete``).

        Of those: the ones the client may be sent now, less every alert (id, version) it
        names in ``seen`` and every version already sent on this connection.
        """
        alerts = list(self.recent.values())
        last = self.recent.get(msg.last_alert_id) if msg.last_alert_id is not None else None
        if last is not None:
            # The alerts after it in the buffer, and those made after it that the buffer
            # holds before it: the buffer's order is the order this gateway read its
            # partitions in, which after a restart is not the order the alerts were made
            # in, so "after last_alert_id" alone can miss one made later on another
            # partition. ``seen`` and what this connection was sent keep it from doubling.
            ids = list(self.recent)
            after_last = set(ids[ids.index(last["alert_id"]) + 1 :])
            last_at = _created_at(last)
            alerts = [
                a
                for a in alerts
                if a["alert_id"] in after_last
                or (
                    last_at is not None
                    and (at := _created_at(a)) is not None
                    and at > last_at
                    and a["alert_id"] != last["alert_id"]
                )
            ]
            complete = True
        elif msg.since is not None:
            cutoff = msg.since
            alerts = [a for a in alerts if (at := _created_at(a)) is not None and at > cutoff]
            complete = self.forgot_before is None or self.forgot_before <= cutoff
        else:
            complete = False  # older than the buffer: everything we have
        seen = msg.seen
        sent = 0
        now = self.clock()
        for alert in alerts:
            alert_id = alert["alert_id"]
            version = int(alert.get("version") or 1)
            if seen.get(alert_id, 0) >= version or not self._admits(client, alert):
                continue
            if client.offer_alert(alert_id, frame("alert", alert), version):
                self.audit.delivered(alert_id, version, now, [client.recipient])
                sent += 1
        return frame("resumed", {"count": sent, "complete": complete})

    def _record(
        self,
        client: Client,
        action: AuditAction,
        object_type: AuditObject,
        object_id: str,
        **kw: Any,
    ) -> None:
        self.audit.act(
            act_record(
                client.principal,
                action,
                object_type,
                object_id,
                self.clock(),
                origin=client.origin,
                **kw,
            )
        )

    def _open(self, client: Client, msg: Open) -> bytes:
        """``open``: the client opened an alert's detail; recorded in the audit trail."""
        if client.principal.role is Role.CITIZEN:
            raise BadClientMessage("forbidden", "a citizen cannot open alerts", "open")
        if not self.may_see(client, msg.alert_id):
            raise BadClientMessage("not_found", f"no alert {msg.alert_id} to open", "open")
        self._record(
            client,
            AuditAction.ALERT_OPENED,
            AuditObject.ALERT,
            msg.alert_id,
            detail={"version": client.sent_alerts.get(msg.alert_id)},
        )
        if client.working_on != msg.alert_id:
            self._stop_working(client)
            client.working_on = msg.alert_id
            self.working.setdefault(msg.alert_id, {})[client] = self.clock()
            self._tell_working(msg.alert_id)
        return frame("opened", {"alert_id": msg.alert_id})

    # ---- presence: who else is working an alert ---------------------------------------

    def _stop_working(self, client: Client) -> None:
        """The client no longer has its alert open (it opened another, or left)."""
        alert_id, client.working_on = client.working_on, None
        if alert_id is None:
            return
        people = self.working.get(alert_id, {})
        people.pop(client, None)
        if not people:
            self.working.pop(alert_id, None)
        self._tell_working(alert_id)

    def _tell_working(self, alert_id: str) -> None:
        """``working {alert_id, people}`` to the analysts and supervisors who were sent
        the alert or have it open: each person once (their earliest open socket)."""
        people: dict[str, dict[str, str]] = {}
        for c, since in sorted(self.working.get(alert_id, {}).items(), key=lambda x: x[1]):
            who = c.principal
            people.setdefault(
                who.sub, {"sub": who.sub, "role": who.role.value, "since": since.isoformat()}
            )
        data = frame("working", {"alert_id": alert_id, "people": list(people.values())})
        for c in self.clients:
            if (
                c.principal.role in ACK_ROLES
                and c.subscription is not None
                and (alert_id in c.sent_alerts or c.working_on == alert_id)
            ):
                c.send_now(data)

    def _ack(self, client: Client, msg: Ack) -> bytes:
        who = client.principal
        if who.role is Role.CITIZEN:
            raise ContractError("citizens cannot act on alerts")
        if not self.may_see(client, msg.alert_id):
            raise BadClientMessage("not_found", f"no alert {msg.alert_id} to act on", "ack")
        ack = AlertAckV1(
            alert_id=msg.alert_id,
            action=msg.action,
            by=who.sub,
            role=who.role,
            at=self.clock(),
            note=msg.note,
        )
        self.sink.ack(ack)
        self._record(
            client,
            ACK_ACTIONS[msg.action],
            AuditObject.ALERT,
            msg.alert_id,
            reason=msg.note,
        )
        return frame("acked", {"alert_id": msg.alert_id, "action": msg.action})

    def _snooze(self, client: Client, msg: Snooze | Unsnooze) -> bytes:
        """``snooze`` / ``unsnooze``: analysts and supervisors only; the change goes to the
        reference topic and the client is answered at once (the workers apply it within
        about a second)."""
        who = client.principal
        if not may_snooze(who):
            raise BadClientMessage("forbidden", f"a {who.role.value} cannot {msg.type} alerts")
        if isinstance(msg, Unsnooze):
            change = unsnooze_change(msg)
            self.sink.reference(change)
            self._record(client, AuditAction.UNSNOOZE, AuditObject.ALERT, change.id)
            log.info("%s %s lifted snooze %s", who.role.value, who.sub, change.id)
            return frame("unsnoozed", {"snooze_id": change.id})
        change = snooze_change(msg, who, self.clock(), self.rule_ids)
        self.sink.reference(change)
        entry = change.entry or {}
        self._record(
            client,
            AuditAction.SNOOZE,
            AuditObject.ALERT,
            change.id,
            reason=msg.reason,
            detail={k: entry.get(k) for k in ("rule_id", "area", "vrm", "until")},
        )
        log.info(
            "%s %s snoozed %s for %s until %s",
            who.role.value,
            who.sub,
            msg.rule_id or "every rule",
            msg.area or msg.vrm,
            entry["until"],
        )
        return frame(
            "snoozed",
            {
                "snooze_id": change.id,
                "until": entry["until"],
                "rule_id": msg.rule_id,
                "area": msg.area,
                "vrm": msg.vrm,
            },
        )
