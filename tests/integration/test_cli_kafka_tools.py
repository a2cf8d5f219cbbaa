"""``rtic topics`` and ``rtic reference load`` on a real Tansu broker, through kafka-python."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from cli.main import main
from rtic.errors import ServiceError
from rtic.kafka import bootstrap_servers, ensure_topics_sync
from rtic.settings import Settings, get_settings
from rtic.topics import Topics

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RTIC_KAFKA_URL", settings.kafka_url)
    monkeypatch.setenv("RTIC_TOPIC_PREFIX", settings.topic_prefix)
    get_settings.cache_clear()
    yield settings  # type: ignore[misc]
    get_settings.cache_clear()


async def _topics_on_broker(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings.kafka_url))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_rtic_topics_creates_every_topic_once(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    topics = Topics.with_prefix(cli_settings.topic_prefix)
    assert await asyncio.to_thread(main, ["topics"]) == 0
    assert capsys.readouterr().out.split() == topics.all()
    assert set(topics.all()) <= await _topics_on_broker(cli_settings)
    # Again: nothing left to create, no error.
    created = await asyncio.to_thread(ensure_topics_sync, cli_settings.kafka_url, topics.all(), 1)
    assert created == []


async def test_no_broker_is_a_service_error() -> None:
    started = time.monotonic()
    with pytest.raises(ServiceError):
        await asyncio.to_thread(ensure_topics_sync, "kafka://127.0.0.1:1", ["x"], 1, 1.0)
    # wait_s bounds the whole wait, kafka-python's first-connection wait (30 s) included.
    assert time.monotonic() - started < 15


async def test_reference_load_sends_every_accepted_row(
    cli_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hotlist.csv"
    path.write_text(
        "vrm,reason,severity_rank\nAB12 CDE,stolen,1\nXY34 ZZZ,firearms,0\n,missing vrm,1\n"
    )
    assert await asyncio.to_thread(main, ["reference", "load", str(path)]) == 1  # one rejected
    out = capsys.readouterr().out
    topic = Topics.with_prefix(cli_settings.topic_prefix).reference
    assert "3 rows: 2 accepted, 1 rejected" in out and f"sent 2 changes to {topic}" in out
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(cli_settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list = []
    try:
        async with asyncio.timeout(15):
            while len(got) < 2:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(records)
    finally:
        await consumer.stop()
    values = [orjson.loads(r.value) for r in got]
    assert sorted(v["entry"]["vrm"] for v in values) == ["AB12 CDE", "XY34 ZZZ"]
    assert all(
        v["kind"] == "hotlist" and r.key == v["id"].encode()
        for r, v in zip(got, values, strict=True)
    )
