"""The fault suite: ``make faults`` / ``rtic faults`` (and the soak: ``--soak``).

Starts the engine as processes of its own (``benchmarks/fault_stack.py``: a Tansu, a
private Redis, a database of its own behind a proxy, the worker, the case worker and
the gateway, with a supervisor that starts a dead part again) and breaks it, one fault
after another, under steady demand from the simulator's model (the West Midlands
preset) plus a stream of hotlisted plate reads, each on its own hotlist entry, so that
each must raise exactly one alert:

1. ``worker_kill``: ``kill -9`` of the worker under load;
2. ``gateway_kill``: ``kill -9`` of the gateway; the screen reconnects and resumes;
3. ``redis_away``: Redis frozen (SIGSTOP) for the outage, then thawed;
4. ``postgres_away``: the database unreachable for the outage (the proxy cut);
5. ``scale``: a second and a third worker added under load, then the first removed;
6. ``broker_stop``: the broker stopped for the outage and started again (Tansu keeps
   its data in memory: it comes back empty).

For each, one analyst screen counts (``benchmarks/fault_tally.py``): events in, alerts
expected, delivered, lost, shown twice, the time to recover, and the audit records
written for the alerts it was shown. Writes ``benchmarks/results/faults-<date>-<commit>.json``
and the "Fault suite" and "Guarantees in one table" sections of docs/reliability.md.
Not a test: nothing here fails a build; what did not hold is said in the figures.

Usage::

    python benchmarks/faults.py [--only worker_kill,...] [--outage-s 30] [--no-docs]
    python benchmarks/faults.py --soak [--minutes 30] [--clients 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson

from benchmarks.fault_stack import Stack, cancel_and_wait
from benchmarks.fault_tally import (
    SCHEMA,
    Screen,
    Sent,
    guarantees_rows,
    render_markdown,
    replace_section,
    tally,
    tally_records,
)
from benchmarks.harness import load
from benchmarks.pipeline_throughput import machine
from benchmarks.workload import make_workload
from rtic.kafka import make_producer

STOP = threading.Event()  # Ctrl-C or SIGTERM: no new fault, the stack stopped
FAULTS = ("worker_kill", "gateway_kill", "redis_away", "postgres_away", "scale", "broker_stop")
DOC = ROOT / "docs" / "reliability.md"


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


# ---- what goes in ---------------------------------------------------------------------


class Load:
    """The simulator's demand model paced on the wall clock, produced from this process
    so that every event offered is counted: acknowledged by the broker, or refused."""

    def __init__(self, kafka_url: str, prefix: str, volumes: Any, seed: int = 7) -> None:
        from enrichers.geo import GeoIndex
        from rtic.settings import Settings
        from rtic.topics import Topics
        from simulators.demand import DemandModel

        self.kafka_url = kafka_url
        self.topics = Topics.with_prefix(prefix)
        self.model = DemandModel(
            GeoIndex.load(Settings().data_dir), seed=seed, start=datetime.now(UTC), volumes=volumes
        )
        self.acked = 0
        self.refused = 0
        self.pending = 0
        self.behind_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        from rtic.schemas import dumps

        producer = make_producer(self.kafka_url, request_timeout_ms=15_000)
        await producer.start()
        start = self.model.start
        t0 = time.monotonic()
        try:
            for ev in self.model.events():
                due = (ev.at - start).total_seconds()
                wait = due - (time.monotonic() - t0)
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    self.behind_s = -wait
                weight = ev.weight if ev.kind != "reference" else 1
                self.pending += weight
                try:
                    fut = await producer.send(
                        self.topics.for_kind(ev.kind), dumps(ev.value), key=ev.key.encode()
                    )
                except Exception:
                    self.pending -= weight
                    self.refused += weight
                    continue
                fut.add_done_callback(lambda f, w=weight: self._done(f, w))
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()

    def _done(self, fut: asyncio.Future[Any], weight: int) -> None:
        self.pending -= weight
        if fut.cancelled() or fut.exception() is not None:
            self.refused += weight
        else:
            self.acked += weight

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)


class HitStream:
    """Hotlisted reads, one every ``interval`` seconds, each on its own hotlist entry."""

    def __init__(self, kafka_url: str, anpr_topic: str, reads: list[dict[str, Any]]) -> None:
        self.kafka_url = kafka_url
        self.topic = anpr_topic
        self.reads = reads
        self.sent = Sent()
        self._task: asyncio.Task[None] | None = None
        self._futures: list[asyncio.Future[Any]] = []

    def start(self, interval: float) -> None:
        self._task = asyncio.create_task(self._run(interval))

    async def _run(self, interval: float) -> None:
        producer = make_producer(self.kafka_url, linger_ms=0, request_timeout_ms=15_000)
        await producer.start()
        try:
            t0 = time.monotonic()
            for i, read in enumerate(self.reads):
                wait = t0 + i * interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                read = {**read, "read_at": datetime.now(UTC).isoformat()}
                at = time.monotonic()
                try:
                    fut = await producer.send(
                        self.topic, orjson.dumps(read), key=read["camera_id"].encode()
                    )
                except Exception as exc:
                    self.sent.refused[read["read_id"]] = type(exc).__name__
                    continue
                fut.add_done_callback(lambda f, r=read["read_id"], t=at: self._done(f, r, t))
                self._futures.append(fut)
            await asyncio.Event().wait()  # keep the producer until stopped
        finally:
            # Wait for the last answers (each send times out on its own).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*self._futures, return_exceptions=True), 20)
            with contextlib.suppress(Exception):
                await producer.stop()

    def _done(self, fut: asyncio.Future[Any], read_id: str, at: float) -> None:
        if fut.cancelled() or fut.exception() is not None:
            exc = None if fut.cancelled() else fut.exception()
            self.sent.refused[read_id] = type(exc).__name__ if exc else "cancelled"
        else:
            self.sent.acked[read_id] = at

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)


# ---- what comes out ---------------------------------------------------------------------


async def watch_screen(
    stack: Stack, screen: Screen, ready: asyncio.Event, subscribe: dict[str, Any] | None = None
) -> None:
    """An analyst's page: subscribe, and on every reconnection ``resume`` as the desk
    does (the last alert id it saw, ``since`` and ``seen``; again after ``not_ready``); every alert frame goes to ``screen``. Runs until cancelled."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    token = stack.token(screen.name)
    while True:
        try:
            async with connect(
                stack.ws_url,
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=5,
                max_size=None,
            ) as ws:
                screen.connections += 1
                await ws.send(orjson.dumps({"type": "subscribe", **(subscribe or {})}).decode())
                async for raw in ws:
                    msg = orjson.loads(raw)
                    kind = msg.get("type")
                    now = time.monotonic()
                    if kind == "alert":
                        screen.on_alert(msg, now)
                    elif kind == "subscribed":
                        if screen.last_alert_id:
                            await ws.send(orjson.dumps(screen.resume_message()).decode())
                        ready.set()
                    elif kind == "resumed":
                        screen.on_resumed(msg, now - stack.t0)
                    elif kind == "error" and msg.get("code") == "not_ready":
                        # A gateway that has just started answers a resume once it has
                        # read its recent alerts: sent again after retry_after_s, as the
                        # pages do.
                        screen.errors.append("not_ready")
                        await asyncio.sleep(float(msg.get("retry_after_s") or 1.0))
                        await ws.send(orjson.dumps(screen.resume_message()).decode())
                    elif kind == "error":
                        screen.errors.append(f"{msg.get('code')}: {msg.get('message')}")
        except (OSError, TimeoutError, WebSocketException):
            pass
        await asyncio.sleep(0.5)  # the pages retry after a second; a little sooner here


