"""Part ``calls``: calls and incidents through the whole path (worker, case worker,
gateway as processes).

The demand simulator's model (``simulators.demand.DemandModel``, calls only, no plate
reads or pings) gives contract-shaped calls and the incident lifecycle events they
lead to, and its reference data (markers) goes first.

- *paced*: the events (half calls, half incident events) produced at a steady rate,
  each timed from produce to its ``event`` frame at an analyst's
  websocket (``events: true``), per kind;
- *burst*: a backlog produced at once; the worker's rate per kind from its own
  counters (``rtic_worker_events_in_total``), first taken to last.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import Services, load, produce
from benchmarks.part_latency import events_in, start_engine, stop_engine
from benchmarks.report import percentiles
from enrichers.geo import GeoIndex
from rtic.kafka import make_producer
from rtic.settings import Settings
from simulators.demand import DemandModel, SimEvent, Volumes
from tests.engine import Engine

KINDS = ("call", "incident")


def demand(n: int, rate: float, seed: int, geo: GeoIndex) -> tuple[list[SimEvent], list[SimEvent]]:
    """(reference data, ``n`` calls and incident events, half each, interleaved): the
    model's calls in order and its incidents' lifecycle events in order (an incident's
    events follow the call by minutes of model time, so they are taken from further on
    and merged one for one with the calls)."""
    model = DemandModel(
        geo,
        seed=seed,
        start=datetime.now(UTC) - timedelta(hours=2),
        volumes=Volumes(calls_per_s=rate, reads_per_s=0.0, pings_per_s=0.0),
        rhythm=False,
    )
    reference = model.reference_data()
    calls: list[SimEvent] = []
    incidents: list[SimEvent] = []
    want_calls, want_incidents = n - n // 2, n // 2
    for ev in model.events():
        if ev.kind == "call" and len(calls) < want_calls:
            calls.append(ev)
        elif ev.kind == "incident" and len(incidents) < want_incidents:
            incidents.append(ev)
        if len(calls) >= want_calls and len(incidents) >= want_incidents:
            break
    merged = [ev for pair in zip(calls, incidents, strict=False) for ev in pair]
    merged += calls[len(incidents) :] + incidents[len(calls) :]
    return reference, merged


def ident(kind: str, event: dict[str, Any]) -> str:
    if kind == "call":
        return f"call|{event.get('call_id')}"
    return f"incident|{event.get('incident_id')}|{event.get('event')}"


async def paced(engine: Engine, events: list[SimEvent], rate: float) -> list[dict[str, Any]]:
    topics = engine.topics
    sent: dict[str, tuple[str, float]] = {}
    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
    producer = make_producer(engine.settings.kafka_url, linger_ms=1)
    await producer.start()
    before = load()
    try:
        async with engine.client(events=True) as ws:
            done = asyncio.Event()

            async def receive() -> None:
                while True:
                    try:
                        async with asyncio.timeout(0.5):
                            raw = await ws.recv()
                    except TimeoutError:
                        if done.is_set():
                            return
                        continue
                    now = time.perf_counter()
                    msg = orjson.loads(raw)
                    if msg.get("type") != "event" or msg.get("kind") not in KINDS:
                        continue
                    found = sent.pop(ident(msg["kind"], msg.get("event", {})), None)
                    if found is not None:
                        latencies[found[0]].append((now - found[1]) * 1000)

            receiver = asyncio.create_task(receive())
            t0 = time.perf_counter()
            for i, ev in enumerate(events):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[ident(ev.kind, ev.value)] = (ev.kind, time.perf_counter())
                await producer.send(
                    topics.for_kind(ev.kind), orjson.dumps(ev.value), key=ev.key.encode()
                )
            elapsed = time.perf_counter() - t0
            await producer.flush()
            deadline = time.monotonic() + 30
            while sent and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            done.set()
            await receiver
    finally:
        await producer.stop()
    counts = {k: sum(1 for ev in events if ev.kind == k) for k in KINDS}
    return [
        {
            "phase": "paced",
            "kind": kind,
            "events": counts[kind],
            "rate": round(counts[kind] / elapsed, 1),
            "frames": len(latencies[kind]),
            "latency_ms": percentiles(latencies[kind]),
            "load_before": before,
        }
        for kind in KINDS
    ]


async def drain_burst(engine: Engine, events: list[SimEvent]) -> list[dict[str, Any]]:
    topics = engine.topics
    topic_of = {k: topics.for_kind(k) for k in KINDS}
    base = {k: events_in(engine, t) for k, t in topic_of.items()}
    want = {k: sum(1 for ev in events if ev.kind == k) for k in KINDS}
    before = load()
    by_topic: dict[str, list[tuple[bytes, bytes]]] = {t: [] for t in topic_of.values()}
    for ev in events:
        by_topic[topic_of[ev.kind]].append((ev.key.encode(), orjson.dumps(ev.value)))
    t0 = time.perf_counter()
    await asyncio.gather(
        *(produce(engine.settings.kafka_url, t, msgs) for t, msgs in by_topic.items() if msgs)
    )
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    first_n: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = time.perf_counter()
        for kind, topic in topic_of.items():
            got = events_in(engine, topic) - base[kind]
            if got > 0 and kind not in first:
                first[kind], first_n[kind] = now, got
            if got >= want[kind] and kind not in last:
                last[kind] = now
        if len(last) == len(KINDS):
            break
        await asyncio.sleep(0.1)
    out = []
    for kind in KINDS:
        rate = None
        if kind in first and kind in last and last[kind] > first[kind]:
            rate = round((want[kind] - first_n[kind]) / (last[kind] - first[kind]), 1)
        out.append(
            {
                "phase": "burst",
                "kind": kind,
                "events": want[kind],
                "rate": rate,
                "drained_s": round(last[kind] - t0, 1) if kind in last else None,
                "load_before": before,
            }
        )
    return out


async def run(
    services: Services, log_dir: Path, *, rate: float, seconds: float, burst: int
) -> dict[str, Any]:
    geo = GeoIndex.load(Settings().data_dir)
    n = int(rate * seconds)
    reference, events = demand(n, rate / 2, 15, geo)
    _, more = demand(burst, rate / 2, 16, geo)
    events += more
    engine = await asyncio.to_thread(start_engine, services, log_dir, "calls")
    try:
        await produce(
            engine.settings.kafka_url,
            engine.topics.reference,
            [(ev.key.encode(), orjson.dumps(ev.value)) for ev in reference],
        )
        print(f"calls: paced, {n:,} events at {rate:,.0f}/s", flush=True)
        runs = await paced(engine, events[:n], rate)
        for r in runs:
            print(
                f"  {r['kind']}: {r['frames']}/{r['events']} frames, {r['latency_ms']}", flush=True
            )
        print(f"calls: burst of {burst:,} events", flush=True)
        b = await drain_burst(engine, events[n:])
        for r in b:
            print(f"  {r['kind']}: {r['events']:,} at {r['rate']} events/s", flush=True)
        runs += b
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(stop_engine, engine)
    return {"runs": runs}
