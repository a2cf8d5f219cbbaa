"""What the suite's parts share: the services, topics, producing a backlog, waiting for
output, reading a topic back, processes and their memory, the machine's load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from cli.services import (
    EmbeddedRedis,
    Tansu,
    free_port,
    redis_answers,
    start_embedded_redis,
    start_tansu,
)
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def load() -> list[float]:
    """The machine's load averages (1, 5, 15 minutes)."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Services:
    """The embedded default: a Tansu of our own, the local Redis if it answers (else an
    embedded one)."""

    tansu: Tansu
    redis_url: str
    embedded: EmbeddedRedis | None
    log_dir: Path

    @classmethod
    def start(cls, log_dir: Path) -> Services:
        url = Settings().redis_url
        embedded = None if redis_answers(url) else start_embedded_redis(log_dir)
        tansu = start_tansu(port=free_port(), log_dir=log_dir)
        return cls(tansu, embedded.url if embedded else url, embedded, log_dir)

    @property
    def kafka_url(self) -> str:
        return self.tansu.url

    def stop(self) -> None:
        self.tansu.stop()
        if self.embedded is not None:
            self.embedded.stop()


async def produce(
    kafka_url: str, topic: str, messages: Sequence[tuple[bytes, bytes]], partitions: int = 1
) -> float:
    """Send messages as fast as the producer goes; seconds it took (all acknowledged)."""
    producer = make_producer(kafka_url, linger_ms=5)
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


@dataclass
class Arrivals:
    """What a counting consumer saw: how many messages, when the first fetch with any
    came (and how many it held), when the last one came (perf_counter seconds)."""

    count: int = 0
    first_at: float | None = None
    first_count: int = 0
    last_at: float | None = None

    def rate(self) -> float | None:
        """Messages per second from the first fetch to the last (the first fetch's own
        messages only say that output began)."""
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return None
        return (self.count - self.first_count) / (self.last_at - self.first_at)


async def wait_for_count(
    kafka_url: str,
    topic: str,
    count: int,
    timeout: float,
    alive: Any = None,
) -> Arrivals:
    """Read ``topic`` (records not decoded) until it has held ``count`` messages, or
    ``timeout``, or ``alive()`` is false. The times are this consumer's: record
    timestamps are not used (Quix Streams gives its output the input's timestamp), nor
    end offsets (Tansu's can lag behind the records of a multi-record batch)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    deadline = time.monotonic() + timeout
    seen = Arrivals()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        while time.monotonic() < deadline and seen.count < count:
            if alive is not None and not alive():
                break
            got = await consumer.getmany(timeout_ms=200, max_records=50_000)
            n = sum(len(records) for records in got.values())
            if n:
                now = time.perf_counter()
                if seen.first_at is None:
                    seen.first_at, seen.first_count = now, n
                seen.count += n
                seen.last_at = now
        return seen
    finally:
        await consumer.stop()


async def wait_for_reads(
    kafka_url: str, topic: str, read_ids: set[str], timeout: float
) -> tuple[set[str], float]:
    """Read enriched plate reads (single or camera batches) until every id of
    ``read_ids`` has come out, or ``timeout``; (the ids seen, seconds waited)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    t0 = time.monotonic()
    missing = set(read_ids)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        while missing and time.monotonic() - t0 < timeout:
            got = await consumer.getmany(timeout_ms=300, max_records=20_000)
            for records in got.values():
                for rec in records:
                    msg = orjson.loads(rec.value or b"{}")
                    for r in msg["reads"] if "reads" in msg else [msg]:
                        missing.discard(r.get("read_id"))
        return read_ids - missing, time.monotonic() - t0
    finally:
        await consumer.stop()


async def read_all(
    kafka_url: str, topic: str, quiet_s: float = 1.5
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on a topic now, from the start of each partition: read until
    nothing more comes for ``quiet_s`` (end offsets are not trusted, see above)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            got = await consumer.getmany(timeout_ms=300, max_records=20_000)
            if got:
                quiet_since = time.monotonic()
            for records in got.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def create_topics(kafka_url: str, topics: list[str], partitions: int = 1) -> None:
    await ensure_topics(kafka_url, topics, partitions)


@dataclass
class Proc:
    """A process the suite started (its log in a file)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def spawn(cls, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Proc:
        log_path = log_dir / f"{name}.log"
        log = open(log_path, "ab")
        popen = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        return cls(name, popen, log_path, log)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_mib(self) -> float:
        """Resident memory of the process (MiB), from /proc."""
        with open(f"/proc/{self.popen.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.log.close()

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


def engine_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a part of the engine runs with, for these settings."""
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": settings.kafka_url,
        "RTIC_REDIS_URL": settings.redis_url,
        "RTIC_TOPIC_PREFIX": settings.topic_prefix,
        "RTIC_APP_ID": settings.app_id,
        "RTIC_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "RTIC_WORKER_WEB_PORT": str(settings.worker_web_port),
        "RTIC_GATEWAY_PORT": str(settings.gateway_port),
        "RTIC_DATABASE_URL": settings.database_url,
        "RTIC_LOG_FORMAT": "text",
    }
    if settings.rules_file:
        env["RTIC_RULES_FILE"] = str(settings.rules_file)
    env.update(extra)
    return env


def http_get(url: str, timeout: float = 2.0) -> str | None:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())
    return None


def drop_redis_keys(redis_url: str, prefix: str) -> None:
    """Leave the shared Redis as it was: unlink every key under the run's prefix."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}rtic:*", count=10_000):
            batch.append(key)
            if len(batch) >= 5_000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


def redis_hlen(redis_url: str, key: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.hlen(key))
    finally:
        client.close()
