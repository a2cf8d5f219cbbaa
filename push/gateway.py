"""The push gateway: one websockets endpoint (``/ws``) and the dashboards over HTTP.

It reads ``rtic.alerts.v1``, ``rtic.enriched.v1`` and ``rtic.alert-acks.v1``
with its own consumer (no consumer group: every gateway sees everything) and
fans each message out to the clients whose role, scope and subscription
admit it (``push/access.py``). Acks from clients go to ``rtic.alert-acks.v1``;
analysts' and supervisors' snoozes go to ``rtic.reference.v1`` as reference
changes of kind ``snooze`` (the workers hold the matching alerts back).

Backpressure, stated where the fan-out happens: every client has its own
bounded queue and sender task, so one slow or dead device never delays
anyone else. Live map events are best-effort: when a client's queue is half
full, events for it are dropped (and counted). Alerts are never dropped
silently: a client whose queue is full is closed with code 1013 ("try again
later") and, on reconnecting, sends ``resume`` with the last alert id it saw
to be sent what it missed from the gateway's buffer of recent alerts.

Every alert version is pushed to a client once: a redelivered alert (same id,
same version) is recognised in the buffer and not sent again; an update (same
id, higher version: repeated hits folded into one open alert) is sent, and
clients replace what they show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

import dashboards
from enrichers.geo import GeoIndex
from push.access import (
    Subscription,
    admits_alert,
    admits_event,
    may_snooze,
    parse_snooze,
    parse_subscription,
    parse_unsnooze,
)
from rtic import __version__
from rtic.errors import AuthError, ContractError, ServiceError
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.schemas import AlertAckV1, ReferenceChangeV1, Role, dumps
from rtic.settings import Settings
from rtic.tokens import Principal, verify_token
from rtic.topics import Topics
from rules.catalogue import default_rules

log = logging.getLogger(__name__)

ATTRIBUTION = (
    "Boundaries: contains OS data © Crown copyright and database right 2014; contains ONS data "
    "© Crown copyright and database right 2016 (OGL v3). Places: DfE GIAS, NHS.UK (OGL v3)."
)
MAX_CLIENT_ERRORS = 20
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _frame(msg_type: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": msg_type, **payload})


class Client:
    """One connected socket: who it is, what it asked for, and its own send queue."""

    def __init__(self, ws: ServerConnection, principal: Principal, queue_size: int) -> None:
        self.ws = ws
        self.principal = principal
        self.subscription: Subscription | None = None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.sent_alerts: dict[str, int] = {}  # alert id -> version sent
        self.dropped_events = 0
        self.errors = 0
        self.overflowed = False

    def offer_event(self, frame: bytes) -> None:
        """Queue a live event unless the queue is half full (events are best-effort)."""
        if self.queue.qsize() * 2 >= self.queue.maxsize:
            self.dropped_events += 1
            return
        self.queue.put_nowait(frame)

    def offer_alert(self, alert_id: str, frame: bytes, version: int = 1) -> None:
        """Queue an alert (or a newer version of it) once; on overflow, close so the client
        resumes (never drop silently)."""
        if self.sent_alerts.get(alert_id, 0) >= version or self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("client %s too slow: closing so it resumes", self.principal.sub)
            asyncio.get_running_loop().create_task(
                self.ws.close(1013, "too slow: reconnect and resume")
            )
            return
        self.sent_alerts[alert_id] = version
        if len(self.sent_alerts) > 50_000:
            self.sent_alerts.clear()  # bounded memory; the resume buffer still dedups

    def send_now(self, frame: bytes) -> None:
        """Queue a control frame (reply to the client's own request)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(frame)

    async def pump(self) -> None:
        """Send queued frames in order until the socket closes."""
        while True:
            frame = await self.queue.get()
            await self.ws.send(frame.decode())


class Gateway:
    """The gateway's state: clients, recent alerts, officer positions, and the Kafka edges."""

    def __init__(
        self, settings: Settings, geo: GeoIndex | None = None, clock: Clock = _utc_now
    ) -> None:
        self.settings = settings
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.secret = settings.token_secret.get_secret_value()
        self.clock = clock
        self.geo = geo or GeoIndex.load(settings.data_dir)
        self.rule_ids = frozenset(r.spec.rule_id for r in default_rules(settings))
        self.clients: set[Client] = set()
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.acks: dict[str, dict[str, Any]] = {}
        self.officer_positions: dict[str, tuple[float, float]] = {}
        self._boundaries: dict[str, bytes] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.server: Server | None = None
        self.ready = asyncio.Event()
        self.stats = {"alerts": 0, "events": 0, "acks": 0, "clients_total": 0}

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Kafka, load recent alerts, and listen."""
        await ensure_topics(
            self.settings.kafka_url, self.topics.all(), self.settings.topic_partitions
        )
        self._producer = make_producer(self.settings.kafka_url)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self.settings.kafka_url),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,  # Tansu holds a fetch for the whole wait (streams/transport.py)
        )
        await self._consumer.start()
        await self._assign()
        self.server = await serve(
            self._handle,
            self.settings.gateway_host,
            self.settings.gateway_port,
            process_request=self._process_request,
            max_size=64 * 1024,
            ping_interval=20,
            ping_timeout=20,
        )
        self._tasks.append(asyncio.create_task(self._consume(), name="gateway-consume"))
        self.ready.set()
        log.info(
            "gateway listening on http://%s:%d/",
            self.settings.gateway_host,
            self.settings.gateway_port,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def _assign(self) -> None:
        """Own every partition; read recent alerts for resume, live events from the end."""
        assert self._consumer is not None
        consumer = self._consumer
        wanted = [self.topics.alerts, self.topics.enriched, self.topics.alert_acks]
        parts: list[TopicPartition] = []
        for _ in range(50):
            await consumer._client.force_metadata_update()
            parts = [
                TopicPartition(t, p)
                for t in wanted
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if {tp.topic for tp in parts} == set(wanted):
                break
            await asyncio.sleep(0.2)
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        begins = await consumer.beginning_offsets(parts)
        keep = self.settings.gateway_resume_buffer
        for tp in parts:
            if tp.topic in (self.topics.alerts, self.topics.alert_acks):
                consumer.seek(tp, max(begins[tp], ends[tp] - keep))
            else:
                consumer.seek(tp, ends[tp])
        self._backlog_end = {tp: ends[tp] for tp in parts if tp.topic != self.topics.enriched}

    # ---- Kafka -> clients ------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                for rec in records:
                    try:
                        self._dispatch(tp.topic, rec.value)
                    except Exception:
                        log.exception("gateway could not dispatch a message from %s", tp.topic)

    def _dispatch(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return
        data = orjson.loads(value)
        if topic == self.topics.alerts:
            self.publish_alert(data)
        elif topic == self.topics.enriched:
            self.publish_enriched(data)
        elif topic == self.topics.alert_acks:
            self.publish_ack(data)

    def publish_alert(self, alert: dict[str, Any]) -> None:
        """Remember an alert for resume and push it to every client it is for."""
        alert_id = alert.get("alert_id")
        if not isinstance(alert_id, str):
            return
        version = int(alert.get("version") or 1)
        known = self.recent.get(alert_id)
        if known is not None and int(known.get("version") or 1) >= version:
            return  # a redelivery: already pushed
        self.recent.pop(alert_id, None)
        self.recent[alert_id] = alert  # the newest version, at the end of the buffer
        while len(self.recent) > self.settings.gateway_resume_buffer:
            self.recent.popitem(last=False)
        self.stats["alerts"] += 1
        frame = _frame("alert", alert)
        for client in self.clients:
            if client.subscription is None:
                continue
            pos = self.officer_positions.get(client.principal.sub)
            if admits_alert(client.principal, client.subscription, alert, pos):
                client.offer_alert(alert_id, frame, version)

    def publish_enriched(self, message: dict[str, Any]) -> None:
        """Turn an enriched message into live map events (one per read of a camera batch)."""
        events = message.get("reads") if "reads" in message else [message]
        for event in events or []:
            enrichment = event.get("enrichment") or {}
            kind = enrichment.get("kind", "unknown")
            if kind == "officer_location" and "officer_id" in event:
                self.officer_positions[event["officer_id"]] = (event["lat"], event["lon"])
            self.stats["events"] += 1
            areas = enrichment.get("area_codes") or []
            frame: bytes | None = None
            for client in self.clients:
                if client.subscription is None:
                    continue
                if admits_event(client.principal, client.subscription, areas):
                    frame = frame or _frame("event", {"kind": kind, "event": event})
                    client.offer_event(frame)

    def publish_ack(self, ack: dict[str, Any]) -> None:
        """Tell analysts and supervisors that someone acted on an alert."""
        alert_id = ack.get("alert_id")
        if not isinstance(alert_id, str):
            return
        self.acks[alert_id] = ack
        self.stats["acks"] += 1
        frame = _frame("alert_ack", ack)
        for client in self.clients:
            if client.subscription is not None and client.principal.role in (
                Role.RTIC_ANALYST,
                Role.SUPERVISOR,
            ):
                client.send_now(frame)

    # ---- HTTP ------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Principal:
        """The principal of the request's bearer token (header, or ``token`` query parameter)."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            token = (parse_qs(urlsplit(request.path).query).get("token") or [""])[0]
        if not token:
            raise AuthError("missing bearer token")
        return verify_token(self.secret, token, now=self.clock())

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws":
            try:
                connection.principal = self.authenticate(request)  # type: ignore[attr-defined]
            except AuthError as exc:
                return _response(
                    HTTPStatus.UNAUTHORIZED, orjson.dumps({"error": str(exc)}), "application/json"
                )
            return None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return _response(HTTPStatus.NOT_FOUND, b"websocket endpoint is /ws\n", "text/plain")
        return self.http(request)

    def http(self, request: Request) -> Response:
        """Dashboards, their static files and the small JSON API."""
        url = urlsplit(request.path)
        path = url.path
        if path in ("/", "/rtic", "/index.html"):
            path = "/static/" + dashboards.INDEX
        if path.startswith("/static/"):
            found = dashboards.static_file(path[len("/static/") :])
            if found is None:
                return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return _response(HTTPStatus.OK, found[0], found[1])
        if path == "/api/boundaries":
            level = (parse_qs(url.query).get("level") or ["ward"])[0]
            if level not in self.geo.levels:
                return _response(
                    HTTPStatus.BAD_REQUEST, b'{"error":"unknown level"}', "application/json"
                )
            if level not in self._boundaries:
                self._boundaries[level] = orjson.dumps(self.geo.boundaries_geojson(level))
            return _response(HTTPStatus.OK, self._boundaries[level], "application/json", cache=True)
        if path == "/api/config":
            config = {
                "version": __version__,
                "reference_version": self.geo.version,
                "attribution": ATTRIBUTION,
            }
            return _response(HTTPStatus.OK, orjson.dumps(config), "application/json")
        if path == "/healthz":
            health: dict[str, object] = {
                "status": "ok",
                "clients": len(self.clients),
                "alerts_buffered": len(self.recent),
                **self.stats,
            }
            return _response(HTTPStatus.OK, orjson.dumps(health), "application/json")
        return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    # ---- websocket -------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        principal: Principal = ws.principal  # type: ignore[attr-defined]
        client = Client(ws, principal, self.settings.gateway_client_queue)
        self.clients.add(client)
        self.stats["clients_total"] += 1
        pump = asyncio.create_task(client.pump(), name=f"pump-{principal.sub}")
        expiry = asyncio.get_running_loop().call_at(
            asyncio.get_running_loop().time()
            + max(0.0, principal.expires_at - self.clock().timestamp()),
            lambda: asyncio.ensure_future(ws.close(1008, "token expired")),
        )
        client.send_now(_frame("hello", {"role": principal.role.value, "sub": principal.sub}))
        try:
            async for raw in ws:
                reply = self.on_client_message(client, raw)
                if reply is not None:
                    client.send_now(reply)
                if client.errors >= MAX_CLIENT_ERRORS:
                    await ws.close(1008, "too many bad messages")
                    break
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            self.clients.discard(client)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pump

    def on_client_message(self, client: Client, raw: str | bytes) -> bytes | None:
        """Handle one client message; the reply frame (an error frame for nonsense)."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._error(client, "bad_json", "message is not JSON")
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return self._error(client, "bad_message", "message must be a JSON object with a 'type'")
        kind = msg["type"]
        try:
            if kind == "ping":
                return _frame("pong", {"at": self.clock().isoformat()})
            if kind == "subscribe":
                client.subscription = parse_subscription(msg)
                return _frame("subscribed", {"filters": client.subscription.describe()})
            if kind == "resume":
                return self._resume(client, msg)
            if kind == "ack":
                return self._ack(client, msg)
            if kind in ("snooze", "unsnooze"):
                return self._snooze(client, msg, kind)
        except ContractError as exc:
            return self._error(client, "bad_" + kind, str(exc))
        return self._error(client, "unknown_type", f"unknown message type {kind!r}")

    def _error(self, client: Client, code: str, message: str) -> bytes:
        client.errors += 1
        return _frame("error", {"code": code, "message": message})

    def _resume(self, client: Client, msg: dict[str, Any]) -> bytes:
        if client.subscription is None:
            raise ContractError("subscribe before resume")
        last = msg.get("last_alert_id")
        since = msg.get("since")
        alerts = list(self.recent.values())
        complete = True
        if isinstance(last, str):
            ids = list(self.recent)
            if last in self.recent:
                alerts = alerts[ids.index(last) + 1 :]
            else:
                complete = False  # older than the buffer: everything we have
        elif isinstance(since, str):
            try:
                cutoff = datetime.fromisoformat(since)
            except ValueError as exc:
                raise ContractError("since must be an ISO 8601 time") from exc
            if cutoff.tzinfo is None:
                raise ContractError("since needs a timezone")
            alerts = [a for a in alerts if datetime.fromisoformat(a["created_at"]) > cutoff]
        else:
            raise ContractError("resume needs last_alert_id or since")
        sent = 0
        for alert in alerts:
            pos = self.officer_positions.get(client.principal.sub)
            if admits_alert(client.principal, client.subscription, alert, pos):
                client.offer_alert(
                    alert["alert_id"], _frame("alert", alert), int(alert.get("version") or 1)
                )
                sent += 1
        return _frame("resumed", {"count": sent, "complete": complete})

    async def record_ack(self, ack: AlertAckV1) -> None:
        """Write an acknowledgement to ``rtic.alert-acks.v1``."""
        if self._producer is None:
            raise ServiceError("the gateway is not started")
        await self._producer.send_and_wait(
            self.topics.alert_acks, dumps(ack), key=ack.alert_id.encode()
        )

    def _ack(self, client: Client, msg: dict[str, Any]) -> bytes:
        who = client.principal
        if who.role is Role.CITIZEN:
            raise ContractError("citizens cannot act on alerts")
        alert_id = msg.get("alert_id")
        if not isinstance(alert_id, str) or not alert_id:
            raise ContractError("ack needs an alert_id")
        action = msg.get("action", "ack")
        if action not in ("ack", "assign", "dismiss"):
            raise ContractError("action must be ack, assign or dismiss")
        note = msg.get("note")
        if note is not None and not isinstance(note, str):
            raise ContractError("note must be text")
        ack = AlertAckV1(
            alert_id=alert_id, action=action, by=who.sub, role=who.role, at=self.clock(), note=note
        )
        task = asyncio.get_running_loop().create_task(self.record_ack(ack))
        task.add_done_callback(_log_failure)
        return _frame("acked", {"alert_id": alert_id, "action": action})

    async def record_reference(self, change: ReferenceChangeV1) -> None:
        """Write a reference change (a snooze or its lifting) to ``rtic.reference.v1``."""
        if self._producer is None:
            raise ServiceError("the gateway is not started")
        await self._producer.send_and_wait(
            self.topics.reference, dumps(change), key=change.id.encode()
        )

    def _snooze(self, client: Client, msg: dict[str, Any], kind: str) -> bytes:
        """``snooze`` / ``unsnooze``: analysts and supervisors only; the change goes to the
        reference topic and the client is answered at once (the workers apply it within
        about a second)."""
        who = client.principal
        if not may_snooze(who):
            return self._error(client, "forbidden", f"a {who.role.value} cannot {kind} alerts")
        try:
            change = (
                parse_snooze(msg, who, self.clock(), self.rule_ids)
                if kind == "snooze"
                else parse_unsnooze(msg)
            )
        except ContractError as exc:
            return self._error(client, "bad_request", f"{kind}: {exc}")
        task = asyncio.get_running_loop().create_task(self.record_reference(change))
        task.add_done_callback(_log_failure)
        if change.op == "delete":
            log.info("%s %s lifted snooze %s", who.role.value, who.sub, change.id)
            return _frame("unsnoozed", {"snooze_id": change.id})
        entry = change.entry or {}
        log.info(
            "%s %s snoozed %s for %s until %s",
            who.role.value,
            who.sub,
            entry.get("rule_id") or "every rule",
            entry.get("area") or entry.get("vrm"),
            entry["until"],
        )
        return _frame(
            "snoozed",
            {
                "snooze_id": change.id,
                "until": entry["until"],
                "rule_id": entry.get("rule_id"),
                "area": entry.get("area"),
                "vrm": entry.get("vrm"),
            },
        )


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not record a client's change: %s", task.exception())


def _response(status: HTTPStatus, body: bytes, content_type: str, cache: bool = False) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "max-age=3600" if cache else "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


async def run_gateway(settings: Settings) -> None:
    """Run the gateway until cancelled (Ctrl-C)."""
    gateway = Gateway(settings)
    await gateway.start()
    try:
        await asyncio.Future()
    finally:
        await gateway.stop()
