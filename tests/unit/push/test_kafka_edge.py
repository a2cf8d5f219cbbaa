"""The Kafka edge without a broker: what it hands the core, and how a failed write shows.
The real consumer and producer are exercised end to end in tests/e2e."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from push.kafka_edge import KafkaEdge
from push.metrics import GatewayMetrics
from rtic.schemas import AlertAckV1, ReferenceChangeV1, Role
from rtic.settings import Settings
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
