"""Replay and record against a real broker: timing at --speed 60, and a recording plays back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from rtic.kafka import bootstrap_servers, make_producer
from rtic.settings import Settings
from rtic.topics import Topics
from simulators.replay import AdapterReport, contract_jsonl, run_record, run_replay
from tests.conftest import NOW, make_call

pytestmark = pytest.mark.integration
TOLERANCE_S = 0.15  # stated in docs/simulators.md


async def _read_all(settings: Settings, topic: str, n: int) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list = []
    try:
        async with asyncio.timeout(15):
            while len(got) < n:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(records)
    finally:
        await consumer.stop()
    return got


async def test_replay_at_speed_60_keeps_relative_timing(settings: Settings, tmp_path: Path) -> None:
    offsets_s = [0, 30, 60, 90, 150]  # event time: 2.5 minutes -> 2.5 s at speed 60
    path = tmp_path / "calls.jsonl"
    path.write_text(
        "\n".join(
            orjson.dumps(make_call(received_at=(NOW + timedelta(seconds=s)).isoformat())).decode()
            for s in offsets_s
        )
    )
    assert await run_replay(settings, path, speed=60.0, mapping=None) == 0
    records = await _read_all(
        settings, Topics.with_prefix(settings.topic_prefix).calls, len(offsets_s)
    )
    sent = sorted(r.timestamp / 1000 for r in records)
    for expected, actual in zip(offsets_s, sent, strict=True):
        assert abs((actual - sent[0]) - expected / 60) < TOLERANCE_S, (
            expected / 60,
            actual - sent[0],
        )


async def test_a_recording_plays_back(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "recording.jsonl"
    topics = Topics.with_prefix(settings.topic_prefix)
    recorder = asyncio.create_task(run_record(settings, out, duration=4.0, from_beginning=True))
    producer = make_producer(settings.kafka_url)
    await producer.start()
    calls = [make_call() for _ in range(3)]
    try:
        await asyncio.sleep(1.0)
        for call in calls:
            await producer.send_and_wait(
                topics.calls, orjson.dumps(call), key=call["call_id"].encode()
            )
        await producer.send_and_wait(topics.calls, b"not json", key=b"x")
    finally:
        await producer.stop()
    assert await recorder == 0
    lines = out.read_text().splitlines()
    assert [orjson.loads(line)["topic"] for line in lines] == ["rtic.calls.v1"] * 3
    report = AdapterReport()
    events = list(contract_jsonl(lines, report))
    assert [e.value["call_id"] for e in events] == [c["call_id"] for c in calls]
    assert not report.rejected
