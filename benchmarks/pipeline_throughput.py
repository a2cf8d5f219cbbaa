"""Throughput and latency of the engine's path, on this machine.

Two measurements, each on real parts:

1. ``pipeline``: the batch pipeline alone (decode, validate, place enrichment,
   one Redis round trip, rules, encode), in-process, against a real Redis.
   No broker: this is the ceiling the Faust agent can reach.
2. ``worker``: the real ``rtic worker`` process on a real Tansu broker: reads
   produced to ``rtic.anpr.v1``, enriched messages consumed from
   ``rtic.enriched.v1``; throughput over the whole run, latency per message
   from produce to enriched output (p50/p95/p99).

Usage::

    python benchmarks/pipeline_throughput.py [--reads 60000] [--batch 50] [--record]

``--record`` appends the results, with the machine, to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.services import free_port, redis_answers, start_embedded_redis, start_tansu
from enrichers.geo import GeoIndex
from enrichers.stores import RedisStores
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings
from rtic.topics import Topics
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord

T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def make_reads(n: int, seed: int = 7, prefix: str = "B-") -> list[dict[str, Any]]:
    """Realistic reads: cameras at fixed points inside the force area, varied plates."""
    rng = np.random.default_rng(seed)
    cams_lat = rng.uniform(52.42, 52.55, 200)
    cams_lon = rng.uniform(-2.05, -1.75, 200)
    letters = np.array(list("ABCDEFGHJKLMNOPRSTUVWXYZ"))
    reads = []
    for i in range(n):
        c = int(rng.integers(0, 200))
        plate = (
            "".join(rng.choice(letters, 2))
            + f"{int(rng.integers(10, 75)):02d}"
            + "".join(rng.choice(letters, 3))
        )
        reads.append(
            {
                "read_id": f"{prefix}{i}",
                "vrm": plate,
                "camera_id": f"CAM-{c:03d}",
                "read_at": (T0 + timedelta(milliseconds=i)).isoformat(),
                "lat": float(cams_lat[c]),
                "lon": float(cams_lon[c]),
                "confidence": 0.9,
            }
        )
    return reads


def batches(reads: list[dict[str, Any]], size: int) -> list[bytes]:
    if size <= 1:
        return [orjson.dumps(r) for r in reads]
    return [orjson.dumps({"reads": reads[i : i + size]}) for i in range(0, len(reads), size)]


async def drop_keys(history: RedisStores, prefix: str) -> None:
    """Leave the Redis as it was: unlink every key the run made under its prefix."""
    batch: list[bytes] = []
    async for key in history.redis.scan_iter(match=f"{prefix}rtic:*", count=10_000):
        batch.append(key)
        if len(batch) >= 5_000:
            await history.redis.unlink(*batch)
            batch.clear()
    if batch:
        await history.redis.unlink(*batch)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def bench_pipeline(
    settings: Settings, reads: list[dict[str, Any]], batch: int
) -> dict[str, Any]:
    topics = Topics.with_prefix(settings.topic_prefix)
    geo = GeoIndex.load(settings.data_dir)
    history = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix)
    pipeline = Pipeline(topics, geo, history, default_rules(settings))
    values = batches(reads, batch)
    per_take = max(1, 500 // max(batch, 1)) if batch > 1 else 500
    records = [RawRecord(topics.anpr, 0, i, b"k", v) for i, v in enumerate(values)]
    # warm up
    await pipeline.process(records[:per_take])
    times = []
    start = time.perf_counter()
    for i in range(0, len(records), per_take):
        t = time.perf_counter()
        await pipeline.process(records[i : i + per_take])
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    await drop_keys(history, settings.topic_prefix)
    await history.close()
    return {
        "reads_per_s": len(reads) / elapsed,
        "us_per_read": elapsed / len(reads) * 1e6,
        "batch_ms_p50": pct(times, 50) * 1e3,
        "batch_ms_p99": pct(times, 99) * 1e3,
    }


async def bench_worker(
    settings: Settings, reads: list[dict[str, Any]], batch: int, rate: float
) -> dict[str, Any]:
    """Drain a backlog (throughput), then a paced stream at ``rate`` reads/s (latency)."""
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings.kafka_url, topics.all())
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": settings.kafka_url,
        "RTIC_REDIS_URL": settings.redis_url,
        "RTIC_TOPIC_PREFIX": settings.topic_prefix,
        "RTIC_APP_ID": settings.topic_prefix + "bench",
    }
    consumer = AIOKafkaConsumer(
        topics.enriched,
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    producer = make_producer(settings.kafka_url)
    await consumer.start()
    await producer.start()
    # Phase 1: the backlog is on the topic before the worker starts.
    values = batches(reads, batch)
    for v in values:
        await producer.send(topics.anpr, v, key=b"CAM")
    await producer.flush()
    log = open(Path(tempfile.gettempdir()) / "rtic-bench-worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        seen = 0
        first = last = 0.0
        deadline = time.monotonic() + 180
        while seen < len(values) and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=1000, max_records=5000)
            now = time.perf_counter()
            n = sum(len(recs) for recs in got.values())
            if n and not first:
                first = now
            if n:
                seen += n
                last = now
        if seen < len(values):
            raise RuntimeError(f"worker delivered {seen}/{len(values)}; see {log.name}")
        # The first poll only shows that output started: count from there.
        drain_s = max(last - first, 1e-9)
        # Phase 2: paced load, latency per message from produce to enriched output.
        per_msg = max(batch, 1)
        interval = per_msg / rate
        paced = batches(make_reads(int(rate * 10), seed=11, prefix="P-"), batch)
        sent_at: dict[str, float] = {}
        latencies: list[float] = []

        async def produce() -> None:
            t0 = time.perf_counter()
            for i, v in enumerate(paced):
                delay = t0 + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at[f"P-{i * per_msg}"] = time.perf_counter()
                await producer.send(topics.anpr, v, key=b"CAM")

        task = asyncio.create_task(produce())
        deadline = time.monotonic() + 60
        while len(latencies) < len(paced) and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.perf_counter()
            for recs in got.values():
                for r in recs:
                    msg = orjson.loads(r.value)
                    rid = (msg["reads"][0] if "reads" in msg else msg)["read_id"]
                    if rid in sent_at:
                        latencies.append((now - sent_at.pop(rid)) * 1e3)
        await task
        return {
            "reads_per_s": (len(reads) - per_msg) / drain_s,
            "messages_per_s": (len(values) - 1) / drain_s,
            "paced_rate": rate,
            "latency_ms_p50": pct(latencies, 50),
            "latency_ms_p95": pct(latencies, 95),
            "latency_ms_p99": pct(latencies, 99),
            "delivered": f"{len(latencies)}/{len(paced)}",
        }
    finally:
        await producer.stop()
        await consumer.stop()
        worker.terminate()
        worker.wait(timeout=15)
        log.close()
        history = RedisStores.from_url(settings.redis_url)
        await drop_keys(history, settings.topic_prefix)
        await history.close()


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}, {platform.system()} {platform.release()}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=60_000)
    parser.add_argument("--batch", type=int, nargs="*", default=[50, 1])
    parser.add_argument(
        "--record", action="store_true", help="append results to docs/benchmarks.md"
    )
    args = parser.parse_args()
    base = Settings()
    embedded = None
    redis_url = base.redis_url
    if not redis_answers(redis_url):
        embedded = start_embedded_redis()
        redis_url = embedded.url
    tansu = start_tansu(port=free_port())
    rows = []
    try:
        for batch in args.batch:
            n = args.reads if batch > 1 else min(args.reads, 20_000)
            reads = make_reads(n)
            settings = Settings(
                kafka_url=tansu.url,
                redis_url=redis_url,
                topic_prefix=f"bench{int(time.time())}b{batch}.",
            )
            p = await bench_pipeline(settings, reads, batch)
            w = await bench_worker(settings, reads, batch, rate=5000.0 if batch > 1 else 1000.0)
            rows.append((batch, n, p, w))
            print(
                f"batch={batch:>3} reads={n}: pipeline {p['reads_per_s']:,.0f} reads/s "
                f"({p['us_per_read']:.1f} us/read); worker on Tansu {w['reads_per_s']:,.0f} reads/s; "
                f"at {w['paced_rate']:,.0f} reads/s latency p50 {w['latency_ms_p50']:.0f} ms p95 {w['latency_ms_p95']:.0f} ms "
                f"p99 {w['latency_ms_p99']:.0f} ms, delivered {w['delivered']}",
                flush=True,
            )
    finally:
        tansu.stop()
        if embedded:
            embedded.stop()
    if args.record:
        lines = [
            f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python benchmarks/pipeline_throughput.py --reads {args.reads}`\n",
            f"Machine: {machine()}. Broker: Tansu (in memory). Redis: {'embedded' if embedded else 'local server'}.\n",
            "| reads per message | reads | pipeline alone (reads/s) | us/read | worker on Tansu, backlog (reads/s) | paced load (reads/s) | latency p50 (ms) | p95 (ms) | p99 (ms) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for batch, n, p, w in rows:
            lines.append(
                f"| {batch} | {n:,} | {p['reads_per_s']:,.0f} | {p['us_per_read']:.1f} | {w['reads_per_s']:,.0f} | {w['paced_rate']:,.0f} | "
                f"{w['latency_ms_p50']:.0f} | {w['latency_ms_p95']:.0f} | {w['latency_ms_p99']:.0f} |"
            )
        path = ROOT / "docs" / "benchmarks.md"
        with path.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"recorded in {path}")


if __name__ == "__main__":
    asyncio.run(main())
