"""The push gateway, assembled: the fan-out core between a Kafka edge and a web edge.

::

    Kafka --(alerts, enriched, acks)--> KafkaEdge --> Fanout --> Client queues
          --(case updates)--> CaseFeed --^  |  ^  |              |
        acks, snoozes <----(ChangeSink)-----+  |  +--> AuditBuffer --> rtic.audit.v1
                                               |                 v
      database (cases, audit, revocations) <-- web edge (Starlette: /ws, /api/...)

- ``push/fanout.py``: the core, no I/O: clients, bounded queues, resume, dedup.
- ``push/access.py``: who may see what, and what a valid client message means.
- ``push/kafka_edge.py``: the consumer feeding the core, the producer of changes
  and of the audit trail.
- ``push/casefeed.py``: case updates, with the stored case's officers, to the core.
- ``push/dispatch.py``: the job boards (``push/jobs.py``): incidents and officers,
  job updates, assignments and positions, ``/api/incidents`` and ``/api/officers``.
- ``push/chat.py``: webchat between citizens and contact handlers (``chat*`` messages).
- ``push/audit.py``: the audit buffer (deliveries and acts, never blocking).
- ``push/revocations.py``: revoked tokens, refreshed from the database.
- ``push/web.py``: routes, authentication, limits, security headers, the websocket.
- ``push/api.py``: cases, evidence, the audited history search, audit histories.
- ``push/verify.py``: plate checks (``verify``, ``verification`` frames, camera counts).
- ``push/metrics.py``: the gateway's Prometheus metrics.

``run_gateway`` opens the database (``records.open_records`` on
``RTIC_DATABASE_URL``) and the history search (Redis), reads the revocation
list, starts the Kafka edge, then serves the app with uvicorn, whose websocket
side is the ``websockets`` package (its Sans-I/O protocol:
``ws="websockets-sansio"``; uvicorn's older ``"websockets"`` adapter is deprecated).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from typing import Any

import uvicorn
from starlette.applications import Starlette

from analytics.anomaly import RULE_ID as ANOMALY_RULE
from enrichers.search import HistorySearch, RedisHistorySearch
from enrichers.trend_store import MemoryTrendStore, RedisTrendStore
from enrichers.verifications import RedisVerifications
from push.audit import AuditBuffer
from push.casefeed import CaseFeed
from push.chat import ChatDesk
from push.deskstats import DeskStats, seed
from push.dispatch import Dispatch, RedisOnce, attendance_targets_from
from push.evidence import EvidenceDesk
from push.fanout import Clock, Fanout, Kind
from push.kafka_edge import KafkaEdge
from push.metrics import GatewayMetrics
from push.portal import Portal
from push.priorities import PatrolPriorities
from push.ratelimit import RateLimiter
from push.revocations import RevocationCache
from push.tickets import LoginTickets, RedisGrants
from push.trends import DeskTrends
from push.verify import Verifications
from push.web import WebEdge, create_app
from push.wslimits import WsLimits
from records import open_records
from records.protocols import Records
from rtic.clock import utc_now
from rtic.settings import Settings
from rtic.tokens import TokenKeys
from rtic.topics import Topics
from rules.catalogue import default_rules

log = logging.getLogger(__name__)

# Young generations of the cyclic garbage collector, larger than Python's (700, 10, 10):
# see ``tune_gc``.
GC_THRESHOLDS = (50_000, 5, 10)
WS_PING_INTERVAL_S = 20.0  # a dead device is noticed within about 40 s
WS_PING_TIMEOUT_S = 20.0


def tune_gc() -> None:
    """Keep the garbage collector from stopping every client's deliveries for a second.

    A connected client holds a few hundred objects (its socket's protocol, tasks,
    queue), so 5,000 clients are over a million, and a full collection walks them
    all with the event loop stopped (about a second on a 2-core machine, measured
    by ``benchmarks/fanout.py``). Python runs one whenever the objects that
    survived the young collections grow by a quarter; with thousands of senders
    each waiting for its next frame, Python's small young generations promote
    those short-lived waits by the hundred per alert. Larger young generations let
    them die young, so full collections come rarely; and what the gateway loaded
    at start (boundaries, boards) is frozen out of them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class RedactTokens(logging.Filter):
    """Takes bearer tokens and login tickets out of log lines: uvicorn logs a websocket's
    path with its query string, where a client keeping to the contract's old form
    (``?token=``) carries its token, and a page's URL may hold a ticket; at debug level
    the websockets protocol logs the handshake's headers, where a page's socket offers
    its token as the subprotocol ``rtic.bearer.<token>``."""

    _TOKEN = re.compile(r"((?:token|ticket)=|rtic\.bearer\.)[^&\s\"',]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message or "ticket=" in message or "rtic.bearer." in message:
            record.msg, record.args = self._TOKEN.sub(r"\1[redacted]", message), ()
        return True


class Gateway:
    """One gateway: its metrics, core, Kafka edge and web app, wired together.

    ``records`` and ``search``: the database and the history search; ``run`` opens
    them from the settings when they are not given (tests give their own)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock = utc_now,
        *,
        records: Records | None = None,
        search: HistorySearch | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        where = f"gateway@{settings.gateway_host}:{settings.gateway_port}"
        self.audit = AuditBuffer(self.metrics, origin=where)
        self.kafka = KafkaEdge(settings, self.metrics, self.audit)
        # The rules a snooze may name: those of the catalogue, and unusual demand.
        rule_ids = frozenset(r.spec.rule_id for r in default_rules(settings)) | {ANOMALY_RULE}
        self.core = Fanout(
            sink=self.kafka,
            queue_size=settings.gateway_client_queue,
            resume_buffer=settings.gateway_resume_buffer,
            rule_ids=rule_ids,
            clock=clock,
            metrics=self.metrics,
            audit=self.audit,
            officer_max_radius_m=settings.officer_max_radius_km * 1000,
        )
        self.kafka.alert_replay = self.core  # resumes wait until the recent alerts are read
        self.revocations = RevocationCache(None, self.metrics)
        self.revocations.on_change = self.core.revoke
        self.cases = CaseFeed(self.core, None)
        self.desk_stats = DeskStats(clock)
        self.dispatch = Dispatch(  # the job boards: push/dispatch.py
            self.core,
            self.kafka,
            None,
            attendance_targets_from(settings),
            ttl_days=settings.job_update_ttl_days,
        )
        self.kafka.on_replayed = self.dispatch.replayed
        self.chat = ChatDesk(
            self.core,
            escalate_after_s=settings.chat_escalate_after_s,
            write_call=self.kafka.write_call,
        )
        self.chat.register()
        self.serving: uvicorn.Server | None = None  # while ``run`` serves (tests stop it)
        self.app: Starlette = create_app(
            self.core,
            secret=TokenKeys.from_settings(settings),
            data_dir=settings.data_dir,
            consuming=lambda: self.kafka.consuming,
            search=search,
            write_audit=self.kafka.write_audit,
            revocations=self.revocations,
            map_tile_url=settings.map_tile_url,
            ws_limits=WsLimits.from_settings(settings),
        )
        self.app.state.login_tickets = LoginTickets.from_settings(settings)  # Redis: open_stores
        self.app.state.desk_stats = self.desk_stats
        self.desk_trends = DeskTrends(MemoryTrendStore(), clock)  # Redis's in open_stores
        self.app.state.desk_trends = self.desk_trends
        self.app.state.dispatch = self.dispatch
        self.app.state.rate_limiter = RateLimiter.from_settings(settings)
        self.app.state.evidence = EvidenceDesk.from_settings(settings, self.kafka.publish)
        self.app.state.portal = Portal(
            settings, TokenKeys.from_settings(settings), self.kafka.publish
        )
        self.use_records(records)
        self.verify = Verifications(self.core, self.kafka)  # verify, verification frames
        self.app.state.verifications = self.verify
        topics = Topics.with_prefix(settings.topic_prefix)  # patrol priorities: push/priorities.py
        self.priorities = PatrolPriorities(settings, topics.priorities, self.kafka.publish, clock)
        self.app.state.priorities = self.priorities

    @property
    def edge(self) -> WebEdge:
        edge: WebEdge = self.app.state.edge
        return edge

    def use_records(self, records: Records | None) -> None:
        """Serve cases, audit and revocations from this database."""
        self.records = records
        self.edge.records = records
        self.revocations.store = records.revocations if records is not None else None
        self.cases.cases = records.cases if records is not None else None
        self.chat.store = records.chats if records is not None else None
        self.chat.cases = self.cases.cases

    def deliver(self, kind: Kind, message: dict[str, Any], *, replayed: bool = False) -> None:
        """What the Kafka edge read: case updates by way of the case feed (``replayed``:
        an alert read again at start, kept for resume but not pushed)."""
        self.desk_stats.observe(kind, message)
        self.priorities.observe(kind, message)
        if kind == "case":
            self.cases.offer(message)
            return
        if kind == "verification":
            self.verify.read(message)
            return
        if kind in ("incident", "officer_location", "enriched"):
            self.dispatch.read(kind, message)
        if kind not in ("incident", "officer_location"):
            self.core.publish(kind, message, replayed=replayed)
            if kind == "alert":
                self.verify.mark(message)  # read after its decision (a restart): say so

    def server(self) -> uvicorn.Server:
        """The uvicorn server for the app, on the configured host and port."""
        config = uvicorn.Config(
            self.app,
            host=self.settings.gateway_host,
            port=self.settings.gateway_port,
            ws="websockets-sansio",
            ws_max_size=self.settings.ws_max_message_bytes,  # over it: 1009 (push/wslimits.py)
            ws_ping_interval=WS_PING_INTERVAL_S,
            ws_ping_timeout=WS_PING_TIMEOUT_S,
            lifespan="off",
            log_config=None,  # the engine's logging, not uvicorn's
            access_log=False,  # the page's URL carries its token: never log it
            server_header=False,
        )
        for name in ("uvicorn.error", "uvicorn.access"):  # access: off, unless set up again
            uvicorn_log = logging.getLogger(name)
            if not any(isinstance(f, RedactTokens) for f in uvicorn_log.filters):
                uvicorn_log.addFilter(RedactTokens())
        return uvicorn.Server(config)

    async def open_stores(self) -> list[Any]:
        """Open what was not given: the database (migrated) and the history search. The
        stores opened here, to close at the end."""
        opened: list[Any] = []
        if self.records is None:
            records = await open_records(self.settings.database_url)
            self.use_records(records)
            opened.append(records)
        if self.edge.search is None:
            search = RedisHistorySearch.from_url(
                self.settings.redis_url,
                prefix=self.settings.topic_prefix,
                timeout=self.settings.redis_timeout,
            )
            self.edge.search = search
            opened.append(search)
        tickets: LoginTickets = self.app.state.login_tickets
        if tickets.store is None:
            grants = RedisGrants.from_url(
                self.settings.redis_url, timeout=self.settings.redis_timeout
            )
            tickets.store = grants
            opened.append(grants)
        if self.dispatch.once is None:
            once = RedisOnce.from_url(
                self.settings.redis_url,
                prefix=self.settings.topic_prefix,
                timeout=self.settings.redis_timeout,
            )
            self.dispatch.once = once
            opened.append(once)
        if self.verify.store is None:
            verifications = RedisVerifications.from_url(
                self.settings.redis_url,
                prefix=self.settings.topic_prefix,
                timeout=self.settings.redis_timeout,
            )
            self.verify.store = verifications
            opened.append(verifications)
        if isinstance(self.desk_trends.feed.store, MemoryTrendStore):
            trend_store = RedisTrendStore.from_url(
                self.settings.redis_url,
                prefix=self.settings.topic_prefix,
                timeout=self.settings.redis_timeout,
            )
            self.desk_trends.use_store(trend_store)
            opened.append(trend_store)
        if self.dispatch.incidents.area_codes is None:
            from enrichers.geo import GeoIndex  # the worker's boundaries: a second or two

            geo = await asyncio.to_thread(GeoIndex.load, self.settings.data_dir)
            self.dispatch.use_area_codes(geo.codes_at)
        return opened

    async def run(self) -> None:
        """Open the stores, consume, then serve until uvicorn is told to stop (SIGINT,
        SIGTERM)."""
        opened = await self.open_stores()
        await self.revocations.refresh()  # before the first request
        tasks = [
            asyncio.create_task(self.revocations.run(), name="gateway-revocations"),
            asyncio.create_task(self.cases.run(), name="gateway-case-feed"),
            asyncio.create_task(self.chat.run(), name="gateway-chat"),
        ]
        try:
            await self.kafka.start(self.deliver)
            tasks.append(asyncio.create_task(self._seed_desk_stats(), name="gateway-desk-stats"))
            calls = Topics.with_prefix(self.settings.topic_prefix).calls
            run = self.priorities.run(self.settings.kafka_url, calls)
            tasks.append(asyncio.create_task(run, name="gateway-priorities"))
            log.info(
                "gateway listening on http://%s:%d/",
                self.settings.gateway_host,
                self.settings.gateway_port,
            )
            tune_gc()
            self.serving = self.server()
            await self.serving.serve()
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.dispatch.close()
            await self.kafka.stop()
            for store in opened:
                await store.close()

    async def _seed_desk_stats(self) -> None:
        """The desk's charts after a restart: the last 24 hours of calls and verifications
        re-read (``push/deskstats.py`` says what is and is not known)."""
        topics = Topics.with_prefix(self.settings.topic_prefix)
        wanted = {"call": topics.calls, "verification": topics.verifications}
        await seed(self.desk_stats, self.settings.kafka_url, wanted)


async def run_gateway(settings: Settings) -> None:
    """Run the gateway until it is stopped (Ctrl-C)."""
    await Gateway(settings).run()
