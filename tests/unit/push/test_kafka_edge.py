"""The Kafka edge without a broker: what it hands the core, and how a failed write shows.
The real consumer and producer are exercised end to end in tests/e2e."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from push.audit import AuditBuffer, Recipient, act_record
from push.kafka_edge import KafkaEdge
from push.metrics import GatewayMetrics
from rtic.casework import AuditAction, AuditObject
from rtic.errors import ServiceError
from rtic.schemas import AlertAckV1, ReferenceChangeV1, Role
from rtic.settings import Settings
from rtic.tokens import Principal
from tests.conftest import NOW


class OneBatchConsumer:
    """Gives one batch, then waits as an idle consumer does."""

    def __init__(self, batch: dict[TopicPartition, list[Any]]) -> None:
        self.batch = batch

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if self.batch:
            batch, self.batch = self.batch, {}
            return batch
        await asyncio.sleep(3600)
        return {}

    async def stop(self) -> None:
        self.stopped = True


def record(value: Any) -> SimpleNamespace:
    return SimpleNamespace(value=None if value is None else orjson.dumps(value))


async def test_messages_go_to_the_core_by_topic_and_are_counted() -> None:
    metrics = GatewayMetrics()
    edge = KafkaEdge(Settings(topic_prefix="t-"), metrics)
    topics = edge.topics
    edge._consumer = OneBatchConsumer(  # type: ignore[assignment]
        {
            TopicPartition(topics.alerts, 0): [record({"alert_id": "a1"}), record(None)],
            TopicPartition(topics.enriched, 0): [record({"call_id": "C1"})],
            TopicPartition(topics.alert_acks, 0): [record({"alert_id": "a1"})],
        }
    )
    got: list[tuple[str, dict[str, Any]]] = []

    def deliver(kind: Any, message: dict[str, Any]) -> None:
        if message.get("call_id") == "C1":
            raise ValueError("a bad message is logged, the rest still flows")
        got.append((kind, message))

    edge._consuming = asyncio.create_task(edge._consume(deliver))
    await asyncio.sleep(0.01)
    assert edge.consuming
    assert got == [("alert", {"alert_id": "a1"}), ("ack", {"alert_id": "a1"})]
    assert metrics.value("rtic_gateway_consumed_total", topic=topics.alerts) == 2
    assert metrics.value("rtic_gateway_consumed_total", topic=topics.enriched) == 1
    await edge.stop()
    assert not edge.consuming


async def test_a_write_without_a_producer_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = GatewayMetrics()
    edge = KafkaEdge(Settings(), metrics)
    edge.ack(AlertAckV1(alert_id="a1", action="ack", by="an", role=Role.RTIC_ANALYST, at=NOW))
    edge.reference(ReferenceChangeV1(kind="snooze", op="delete", id="snooze-1"))
    await edge.stop()  # waits for pending writes
    assert metrics.value("rtic_gateway_produced_total", kind="ack", result="failed") == 1
    assert metrics.value("rtic_gateway_produced_total", kind="snooze", result="failed") == 1
    assert "could not record a client's ack" in caplog.text


class SlowProducer:
    """Acknowledges a send only when ``release`` is set (a broker taking its time)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        await self.release.wait()
        self.sent.append(topic)


async def test_settled_waits_until_the_broker_has_every_write_started() -> None:
    """The ``acked`` reply waits for ``settled``: an answered ack is never only in memory."""
    edge = KafkaEdge(Settings(topic_prefix="t-"), GatewayMetrics())
    producer = SlowProducer()
    edge._producer = producer  # type: ignore[assignment]
    edge.ack(AlertAckV1(alert_id="a1", action="ack", by="an", role=Role.RTIC_ANALYST, at=NOW))
    settling = asyncio.create_task(edge.settled())
    await asyncio.sleep(0.05)
    assert not settling.done() and producer.sent == []
    producer.release.set()
    await asyncio.wait_for(settling, 1)
    assert producer.sent == [edge.topics.alert_acks]
    await asyncio.wait_for(edge.settled(), 1)  # nothing pending: at once


# ---- the audit trail ------------------------------------------------------------------------


class FakeProducer:
    """Records what is sent; fails the first ``failures`` sends."""

    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.failures = failures

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failures:
            self.failures -= 1
            done.set_exception(ConnectionError("broker away"))
        else:
            self.sent.append((topic, key, value))
            done.set_result(None)
        return done

    async def stop(self) -> None:
        return None


def _buffer_with(n: int) -> AuditBuffer:
    buffer = AuditBuffer()
    who = Principal("an-1", Role.RTIC_ANALYST)
    for i in range(n):
        buffer.act(act_record(who, AuditAction.ALERT_OPENED, AuditObject.ALERT, f"a{i}", NOW))
    return buffer


async def test_the_audit_buffer_is_drained_to_the_audit_topic_keyed_by_object() -> None:
    metrics = GatewayMetrics()
    buffer = _buffer_with(3)
    edge = KafkaEdge(Settings(topic_prefix="t-"), metrics, buffer)
    producer = FakeProducer()
    edge._producer = producer  # type: ignore[assignment]
    edge.start_audit()
    for _ in range(100):
        if len(producer.sent) == 3:
            break
        await asyncio.sleep(0.01)
    await edge.stop()
    assert [(t, k) for t, k, _ in producer.sent] == [
        ("t-rtic.audit.v1", f"a{i}".encode()) for i in range(3)
    ]
    assert orjson.loads(producer.sent[0][2])["action"] == "alert_opened"
    assert metrics.value("rtic_gateway_produced_total", kind="audit", result="ok") == 3


