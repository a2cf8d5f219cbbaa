"""The enrichment step alone, on batches of realistic events: events/s and us/event.

- place: areas (district, ward, LSOA), geofences, and for calls and incidents the
  nearest place of each layer; for plate reads from fixed cameras (cache hits) and
  for calls at fresh random addresses inside the force area (no cache hits);
- history: ``RedisHistory.enrich`` against the real Redis at RTIC_REDIS_URL (or an
  embedded one) for plate reads (hotlist + trail); incidents (the incident log round
  trip, markers, incidents at the address and within 50 m in 28 days), created a
  second apart, at the places the calls come from next; calls (the call log round
  trip, markers, and from the indexes: calls at the address and by the caller, calls
  within 50 m in 28 days and within 300 m in 10 minutes, the incidents at the
  address and within 50 m), calls a second apart (a very busy force: 3,600 an hour)
  and, as the worst case for the 10-minute search, all at one instant; then the
  incidents' arrived events, which find those calls;
- nearest units alone: distances from a batch to every available officer.

One process, one core (this script does not start other work). Usage::

    python benchmarks/enrichment.py [--events 20000] [--batch 500] [--repeat 5] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_throughput import drop_keys, machine
from cli.services import redis_answers, start_embedded_redis
from enrichers.geo import GeoIndex
from enrichers.stores import RedisStores
from enrichers.zones import Geofences, Officers
from rtic.runtime import tune_gc
from rtic.schemas import CallV1, EventKind, IncidentEventV1, OfficerLocationV1, PlateReadV1
from rtic.settings import Settings

NOW = datetime.now(UTC)
# The emerging-incident rule's search as rules/default.yaml sets it: 300 m, 10 minutes.
EMERGING = (300.0, 600.0)
CATEGORIES = ("assault", "theft", "domestic_abuse", "suspicious", "burglary")


def points_inside(geo: GeoIndex, n: int, seed: int) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    tree = geo.levels["district"].tree
    lats: list[float] = []
    lons: list[float] = []
    while len(lats) < n:
        la = rng.uniform(52.35, 52.67, 4 * n)
        lo = rng.uniform(-2.21, -1.42, 4 * n)
        inside = tree.query(shapely.points(lo, la), predicate="within")[0]
        for i in np.unique(inside)[: n - len(lats)]:
            lats.append(float(la[i]))
            lons.append(float(lo[i]))
    return lats, lons


def settle() -> None:
    """Before a timed step: the benchmark's own inputs (tens of thousands of events a
    worker never holds at once) frozen out of the collector's way, as ``tune_gc`` does
    for the loaded reference data, so that when a full collection lands does not decide
    a step's figure."""
    gc.collect()
    gc.freeze()


def timed(fn: Callable[[int, int], Any], n: int, batch: int) -> float:
    settle()
    start = time.perf_counter()
    for i in range(0, n, batch):
        fn(i, min(i + batch, n))
    return time.perf_counter() - start


async def atimed(fn: Callable[[int, int], Any], n: int, batch: int) -> float:
    settle()
    start = time.perf_counter()
    for i in range(0, n, batch):
        await fn(i, min(i + batch, n))
    return time.perf_counter() - start


