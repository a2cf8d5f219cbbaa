"""Kafka plumbing shared by the worker, gateway, simulators, command line and tests.

Two clients, each where it is simplest:

- **aiokafka** inside asyncio: the Faust worker (through Faust), the gateway,
  the simulators, replay and record (``ensure_topics``, ``make_producer``);
- **kafka-python**, synchronous, for command-line tools that do one thing and
  exit: ``rtic topics`` creates the topics with ``kafka.admin.KafkaAdminClient``
  (``ensure_topics_sync``) and ``rtic reference load`` sends with
  ``kafka.KafkaProducer`` (``make_sync_producer``). Checked against Tansu 0.6:
  it accepts kafka-python's API versions (CreateTopics v7, Produce, Metadata).

Neither producer is idempotent: Tansu 0.6 refuses InitProducerId, and the
engine is at-least-once with stable ids anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from rtic.errors import ServiceError

if TYPE_CHECKING:
    import kafka

log = logging.getLogger(__name__)


# How long a fetch may wait for data (ms), for the engine's live consumers (the
# worker's, the gateway's, the desk stats'). Apache Kafka answers as soon as there is
# data; Tansu 0.6 holds a fetch for the whole wait, so on Tansu this is a floor under
# every hop's latency (streams/transport.py, "Fetch wait"). 10 ms was tried (the
# benchmark peers' value) and was worse under load: fetches of fewer records, more
# batches; at 10,000 camera-batched reads/s alert p99 2.8 s against 0.5 s with 20 ms,
# and the single-read worker fell behind at 7,100 reads/s (docs/benchmarks.md,
# 2026-12-03).
FETCH_MAX_WAIT_MS = 20


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
    """An asyncio producer for the engine's edges (simulator, gateway acks, tests)."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers(kafka_url),
        "acks": 1,
        "linger_ms": 5,
        "max_batch_size": 1_048_576,
        "enable_idempotence": False,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def _import_kafka_python() -> None:
    """Import kafka-python (only the command-line tools need it), quietly.

    kafka-python 3.0 reads its protocol schemas at import with the legacy
    ``importlib.resources`` API, which warns (DeprecationWarning) on Python 3.11+.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka.admin
        import kafka.errors  # noqa: F401


def ensure_topics_sync(
    kafka_url: str, topics: list[str], partitions: int = 1, wait_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet, synchronously (kafka-python); idempotent.

    Returns the topics it created. Retries while the broker is not up, for ``wait_s``
    (which bounds kafka-python's own wait for a first connection too).

    Raises:
        ServiceError: the broker did not answer, or refused, within ``wait_s``.
    """
    _import_kafka_python()
    import kafka.admin
    import kafka.errors

    deadline = time.monotonic() + wait_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        # kafka-python 3 waits up to ``bootstrap_timeout_ms`` (30 s by default) in the
        # constructor for a first connection: bound it by what is left of ``wait_s``.
        # (kafka-python 2 has no such option and refuses unknown ones.)
        bounded: dict[str, int] = {}
        if "bootstrap_timeout_ms" in kafka.admin.KafkaAdminClient.DEFAULT_CONFIG:
            bounded["bootstrap_timeout_ms"] = max(100, int((deadline - time.monotonic()) * 1000))
        try:
            admin = kafka.admin.KafkaAdminClient(
                bootstrap_servers=bootstrap_servers(kafka_url), request_timeout_ms=5000, **bounded
            )
        except (kafka.errors.KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.3)
            continue
        try:
            missing = [t for t in topics if t not in set(admin.list_topics())]
            if missing:
                try:
                    admin.create_topics(
                        [
                            kafka.admin.NewTopic(t, num_partitions=partitions, replication_factor=1)
                            for t in missing
                        ]
                    )
                except kafka.errors.TopicAlreadyExistsError:
                    pass  # another process created it between the listing and now
                log.info("created topics: %s", ", ".join(missing))
            return missing
        except (kafka.errors.KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.3)
        finally:
            admin.close()
    raise ServiceError(f"could not create topics on {kafka_url}: {last}")


def make_sync_producer(kafka_url: str, **overrides: object) -> kafka.KafkaProducer:
    """A synchronous producer (kafka-python) for command-line tools.

    Raises:
        ServiceError: no broker answers at ``kafka_url``.
    """
    _import_kafka_python()
    import kafka
    import kafka.errors

    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers(kafka_url),
        "acks": 1,
        "linger_ms": 5,
        "enable_idempotence": False,
    }
    options.update(overrides)
    try:
        return kafka.KafkaProducer(**options)
    except kafka.errors.NoBrokersAvailable as exc:
        raise ServiceError(f"no Kafka broker answers at {kafka_url}") from exc
