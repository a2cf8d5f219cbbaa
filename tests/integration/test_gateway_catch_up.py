"""The gateway's Kafka edge catching up at start, on the session's real Tansu.

Tansu 0.6 answers ListOffsets with the last batch's base offset + 1: three batches
of five alerts end at 11, not 15. The edge must read all fifteen again as
``replayed`` (kept for resume, not pushed), tell the core it has caught up, and hand
the next alert over as live.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from push.kafka_edge import KafkaEdge, true_ends
from push.metrics import GatewayMetrics
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings
from rtic.topics import Topics

pytestmark = pytest.mark.integration


class Replay:
    def __init__(self) -> None:
        self.told: list[str] = []
        self.caught = asyncio.Event()

    def replaying(self, cut: bool) -> None:
        self.told.append(f"replaying cut={cut}")

    def caught_up(self) -> None:
        self.told.append("caught_up")
        self.caught.set()


async def _three_batches_of_five(settings: Settings) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    producer = make_producer(settings.kafka_url)
    await producer.start()
    try:
        for b in range(3):
            batch = producer.create_batch()
            for i in range(5):
                value = orjson.dumps({"alert_id": f"old-{b}-{i}"})
                assert batch.append(key=b"k", value=value, timestamp=None) is not None
            await (await producer.send_batch(batch, topics.alerts, partition=0))
    finally:
        await producer.stop()


async def test_the_edge_reads_every_alert_of_the_last_batch_again_then_goes_live(
    settings: Settings,
) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all(), 1)
    await _three_batches_of_five(settings)
    tp = TopicPartition(topics.alerts, 0)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings.kafka_url))
    await probe.start()
    try:
        reported = (await probe.end_offsets([tp]))[tp]
    finally:
        await probe.stop()
    ends = await true_ends(bootstrap_servers(settings.kafka_url), {tp: reported})
    assert ends[tp] == 15, f"ListOffsets said {reported}"

    edge = KafkaEdge(settings, GatewayMetrics())
    replay = Replay()
    edge.alert_replay = replay
    got: list[tuple[str, bool]] = []
    live = asyncio.Event()

    def deliver(kind: Any, message: dict[str, Any], *, replayed: bool = False) -> None:
        if kind == "alert":
            got.append((message["alert_id"], replayed))
            if not replayed:
                live.set()

    await edge.start(deliver)
    try:
        await asyncio.wait_for(replay.caught.wait(), 15)
        assert len(got) == 15 and all(replayed for _, replayed in got), got
        producer = make_producer(settings.kafka_url)
        await producer.start()
        try:
            await producer.send_and_wait(topics.alerts, b'{"alert_id": "new"}', key=b"k")
        finally:
            await producer.stop()
        await asyncio.wait_for(live.wait(), 10)
    finally:
        await edge.stop()
    assert replay.told == ["replaying cut=False", "caught_up"]
    assert [a for a, _ in got].count("new") == 1 and len(got) == 16