async def where_lost(stack: Stack, lost: set[str], limit_s: float = 30.0) -> dict[str, int]:
    """Where the lost reads stopped: never enriched, enriched without an alert, or an
    alert on the alerts topic that the screen was not shown. Reads each topic up to the
    end it had when asked (the load goes on writing), for at most ``limit_s``."""
    enriched: set[str] = set()
    for value in await read_until_now(stack.kafka_url, stack.topics.enriched, limit_s):
        msg = orjson.loads(value or b"{}")
        enriched.update(
            r.get("read_id")
            for r in (msg["reads"] if "reads" in msg else [msg])
            if r.get("read_id") in lost
        )
    alerted: set[str] = set()
    for value in await read_until_now(stack.kafka_url, stack.topics.alerts, limit_s):
        alert = orjson.loads(value or b"{}")
        alerted.update(r for r in alert.get("source_event_ids") or () if r in lost)
    return {
        "not_enriched": len(lost - enriched),
        "enriched_no_alert": len(enriched - alerted),
        "alert_not_shown": len(alerted),
    }


async def read_until_now(kafka_url: str, topic: str, limit_s: float) -> list[bytes | None]:
    """The values on ``topic`` from the start of each partition up to its end offset
    now (Tansu 0.6 gives the last batch's base + 1: that batch's tail may be missed,
    which only ever holds the newest records), for at most ``limit_s``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from rtic.kafka import bootstrap_servers

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    out: list[bytes | None] = []
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + limit_s
        todo = {tp for tp in parts if ends[tp] > 0}
        while todo and time.monotonic() < deadline:
            got = await consumer.getmany(*todo, timeout_ms=300, max_records=20_000)
            for tp, records in got.items():
                out.extend(r.value for r in records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        return out
    finally:
        await consumer.stop()


async def audit_rows(database_url: str, alert_ids: set[str]) -> list[dict[str, Any]]:
    """``alert_delivered`` records of these alerts, read straight from the database."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from records.models import AuditRecord

    if not alert_ids:
        return []
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(AuditRecord.object_id, AuditRecord.detail).where(
                    AuditRecord.action == "alert_delivered",
                    AuditRecord.object_id.in_(sorted(alert_ids)),
                )
            )
            return [{"object_id": r[0], "detail": r[1]} for r in result]
    finally:
        await engine.dispose()


