"""The gateway's Kafka edge: reads alerts, live events, acks and case updates; writes
clients' changes and the audit trail.

It reads ``rtic.alerts.v1``, ``rtic.enriched.v1``, ``rtic.alert-acks.v1``,
``rtic.cases.v1``, ``rtic.verifications.v1``, ``rtic.incidents.v1`` and
``rtic.officer-locations.v1`` with a consumer of its own (no consumer group:
every gateway sees everything) and hands each message to the fan-out core
(``push/fanout.py``; case updates through ``push/casefeed.py``; plate checks'
answers through ``push/verify.py``; incident events, pings and enriched events
to the job boards, ``push/dispatch.py``). On start it reads the last
``gateway_resume_buffer`` alerts, acks and verifications again, so clients that
reconnect to a new gateway can still resume, and the last
``gateway_jobs_replay`` incident events and pings of each partition, to rebuild
the job boards (``on_replayed`` is called once they are read); live events and
case updates are read from the end only.

Catching up at start: the alerts read again (those before the end offsets the
topic had when the gateway started) are handed over as ``replayed``: kept for
resume, never pushed live, since the gateway before this one pushed them. The
core (``alert_replay``) is told when that reading starts and when it is done
(``caught_up``); until then it holds every ``resume``, so a client that
reconnects at once is answered from the whole buffer, not from half of it. The
end offsets are the true ones: Tansu 0.6 answers ListOffsets with the last
batch's base offset + 1, not the last offset + 1 (``streams/transport.py``), so
``true_ends`` reads the batch at ``end - 1`` again; a partition is caught up when
a record at or past its end has been read or the consumer's position has passed
it, so the check never waits for a record that will not come.

It writes job updates and assignments to ``rtic.incidents.v1``
(``write_incident``, awaited: the device's ack waits for Kafka) and device
positions to ``rtic.officer-locations.v1`` (``write_position``).

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
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from push.audit import AuditBuffer
from push.fanout import Kind
from push.metrics import GatewayMetrics
from rtic.casework import AuditV1
from rtic.errors import ServiceError
from rtic.kafka import FETCH_MAX_WAIT_MS, bootstrap_servers, ensure_topics, make_producer
from rtic.schemas import AlertAckV1, CallV1, ReferenceChangeV1, VerificationV1, dumps
from rtic.settings import Settings
from rtic.topics import Topics

log = logging.getLogger(__name__)

TRUE_END_WAIT_S = 2.0


class Deliver(Protocol):
    """Where the edge hands what it read (``Gateway.deliver``)."""

    def __call__(self, kind: Kind, message: dict[str, Any], *, replayed: bool = False) -> None:
        """One message; ``replayed``: an alert read again at start (not to push)."""
        ...


class AlertReplay(Protocol):
    """Told when the alerts read again at start are being read, and when they are read
    (the fan-out core: it holds resumes meanwhile)."""

    def replaying(self, cut: bool) -> None:
        """Reading starts (``cut``: not from the topic's beginning)."""
        ...

    def caught_up(self) -> None:
        """Every alert before the end offsets seen at start is read."""
        ...


async def true_ends(
    bootstrap: Any, ends: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """``ends`` (as ListOffsets answered) moved past the last record of the batch that
    holds ``end - 1``: Tansu 0.6 answers the last batch's base offset + 1; against
    Apache Kafka nothing changes. A partition that does not answer within
    ``TRUE_END_WAIT_S`` keeps the end it had."""
    out = dict(ends)
    asked = [tp for tp, end in ends.items() if end > 0]
    if not asked:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(asked)
        for tp in asked:
            consumer.seek(tp, ends[tp] - 1)
        waiting = set(asked)
        deadline = time.monotonic() + TRUE_END_WAIT_S
        while waiting and time.monotonic() < deadline:
            found = await consumer.getmany(*waiting, timeout_ms=200)
            for tp, records in found.items():
                if records:
                    out[tp] = max(out[tp], records[-1].offset + 1)
                    waiting.discard(tp)
    finally:
        await consumer.stop()
    return out


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
            self.topics.incidents: "incident",
            self.topics.officer_locations: "officer_location",
            self.topics.verifications: "verification",
        }
        # Called once the job boards' topics are read up to where they ended at start.
        self.on_replayed: Callable[[], None] | None = None
        self._replaying: dict[TopicPartition, int] = {}
        # Told when the alerts read again at start are read (the core holds resumes).
        self.alert_replay: AlertReplay | None = None
        self._alert_ends: dict[TopicPartition, int] = {}  # alerts before these: replayed
        self._alerts_behind: set[TopicPartition] = set()  # ... and not all read yet
        self._told_caught_up = False
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consuming: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._audit_due = asyncio.Event()
        self._audit_writing: asyncio.Future[bool] | None = None
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
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # rtic/kafka.py
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
            if self._audit_writing is not None and not self._audit_writing.done():
                await asyncio.wait([self._audit_writing], timeout=AUDIT_WRITE_TIMEOUT_S + 1)
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
        alert_parts = {tp: ends[tp] for tp in parts if tp.topic == self.topics.alerts}
        servers = bootstrap_servers(self.settings.kafka_url)
        ends.update(await true_ends(servers, alert_parts))
        keep = self.settings.gateway_resume_buffer
        boards = (self.topics.incidents, self.topics.officer_locations)
        cut = False
        for tp in parts:
            if tp.topic in (self.topics.enriched, self.topics.cases):
                consumer.seek(tp, ends[tp])
            elif tp.topic in boards:
                start = max(begins[tp], ends[tp] - self.settings.gateway_jobs_replay)
                consumer.seek(tp, start)
                if ends[tp] > start:
                    self._replaying[tp] = ends[tp]
            else:
                start = max(begins[tp], ends[tp] - keep)
                consumer.seek(tp, start)
                if tp in alert_parts:
                    self._alert_ends[tp] = ends[tp]
                    cut = cut or start > begins[tp]
                    if ends[tp] > start:
                        self._alerts_behind.add(tp)
        if self.alert_replay is not None:
            self.alert_replay.replaying(cut)
        self._check_replayed()
        self._check_caught_up()

    @property
    def alerts_caught_up(self) -> bool:
        """Whether the alerts read again at start are all read."""
        return not self._alerts_behind

    def _check_caught_up(self) -> None:
        if not self._alerts_behind and not self._told_caught_up:
            self._told_caught_up = True
            self._alert_ends = {}  # from here every alert is live
            log.info("gateway: recent alerts read again; resumes answered")
            if self.alert_replay is not None:
                self.alert_replay.caught_up()

    async def _mark_alerts_read(self, batches: Mapping[TopicPartition, list[Any]]) -> None:
        """Partitions of the alerts topic read up to their end at start (a record at or
        past it, or the consumer's position past it: never waits for a record that will
        not come)."""
        assert self._consumer is not None
        for tp in list(self._alerts_behind):
            records = batches.get(tp)
            end = self._alert_ends[tp]
            if (records and records[-1].offset + 1 >= end) or (
                await self._consumer.position(tp) >= end
            ):
                self._alerts_behind.discard(tp)
        self._check_caught_up()

    def _check_replayed(self) -> None:
        if not self._replaying and self.on_replayed is not None:
            self.on_replayed()
            self.on_replayed = None

    async def _consume(self, deliver: Deliver) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                kind = self.kinds[tp.topic]
                consumed = self.metrics.consumed.labels(tp.topic)
                replayed_before = self._alert_ends.get(tp, 0)  # alerts read again
                for rec in records:
                    consumed.inc()
                    if rec.value is None:
                        continue
                    try:
                        if replayed_before and rec.offset < replayed_before:
                            deliver(kind, orjson.loads(rec.value), replayed=True)
                        else:
                            deliver(kind, orjson.loads(rec.value))
                    except Exception:
                        log.exception("gateway could not dispatch a message from %s", tp.topic)
                if self._replaying and records and tp in self._replaying:
                    if records[-1].offset + 1 >= self._replaying[tp]:
                        del self._replaying[tp]
                        self._check_replayed()
            if self._alerts_behind:
                await self._mark_alerts_read(batches)

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

    # ---- the job boards' JobSink (push/dispatch.py) -------------------------------------

    async def write_incident(self, event: dict[str, Any]) -> None:
        """Write an incident event (a job update, an assignment) to ``rtic.incidents.v1``
        and return once Kafka has it; ``ServiceError`` if it does not."""
        try:
            if self._producer is None:
                raise ServiceError("the gateway is not connected to Kafka")
            async with asyncio.timeout(AUDIT_WRITE_TIMEOUT_S):
                await self._producer.send_and_wait(
                    self.topics.incidents, dumps(event), key=str(event["incident_id"]).encode()
                )
        except Exception as exc:
            self.metrics.produced.labels("incident", "failed").inc()
            raise ServiceError(f"incident: {type(exc).__name__}: {exc}") from exc
        self.metrics.produced.labels("incident", "ok").inc()

    def write_position(self, ping: dict[str, Any]) -> None:
        """Write a device's ping to ``rtic.officer-locations.v1`` (in the background)."""
        self._write("position", self.topics.officer_locations, ping["officer_id"], dumps(ping))

    def verification(self, verification: VerificationV1) -> None:
        """Write a plate check's answer to ``rtic.verifications.v1`` (push/verify.py)."""
        self._write(
            "verification",
            self.topics.verifications,
            verification.alert_id,
            dumps(verification),
        )

    def reference(self, change: ReferenceChangeV1) -> None:
        """Write a reference change (a snooze or its lifting) to ``rtic.reference.v1``."""
        self._write("snooze", self.topics.reference, change.id, dumps(change))

    async def write_call(self, call: CallV1) -> None:
        """Write a call (a webchat turned into a call, ``push/chat.py``) to
        ``rtic.calls.v1`` and return once Kafka has it; ``ServiceError`` if it does not."""
        try:
            if self._producer is None:
                raise ServiceError("the gateway is not connected to Kafka")
            async with asyncio.timeout(AUDIT_WRITE_TIMEOUT_S):
                await self._producer.send_and_wait(
                    self.topics.calls, dumps(call), key=call.call_id.encode()
                )
        except Exception as exc:
            self.metrics.produced.labels("call", "failed").inc()
            raise ServiceError(f"call: {type(exc).__name__}: {exc}") from exc
        self.metrics.produced.labels("call", "ok").inc()

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
            # Shielded: ``stop`` lets a write under way finish rather than cut it between
            # sending and hearing back (the batch would then be sent twice).
            self._audit_writing = asyncio.ensure_future(self._audit_once())
            if not await asyncio.shield(self._audit_writing):
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