async def test_a_failed_audit_batch_is_sent_again_with_the_same_ids_first() -> None:
    metrics = GatewayMetrics()
    buffer = _buffer_with(2)
    edge = KafkaEdge(Settings(), metrics, buffer)
    producer = FakeProducer(failures=1)
    edge._producer = producer  # type: ignore[assignment]
    assert not await edge._audit_once()  # the first send fails: the batch is kept
    first_ids = [r.audit_id for r in edge._audit_pending]
    buffer.act(
        act_record(Principal("x", Role.SUPERVISOR), AuditAction.SNOOZE, AuditObject.ALERT, "s", NOW)
    )
    assert await edge._audit_once()  # the same batch again, before anything newer
    sent_ids = [orjson.loads(v)["audit_id"] for _, _, v in producer.sent]
    assert sent_ids == [first_ids[1], *first_ids]  # the second landed the first time too
    assert await edge._audit_once()
    assert orjson.loads(producer.sent[-1][2])["action"] == "snooze"
    assert metrics.value("rtic_gateway_produced_total", kind="audit", result="failed") == 2


async def test_writing_audit_without_kafka_is_a_service_error() -> None:
    edge = KafkaEdge(Settings(), GatewayMetrics())
    with pytest.raises(ServiceError, match="not connected"):
        await edge.write_audit(_buffer_with(1).drain())


def test_case_updates_are_read_from_their_topic() -> None:
    edge = KafkaEdge(Settings(topic_prefix="t-"), GatewayMetrics())
    assert edge.kinds["t-rtic.cases.v1"] == "case"


async def test_stopping_sends_what_the_audit_buffer_still_holds() -> None:
    buffer = _buffer_with(0)
    edge = KafkaEdge(Settings(), GatewayMetrics(), buffer)
    producer = FakeProducer()
    edge._producer = producer  # type: ignore[assignment]
    edge.start_audit()
    await asyncio.sleep(0)
    buffer.delivered("a9", 1, NOW, [Recipient("OFF-1", "officer", None, "c1")])
    await edge.stop()  # a graceful stop (SIGTERM) loses nothing
    assert [orjson.loads(v)["action"] for _, _, v in producer.sent] == ["alert_delivered"]


# ---- catching up at start ---------------------------------------------------------------------


class Replay:
    """The core's side of the catch-up (``AlertReplay``), as a list of what it was told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def replaying(self, cut: bool) -> None:
        self.told.append(f"replaying cut={cut}")

    def caught_up(self) -> None:
        self.told.append("caught_up")


class PositionedConsumer(OneBatchConsumer):
    """Gives its batches one by one; its position is past the last record given."""

    def __init__(self, batches: list[dict[TopicPartition, list[Any]]], start: int) -> None:
        super().__init__({})
        self.batches = batches
        self.at = start

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if self.batches:
            batch = self.batches.pop(0)
            for records in batch.values():
                if records:
                    self.at = records[-1].offset + 1
            return batch
        await asyncio.sleep(3600)
        return {}

    async def position(self, tp: TopicPartition) -> int:
        return self.at


def at_offset(offset: int, value: Any) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, value=orjson.dumps(value))


async def test_alerts_before_the_end_at_start_are_handed_over_as_replayed_then_caught_up() -> None:
    edge = KafkaEdge(Settings(topic_prefix="t-"), GatewayMetrics())
    replay = Replay()
    edge.alert_replay = replay
    tp = TopicPartition(edge.topics.alerts, 0)
    edge._alert_ends, edge._alerts_behind = {tp: 4}, {tp}
    replay.replaying(cut=False)
    edge._consumer = PositionedConsumer(  # type: ignore[assignment]
        [
            {tp: [at_offset(i, {"alert_id": f"a{i}"}) for i in (1, 2)]},
            {tp: [at_offset(i, {"alert_id": f"a{i}"}) for i in (3, 4, 5)]},
            {tp: [at_offset(6, {"alert_id": "a6"})]},
        ],
        start=1,
    )
    got: list[tuple[str, bool]] = []

    def deliver(kind: Any, message: dict[str, Any], *, replayed: bool = False) -> None:
        got.append((message["alert_id"], replayed))
        if message["alert_id"] == "a4":
            assert replay.told == ["replaying cut=False"]  # not before its batch is read

    edge._consuming = asyncio.create_task(edge._consume(deliver))
    await asyncio.sleep(0.05)
    await edge.stop()
    assert got == [
        ("a1", True),
        ("a2", True),
        ("a3", True),
        ("a4", False),  # at the end seen at start: written after the gateway started
        ("a5", False),
        ("a6", False),
    ]
    assert replay.told == ["replaying cut=False", "caught_up"]
    assert edge.alerts_caught_up


async def test_catching_up_never_waits_for_a_record_that_will_not_come() -> None:
    """The position passing the end (a record gone, a control batch) is enough."""
    edge = KafkaEdge(Settings(topic_prefix="t-"), GatewayMetrics())
    replay = Replay()
    edge.alert_replay = replay
    tp = TopicPartition(edge.topics.alerts, 0)
    edge._alert_ends, edge._alerts_behind = {tp: 10}, {tp}
    consumer = PositionedConsumer([{tp: [at_offset(7, {"alert_id": "a7"})]}], start=7)
    edge._consumer = consumer  # type: ignore[assignment]

    async def position(tp: TopicPartition) -> int:
        return 10  # the fetch moved past offsets 8 and 9: nothing there to read

    consumer.position = position  # type: ignore[method-assign]
    edge._consuming = asyncio.create_task(edge._consume(lambda *a, **k: None))
    await asyncio.sleep(0.05)
    await edge.stop()
    assert replay.told == ["caught_up"]