# ---- the faults -----------------------------------------------------------------------

Act = Callable[[Stack, list[str]], Awaitable[float]]


async def act_worker_kill(stack: Stack, notes: list[str]) -> float:
    name = stack.workers()[0].name
    stack.kill(name)
    stack.say(f"kill -9 {name}")
    notes.append(f"{name} killed (SIGKILL) under load; the suite's supervisor started it again")
    return time.monotonic()


async def act_gateway_kill(stack: Stack, notes: list[str]) -> float:
    stack.kill("gateway")
    stack.say("kill -9 gateway")
    notes.append("gateway killed (SIGKILL); the screen reconnects and resumes")
    return time.monotonic()


async def act_redis_away(stack: Stack, notes: list[str], outage_s: float) -> float:
    assert stack.redis is not None
    stack.redis.freeze()
    stack.say(f"redis frozen (SIGSTOP) for {outage_s:.0f} s")
    await asyncio.sleep(outage_s)
    stack.redis.thaw()
    stack.say("redis thawed")
    notes.append(f"Redis frozen (SIGSTOP: connections hang) for {outage_s:.0f} s")
    return time.monotonic()


async def act_postgres_away(stack: Stack, notes: list[str], outage_s: float) -> float:
    if stack.pg_proxy is None:
        notes.append("no PostgreSQL listens on 127.0.0.1:5432: the proxy was not cut (SQLite)")
        return time.monotonic()
    await stack.pg_proxy.cut()
    stack.say(f"postgres cut for {outage_s:.0f} s")
    await asyncio.sleep(outage_s)
    await stack.pg_proxy.restore()
    stack.say("postgres back")
    notes.append(
        f"PostgreSQL unreachable for {outage_s:.0f} s (connections dropped, new ones refused)"
    )
    return time.monotonic()


async def act_scale(stack: Stack, notes: list[str], step_s: float) -> float:
    second = stack.add_worker()
    stack.say(f"{second.name} added")
    await asyncio.sleep(step_s)
    third = stack.add_worker()
    stack.say(f"{third.name} added")
    await asyncio.sleep(step_s)
    first = stack.workers()[0].name
    await stack.remove(first)
    stack.say(f"{first} removed (SIGTERM)")
    notes.append(
        f"{stack.partitions} partitions: {second.name} added, {step_s:.0f} s later {third.name}, "
        f"{step_s:.0f} s later {first} stopped (SIGTERM); recovery from that stop"
    )
    return time.monotonic()


