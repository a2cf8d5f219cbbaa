"""Following ``rtic.reference.v1`` whole, into the worker's copy of hotlists and markers.

The reference agent (``streams/app.py``) reads the partitions of the reference topic
assigned to this worker and writes the changes into Redis. The copy
(``enrichers.reference_copy``) needs every change, whichever worker's partition it is
on, and needs them even when Redis is down at start: so each worker also reads the
whole topic, every partition from its beginning, with a consumer outside the group
(no offsets committed), and then follows it. The copy is ``ready`` once this reader
has reached the ends the topic had when it started; until then a batch Redis cannot
enrich is held (``streams.pipeline``).

The topic is keyed by entry id: with ``cleanup.policy=compact`` (advised for
production Kafka) it keeps the latest change of every entry for ever, which is all the
copy needs; with time-based retention, entries older than the retention are missing
from a worker started later (the copy then knows only what the topic still holds).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from enrichers.reference_copy import ReferenceCopy
from rtic.errors import ContractError
from rtic.kafka import bootstrap_servers
from rtic.schemas import EventKind, ReferenceChangeV1, decode_json, validate_event
from streams.transport import true_ends

log = logging.getLogger(__name__)
POLL_MS = 200
RECORDS_PER_POLL = 5_000
RETRY_S = 1.0


def decode_changes(values: list[bytes | None]) -> list[ReferenceChangeV1]:
    """The valid reference changes among raw messages (the pipeline dead-letters the rest)."""
    out = []
    for raw in values:
        try:
            model = validate_event(EventKind.REFERENCE, decode_json(raw))
        except ContractError:
            continue
        if isinstance(model, ReferenceChangeV1):
            out.append(model)
    return out


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await consumer._client.force_metadata_update()  # the topic may be new
        await asyncio.sleep(RETRY_S)


async def follow_once(copy: ReferenceCopy, kafka_url: str, topic: str) -> None:
    """Read the topic from its beginning into ``copy``, mark it ready at the ends it had,
    then follow it (until cancelled or the broker fails)."""
    servers = bootstrap_servers(kafka_url)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await true_ends(servers, await consumer.end_offsets(tps))
        while True:
            found = await consumer.getmany(timeout_ms=POLL_MS, max_records=RECORDS_PER_POLL)
            for records in found.values():
                copy.apply(decode_changes([r.value for r in records]))
            if not copy.ready:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    copy.ready = True
                    log.info(
                        "reference copy ready: %d hotlist entries and markers (%d changes)",
                        len(copy),
                        copy.applied,
                    )
    finally:
        await consumer.stop()


async def follow(copy: ReferenceCopy, kafka_url: str, topic: str) -> None:
    """``follow_once`` for as long as the worker runs; a failure is logged and the topic
    read again from its beginning (changes are idempotent by entry id)."""
    while True:
        try:
            await follow_once(copy, kafka_url, topic)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker away: try again, never stop the worker
            log.warning(
                "reference copy: reading %s failed, again in %.0fs: %s", topic, RETRY_S, exc
            )
            await asyncio.sleep(RETRY_S)


def add_reference_copy_task(worker: Any) -> None:
    """The worker's task that keeps its pipeline's copy (``streams.app.Worker``)."""
    app = worker.app

    @app.task
    async def follow_reference() -> None:
        pipe = worker.pipeline()
        await follow(pipe.reference_copy, worker.settings.kafka_url, worker.topics.reference)
