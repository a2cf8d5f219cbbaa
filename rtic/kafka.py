"""Kafka plumbing shared by the worker, gateway, simulator and tests (aiokafka)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from rtic.errors import ServiceError

log = logging.getLogger(__name__)


def bootstrap_servers(kafka_url: str) -> str:
    """``kafka://h1:p1;h2:p2`` (Faust's form) to ``h1:p1,h2:p2`` (aiokafka's)."""
    hosts = []
    for part in kafka_url.replace(",", ";").split(";"):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part.rstrip("/"))
    return ",".join(hosts)


async def ensure_topics(
    kafka_url: str, topics: list[str], partitions: int = 1, wait_s: float = 30.0
) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    last: Exception | None = None
    while asyncio.get_running_loop().time() < deadline:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers(kafka_url), request_timeout_ms=5000
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                try:
                    await admin.create_topics(
                        [
                            NewTopic(t, num_partitions=partitions, replication_factor=1)
                            for t in missing
                        ]
                    )
                except TopicAlreadyExistsError:
                    pass
                log.info("created topics: %s", ", ".join(missing))
            return
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.3)
        finally:
            await admin.close()
    raise ServiceError(f"could not create topics on {kafka_url}: {last}")


def make_producer(kafka_url: str, **overrides: object) -> AIOKafkaProducer:
    """A producer for the engine's edges (simulator, gateway acks, tests).

    Not idempotent: Tansu 0.6 refuses InitProducerId, and the engine is
    at-least-once with stable ids anyway.
    """
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers(kafka_url),
        "acks": 1,
        "linger_ms": 5,
        "max_batch_size": 1_048_576,
        "enable_idempotence": False,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)
