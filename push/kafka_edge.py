"""The gateway's Kafka edge: reads alerts, live events, acks and case updates; writes
clients' changes and the audit trail.

It reads ``rtic.alerts.v1``, ``rtic.enriched.v1``, ``rtic.alert-acks.v1`` and
``rtic.cases.v1`` with a consumer of its own (no consumer group: every gateway
sees everything) and hands each message to the fan-out core (``push/fanout.py``;
case updates through ``push/casefeed.py``). On start it reads the last
``gateway_resume_buffer`` alerts and acks again, so clients that reconnect to a
new gateway can still resume; live events and case updates are read from the
end only.

It is also the core's ``ChangeSink``: acks go to ``rtic.alert-acks.v1``, snoozes
to ``rtic.reference.v1`` as reference changes of kind ``snooze`` (the workers
hold matching alerts back). A write runs as a task so the client is answered at
once; a failed write is logged and counted.

And it drains the audit buffer (``push/audit.py``) to ``rtic.audit.v1`` (key: the
record's object id) every ``AUDIT_FLUSH_S`` seconds, or sooner when
``AUDIT_BATCH`` records wait. A batch that fails is kept and sent again, the
same records with the same ids, before anything newer; meanwhile new records
wait in the bounded buffer. ``write_audit`` writes records at once and returns
when Kafka has them (the HTTP API's acts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from push.audit import AuditBuffer
from push.fanout import Kind
from push.metrics import GatewayMetrics
from rtic.casework import AuditV1
from rtic.errors import ServiceError
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.schemas import AlertAckV1, ReferenceChangeV1, dumps
from rtic.settings import Settings
from rtic.topics import Topics

log = logging.getLogger(__name__)

Deliver = Callable[[Kind, dict[str, Any]], None]
AUDIT_FLUSH_S = 0.25
AUDIT_BATCH = 1000
AUDIT_RETRY_S = 1.0
AUDIT_WRITE_TIMEOUT_S = 5.0


def _report_stop(task: asyncio.Task[None]) -> None:
    """The consumer ending other than by ``stop`` is an outage: say so (``/healthz`` 503s)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the gateway stopped consuming: %r", task.exception())


class KafkaEdge:
    """The consumer that feeds the core and the producer of clients' changes."""

    def __init__(
        self, settings: Settings, metrics: GatewayMetrics, audit: AuditBuffer | None = None
    ) -> None:
        """``audit``: the buffer to drain to ``rtic.audit.v1`` (none: nothing to drain)."""
        self.settings = settings
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.metrics = metrics
        self.audit = audit
        self.kinds: dict[str, Kind] = {
            self.topics.alerts: "alert",
            self.topics.enriched: "enriched",
            self.topics.alert_acks: "ack",
            self.topics.cases: "case",
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consuming: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._audit_due = asyncio.Event()
        self._audit_pending: list[AuditV1] = []  # a batch that failed, sent again first
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
        self.start_audit()

    def start_audit(self) -> None:
        """Start draining the audit buffer (``start`` does; tests call it alone)."""
        if self.audit is not None and self._flushing is None:
            self.audit.on_record = self._wake_audit
            self._flushing = asyncio.create_task(self._flush_audit(), name="gateway-audit")

    async def stop(self) -> None:
        """Stop consuming, let pending writes finish, flush the audit buffer, disconnect."""
        if self._consuming is not None:
            self._consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consuming
        if self._flushing is not None:
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
            self._flushing = None
            await self._audit_once()  # what is left, once (a stopped Kafka: logged)
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
            if tp.topic in (self.topics.enriched, self.topics.cases):
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

    async def settled(self) -> None:
        """Until every write started so far has been acknowledged by the broker (or has
        failed, logged): the reply that confirms a client's act waits for it, so an act
        answered ``acked`` is on its topic even if the gateway dies the next moment."""
        pending = set(self._writes)
        if pending:
            await asyncio.wait(pending)

    def reference(self, change: ReferenceChangeV1) -> None:
        """Write a reference change (a snooze or its lifting) to ``rtic.reference.v1``."""
        self._write("snooze", self.topics.reference, change.id, dumps(change))

    # ---- the audit trail ----------------------------------------------------------------

    def _wake_audit(self) -> None:
        if self.audit is not None and len(self.audit) >= AUDIT_BATCH:
            self._audit_due.set()

    async def _flush_audit(self) -> None:
        """Drain the buffer every ``AUDIT_FLUSH_S`` (sooner when a batch is full)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(AUDIT_FLUSH_S):
                    await self._audit_due.wait()
            self._audit_due.clear()
            if not await self._audit_once():
                await asyncio.sleep(AUDIT_RETRY_S)  # Kafka is away: the batch waits, kept

    async def _audit_once(self) -> bool:
        """Send the failed batch again, else the next; False if it failed (kept)."""
        if not self._audit_pending and self.audit is not None:
            self._audit_pending = self.audit.drain(AUDIT_BATCH)
        if not self._audit_pending:
            return True
        try:
            await self.write_audit(self._audit_pending)
        except Exception as exc:
            log.error("could not write %d audit records: %s", len(self._audit_pending), exc)
            return False
        self._audit_pending = []
        return True

    async def write_audit(self, records: list[AuditV1]) -> None:
        """Write audit records to ``rtic.audit.v1`` and return once Kafka has them all;
        ``ServiceError`` if it does not (a retry sends the same ids: no doubles)."""
        try:
            if self._producer is None:
                raise ServiceError("the gateway is not connected to Kafka")
            async with asyncio.timeout(AUDIT_WRITE_TIMEOUT_S):
                sent = [
                    await self._producer.send(self.topics.audit, dumps(r), key=r.object_id.encode())
                    for r in records
                ]
                await asyncio.gather(*sent)
        except Exception as exc:
            self.metrics.produced.labels("audit", "failed").inc(len(records))
            raise ServiceError(f"audit: {type(exc).__name__}: {exc}") from exc
        self.metrics.produced.labels("audit", "ok").inc(len(records))

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Write one message (an online report's call, a statement's metadata) and return
        once Kafka has it; ``ServiceError`` if it does not."""
        try:
            if self._producer is None:
                raise ServiceError("the gateway is not connected to Kafka")
            async with asyncio.timeout(AUDIT_WRITE_TIMEOUT_S):
                await self._producer.send_and_wait(topic, value, key=key.encode())
        except Exception as exc:
            self.metrics.produced.labels("portal", "failed").inc()
            raise ServiceError(f"{topic}: {type(exc).__name__}: {exc}") from exc
        self.metrics.produced.labels("portal", "ok").inc()

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
