"""Records written per second: audit appends in batches and case saves, SQLite and PostgreSQL.

- audit: ``AuditStore.append`` of batches of ``--batch`` records (the audit writer's
  batches: one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` each), then the same
  batches again (a redelivery: every row already there); records/s and per batch
  p50/p95 (ms);
- cases: what the case agent does per event: a new case number, then a save of the
  case with two timeline entries and a link; then a second save per case (an update
  with one more entry); saves/s and per save p50/p95 (ms).

SQLite: a file in a temporary folder (WAL, synchronous=FULL, as the engine runs it).
PostgreSQL: a database ``rtic_bench_<unique>`` created on 127.0.0.1:5432 and dropped
after (skipped if nothing listens there). One process, one connection at a time.
Usage::

    python benchmarks/records_write.py [--audit 20000] [--batch 500] [--cases 2000] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_throughput import machine
from records import open_records
from records.protocols import CaseRow, Records, ReporterV1
from rtic.casework import (
    AuditAction,
    AuditObject,
    AuditV1,
    CaseLinkV1,
    CaseStatus,
    LinkKind,
    TimelineEntryV1,
    TimelineKind,
    format_case_ref,
    stable_id,
)

NOW = datetime.now(UTC)
PG = ("127.0.0.1", 5432)


def audit_batches(n: int, batch: int) -> list[list[AuditV1]]:
    records = [
        AuditV1(
            audit_id=stable_id("aud", "bench", i),
            at=NOW + timedelta(milliseconds=i),
            actor=f"analyst-{i % 40}",
            role="rtic_analyst",
            action=AuditAction.ALERT_DELIVERED,
            object_type=AuditObject.ALERT,
            object_id=f"AL-{i // 8}",
            origin="10.0.0.7",
            detail={"version": 1, "client": f"c-{i % 40}"},
        )
        for i in range(n)
    ]
    return [records[i : i + batch] for i in range(0, n, batch)]


def case_of(number: int, version: int) -> CaseRow:
    return CaseRow(
        case_ref=format_case_ref("WM", 2026, number),
        status=CaseStatus.RECEIVED if version == 1 else CaseStatus.UNDER_INVESTIGATION,
        category="burglary",
        grade=3,
        officer_in_charge=None if version == 1 else f"OFF-{number % 300}",
        attending=[] if version == 1 else [f"OFF-{number % 300}"],
        area=["BE", "BE-NECH"],
        opened_at=NOW,
        updated_at=NOW + timedelta(minutes=version),
        address="12 Example Street, Birmingham B7 4AA",
        reporter=ReporterV1(person_id=f"P-{number}", name="A Caller", phone="07700900000"),
        version=version,
    )


def entry_of(case: CaseRow, kind: TimelineKind, n: int) -> TimelineEntryV1:
    return TimelineEntryV1(
        entry_id=stable_id("ent", case.case_ref, n),
        case_ref=case.case_ref,
        kind=kind,
        at=NOW + timedelta(seconds=n),
        text="Your report has been received",
        source=f"call:C-{case.case_ref}",
    )


async def timed(step: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await step()
    return time.perf_counter() - start


def summary(times: list[float], items: int) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "per_s": items / sum(times),
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[max(0, int(len(ms) * 0.95) - 1)],
    }


async def bench_audit(records: Records, batches: list[list[AuditV1]]) -> dict[str, float]:
    n = sum(len(b) for b in batches)
    first = [await timed(lambda b=b: records.audit.append(b)) for b in batches]
    again = [await timed(lambda b=b: records.audit.append(b)) for b in batches]
    fresh, redelivered = summary(first, n), summary(again, n)
    return {
        **fresh,
        "redelivered_per_s": redelivered["per_s"],
        "redelivered_p50_ms": redelivered["p50_ms"],
    }


async def bench_cases(records: Records, n: int) -> dict[str, float]:
    opened: list[float] = []
    updated: list[float] = []
    for i in range(n):

        async def open_case(i: int = i) -> None:
            number = await records.cases.next_case_number(2026)
            case = case_of(number, 1)
            entries = [
                entry_of(case, TimelineKind.RECEIVED, 1),
                entry_of(case, TimelineKind.ASSESSED, 2),
            ]
            link = CaseLinkV1(kind=LinkKind.CALL, id=f"C-{i}")
            await records.cases.save(case, entries, [link])

        opened.append(await timed(open_case))
    for number in range(1, n + 1):
        case = case_of(number, 2)
        entry = entry_of(case, TimelineKind.OFFICER_ASSIGNED, 3)
        updated.append(await timed(lambda c=case, e=entry: records.cases.save(c, [e])))
    o, u = summary(opened, n), summary(updated, n)
    return {
        "open_per_s": o["per_s"],
        "open_p50_ms": o["p50_ms"],
        "open_p95_ms": o["p95_ms"],
        "update_per_s": u["per_s"],
        "update_p50_ms": u["p50_ms"],
        "update_p95_ms": u["p95_ms"],
    }


async def run_on(url: str, args: argparse.Namespace) -> dict[str, float]:
    records = await open_records(url)
    try:
        audit = await bench_audit(records, audit_batches(args.audit, args.batch))
        cases = await bench_cases(records, args.cases)
    finally:
        await records.close()
    return {**{f"audit_{k}": v for k, v in audit.items()}, **cases}


async def pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG[0], port=PG[1], user="postgres", database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def pg_listens() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(PG) == 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audit", type=int, default=20_000, help="audit records to append")
    parser.add_argument("--batch", type=int, default=500, help="audit records per batch")
    parser.add_argument("--cases", type=int, default=2_000, help="cases to open and update")
    parser.add_argument(
        "--record", action="store_true", help="append results to docs/benchmarks.md"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = await run_on(f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", args)
    if pg_listens():
        name = f"rtic_bench_{uuid.uuid4().hex[:10]}"
        await pg_admin(f'CREATE DATABASE "{name}"')
        try:
            results["PostgreSQL"] = await run_on(
                f"postgresql+asyncpg://postgres@{PG[0]}:{PG[1]}/{name}", args
            )
        finally:
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        print("PostgreSQL: nothing listens on 127.0.0.1:5432, skipped", file=sys.stderr)
    lines = [
        f"| database | audit records/s (batches of {args.batch}) | per batch p50 (ms) | p95 (ms) "
        "| redelivered records/s | case opens/s | per open p50 (ms) | p95 (ms) "
        "| case updates/s | per update p50 (ms) | p95 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['audit_per_s']:,.0f} | {r['audit_p50_ms']:.1f} | "
            f"{r['audit_p95_ms']:.1f} | {r['audit_redelivered_per_s']:,.0f} | "
            f"{r['open_per_s']:,.0f} | {r['open_p50_ms']:.2f} | {r['open_p95_ms']:.2f} | "
            f"{r['update_per_s']:,.0f} | {r['update_p50_ms']:.2f} | {r['update_p95_ms']:.2f} |"
        )
    print("\n".join(lines))
    if args.record:
        head = [
            f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python benchmarks/records_write.py "
            f"--audit {args.audit} --batch {args.batch} --cases {args.cases}`\n",
            f"Machine: {machine()}. SQLite: a local file (WAL, synchronous=FULL); PostgreSQL: "
            "the local server. One connection at a time.\n",
        ]
        path = ROOT / "docs" / "benchmarks.md"
        with path.open("a") as fh:
            fh.write("\n".join(head + lines) + "\n")
        print(f"recorded in {path}")


if __name__ == "__main__":
    asyncio.run(main())
