"""Time from a plate read produced to its alert arriving at a subscribed websocket client.

Runs the real engine (``rtic worker`` and ``rtic gateway`` as processes) on its
own Tansu and the Redis at RTIC_REDIS_URL (or an embedded one), adds a hotlist
entry through ``rtic.reference.v1``, then produces misreads of that plate at a
steady rate and measures each alert's arrival at an analyst's websocket.

Usage::

    python benchmarks/alert_latency.py [--reads 300] [--rate 20] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_throughput import machine
from cli.services import free_port, redis_answers, start_embedded_redis, start_tansu
from rtic.settings import Settings
from tests.engine import Engine


async def measure(engine: Engine, reads: int, rate: float) -> list[float]:
    topics = engine.topics
    sent: dict[str, float] = {}
    latencies: list[float] = []
    async with engine.client(severities=["critical"]) as ws, engine.producer() as producer:
        entry = {
            "kind": "hotlist",
            "op": "upsert",
            "id": "HL-BENCH",
            "entry": {"vrm": "BN55 FRM", "reason": "firearms"},
        }
        await engine.send(producer, topics.reference, "HL-BENCH", entry)
        await asyncio.sleep(1.0)

        async def produce() -> None:
            t0 = time.perf_counter()
            for i in range(reads):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                read = {
                    "read_id": f"LAT-{i}",
                    "vrm": "8N55 FRM",
                    "camera_id": "CAM-LAT",
                    "read_at": datetime.now(UTC).isoformat(),
                    "lat": 52.4862,
                    "lon": -1.8904,
                    "confidence": 0.9,
                }
                sent[read["read_id"]] = time.perf_counter()
                await producer.send(topics.anpr, orjson.dumps(read), key=b"CAM-LAT")

        task = asyncio.create_task(produce())
        deadline = time.monotonic() + reads / rate + 30
        while len(latencies) < reads and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(2):
                    msg = orjson.loads(await ws.recv())
            except TimeoutError:
                continue
            if msg.get("type") == "alert":
                (rid,) = msg["source_event_ids"]
                if rid in sent:
                    latencies.append((time.perf_counter() - sent.pop(rid)) * 1e3)
        await task
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    redis_url = Settings().redis_url
    embedded = None if redis_answers(redis_url) else start_embedded_redis()
    tansu = start_tansu(port=free_port())
    log_dir = Path(tempfile.mkdtemp(prefix="rtic-latency-"))
    # Every read hits the same hotlist entry: with the default window, hits that share a
    # batch fold into one open alert (one version for both). The latency of each read's
    # own alert is what is measured here, so hits are not grouped.
    rules = log_dir / "rules.yaml"
    rules.write_text("rules:\n  anpr_hotlist_hit:\n    params: {group_window_s: 0}\n")
    settings = Settings(
        kafka_url=tansu.url,
        redis_url=embedded.url if embedded else redis_url,
        topic_prefix=f"lat{int(time.time())}.",
        gateway_port=free_port(),
        rules_file=rules,
    )
    engine = Engine(settings, log_dir)
    try:
        engine.start()
        lat = asyncio.run(measure(engine, args.reads, args.rate))
    finally:
        engine.stop()
        tansu.stop()
        if embedded:
            embedded.stop()
    p50, p95, p99, worst = (float(np.percentile(lat, q)) for q in (50, 95, 99, 100))
    print(
        f"{len(lat)}/{args.reads} alerts at {args.rate:.0f} reads/s: read produced -> alert at websocket "
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms"
    )
    if args.record:
        with (ROOT / "docs" / "benchmarks.md").open("a") as fh:
            fh.write(
                f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python benchmarks/alert_latency.py --reads {args.reads} --rate {args.rate:.0f}`\n"
                f"Machine: {machine()}. Broker: Tansu (in memory); worker and gateway as processes; "
                "hotlist hits not grouped (each read its own alert).\n\n"
                "| alerts received | rate (reads/s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |\n|---:|---:|---:|---:|---:|---:|\n"
                f"| {len(lat)}/{args.reads} | {args.rate:.0f} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {worst:.0f} |\n"
            )


if __name__ == "__main__":
    main()
