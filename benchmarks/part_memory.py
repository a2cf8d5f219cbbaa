"""Part ``memory``: the worker's resident memory with 28 days of a busy force's history
in its call and incident indexes.

Calls (``calls_per_day`` for ``days`` days, received times spread over the window
ending now; about a third at addresses and from callers seen before) and the
incidents created from about half of them are written to the shared logs in Redis
through the history store, as workers write them (``RedisHistory.enrich``, batches of
500). Then ``rtic worker`` is started on that prefix; its resident memory is read
once it is up (indexes empty), and again after one call, whose batch makes it read
both logs whole into its indexes (``enrichers/event_index.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import (
    Proc,
    Services,
    create_topics,
    drop_redis_keys,
    engine_env,
    http_get,
    load,
    produce,
    wait_for_count,
)
from benchmarks.workload import CAMERA_BOX
from cli.services import free_port
from enrichers.stores import RedisStores
from rtic.schemas import CallV1, EventKind, IncidentEventV1
from rtic.settings import Settings
from rtic.topics import Topics

CATEGORIES = ("asb", "domestic_abuse", "theft", "concern_for_safety", "traffic", "burglary")
STREETS = ("High Street", "Church Road", "Station Road", "Park Road", "Green Lane", "Mill Lane")


def history(
    calls_per_day: int, days: int, seed: int = 28
) -> tuple[list[CallV1], list[IncidentEventV1]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    n = calls_per_day * days
    lat0, lat1, lon0, lon1 = CAMERA_BOX
    repeat_places = [
        (
            f"{rng.randint(1, 300)} {rng.choice(STREETS)}, B{rng.randint(1, 99)}",
            rng.uniform(lat0, lat1),
            rng.uniform(lon0, lon1),
        )
        for _ in range(max(10, n // 20))
    ]
    repeat_people = [f"P-R{i}" for i in range(max(10, n // 30))]
    calls, incidents = [], []
    for i in range(n):
        at = now - timedelta(seconds=rng.uniform(0, days * 86_400))
        if rng.random() < 0.33:
            address, lat, lon = rng.choice(repeat_places)
            person = rng.choice(repeat_people)
        else:
            lat, lon = rng.uniform(lat0, lat1), rng.uniform(lon0, lon1)
            address = f"{rng.randint(1, 400)} {rng.choice(STREETS)}, B{rng.randint(1, 99)} {i}"
            person = f"P-{i}"
        category = rng.choice(CATEGORIES)
        location = {"lat": lat, "lon": lon, "address": address}
        calls.append(
            CallV1.model_validate(
                {
                    "call_id": f"MEM-C{i}",
                    "received_at": at,
                    "channel": "999" if rng.random() < 0.45 else "101",
                    "category": category,
                    "location": location,
                    "caller": {"person_id": person},
                }
            )
        )
        if rng.random() < 0.5:
            incidents.append(
                IncidentEventV1.model_validate(
                    {
                        "incident_id": f"MEM-I{i}",
                        "event": "created",
                        "at": at + timedelta(seconds=30),
                        "grade": rng.choice((1, 2, 2, 3)),
                        "category": category,
                        "location": location,
                        "call_ids": [f"MEM-C{i}"],
                    }
                )
            )
    calls.sort(key=lambda c: c.received_at)
    incidents.sort(key=lambda e: e.at)
    return calls, incidents


async def fill_logs(
    settings: Settings, calls: list[CallV1], incidents: list[IncidentEventV1]
) -> float:
    stores = RedisStores.from_url(settings.redis_url, prefix=settings.topic_prefix, timeout=30.0)
    t0 = time.perf_counter()
    try:
        for i in range(0, len(calls), 500):
            await stores.history.enrich(EventKind.CALL, calls[i : i + 500])
        for i in range(0, len(incidents), 500):
            await stores.history.enrich(EventKind.INCIDENT, incidents[i : i + 500])
    finally:
        await stores.close()
    return time.perf_counter() - t0


async def run(
    services: Services, log_dir: Path, *, calls_per_day: int, days: int
) -> dict[str, Any]:
    prefix = f"mem{int(time.time()) % 100_000}."
    settings = Settings(
        kafka_url=services.kafka_url,
        redis_url=services.redis_url,
        topic_prefix=prefix,
        app_id=f"{prefix}engine",
        worker_web_port=free_port(),
        history_days=days,
    )
    topics = Topics.with_prefix(prefix)
    try:
        print(f"memory: {calls_per_day:,} calls a day for {days} days", flush=True)
        calls, incidents = history(calls_per_day, days)
        fill_s = await fill_logs(settings, calls, incidents)
        print(
            f"  {len(calls):,} calls and {len(incidents):,} incidents logged in {fill_s:.0f} s",
            flush=True,
        )
        await create_topics(services.kafka_url, topics.all())
        proc = Proc.spawn(
            "memory-worker", ["-m", "cli.main", "worker"], engine_env(settings), log_dir
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                text = http_get(f"http://127.0.0.1:{settings.worker_web_port}/healthz")
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    if json.loads(text or "")["assigned_partitions"] > 0:
                        break
                if not proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not come up:\n{proc.tail()}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)
            rss_start = proc.rss_mib()
            before = load()
            call = {
                "call_id": "MEM-PROBE",
                "received_at": datetime.now(UTC).isoformat(),
                "channel": "999",
                "category": "asb",
                "location": {"lat": 52.4862, "lon": -1.8904, "address": "1 Probe Street"},
            }
            t0 = time.perf_counter()
            await produce(services.kafka_url, topics.calls, [(b"MEM-PROBE", orjson.dumps(call))])
            seen = await wait_for_count(services.kafka_url, topics.enriched, 1, 300, proc.alive)
            if seen.count < 1:
                raise RuntimeError(f"the worker did not enrich the call:\n{proc.tail()}")
            index_s = time.perf_counter() - t0
            samples = []
            for _ in range(6):
                await asyncio.sleep(0.5)
                samples.append(proc.rss_mib())
            rss_indexed = max(samples)
        finally:
            proc.stop()
        records = len(calls) + len(incidents)
        delta = rss_indexed - rss_start
        result = {
            "calls_per_day": calls_per_day,
            "days": days,
            "calls": len(calls),
            "incidents": len(incidents),
            "fill_s": round(fill_s, 1),
            "rss_start_mib": round(rss_start, 1),
            "rss_indexed_mib": round(rss_indexed, 1),
            "rss_delta_mib": round(delta, 1),
            "bytes_per_record": round(delta * 2**20 / records) if records else None,
            "index_load_s": round(index_s, 2),
            "load_before": before,
        }
        print(
            f"  RSS {rss_start:.0f} MiB at start, {rss_indexed:.0f} MiB with the history indexed"
            f" ({result['bytes_per_record']} bytes a record); first call batch {index_s:.1f} s",
            flush=True,
        )
        return result
    finally:
        drop_redis_keys(services.redis_url, prefix)
