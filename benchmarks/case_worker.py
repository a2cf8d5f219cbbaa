"""Records written per second by the case agent and the audit writer, on SQLite and PostgreSQL.

The work of the case worker without the broker (``streams.casework.CaseWork``:
decode, the case book, the database), in-process, on the real database:

1. ``cases``: the lives of ``--cases`` cases (a call, its incident created,
   assigned, en route, arrived, an alert on the call, its acknowledgement, the
   incident closed: 8 messages each), interleaved as they would arrive, taken
   in batches of ``--batch``; events per second over the run, and each
   batch's time (p50/p95).
2. ``audit``: ``--audit`` audit records appended in batches of ``--batch``;
   records per second and batch p50/p95. Then the same records again (a
   redelivery): nothing new is stored.

Databases: a fresh SQLite file, and PostgreSQL at ``--postgres`` (a database
of its own, created and dropped; skipped with a note if nothing answers).

Usage::

    python benchmarks/case_worker.py [--cases 2000] [--audit 20000] [--batch 200] [--record]

``--record`` appends the results, with the machine, to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from records import open_records
from records.migrate import upgrade
from rtic.settings import Settings
from rtic.topics import Topics
from streams.casework import CaseWork
from streams.pipeline import RawRecord

T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def case_lives(topics: Topics, n: int) -> list[RawRecord]:
    """``n`` cases' messages, each case's in order, the cases interleaved (10 at a time)."""
    lives: list[list[tuple[str, dict[str, Any]]]] = []
    for i in range(n):
        at = T0 + timedelta(seconds=i)
        call_id, inc_id, alert_id = f"BC-{i}", f"BI-{i}", f"BA-{i}"
        loc = {"lat": 52.48, "lon": -1.89, "address": f"{i} Bench Street, Birmingham"}
        inc = {"incident_id": inc_id, "grade": 2, "category": "burglary", "location": loc}

        def t(s: float, at: datetime = at) -> str:
            return (at + timedelta(seconds=s)).isoformat()

        lives.append(
            [
                (
                    topics.calls,
                    {
                        "call_id": call_id,
                        "received_at": t(0),
                        "channel": "999",
                        "category": "burglary",
                        "grade": 2,
                        "location": loc,
                        "caller": {"person_id": f"P-{i}", "name": "A Caller"},
                    },
                ),
                (topics.incidents, {**inc, "event": "created", "at": t(20), "call_ids": [call_id]}),
                (
                    topics.alerts,
                    {
                        "alert_id": alert_id,
                        "rule_id": "repeat_caller",
                        "severity": "high",
                        "title": "Repeat caller",
                        "summary": "Third call",
                        "created_at": t(21),
                        "source_event_ids": [call_id],
                        "location": None,
                        "area": [],
                        "audience": {"roles": ["rtic_analyst"]},
                    },
                ),
                (topics.incidents, {**inc, "event": "assigned", "at": t(60), "units": ["OFF-1"]}),
                (
                    topics.alert_acks,
                    {
                        "alert_id": alert_id,
                        "action": "ack",
                        "by": "analyst-1",
                        "role": "rtic_analyst",
                        "at": t(70),
                    },
                ),
                (
                    topics.incidents,
                    {**inc, "event": "updated", "status": "en_route", "at": t(90)},
                ),
                (topics.incidents, {**inc, "event": "arrived", "at": t(600), "units": ["OFF-1"]}),
                (
                    topics.incidents,
                    {**inc, "event": "closed", "at": t(3000), "result": "advice_given"},
                ),
            ]
        )
    out: list[RawRecord] = []
    for group in range(0, n, 10):
        chunk = lives[group : group + 10]
        for step in range(len(chunk[0])):
            for life in chunk:
                topic, value = life[step]
                out.append(RawRecord(topic, 0, len(out), None, orjson.dumps(value)))
    return out


def audit_records(topic: str, n: int) -> list[RawRecord]:
    out = []
    for i in range(n):
        record = {
            "audit_id": f"bench-audit-{i}",
            "at": (T0 + timedelta(milliseconds=i)).isoformat(),
            "actor": f"analyst-{i % 50}",
            "role": "rtic_analyst",
            "action": "alert_delivered",
            "object_type": "alert",
            "object_id": f"BA-{i // 5}",
            "origin": "127.0.0.1",
        }
        out.append(RawRecord(topic, 0, i, None, orjson.dumps(record)))
    return out


async def timed_batches(
    records: list[RawRecord], batch: int, step: Callable[[list[RawRecord]], Awaitable[Any]]
) -> dict[str, float]:
    times = []
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        t0 = time.perf_counter()
        await step(records[i : i + batch])
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    return {
        "per_s": len(records) / total,
        "p50_ms": float(np.percentile(times, 50)) * 1000,
        "p95_ms": float(np.percentile(times, 95)) * 1000,
        "seconds": total,
    }


async def measure(url: str, n_cases: int, n_audit: int, batch: int) -> dict[str, Any]:
    settings = Settings(database_url=url, topic_prefix="bench.")  # type: ignore[call-arg]
    topics = Topics.with_prefix(settings.topic_prefix)
    records = await open_records(url)
    work = CaseWork(settings, records, area_codes=lambda lat, lon: ["E08000025"])
    try:
        lives = case_lives(topics, n_cases)
        cases = await timed_batches(lives, batch, work.case_batch)
        audit = audit_records(topics.audit, n_audit)
        trail = await timed_batches(audit, batch, work.audit_batch)
        new_before = work.stats.audit_new
        await timed_batches(audit, batch, work.audit_batch)
        assert work.stats.audit_new == new_before, "a redelivered audit record was stored twice"
        assert work.stats.audit_new == n_audit
    finally:
        await work.close()
    return {
        "cases": cases,
        "audit": trail,
        "messages": len(lives),
        "updates": work.stats.updates,
    }


async def _postgres_database(admin_url: str, name: str, create: bool) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if create:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def run_on(label: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    upgrade(url)
    result = asyncio.run(measure(url, args.cases, args.audit, args.batch))
    result["label"] = label
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--audit", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="rtic-bench-") as tmp:
        results.append(run_on("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", args))
    name = f"rtic_bench_{os.getpid()}"
    try:
        asyncio.run(_postgres_database(args.postgres, name, create=True))
    except Exception as exc:  # nothing answers: say so and measure SQLite only
        print(f"PostgreSQL at {args.postgres} not measured: {exc}", file=sys.stderr)
    else:
        try:
            base = args.postgres.rsplit("/", 1)[0]
            results.append(run_on("PostgreSQL", f"{base}/{name}", args))
        finally:
            asyncio.run(_postgres_database(args.postgres, name, create=False))
    report = render(results, args)
    print(report)
    if args.record:
        with (ROOT / "docs" / "benchmarks.md").open("a") as f:
            f.write("\n" + report + "\n")


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"### Case worker, {datetime.now(UTC):%Y-%m-%d} ({machine})",
        "",
        f"`python benchmarks/case_worker.py --cases {args.cases} --audit {args.audit} "
        f"--batch {args.batch}`: the case agent's and the audit writer's work in-process "
        "(decode, case book, database; no broker), batches as the agents take them.",
        "",
        "| database | case messages/s | case batch p50 / p95 (ms) | updates | "
        "audit records/s | audit batch p50 / p95 (ms) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c, a = r["cases"], r["audit"]
        lines.append(
            f"| {r['label']} | {c['per_s']:,.0f} | {c['p50_ms']:.1f} / {c['p95_ms']:.1f} | "
            f"{r['updates']:,} for {r['messages']:,} messages | {a['per_s']:,.0f} | "
            f"{a['p50_ms']:.1f} / {a['p95_ms']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