async def act_broker_stop(stack: Stack, notes: list[str], outage_s: float) -> float:
    stack.stop_broker()
    stack.say(f"broker stopped for {outage_s:.0f} s")
    await asyncio.sleep(outage_s)
    await stack.start_broker()
    stack.say("broker started again (empty) and the topics made again")
    notes.append(
        f"Tansu (in memory) stopped for {outage_s:.0f} s and started again empty, the topics "
        "made again as `rtic topics` would"
    )
    return time.monotonic()


async def run_fault(
    stack: Stack,
    load_gen: Load,
    name: str,
    act: Callable[[list[str]], Awaitable[float]],
    reads: list[dict[str, Any]],
    *,
    interval: float,
    pre_s: float,
    post_s: float,
    grace_s: float,
) -> dict[str, Any]:
    screen = Screen(f"faults-{name}")
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch_screen(stack, screen, ready))
    restarts_before = {p.name: p.restarts for p in stack.parts}
    try:
        await asyncio.wait_for(ready.wait(), 30)
        stream = HitStream(stack.kafka_url, stack.topics.anpr, reads)
        events_before = load_gen.acked
        stream.start(interval)
        await asyncio.sleep(pre_s)
        notes: list[str] = []
        t_fault = time.monotonic()
        cleared_at = await act(notes)
        await asyncio.sleep(post_s)
        await stream.stop()
        # The alerts still on their way (grace), then the figures.
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and set(stream.sent.acked) - set(screen.first_seen):
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # a frame shown twice comes right after the first
        events_in = load_gen.acked - events_before + len(stream.sent.acked)
        result = tally(
            name, stream.sent, screen, cleared_at=cleared_at, events_in=events_in, notes=notes
        )
        result["fault_s"] = round(cleared_at - t_fault, 1)
        if result["lost"]:
            lost = set(stream.sent.acked) - set(screen.first_seen)
            with contextlib.suppress(Exception):
                result["lost_where"] = await where_lost(stack, lost)
        ours = set(stream.sent.acked) | set(stream.sent.refused)
        shown_ours = {(a, v) for (a, v) in screen.shown if screen.alert_reads.get(a, set()) & ours}
        await asyncio.sleep(1.0)  # the gateway flushes audit records every 0.25 s
        with contextlib.suppress(Exception):
            rows = await audit_rows(stack.direct_database_url, {a for a, _ in shown_ours})
            result["records"] = tally_records(shown_ours, rows)
        result["restarts"] = [
            f"{p.name} ×{p.restarts - restarts_before.get(p.name, 0)}"
            for p in stack.parts
            if p.restarts > restarts_before.get(p.name, 0)
        ]
        return result
    finally:
        await cancel_and_wait(watcher)


