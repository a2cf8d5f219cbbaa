"""Faust's aiokafka transport with a short fetch wait, and true ends of partitions.

faust-streaming 0.15 creates its consumer with ``fetch_max_wait_ms=1500``
hard-coded. Apache Kafka answers a fetch as soon as there is data, but Tansu
0.6 holds the fetch for the whole wait: measured here with aiokafka alone,
a read paced every 100 ms waits p50 378 ms / p95 690 ms with 1,500 ms, and
3 ms / 8 ms with 10 ms. So the engine's app uses this transport, whose
consumer waits at most ``FETCH_MAX_WAIT_MS``; on an idle topic that costs
one small fetch request per wait, which is negligible.

**True ends.** Tansu 0.6 (in memory) answers ListOffsets(latest) with the last
record *batch's* base offset + 1, not the last offset + 1: three batches of five
records end at 11, not 15 (measured with aiokafka alone). Faust recovers a table
from its changelog up to that end and then stops reading it, so the rest of the
changelog's last batch was lost on every restart (counts of the trend table came
back short: tests/e2e/test_trends.py). ``_highwaters`` here reads the batch at
``end - 1`` again and takes the offset after its last record; against Apache Kafka
that batch ends at ``end - 1`` already and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 20


async def true_ends(bootstrap_servers: Any, ends: Mapping[Any, int]) -> dict[Any, int]:
    """``ends`` (partition -> end offset as ListOffsets answered) with each end moved past
    the last record of the batch that holds ``end - 1`` (see the module's docstring)."""
    out = dict(ends)
    asked = {TopicPartition(tp.topic, tp.partition): tp for tp, end in ends.items() if end}
    if not asked:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(asked))
        for tp, original in asked.items():
            consumer.seek(tp, ends[original] - 1)
        found = await consumer.getmany(*asked, timeout_ms=2000)
        for tp, records in found.items():
            if records:
                original = asked[tp]
                out[original] = max(out[original], records[-1].offset + 1)
    finally:
        await consumer.stop()
    return out


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer

    async def _highwaters(self, partitions: Any) -> Mapping[Any, int]:
        ends = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return ends
        servers = self._ensure_consumer()._client._bootstrap_servers
        return await true_ends(servers, ends)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TunedTransport(faust_aiokafka.Transport):
    """The aiokafka transport with a consumer that fetches with a short wait."""

    Consumer = _Consumer


class RticApp(faust.App):
    """A Faust app whose Kafka consumer uses ``TunedTransport``."""

    def _new_transport(self) -> Any:
        return TunedTransport(self.conf.broker_consumer, self)