async def run(n: int, batch: int, redis_url: str) -> list[tuple[str, int, float]]:
    geo = GeoIndex.load(Settings().data_dir)
    fences = Geofences.build(
        1,
        {
            f"GF{i}": {
                "name": f"zone {i}",
                "circle": {"lat": 52.40 + i * 0.01, "lon": -1.95 + i * 0.02, "radius_m": 400},
            }
            for i in range(20)
        },
    )
    rows: list[tuple[str, int, float]] = []
    tune_gc()  # as the worker does once its reference data is loaded
    cam_lats, cam_lons = points_inside(geo, 200, 1)
    rng = np.random.default_rng(2)
    cams = rng.integers(0, 200, n)
    r_lats = [cam_lats[c] for c in cams]
    r_lons = [cam_lons[c] for c in cams]
    times = [NOW] * n
    geo.areas(cam_lats, cam_lons)  # the cameras have been seen before

    def place_reads(a: int, b: int) -> None:
        geo.areas(r_lats[a:b], r_lons[a:b])
        fences.hits(r_lats[a:b], r_lons[a:b], times[a:b])

    rows.append(
        (
            "place: plate reads from 200 fixed cameras (areas + geofences)",
            n,
            timed(place_reads, n, batch),
        )
    )
    c_lats, c_lons = points_inside(geo, n, 3)

    def place_calls(a: int, b: int) -> None:
        geo.areas(c_lats[a:b], c_lons[a:b], cache=False)  # as the pipeline does for calls
        fences.hits(c_lats[a:b], c_lons[a:b], times[a:b])
        geo.nearest_places(c_lats[a:b], c_lons[a:b])

    rows.append(
        (
            "place: calls at new addresses (areas + geofences + nearest places)",
            n,
            timed(place_calls, n, batch),
        )
    )

    prefix = f"benchenrich{time.time_ns()}."
    stores = RedisStores.from_url(redis_url, prefix=prefix, timeout=5.0)
    store = stores.history
    try:
        pings = [
            OfficerLocationV1(
                officer_id=f"O{i}", at=NOW, lat=c_lats[i], lon=c_lons[i], status="available"
            )
            for i in range(300)
        ]
        await stores.reference.record_officers(pings)
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        reads = [
            PlateReadV1(
                read_id=f"R{i}",
                vrm=f"{letters[i % 23]}{letters[i // 23 % 23]}{i % 70 + 10} {letters[i // 529 % 23]}AB",
                camera_id=f"C{cams[i]}",
                read_at=NOW,
                lat=r_lats[i],
                lon=r_lons[i],
            )
            for i in range(n)
        ]

        async def history_reads(a: int, b: int) -> None:
            await store.enrich(EventKind.ANPR, reads[a:b])

        rows.append(
            (
                "history: plate reads (hotlist + trail, one script call per batch)",
                n,
                await atimed(history_reads, n, batch),
            )
        )

        incidents = [
            IncidentEventV1(
                incident_id=f"I{i}",
                event="created",
                at=NOW - timedelta(seconds=n - i),
                grade=i % 4 + 1,
                category=CATEGORIES[i % len(CATEGORIES)],
                location={
                    "lat": c_lats[i],
                    "lon": c_lons[i],
                    "address": f"{i % 997} Bench Road",
                },
                persons=[{"person_id": f"P{i % 1500}"}],
            )
            for i in range(n)
        ]

        async def history_incidents(a: int, b: int) -> None:
            await store.enrich(EventKind.INCIDENT, incidents[a:b])

        rows.append(
            (
                "history: incidents created a second apart (markers, incidents at the address "
                "and within 50 m; calls there: none yet)",
                n,
                await atimed(history_incidents, n, batch),
            )
        )

        def make_calls(tag: str, apart_s: float) -> list[CallV1]:
            return [
                CallV1(
                    call_id=f"{tag}{i}",
                    received_at=NOW - timedelta(seconds=(n - i) * apart_s),
                    channel="999",
                    category=CATEGORIES[i % len(CATEGORIES)],
                    location={
                        "lat": c_lats[i],
                        "lon": c_lons[i],
                        "address": f"{i % 997} Bench Road",
                    },
                    caller={"person_id": f"P{i % 1500}"},
                )
                for i in range(n)
            ]

        for name, calls in (
            (
                "history: calls a second apart (call history, 50 m history, markers, "
                "calls within 300 m in 10 minutes, the incidents above at the address and "
                "within 50 m)",
                make_calls("C", 1.0),
            ),
            (
                "history: calls all at one instant (the same, every call in the 10 minutes)",
                make_calls("D", 0.0),
            ),
        ):

            async def history_calls(a: int, b: int, calls: list[CallV1] = calls) -> None:
                await store.enrich(EventKind.CALL, calls[a:b], EMERGING)

            rows.append((name, n, await atimed(history_calls, n, batch)))

        arrived = [
            inc.model_copy(update={"event": "arrived", "at": inc.at + timedelta(minutes=5)})
            for inc in incidents
        ]

        async def history_arrivals(a: int, b: int) -> None:
            await store.enrich(EventKind.INCIDENT, arrived[a:b])

        rows.append(
            (
                "history: the incidents' arrived events (the same, with the calls above "
                "at the address and within 50 m)",
                n,
                await atimed(history_arrivals, n, batch),
            )
        )

        officers = Officers.build(await stores.reference.officer_states())

        def units_only(a: int, b: int) -> None:
            officers.nearest(c_lats[a:b], c_lons[a:b], NOW)

        rows.append(
            (
                "nearest units: 300 available officers, numpy per batch",
                n,
                timed(units_only, n, batch),
            )
        )
    finally:
        await drop_keys(stores, prefix)
        await stores.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--repeat", type=int, default=5, help="whole runs; the median of each step is reported"
    )
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    url = Settings().redis_url
    embedded = None if redis_answers(url) else start_embedded_redis()
    rates: dict[str, list[float]] = {}
    try:
        for _ in range(max(1, args.repeat)):
            rows = asyncio.run(run(args.events, args.batch, embedded.url if embedded else url))
            for name, n, secs in rows:
                rates.setdefault(name, []).append(n / secs)
    finally:
        if embedded:
            embedded.stop()
    summary = [(name, statistics.median(r), min(r), max(r)) for name, r in rates.items()]
    for name, median, low, high in summary:
        print(
            f"{name}: {median:,.0f} events/s ({low:,.0f} to {high:,.0f}), "
            f"{1e6 / median:.1f} us/event"
        )
    if args.record:
        lines = [
            f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python benchmarks/enrichment.py --events {args.events} --batch {args.batch} --repeat {args.repeat}`\n",
            f"Machine: {machine()}. One process; Redis: {'embedded' if embedded else 'local server'} (its own process).",
            f"Median of {args.repeat} whole runs, with the lowest and highest.\n",
            "| step | events/s (median) | us/event | lowest | highest |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {name} | {median:,.0f} | {1e6 / median:.1f} | {low:,.0f} | {high:,.0f} |"
                for name, median, low, high in summary
            ),
        ]
        with (ROOT / "docs" / "benchmarks.md").open("a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