async def run_faults(args: argparse.Namespace, names: list[str], command: str) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="rtic-faults-"))
    results: dict[str, Any] = {
        "suite": "rtic-faults",
        "schema": SCHEMA,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": command,
        "machine": machine(),
        "load": {"before": load()},
        "quick": args.quick,
        "outage_s": args.outage_s,
        "logs": str(log_dir),
        "faults": [],
    }
    print(f"faults: logs in {log_dir}", flush=True)
    per_fault = int(60 / args.interval) + 400  # more than the stream can send
    plan = [
        make_workload(
            per_fault,
            hotlist=per_fault,
            hit_share=1.0,
            misread_share=0.0,
            seed=900 + i,
            prefix=f"FLT-{name}",
        )
        for i, name in enumerate(names)
    ]
    results["load_preset"] = "west-midlands"
    results["rebuilt_after"] = []
    timeline: list[str] = []
    acked = refused = 0
    t0 = time.monotonic()
    stack, load_gen = await start_stack(log_dir, args, plan)
    results["startup_s"] = round(time.monotonic() - t0, 1)
    try:
        for i, (name, work) in enumerate(zip(names, plan, strict=True)):
            if STOP.is_set():
                results["interrupted_before"] = name
                break
            print(f"== {name} ==", flush=True)
            r = await one_fault(stack, load_gen, name, work.reads, args)
            results["faults"].append(r)
            if "error" not in r:
                print(
                    f"  events in {r['events_in']:,}; alerts expected {r['alerts_expected']}, "
                    f"delivered {r['alerts_delivered']}, lost {r['lost']}, twice {r['twice']}, "
                    f"recovery {r['recovery_s']} s; records {r.get('records')}; "
                    f"where lost {r.get('lost_where')}",
                    flush=True,
                )
            # The next fault starts on a stack that works (the same one, back on its own,
            # or a new one: said in the results).
            t_back = time.monotonic()
            try:
                if not await stack.settled(60):
                    raise RuntimeError("the workers did not settle within 60 s")
                await stack.wait_flow(60)
                r["flow_back_after_s"] = round(time.monotonic() - t_back, 1)
            except RuntimeError as exc:
                r["flow_back_after_s"] = None
                r["not_back"] = str(exc)[:300]
                r["worker_metrics"] = await asyncio.to_thread(stack.worker_inputs)
                stack.say(f"not back after {name}: {str(exc)[:200]}")
                if i + 1 < len(names):
                    stack.say("a new stack for the next fault")
                    results["rebuilt_after"].append(name)
                    timeline += stack.events
                    acked, refused = acked + load_gen.acked, refused + load_gen.refused
                    await load_gen.stop()
                    await stack.stop()
                    stack, load_gen = await start_stack(log_dir, args, plan[i + 1 :])
    finally:
        results["timeline"] = timeline + stack.events
        results["load_events"] = {
            "acked": acked + load_gen.acked,
            "refused": refused + load_gen.refused,
        }
        await load_gen.stop()
        await stack.stop()
    results["load"]["after"] = load()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


