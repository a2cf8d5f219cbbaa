"""The worker's batched send (``streams.produce.OutputSender``) against a real broker:
the records are those ``AIOKafkaProducer.send`` makes of the same messages (keys,
values, partitions, order within a partition), batches that overflow are split,
and a message larger than a whole batch still goes."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings
from streams.produce import OutputSender

pytestmark = pytest.mark.integration
PARTITIONS = 4


async def _read(settings: Settings, topic: str, n: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < n:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    got.extend(records)
    finally:
        await consumer.stop()
    return got


def _by_partition(records: list[Any]) -> dict[int, list[tuple[bytes | None, bytes]]]:
    out: dict[int, list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if r.key is not None:
            out[r.partition].append((r.key, r.value))
    return dict(out)


async def test_batched_send_makes_the_records_producer_send_makes(settings: Settings) -> None:
    ours, theirs = settings.topic_prefix + "ours", settings.topic_prefix + "theirs"
    await ensure_topics(settings.kafka_url, [ours, theirs], partitions=PARTITIONS)
    # Small producer batches, so one output spans several; one value bigger than a batch.
    producer = make_producer(settings.kafka_url, max_batch_size=4096, linger_ms=0)
    await producer.start()
    try:
        messages: list[tuple[bytes | None, bytes]] = [
            (f"CAM-{i % 23:03d}".encode(), f'{{"read_id": "R{i}", "n": {i}}}'.encode())
            for i in range(600)
        ]
        messages.insert(100, (None, b'{"no": "key"}'))
        messages.insert(300, (b"CAM-007", b'{"big": "' + b"x" * 9000 + b'"}'))
        sender = OutputSender(
            SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
        )
        await sender.send([(ours, k, v) for k, v in messages[:350]])
        await sender.send([(ours, k, v) for k, v in messages[350:]])  # keys cached now
        for k, v in messages:
            await producer.send(theirs, v, key=k)
        await producer.flush()
    finally:
        await producer.stop()
    got_ours = await _read(settings, ours, len(messages))
    got_theirs = await _read(settings, theirs, len(messages))
    assert len(got_ours) == len(got_theirs) == len(messages)
    assert sorted((r.key or b"", r.value) for r in got_ours) == sorted(
        (k or b"", v) for k, v in messages
    )
    assert _by_partition(got_ours) == _by_partition(got_theirs)
    assert len(_by_partition(got_ours)) > 1  # the keys did spread over the partitions
