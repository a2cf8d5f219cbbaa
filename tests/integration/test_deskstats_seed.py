"""The desk's charts after a gateway restart: the last 24 hours of calls and
verifications re-read from their topics on a real broker, each counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from push.deskstats import DeskStats, seed
from rtic.kafka import ensure_topics, make_producer
from rtic.settings import Settings
from rtic.topics import Topics
from tests.conftest import make_call

pytestmark = pytest.mark.integration


async def test_a_new_gateway_reads_the_last_day_of_calls_and_verifications_back(
    settings: Settings,
) -> None:
    topics = Topics.with_prefix(settings.topic_prefix)
    verifications = f"{settings.topic_prefix}rtic.verifications.v1"
    await ensure_topics(settings.kafka_url, [topics.calls, verifications], 2)
    now = datetime.now(UTC)
    calls = [
        make_call(received_at=(now - timedelta(hours=h)).isoformat(), grade=1 + h % 3)
        for h in (0, 1, 1, 5, 30)  # the last one is older than a day: not counted
    ]
    producer = make_producer(settings.kafka_url)
    await producer.start()
    try:
        for call in [*calls, calls[0]]:  # one sent twice
            await producer.send_and_wait(
                topics.calls, orjson.dumps(call), key=call["call_id"].encode()
            )
        await producer.send_and_wait(topics.calls, b"{not json", key=b"x")
        v = {"alert_id": "a1", "outcome": "not_a_match", "at": now.isoformat(), "by": "an-1"}
        await producer.send_and_wait(verifications, orjson.dumps(v), key=b"a1")
    finally:
        await producer.stop()
    stats = DeskStats()
    await seed(stats, settings.kafka_url, {"call": topics.calls, "verification": verifications})
    snap = stats.snapshot()
    counted = sum(sum(series) for series in snap["calls"]["by_grade"].values())
    assert counted == 4
    assert sum(snap["anpr"]["not_a_match"]) == 1
    assert snap["seeded"]["call"].startswith(f"6 re-read from {topics.calls}")
    # A topic that does not exist yet: nothing re-read, nothing raised.
    empty = DeskStats()
    await seed(empty, settings.kafka_url, {"call": f"{settings.topic_prefix}nothing.v1"})
    assert empty.seeded["call"].startswith("0 re-read")
