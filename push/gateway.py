"""The push gateway, assembled: the fan-out core between a Kafka edge and a web edge.

::

    Kafka --(alerts, enriched, acks)--> KafkaEdge --> Fanout --> Client queues
                                             ^          |  ^           |
        acks, snoozes <----(ChangeSink)------+----------+  |           v
                                                         +-- web edge (Starlette, /ws)

- ``push/fanout.py``: the core, no I/O: clients, bounded queues, resume, dedup.
- ``push/access.py``: who may see what, and what a valid client message means.
- ``push/kafka_edge.py``: the consumer feeding the core, the producer of changes.
- ``push/web.py``: routes, authentication, limits, security headers, the websocket.
- ``push/metrics.py``: the gateway's Prometheus metrics.

``run_gateway`` starts the Kafka edge, then serves the app with uvicorn, whose
websocket side is the ``websockets`` package (its Sans-I/O protocol:
``ws="websockets-sansio"``; uvicorn's older ``"websockets"`` adapter is deprecated).
"""

from __future__ import annotations

import logging
import re

import uvicorn
from starlette.applications import Starlette

from push.fanout import Clock, Fanout
from push.kafka_edge import KafkaEdge
from push.metrics import GatewayMetrics
from push.web import MAX_WS_MESSAGE_BYTES, create_app
from rtic.clock import utc_now
from rtic.settings import Settings
from rtic.tokens import TokenKeys
from rules.catalogue import default_rules

log = logging.getLogger(__name__)

WS_PING_INTERVAL_S = 20.0  # a dead device is noticed within about 40 s
WS_PING_TIMEOUT_S = 20.0


class RedactTokens(logging.Filter):
    """Takes bearer tokens out of log lines: uvicorn logs each websocket's path with its
    query string, and the dashboard's socket carries its token there."""

    _TOKEN = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self._TOKEN.sub(r"\1[redacted]", message), ()
        return True


class Gateway:
    """One gateway: its metrics, core, Kafka edge and web app, wired together."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.kafka = KafkaEdge(settings, self.metrics)
        # The rules a snooze may name: those of the catalogue.
        rule_ids = frozenset(r.spec.rule_id for r in default_rules(settings))
        self.core = Fanout(
            sink=self.kafka,
            queue_size=settings.gateway_client_queue,
            resume_buffer=settings.gateway_resume_buffer,
            rule_ids=rule_ids,
            clock=clock,
            metrics=self.metrics,
        )
        self.app: Starlette = create_app(
            self.core,
            secret=TokenKeys.from_settings(settings),
            data_dir=settings.data_dir,
            consuming=lambda: self.kafka.consuming,
        )

    def server(self) -> uvicorn.Server:
        """The uvicorn server for the app, on the configured host and port."""
        config = uvicorn.Config(
            self.app,
            host=self.settings.gateway_host,
            port=self.settings.gateway_port,
            ws="websockets-sansio",
            ws_max_size=MAX_WS_MESSAGE_BYTES,
            ws_ping_interval=WS_PING_INTERVAL_S,
            ws_ping_timeout=WS_PING_TIMEOUT_S,
            lifespan="off",
            log_config=None,  # the engine's logging, not uvicorn's
            access_log=False,  # the page's URL carries its token: never log it
            server_header=False,
        )
        uvicorn_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, RedactTokens) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(RedactTokens())
        return uvicorn.Server(config)

    async def run(self) -> None:
        """Consume, then serve until uvicorn is told to stop (SIGINT, SIGTERM)."""
        await self.kafka.start(self.core.publish)
        log.info(
            "gateway listening on http://%s:%d/",
            self.settings.gateway_host,
            self.settings.gateway_port,
        )
        try:
            await self.server().serve()
        finally:
            await self.kafka.stop()


async def run_gateway(settings: Settings) -> None:
    """Run the gateway until it is stopped (Ctrl-C)."""
    await Gateway(settings).run()
