"""Part ``scaleout``: several ``rtic worker`` processes in one consumer group, on topics
of several partitions.

For each number of workers and of partitions: the workers are started (same app id,
so one group) and left until every one has partitions and none is rebalancing, the
hotlist goes in through ``rtic.reference.v1``, then a backlog of camera batches (keyed
by camera, so spread over the partitions) is produced at once and drained. Checked:
every read comes out enriched, every hotlisted read has exactly one alert id (a
redelivered alert message has the same id: counted as a duplicate), and each
worker's share (its ``rtic_worker_events_in_total`` for ``rtic.anpr.v1``).

*Churn*: two workers on the largest number of partitions, reads produced at a
steady rate; a third worker is added a quarter of the way through and the first is
stopped (SIGTERM, as an operator would) half way; then everything is checked as
above: nothing may be lost.
"""

from __future__ import annotations

import asyncio
import json
import re
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
    http_get,
    load,
    produce,
    read_all,
    wait_for_count,
    wait_for_reads,
)
from benchmarks.part_latency import EVENTS_IN
from benchmarks.workload import Workload, make_workload, to_messages
from cli.services import free_port
from enrichers.keys import Keys
from rtic.kafka import make_producer
from rtic.plates import canonical_vrm
from rtic.settings import Settings
from rtic.topics import Topics

PER_MESSAGE = 50