async def start_stack(
    log_dir: Path, args: argparse.Namespace, plan: list[Any]
) -> tuple[Stack, Load]:
    """A stack with every (remaining) fault's hotlist in, and the load running."""
    from simulators.demand import PRESETS

    stack = Stack(log_dir, partitions=args.partitions)
    try:
        await stack.start()
        producer = make_producer(stack.kafka_url)
        await producer.start()
        try:
            for work in plan:
                for key, value in work.hotlist_messages():
                    await producer.send(stack.topics.reference, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()
        await wait_hotlisted(stack, plan)
    except BaseException:
        await stack.stop()
        raise
    load_gen = Load(stack.kafka_url, stack.prefix, PRESETS["west-midlands"])
    load_gen.start()
    await asyncio.sleep(3)
    return stack, load_gen


async def one_fault(
    stack: Stack, load_gen: Load, name: str, reads: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    acts: dict[str, Callable[[list[str]], Awaitable[float]]] = {
        "worker_kill": lambda n: act_worker_kill(stack, n),
        "gateway_kill": lambda n: act_gateway_kill(stack, n),
        "redis_away": lambda n: act_redis_away(stack, n, args.outage_s),
        "postgres_away": lambda n: act_postgres_away(stack, n, args.outage_s),
        "scale": lambda n: act_scale(stack, n, args.outage_s / 2),
        "broker_stop": lambda n: act_broker_stop(stack, n, args.outage_s),
    }
    t0 = time.monotonic()
    try:
        r = await run_fault(
            stack,
            load_gen,
            name,
            acts[name],
            reads,
            interval=args.interval,
            pre_s=args.pre_s,
            post_s=args.post_s,
            grace_s=args.grace_s,
        )
    except Exception as exc:  # one fault that cannot run is said; the others run
        traceback.print_exc()
        r = {"fault": name, "error": f"{type(exc).__name__}: {exc}"}
    r["seconds"] = round(time.monotonic() - t0, 1)
    return r


async def wait_hotlisted(stack: Stack, plan: list[Any], timeout: float = 120) -> None:
    """Until the worker has every plate of every fault's hotlist in Redis."""
    import redis.asyncio as aioredis

    from enrichers.keys import Keys
    from rtic.plates import canonical_vrm

    assert stack.redis is not None
    plates = sorted({canonical_vrm(c["entry"]["vrm"]) for w in plan for c in w.hotlist})
    client = aioredis.Redis.from_url(stack.redis.url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = await client.hmget(Keys(stack.prefix).hotlist, plates)
            if all(v is not None for v in found):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the hotlist was not loaded in time")
            await asyncio.sleep(0.5)
    finally:
        await client.aclose()


# ---- the outputs ------------------------------------------------------------------------


def write_outputs(results: dict[str, Any], out_dir: Path, docs: bool, kind: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"][:16].replace(":", "").replace("-", "")
    quick = "-quick" if results.get("quick") else ""
    path = out_dir / f"{kind}-{stamp}-{results['commit']}{quick}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {path}")
    if docs:
        write_docs(results, path, kind)
    return path


def write_docs(results: dict[str, Any], path: Path, kind: str) -> None:
    """The run's figures in docs/reliability.md (and, for the soak, its chart)."""
    try:
        rel = str(path.resolve().relative_to(ROOT))
    except ValueError:
        rel = str(path)
    doc = DOC.read_text()
    if kind == "faults":
        doc = replace_section(doc, "Fault suite (`make faults`)", render_markdown(results, rel))
        doc = replace_section(
            doc,
            "Guarantees in one table",
            f"Run {results.get('started_at')}, commit `{results.get('commit')}`:\n\n"
            + guarantees_rows(results),
        )
    else:
        from benchmarks import soak

        doc = replace_section(doc, "Soak", soak.render_markdown(results, rel))
        (ROOT / "docs" / "reliability-soak.svg").write_text(soak.render_svg(results))
    DOC.write_text(doc)
    print(f"recorded in {DOC}")


def run(main_coro: Any) -> Any:
    """Run the suite; Ctrl-C (or SIGTERM) asks it to stop after the fault under way and
    stop the stack; whatever is left of the processes it started is stopped on the way
    out in every case."""
    import logging
    import signal

    from benchmarks.fault_stack import stop_leftovers

    # The suite's own producers and consumers retry through the outages it makes: their
    # reconnection chatter would drown the figures.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def guarded() -> Any:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, STOP.set)
        return await main_coro

    try:
        return asyncio.run(guarded())
    finally:
        stop_leftovers()


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="rtic faults", description=doc.split("\n")[0])
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(FAULTS)}")
    parser.add_argument("--outage-s", type=float, default=30.0, help="Redis, PostgreSQL, broker")
    parser.add_argument("--interval", type=float, default=0.25, help="s between hotlisted reads")
    parser.add_argument("--pre-s", type=float, default=5.0, help="load before each fault")
    parser.add_argument("--post-s", type=float, default=15.0, help="load after each fault")
    parser.add_argument("--grace-s", type=float, default=30.0, help="wait for late alerts")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="short outages: a smoke run")
    parser.add_argument("--soak", action="store_true", help="the soak instead of the faults")
    parser.add_argument("--minutes", type=float, default=30.0, help="soak: how long")
    parser.add_argument("--clients", type=int, default=500, help="soak: websocket clients")
    parser.add_argument("--scale", type=float, default=10.0, help="soak: x West Midlands demand")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/reliability.md")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="write the docs sections of a results file"
    )
    args = parser.parse_args(argv)
    if args.render:
        try:
            data = json.loads(args.render.read_text())
        except (OSError, ValueError) as exc:
            print(f"faults: cannot read {args.render}: {exc}", file=sys.stderr)
            return 2
        kind = {"rtic-faults": "faults", "rtic-soak": "soak"}.get(data.get("suite"))
        if kind is None:
            print(
                f"faults: {args.render} is not a fault suite or soak results file", file=sys.stderr
            )
            return 2
        write_docs(data, args.render, kind)
        return 0
    if args.quick:
        args.outage_s, args.pre_s, args.post_s, args.grace_s = 5.0, 3.0, 8.0, 15.0
    given = sys.argv[1:] if argv is None else argv
    command = "rtic faults" + (" " + shlex.join(given) if given else "")
    if args.soak:
        from benchmarks import soak

        results = run(soak.run_soak(args, command))
        write_outputs(results, args.out_dir, docs=not args.no_docs, kind="soak")
        return 1 if "error" in results else 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        print(f"faults: unknown {', '.join(unknown)}; faults: {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    results = run(run_faults(args, names, command))
    write_outputs(results, args.out_dir, docs=not args.no_docs, kind="faults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
