"""Profile ``rtic worker`` while it drains a backlog of plate reads (py-spy).

The backlog (one read per message by default, the slow case of issue 15) is on
``rtic.anpr.v1`` before the worker starts; py-spy is attached to the worker
once its first enriched message is out and detached when the last one is, so
the profile is the steady drain only (no start-up). It writes the raw stacks
and prints the functions with the most samples, self and inclusive.

Usage (py-spy is not a dependency: ``.venv/bin/pip install py-spy``)::

    python benchmarks/profile_worker.py [--reads 60000] [--batch 1] [--out /tmp/rtic-worker]

writes ``<out>.txt`` (py-spy's collapsed stacks, one line a stack).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_throughput import batches, drop_keys, make_reads
from cli.services import free_port, redis_answers, start_embedded_redis, start_tansu
from enrichers.stores import RedisStores
from rtic.kafka import bootstrap_servers, ensure_topics, make_producer
from rtic.settings import Settings
from rtic.topics import Topics


def py_spy() -> str:
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def top(collapsed: Path, n: int = 25) -> str:
    """The functions with the most samples: self (where the time is spent) and
    inclusive (what it is spent under), from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        own[frames[-1]] += k
        for f in set(frames):
            under[f] += k
    out = [f"{total} samples"]
    out.append("-- self --")
    out += [f"{100 * k / total:5.1f}%  {f}" for f, k in own.most_common(n)]
    out.append("-- inclusive --")
    out += [f"{100 * k / total:5.1f}%  {f}" for f, k in under.most_common(n)]
    return "\n".join(out)


def batch_sizes(port: int) -> str:
    """Messages per pipeline batch, from the worker's own metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    events = batches_n = 0.0
    for line in text.splitlines():
        if line.startswith("rtic_worker_events_in_total{") and "anpr" in line:
            events += float(line.rsplit(" ", 1)[1])
        if line.startswith("rtic_worker_batch_seconds_count{") and "anpr" in line:
            batches_n += float(line.rsplit(" ", 1)[1])
    return f"{events:,.0f} messages in {batches_n:,.0f} pipeline batches ({events / max(batches_n, 1):,.1f} a batch)"


# Where the worker's main thread spends its samples, in the terms of docs/benchmarks.md
# (the first group whose frame is on a stack takes the sample).
GROUPS = [
    (
        "the engine's pipeline: decode, validate, enrich (Redis), rules, encode",
        ["Pipeline.process"],
    ),
    ("debug log records built and dropped", ["Logger._log"]),
    ("sending output (Worker.send)", ["Worker.send"]),
    (
        "Faust's delivery of messages: drain loop, conductor, channel, stream",
        [
            "Fetcher._fetcher",
            "on_message",
            "_passive_drainer",
            "Stream.take_events",
            "Event.wait",
            "_wait.<locals>._on_completion",
        ],
    ),
    (
        "aiokafka's sender (produce requests)",
        ["Sender._send_produce_req", "Sender._sender_routine"],
    ),
]


def summary(collapsed: Path) -> str:
    """The main thread's samples by GROUPS, and how many waited in select()."""
    counts: Counter[str] = Counter()
    main = idle = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or "MainThread" not in frames[0]:
            continue
        k = int(count)
        main += k
        if frames[-1].startswith("EpollSelector.select"):
            idle += k
            continue
        name = next((g for g, keys in GROUPS if any(x in stack for x in keys)), "other")
        counts[name] += k
    main = max(main, 1)
    lines = [f"main thread: {main} samples, {100 * idle / main:.1f}% waiting in select()"]
    lines += [f"{100 * counts[g] / main:5.1f}%  {g}" for g, _ in GROUPS]
    lines.append(f"{100 * counts['other'] / main:5.1f}%  other (event loop, metrics, acks)")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    spy = py_spy() if args.profile else ""
    base = Settings()
    embedded = None
    redis_url = base.redis_url
    if not redis_answers(redis_url):
        embedded = start_embedded_redis()
        redis_url = embedded.url
    tansu = start_tansu(port=free_port())
    prefix = f"prof{int(time.time())}."
    settings = Settings(kafka_url=tansu.url, redis_url=redis_url, topic_prefix=prefix)
    topics = Topics.with_prefix(prefix)
    worker: subprocess.Popen[bytes] | None = None
    spy_proc: subprocess.Popen[bytes] | None = None
    log = open(Path(tempfile.gettempdir()) / "rtic-profile-worker.log", "wb")
    web_port = free_port()
    try:
        await ensure_topics(settings.kafka_url, topics.all())
        values = batches(make_reads(args.reads), args.batch)
        producer = make_producer(settings.kafka_url)
        await producer.start()
        for v in values:
            await producer.send(topics.anpr, v, key=b"CAM")
        await producer.flush()
        await producer.stop()
        consumer = AIOKafkaConsumer(
            topics.enriched,
            bootstrap_servers=bootstrap_servers(settings.kafka_url),
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        env = {
            **os.environ,
            "RTIC_KAFKA_URL": settings.kafka_url,
            "RTIC_REDIS_URL": settings.redis_url,
            "RTIC_TOPIC_PREFIX": prefix,
            "RTIC_APP_ID": prefix + "profile",
            "RTIC_WORKER_WEB_PORT": str(web_port),
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        seen = counted = 0  # counted: the messages after the first poll that had output
        first = last = 0.0
        deadline = time.monotonic() + 300
        while seen < len(values) and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=1000, max_records=5000)
            n = sum(len(r) for r in got.values())
            if n and first:
                counted += n
            if n and not first:
                first = time.perf_counter()
            if n and spy_proc is None and args.profile:
                spy_proc = subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(worker.pid),
                        "--format",
                        "raw",
                        "--threads",
                        "--rate",
                        str(args.rate),
                        "--output",
                        f"{args.out}.txt",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            if n:
                seen += n
                last = time.perf_counter()
        await consumer.stop()
        print(batch_sizes(web_port))
        reads = counted * args.reads / len(values)
        print(
            f"{seen}/{len(values)} messages; {args.reads:,} reads at about "
            f"{reads / max(last - first, 1e-9):,.0f} reads/s"
            + (" under the profiler" if args.profile else "")
        )
    finally:
        if spy_proc is not None:
            spy_proc.send_signal(signal.SIGINT)
            spy_proc.wait(timeout=60)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=15)
        log.close()
        history = RedisStores.from_url(redis_url)
        await drop_keys(history, prefix)
        await history.close()
        tansu.stop()
        if embedded:
            embedded.stop()
    collapsed = Path(f"{args.out}.txt")
    if args.profile and collapsed.exists():
        print(top(collapsed, args.top))
        print(summary(collapsed))
        print(f"collapsed stacks in {collapsed} (flamegraph.pl or speedscope read them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="measure only (no py-spy): the drain rate of a longer backlog than the suite's",
    )
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "rtic-worker"))
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