class Group:
    """Workers of one consumer group."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.name = name
        self.workers: list[tuple[Proc, int]] = []

    def add(self) -> Proc:
        port = free_port()
        s = self.settings.model_copy(update={"worker_web_port": port})
        proc = Proc.spawn(
            f"{self.name}-w{len(self.workers) + 1}",
            ["-m", "cli.main", "worker"],
            engine_env(s),
            self.log_dir,
        )
        self.workers.append((proc, port))
        return proc

    def health(self) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for proc, port in self.workers:
            text = (
                http_get(f"http://127.0.0.1:{port}/healthz", timeout=1.0) if proc.alive() else None
            )
            try:
                out.append(json.loads(text) if text else None)
            except ValueError:
                out.append(None)
        return out

    async def settled(self, timeout: float = 180) -> None:
        """Until every live worker answers, none rebalances and the assignment has not
        changed for three polls (with more workers than partitions, some have none)."""
        deadline = time.monotonic() + timeout
        calm = 0
        last: list[Any] = []
        while calm < 3:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not settle: {last}")
            await asyncio.sleep(0.5)
            live = [(p, port) for p, port in self.workers if p.alive()]
            health = [h for h in self.health() if h is not None]
            ok = (
                len(health) == len(live)
                and not any(h["rebalancing"] for h in health)
                and sum(h["assigned_partitions"] for h in health) > 0
            )
            now = [h["assigned_partitions"] for h in health]
            calm = calm + 1 if ok and now == last else 0
            last = now

    def taken(self, topic: str) -> list[int]:
        out = []
        for proc, port in self.workers:
            text = (http_get(f"http://127.0.0.1:{port}/metrics") or "") if proc.alive() else ""
            out.append(int(sum(float(v) for t, v in EVENTS_IN.findall(text) if t == topic)))
        return out

    def crashed(self, skip: int = -1) -> list[str]:
        """Workers that exited on their own (not worker ``skip``, stopped on purpose), each
        with the last exception its log names."""
        out = []
        for i, (proc, _) in enumerate(self.workers):
            if i == skip or proc.alive():
                continue
            errors = [
                line.strip()
                for line in proc.tail(200_000).splitlines()
                if re.match(r"^[a-z_.]*[A-Z]\w*(Error|Exception): ", line.strip())
            ]
            out.append(
                f"worker {i + 1} exited: {errors[0][:300] if errors else 'no exception logged'}"
            )
        return out

    def stop(self) -> None:
        for proc, _ in self.workers:
            proc.stop()


async def wait_hotlist(settings: Settings, work: Workload, timeout: float = 120) -> None:
    import redis.asyncio as aioredis

    plates = sorted({canonical_vrm(c["entry"]["vrm"]) for c in work.hotlist})
    client = aioredis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = await client.hmget(Keys(settings.topic_prefix).hotlist, plates)
            if all(v is not None for v in found):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the hotlist was not loaded in time")
            await asyncio.sleep(0.3)
    finally:
        await client.aclose()


async def verify(kafka_url: str, topics: Topics, work: Workload) -> dict[str, Any]:
    enriched = await read_all(kafka_url, topics.enriched)
    seen: set[str] = set()
    out_reads = 0
    for rec in enriched:
        msg = orjson.loads(rec.value)
        reads = msg["reads"] if "reads" in msg else [msg]
        out_reads += len(reads)
        seen.update(r["read_id"] for r in reads)
    alert_ids_of: dict[str, set[str]] = {}
    messages = 0
    for rec in await read_all(kafka_url, topics.alerts):
        alert = orjson.loads(rec.value)
        if alert.get("rule_id") != "anpr_hotlist_hit":
            continue
        messages += 1
        for rid in alert["source_event_ids"]:
            alert_ids_of.setdefault(rid, set()).add(alert["alert_id"])
    hits = set(work.hits)
    distinct = len({a for ids in alert_ids_of.values() for a in ids})
    return {
        "reads_out": len(seen & {r["read_id"] for r in work.reads}),
        "reads_redelivered": out_reads - len(seen),
        "hits": len(hits),
        "hits_alerted_once": sum(1 for h in hits if len(alert_ids_of.get(h, ())) == 1),
        "hits_not_alerted": sum(1 for h in hits if h not in alert_ids_of),
        "false_alerts": len(set(alert_ids_of) - hits),
        "duplicate_alerts": messages - distinct,
    }


async def input_check(kafka_url: str, topics: Topics, work: Workload) -> dict[str, int]:
    """What is on the input topic: reads missing from it, reads on it twice."""
    ids: list[str] = []
    for rec in await read_all(kafka_url, topics.anpr):
        msg = orjson.loads(rec.value)
        ids.extend(r["read_id"] for r in (msg["reads"] if "reads" in msg else [msg]))
    return {
        "reads_on_input": len(ids),
        "missing_on_input": len({r["read_id"] for r in work.reads} - set(ids)),
        "twice_on_input": len(ids) - len(set(ids)),
    }


def make_settings(services: Services, prefix: str, partitions: int) -> Settings:
    return Settings(
        kafka_url=services.kafka_url,
        redis_url=services.redis_url,
        topic_prefix=prefix,
        app_id=f"{prefix}engine",
        topic_partitions=partitions,
    )


async def backlog_run(
    services: Services, log_dir: Path, workers: int, partitions: int, reads: int, seed: int
) -> dict[str, Any]:
    prefix = f"so{seed}w{workers}p{partitions}."
    settings = make_settings(services, prefix, partitions)
    topics = Topics.with_prefix(prefix)
    work = make_workload(reads, seed=seed, prefix=f"S{seed}")
    await create_topics(services.kafka_url, topics.all(), partitions)
    group = Group(settings, log_dir, f"scale-w{workers}-p{partitions}")
    try:
        for _ in range(workers):
            group.add()
        await group.settled()
        await produce(services.kafka_url, topics.reference, work.hotlist_messages())
        await wait_hotlist(settings, work)
        await group.settled()
        messages = work.messages(PER_MESSAGE)
        before = load()
        await produce(services.kafka_url, topics.anpr, messages)
        seen = await wait_for_count(services.kafka_url, topics.enriched, len(messages), 600)
        taken = group.taken(topics.anpr)
        rate = seen.rate()
        result = {
            "workers": workers,
            "partitions": partitions,
            "phase": "backlog",
            "reads": reads,
            "reads_per_s": round(rate * PER_MESSAGE, 1) if rate else None,
            "per_worker": taken,
            **await verify(services.kafka_url, topics, work),
            "load_before": before,
        }
    finally:
        group.stop()
        drop_redis_keys(services.redis_url, prefix)
    return result


async def churn_run(
    services: Services, log_dir: Path, partitions: int, rate: float, seconds: float, seed: int
) -> dict[str, Any]:
    prefix = f"so{seed}churn."
    settings = make_settings(services, prefix, partitions)
    topics = Topics.with_prefix(prefix)
    work = make_workload(int(rate * seconds), seed=seed, prefix=f"C{seed}")
    await create_topics(services.kafka_url, topics.all(), partitions)
    group = Group(settings, log_dir, f"scale-churn-p{partitions}")
    events: list[str] = []
    try:
        group.add()
        group.add()
        await group.settled()
        await produce(services.kafka_url, topics.reference, work.hotlist_messages())
        await wait_hotlist(settings, work)
        messages = to_messages(work.reads, PER_MESSAGE)
        interval = PER_MESSAGE / rate
        producer = make_producer(services.kafka_url, linger_ms=1)
        await producer.start()
        before = load()
        t0 = time.perf_counter()
        added = removed = False
        stopping: asyncio.Task[None] | None = None
        first_taken = 0
        sends: list[asyncio.Future[Any]] = []
        failed: list[str] = []
        try:
            for i, (key, value) in enumerate(messages):
                delay = t0 + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elapsed = time.perf_counter() - t0
                if not added and elapsed >= seconds / 4:
                    group.add()
                    added = True
                    events.append(f"worker 3 started at {elapsed:.1f} s")
                if not removed and elapsed >= seconds / 2:
                    first_taken = group.taken(topics.anpr)[0]
                    # Stopped beside the producer (a graceful stop takes seconds).
                    stopping = asyncio.create_task(asyncio.to_thread(group.workers[0][0].stop))
                    removed = True
                    events.append(f"worker 1 stopped (SIGTERM) at {elapsed:.1f} s")
                sends.append(await producer.send(topics.anpr, value, key=key))
            await producer.flush()
            failed = [
                str(r)
                for r in await asyncio.gather(*sends, return_exceptions=True)
                if isinstance(r, BaseException)
            ]
        finally:
            await producer.stop()
        produced_s = time.perf_counter() - t0
        if stopping is not None:
            await stopping
        ids = {r["read_id"] for r in work.reads}
        seen, _ = await wait_for_reads(services.kafka_url, topics.enriched, ids, 300)
        drained_s = time.perf_counter() - t0
        result = {
            "workers": "2+1-1",
            "partitions": partitions,
            "phase": "churn",
            "reads": len(work.reads),
            "rate_offered": rate,
            "produced_s": round(produced_s, 1),
            "drained_s": round(drained_s, 1),
            "all_out_within_s": round(drained_s, 1) if seen == ids else None,
            # Worker 1's share as it was when it was told to stop.
            "per_worker": [first_taken, *group.taken(topics.anpr)[1:]],
            "partitions_at_end": [
                h["assigned_partitions"] if h else None for h in group.health()[1:]
            ],
            "events": events,
            "produce_failures": len(failed),
            "crashed": group.crashed(skip=0),
            **await verify(services.kafka_url, topics, work),
            "input": await input_check(services.kafka_url, topics, work),
            "load_before": before,
        }
    finally:
        group.stop()
        drop_redis_keys(services.redis_url, prefix)
    return result


async def run(
    services: Services,
    log_dir: Path,
    *,
    workers: tuple[int, ...],
    partitions: tuple[int, ...],
    reads: int,
    churn_rate: float,
    churn_s: float,
) -> dict[str, Any]:
    runs = []
    seed = 200 + int(time.time()) % 1000
    for p in partitions:
        for w in workers:
            seed += 1
            print(f"scaleout: {w} workers, {p} partitions, {reads:,} reads", flush=True)
            try:
                r = await backlog_run(services, log_dir, w, p, reads, seed)
            except Exception as exc:  # one configuration that fails is said; the others run
                print(f"  not measured: {exc}", flush=True)
                runs.append({"workers": w, "partitions": p, "phase": "backlog", "error": str(exc)})
                continue
            print(
                f"  {r['reads_per_s'] or 0:,.0f} reads/s; out {r['reads_out']:,}/{reads:,}; hits "
                f"alerted once {r['hits_alerted_once']}/{r['hits']}; duplicates "
                f"{r['duplicate_alerts']}; per worker {r['per_worker']}; load {r['load_before']}",
                flush=True,
            )
            runs.append(r)
    if churn_s > 0 and churn_rate > 0:
        seed += 1
        p = max(partitions)
        print(f"scaleout: churn on {p} partitions at {churn_rate:,.0f} reads/s", flush=True)
        r = await churn_run(services, log_dir, p, churn_rate, churn_s, seed)
        print(
            f"  out {r['reads_out']:,}/{r['reads']:,}; hits alerted once {r['hits_alerted_once']}/"
            f"{r['hits']}; duplicates {r['duplicate_alerts']}; {'; '.join(r['events'])}",
            flush=True,
        )
        runs.append(r)
    return {
        "reads": reads,
        "per_message": PER_MESSAGE,
        "cameras": 200,
        "runs": runs,
    }
