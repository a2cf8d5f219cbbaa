"""A burst of plate reads one per message, with a bad message among them, through the
real worker (its agent takes the consumer's fetched batches whole,
``streams/transport.py``): every read comes out enriched once and in order per
camera, the bad message is dead-lettered with its bytes, and the worker's consumer
group commits the topic's end only once the output is out."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from rtic.kafka import bootstrap_servers
from tests.conftest import NOW, make_read
from tests.engine import Engine

pytestmark = pytest.mark.e2e
READS = 600
CAMERAS = 3


async def _committed(engine: Engine, tp: TopicPartition) -> int:
    """The worker's group's committed offset of ``tp`` (asked without joining the group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(engine.settings.kafka_url),
        group_id=engine.env()["RTIC_APP_ID"],
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return (await consumer.committed(tp)) or 0
    finally:
        await consumer.stop()


async def test_single_reads_come_out_whole_in_order_and_committed_after(
    engine: Engine, unique: Callable[[str], str]
) -> None:
    tag = unique("single")
    reads = [
        make_read(
            read_id=f"{tag}-{i}",
            camera_id=f"{tag}-CAM-{i % CAMERAS}",
            vrm=f"SR{i % 90 + 10:02d}ABC",
            read_at=(NOW + timedelta(milliseconds=i)).isoformat(),
        )
        for i in range(READS)
    ]
    bad = b'{"read_id": "' + tag.encode() + b'-bad", "vrm": '  # cut short: not JSON
    topics = engine.topics
    async with (
        engine.tail(topics.enriched) as enriched,
        engine.tail(topics.dead_letter) as dead,
        engine.producer() as producer,
    ):
        sent = []
        for i, read in enumerate(reads):
            key = read["camera_id"].encode()
            sent.append(await producer.send(topics.anpr, orjson.dumps(read), key=key))
            if i == READS // 2:
                sent.append(await producer.send(topics.anpr, bad, key=b"bad"))
        ends: dict[TopicPartition, int] = {}
        for meta in await asyncio.gather(*sent):
            tp = TopicPartition(meta.topic, meta.partition)
            ends[tp] = max(ends.get(tp, 0), meta.offset + 1)

        seen: list[str] = []
        async with asyncio.timeout(60):
            while len(seen) < READS:
                for records in (await enriched.getmany(timeout_ms=500)).values():
                    for r in records:
                        value = orjson.loads(r.value)
                        if value.get("read_id", "").startswith(f"{tag}-"):
                            assert r.key == value["camera_id"].encode()
                            assert value["enrichment"]["kind"] == "anpr"
                            seen.append(value["read_id"])
        letters: list[dict[str, object]] = []
        async with asyncio.timeout(20):
            while not letters:
                for records in (await dead.getmany(timeout_ms=500)).values():
                    letters += [
                        v
                        for v in (orjson.loads(r.value) for r in records)
                        if v["raw"] == base64.b64encode(bad).decode()
                    ]
    assert sorted(seen) == sorted(r["read_id"] for r in reads)  # each once
    for c in range(CAMERAS):
        camera = f"{tag}-CAM-{c}"
        sent = [r["read_id"] for r in reads if r["camera_id"] == camera]
        assert [s for s in seen if s in set(sent)] == sent  # in order per camera
    assert len(letters) == 1 and letters[0]["source_topic"] == topics.anpr

    # Committed after processing: the group reaches past the last read once it is out.
    async with asyncio.timeout(20):
        for tp, end in ends.items():
            for _ in itertools.count():
                if await _committed(engine, tp) >= end:
                    break
                await asyncio.sleep(0.3)
    assert engine.processes["worker"].poll() is None, engine.logs()
