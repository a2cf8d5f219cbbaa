"""Part ``peers``: ``rtic worker`` against a Quix Streams application and a plain
aiokafka loop (``benchmarks/peers.py``), on the same plate-read workload.

For each feed (one read per message; camera batches) and each system, on a prefix of
its own on the one broker: the hotlist goes to ``rtic.reference.v1`` (the worker
loads it in a first run, stopped once Redis holds every entry; the peers read the
topic whole when they start), the reads are put on ``rtic.anpr.v1`` as a backlog,
then the system is started and left until ``rtic.enriched.v1`` holds one message per
input message. Throughput is taken from when the output messages arrive, first to
last, as a consumer of the output sees them (so start-up is not in it); then every read's enriched output and every
hotlisted read's alert are checked.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import (
    Proc,
    Services,
    create_topics,
    drop_redis_keys,
    engine_env,
    load,
    produce,
    read_all,
    redis_hlen,
    wait_for_count,
)
from benchmarks.workload import Workload, make_workload
from cli.services import free_port
from enrichers.keys import Keys
from rtic.settings import Settings
from rtic.topics import Topics

SYSTEMS = ("worker", "quix", "aiokafka")


def settings_for(services: Services, prefix: str, **kw: Any) -> Settings:
    return Settings(
        kafka_url=services.kafka_url,
        redis_url=services.redis_url,
        topic_prefix=prefix,
        app_id=f"{prefix}engine",
        worker_web_port=free_port(),
        gateway_port=free_port(),
        **kw,
    )


async def load_worker_hotlist(
    settings: Settings, work: Workload, log_dir: Path, name: str, timeout: float = 120
) -> None:
    """A first worker run that takes the hotlist from the topic into Redis; stopped once
    every entry is there."""
    key = Keys(settings.topic_prefix).hotlist
    want = len({c["entry"]["vrm"] for c in work.hotlist})
    proc = Proc.spawn(name, ["-m", "cli.main", "worker"], engine_env(settings), log_dir)
    try:
        deadline = time.monotonic() + timeout
        while redis_hlen(settings.redis_url, key) < want:
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not load the hotlist:\n{proc.tail()}")
            await asyncio.sleep(0.5)
    finally:
        proc.stop()


def check_output(work: Workload, enriched: list[Any], alerts: list[Any]) -> dict[str, Any]:
    """Reads out, and alerts against the hits."""
    seen: set[str] = set()
    for rec in enriched:
        msg = orjson.loads(rec.value)
        reads = msg["reads"] if "reads" in msg else [msg]
        seen.update(r["read_id"] for r in reads)
    alerted: set[str] = set()
    ids: set[str] = set()
    for rec in alerts:
        alert = orjson.loads(rec.value)
        ids.add(alert["alert_id"])
        if alert.get("rule_id") == "anpr_hotlist_hit":
            alerted.update(alert["source_event_ids"])
    hits = set(work.hits)
    return {
        "reads_out": len(seen),
        "reads_missing": len(work.reads) - len(seen & {r["read_id"] for r in work.reads}),
        "messages_out": len(enriched),
        "hits": len(hits),
        "hits_misread": len(work.misread),
        "hits_alerted": len(hits & alerted),
        "misread_alerted": len(work.misread & alerted),
        "false_alerts": len(alerted - hits),
        "alert_messages": len(alerts),
        "alert_ids": len(ids),
        "all_alerted": hits <= alerted,
    }


async def run_one(
    system: str,
    per_message: int,
    work: Workload,
    services: Services,
    log_dir: Path,
    stamp: str,
    timeout: float,
) -> dict[str, Any]:
    prefix = f"b{stamp}{system[:2]}{per_message}."
    settings = settings_for(services, prefix)
    topics = Topics.with_prefix(prefix)
    await create_topics(services.kafka_url, topics.all(), 1)
    await produce(services.kafka_url, topics.reference, work.hotlist_messages())
    name = f"peers-{system}-{per_message}"
    try:
        if system == "worker":
            await load_worker_hotlist(settings, work, log_dir, f"{name}-hotlist")
        messages = work.messages(per_message)
        await produce(services.kafka_url, topics.anpr, messages)
        before = load()
        if system == "worker":
            args = ["-m", "cli.main", "worker"]
        else:
            args = [
                "benchmarks/peers.py",
                system,
                "--kafka-url",
                services.kafka_url,
                "--prefix",
                prefix,
                "--group",
                f"{prefix}{system}",
            ]
        started = time.perf_counter()
        proc = Proc.spawn(name, args, engine_env(settings), log_dir)
        try:
            seen = await wait_for_count(
                services.kafka_url, topics.enriched, len(messages), timeout, proc.alive
            )
            rss = proc.rss_mib() if proc.alive() else None
        finally:
            proc.stop()
        if seen.count < len(messages):
            print(f"  {name}: only {seen.count}/{len(messages)} messages out; log:\n{proc.tail()}")
        result = check_output(
            work,
            await read_all(services.kafka_url, topics.enriched),
            await read_all(services.kafka_url, topics.alerts),
        )
        rate = seen.rate()
        per = len(work.reads) / len(messages)
        return {
            "system": system,
            "per_message": per_message,
            "reads": len(work.reads),
            "messages": len(messages),
            **result,
            "reads_per_s": round(rate * per, 1) if rate else None,
            "span_s": round(seen.last_at - seen.first_at, 3)
            if seen.last_at is not None and seen.first_at is not None
            else None,
            "first_output_after_s": round(seen.first_at - started, 2) if seen.first_at else None,
            "rss_mib": round(rss, 1) if rss else None,
            "load_before": before,
            "load_after": load(),
        }
    finally:
        drop_redis_keys(services.redis_url, prefix)


async def run(
    services: Services,
    log_dir: Path,
    *,
    reads: int,
    feeds: tuple[int, ...] = (1, 50),
    systems: tuple[str, ...] = SYSTEMS,
    timeout: float = 600,
) -> dict[str, Any]:
    work = make_workload(reads)
    stamp = str(int(time.time()) % 100_000)
    runs = []
    for per_message in feeds:
        for system in systems:
            print(
                f"peers: {system}, {per_message} read(s) per message, {reads:,} reads", flush=True
            )
            r = await run_one(system, per_message, work, services, log_dir, stamp, timeout)
            print(
                f"  {r['reads_per_s'] or 0:,.0f} reads/s; hits alerted {r['hits_alerted']}/{r['hits']}"
                f" (misread {r['misread_alerted']}/{r['hits_misread']}), false {r['false_alerts']},"
                f" reads out {r['reads_out']:,}/{reads:,}; load {r['load_before']}",
                flush=True,
            )
            runs.append(r)
    ratios: dict[str, dict[str, float | None]] = {}
    for per_message in feeds:
        by = {r["system"]: r["reads_per_s"] for r in runs if r["per_message"] == per_message}
        w = by.get("worker")
        ratios[str(per_message)] = {
            peer: round(w / by[peer], 2) if w and by.get(peer) else None
            for peer in systems
            if peer != "worker"
        }
    return {
        "workload": {
            "reads": reads,
            "hotlist": len(work.hotlist),
            "hits": len(work.hits),
            "hits_misread": len(work.misread),
            "cameras": 200,
            "feeds": list(feeds),
        },
        "runs": runs,
        "ratios": ratios,
    }
