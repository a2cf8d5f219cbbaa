"""Sending a batch's output: every message its own record, a producer batch per
partition, one wait for all the acknowledgements.

Faust's ``Producer.send`` costs, per message, its signal and sensor hooks, then
aiokafka's metadata wait, a murmur2 hash of the key in pure Python and an
append to the accumulator; profiled under single reads that was a fifth of the
worker's time (docs/benchmarks.md). ``OutputSender`` puts the messages of one
output in aiokafka batches, one per topic partition (``create_batch`` /
``send_batch``), with each key's partition from the producer's own partitioner
(cached: enriched reads are keyed by camera), and awaits the broker's
acknowledgements once for the lot. The records (keys, values, partitions,
order within a partition) are those ``Producer.send`` would have produced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

PARTITIONS_CACHED = 50_000  # keys whose partition is remembered (then forgotten at once)


class OutputSender:
    """Sends (topic, key, value) messages through a Faust app's aiokafka producer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._partitions: dict[tuple[str, bytes, int], int] = {}

    def _producer(self) -> Any:
        """The app's aiokafka producer (Faust starts it with the app)."""
        return self.app.producer._ensure_producer()

    async def send(self, messages: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        """Send every message and wait until the broker has them all."""
        if not messages:
            return
        producer = self._producer()
        by_tp: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
        topics: dict[str, tuple[list[int], list[int]]] = {}
        cache = self._partitions
        for topic, key, value in messages:
            parts = topics.get(topic)
            if parts is None:
                await producer.partitions_for(topic)  # waits for the topic's metadata
                metadata = producer.client.cluster
                parts = topics[topic] = (
                    sorted(metadata.partitions_for_topic(topic)),
                    sorted(metadata.available_partitions_for_topic(topic)),
                )
            if key is None:
                partition = producer._partitioner(None, parts[0], parts[1])
            else:
                partition = cache.get((topic, key, len(parts[0])), -1)
                if partition < 0:
                    if len(cache) >= PARTITIONS_CACHED:
                        cache.clear()
                    partition = producer._partitioner(key, parts[0], parts[1])
                    cache[(topic, key, len(parts[0]))] = partition
            by_tp.setdefault((topic, partition), []).append((key, value))
        futures: list[Any] = []
        for (topic, partition), items in by_tp.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    continue
                if batch.record_count():
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is not None:
                        continue
                # Larger than a whole batch: as Producer.send would (or its error).
                futures.append(await producer.send(topic, value, key=key, partition=partition))
                batch = producer.create_batch()
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
