"""The gateway's Kafka edge: reads alerts, live events and acks; writes clients' changes.

It reads ``rtic.alerts.v1``, ``rtic.enriched.v1`` and ``rtic.alert-acks.v1`` with a
consumer of its own (no consumer group: every gateway sees everything) and hands
each message to the fan-out core (``push/fanout.py``). On start it reads the last
``gateway_resume_buffer`` alerts and acks again, so clients that reconnect to a
new gateway can still resume; live events are read from the end only.

It is also the core's ``ChangeSink``: acks go to ``rtic.alert-acks.v1``, snoozes
to ``rtic.reference.v1`` as reference changes of kind ``snooze`` (the workers
hold matching alerts back). A write runs as a task so the client is answered at
once; a failed write is logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from push.fanout import Kind
from push.metrics import GatewayMetrics
from rtic.errors import ServiceError
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.schemas import AlertAckV1, ReferenceChangeV1, dumps
from rtic.settings import Settings
from rtic.topics import Topics

log = logging.getLogger(__name__)

Deliver = Callable[[Kind, dict[str, Any]], None]


def _report_stop(task: asyncio.Task[None]) -> None:
    """The consumer ending other than by ``stop`` is an outage: say so (``/healthz`` 503s)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the gateway stopped consuming: %r", task.exception())


class KafkaEdge:
    """The consumer that feeds the core and the producer of clients' changes."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.metrics = metrics
        self.kinds: dict[str, Kind] = {
            self.topics.alerts: "alert",
            self.topics.enriched: "enriched",
            self.topics.alert_acks: "ack",
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consuming: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def consuming(self) -> bool:
        """Whether the consumer is running (for ``/healthz``)."""
        return self._consuming is not None and not self._consuming.done()

    async def start(self, deliver: Deliver) -> None:
        """Connect, own every partition of the topics read, and start consuming."""
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
        await self._assign(self._consumer)
        self._consuming = asyncio.create_task(self._consume(deliver), name="gateway-consume")
        self._consuming.add_done_callback(_report_stop)

    async def stop(self) -> None:
        """Stop consuming, let pending writes finish, and disconnect."""
        if self._consuming is not None:
            self._consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consuming
        if self._writes:
            await asyncio.wait(self._writes, timeout=5)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Own every partition; read recent alerts and acks for resume, live events from
        the end."""
        wanted = list(self.kinds)
        parts: list[TopicPartition] = []
        for _ in range(50):  # a topic just created may take a moment to show its partitions
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
            if tp.topic == self.topics.enriched:
                consumer.seek(tp, ends[tp])
            else:
                consumer.seek(tp, max(begins[tp], ends[tp] - keep))

    async def _consume(self, deliver: Deliver) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                kind = self.kinds[tp.topic]
                consumed = self.metrics.consumed.labels(tp.topic)
                for rec in records:
                    consumed.inc()
                    if rec.value is None:
                        continue
                    try:
                        deliver(kind, orjson.loads(rec.value))
                    except Exception:
                        log.exception("gateway could not dispatch a message from %s", tp.topic)

    # ---- the core's ChangeSink -------------------------------------------------------

    def ack(self, ack: AlertAckV1) -> None:
        """Write an acknowledgement to ``rtic.alert-acks.v1`` (in the background)."""
        self._write("ack", self.topics.alert_acks, ack.alert_id, dumps(ack))

    def reference(self, change: ReferenceChangeV1) -> None:
        """Write a reference change (a snooze or its lifting) to ``rtic.reference.v1``."""
        self._write("snooze", self.topics.reference, change.id, dumps(change))

    def _write(self, kind: str, topic: str, key: str, value: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._send(kind, topic, key, value))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _send(self, kind: str, topic: str, key: str, value: bytes) -> None:
        try:
            if self._producer is None:
                raise ServiceError("the gateway is not connected to Kafka")
            await self._producer.send_and_wait(topic, value, key=key.encode())
        except Exception as exc:
            self.metrics.produced.labels(kind, "failed").inc()
            log.error("could not record a client's %s: %s", kind, exc)
        else:
            self.metrics.produced.labels(kind, "ok").inc()
