"""The soak: ``rtic faults --soak [--minutes 30]`` (issue 14, "Load").

The engine as the fault suite starts it (``benchmarks/fault_stack.py``: one worker,
the case worker, the gateway), fed ``--scale`` times (default ten) the West Midlands
demand preset from the simulator's model, with ``--clients`` websocket clients (one in
ten an analyst who gets every alert, the others officers at places across the force,
each with a 5 km radius) and a hotlisted read every second whose alert latency is
measured at every client it reaches. Every ``SAMPLE_S`` seconds: the resident memory of
each process; per window: alert latency percentiles. Written to
``benchmarks/results/soak-*.json``, the "Soak" section of docs/reliability.md and the
chart docs/reliability-soak.svg.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import orjson

from benchmarks.fault_stack import Stack
from benchmarks.fault_tally import header_lines
from benchmarks.report import percentiles
from benchmarks.workload import CAMERA_BOX, make_workload

SAMPLE_S = 10.0
MARK = b"SOAK-"


@dataclass
class Deliveries:
    """When each client was shown each measured alert (read id -> arrival times)."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)
    frames: int = 0
    connected: int = 0
    dropped: int = 0  # connections that ended before the soak did
    twice: int = 0
    errors: list[str] = field(default_factory=list)


async def client(
    stack: Stack, sub: str, role: str, subscribe: dict[str, Any], out: Deliveries
) -> None:
    """One screen for the whole soak (no reconnection: a drop is counted)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    seen: set[tuple[str, int]] = set()
    try:
        async with connect(
            stack.ws_url,
            additional_headers={"Authorization": f"Bearer {stack.token(sub, role)}"},
            open_timeout=30,
            max_size=None,
        ) as ws:
            await ws.send(orjson.dumps({"type": "subscribe", **subscribe}).decode())
            out.connected += 1
            try:
                async for raw in ws:
                    out.frames += 1
                    data = raw if isinstance(raw, bytes) else raw.encode()
                    if MARK not in data:
                        continue
                    now = time.monotonic()
                    msg = orjson.loads(data)
                    if msg.get("type") != "alert":
                        continue
                    key = (str(msg.get("alert_id")), int(msg.get("version") or 1))
                    if key in seen:
                        out.twice += 1
                        continue
                    seen.add(key)
                    for rid in msg.get("source_event_ids") or ():
                        out.arrivals.setdefault(rid, []).append(now)
            finally:
                out.connected -= 1
                out.dropped += 1
    except (OSError, TimeoutError, WebSocketException) as exc:
        if len(out.errors) < 10:
            out.errors.append(f"{sub}: {type(exc).__name__}: {exc}")


async def run_soak(args: argparse.Namespace, command: str) -> dict[str, Any]:
    from benchmarks.faults import STOP, HitStream, Load, git, wait_hotlisted
    from benchmarks.harness import load
    from benchmarks.pipeline_throughput import machine
    from rtic.kafka import make_producer
    from simulators.demand import PRESETS

    log_dir = Path(tempfile.mkdtemp(prefix="rtic-soak-"))
    wm = PRESETS["west-midlands"]
    volumes = replace(
        wm,
        calls_per_s=wm.calls_per_s * args.scale,
        reads_per_s=wm.reads_per_s * args.scale,
        pings_per_s=wm.pings_per_s * args.scale,
    )
    seconds = args.minutes * 60
    results: dict[str, Any] = {
        "suite": "rtic-soak",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": command,
        "machine": machine(),
        "load": {"before": load()},
        "minutes": args.minutes,
        "scale": args.scale,
        "offered_per_s": {
            "calls": round(volumes.calls_per_s, 2),
            "reads": round(volumes.reads_per_s, 1),
            "pings": round(volumes.pings_per_s, 1),
        },
        "clients": args.clients,
        "logs": str(log_dir),
        "samples": [],
        "windows": [],
    }
    print(f"soak: logs in {log_dir}; {args.minutes} min at {args.scale}x West Midlands", flush=True)
    stack = Stack(log_dir, partitions=args.partitions)
    work = make_workload(
        int(seconds) + 120,
        hotlist=int(seconds) + 120,
        hit_share=1.0,
        misread_share=0.0,
        seed=4242,
        prefix="SOAK",
    )
    out = Deliveries()
    tasks: list[asyncio.Task[None]] = []
    load_gen: Load | None = None
    stream: HitStream | None = None
    try:
        await stack.start()
        producer = make_producer(stack.kafka_url)
        await producer.start()
        try:
            for key, value in work.hotlist_messages():
                await producer.send(stack.topics.reference, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()
        await wait_hotlisted(stack, [work])
        rng = random.Random(5)
        lat0, lat1, lon0, lon1 = CAMERA_BOX
        analysts = max(1, args.clients // 10)
        for i in range(args.clients):
            spec: tuple[str, str, dict[str, Any]]
            if i < analysts:
                spec = (f"soak-analyst-{i}", "rtic_analyst", {})
            else:
                position = {"lat": rng.uniform(lat0, lat1), "lon": rng.uniform(lon0, lon1)}
                spec = (f"soak-officer-{i}", "officer", {"position": position, "radius_m": 5000})
            tasks.append(asyncio.create_task(client(stack, *spec, out)))
            if i % 50 == 49:
                await asyncio.sleep(0.5)  # connect in waves, as a shift logging on
        await asyncio.sleep(2)
        results["clients_connected"] = out.connected
        load_gen = Load(stack.kafka_url, stack.prefix, volumes)
        load_gen.start()
        stream = HitStream(stack.kafka_url, stack.topics.anpr, work.reads)
        stream.start(1.0)
        t0 = time.monotonic()
        window_s = max(SAMPLE_S, seconds / 30)
        last_acked, last_t = 0, t0
        while (now := time.monotonic()) < t0 + seconds and not STOP.is_set():
            await asyncio.sleep(SAMPLE_S)
            now = time.monotonic()
            results["samples"].append(
                {
                    "t_s": round(now - t0, 1),
                    "rss_mib": stack.rss(),
                    "events_per_s": round((load_gen.acked - last_acked) / (now - last_t), 1),
                    "load_behind_s": round(load_gen.behind_s, 1),
                    "clients": out.connected,
                    "load": load()[0],
                }
            )
            last_acked, last_t = load_gen.acked, now
            s = results["samples"][-1]
            print(
                f"  {s['t_s']:6.0f} s  {s['events_per_s']:7,.0f} ev/s  clients {s['clients']}  "
                f"rss {s['rss_mib']}  measured alerts shown {sum(map(len, out.arrivals.values()))}",
                flush=True,
            )
        ended = time.monotonic()
        await stream.stop()
        await asyncio.sleep(30)  # the last alerts (a lagging worker sends them late)
        # Windows by when the read was sent, each with every arrival it ever had.
        start = t0
        while start < ended:
            end = min(start + window_s, ended)
            results["windows"].append(window(stream.sent.acked, out.arrivals, start, end, t0))
            start = end
        results["summary"] = summarise(results, stream.sent.acked, out, analysts)
        results["load_events"] = {"acked": load_gen.acked, "refused": load_gen.refused}
        results["restarts"] = {p.name: p.restarts for p in stack.parts if p.restarts}
    except Exception as exc:  # the soak that breaks says how
        import traceback

        traceback.print_exc()
        results["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if stream is not None:
            await stream.stop()
        if load_gen is not None:
            await load_gen.stop()
        with contextlib.suppress(Exception):
            await stack.stop()
    results["load"]["after"] = load()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def window(
    sent: Mapping[str, float],
    arrivals: Mapping[str, list[float]],
    start: float,
    end: float,
    t0: float,
) -> dict[str, Any]:
    """Latency percentiles (ms) of the measured alerts sent in [start, end), at every
    client they reached."""
    lat = [
        (a - at) * 1000
        for rid, at in sent.items()
        if start <= at < end
        for a in arrivals.get(rid, ())
    ]
    return {"t_s": round(end - t0, 1), **percentiles(lat)}


def growth(samples: Sequence[Mapping[str, Any]], name: str) -> dict[str, float | None]:
    """A process's memory: first, last, peak (MiB) and the slope over the second half
    (MiB per minute, least squares): growth without bound shows as a slope that stays up."""
    points = [(s["t_s"], s["rss_mib"][name]) for s in samples if name in s["rss_mib"]]
    if not points:
        return {"first": None, "last": None, "peak": None, "slope_mib_per_min": None}
    half = points[len(points) // 2 :]
    slope = None
    if len(half) >= 2:
        mt = sum(t for t, _ in half) / len(half)
        mv = sum(v for _, v in half) / len(half)
        den = sum((t - mt) ** 2 for t, _ in half)
        if den:
            slope = round(sum((t - mt) * (v - mv) for t, v in half) / den * 60, 2)
    return {
        "first": points[0][1],
        "last": points[-1][1],
        "peak": max(v for _, v in points),
        "slope_mib_per_min": slope,
    }


def summarise(
    results: Mapping[str, Any], sent: Mapping[str, float], out: Deliveries, analysts: int
) -> dict[str, Any]:
    samples = results["samples"]
    names = sorted({n for s in samples for n in s["rss_mib"]})
    everyone = [(a - sent[r]) * 1000 for r, arr in out.arrivals.items() if r in sent for a in arr]
    # Every analyst gets every alert: a measured read short of ``analysts`` deliveries
    # lost somewhere (officers get only those within their radius).
    short = sum(1 for r in sent if len(out.arrivals.get(r, ())) < analysts)
    rates = [s["events_per_s"] for s in samples[1:]]
    # The first client a read reached says what the engine took; the last, what the
    # fan-out to every screen (and this process reading 500 sockets) added.
    reached = [(r, arr) for r, arr in out.arrivals.items() if r in sent and arr]
    return {
        "latency_ms": percentiles(everyone),
        "first_client_ms": percentiles([(min(arr) - sent[r]) * 1000 for r, arr in reached]),
        "last_client_ms": percentiles([(max(arr) - sent[r]) * 1000 for r, arr in reached]),
        "measured_reads": len(sent),
        "reads_short_of_an_analyst": short,
        "twice": out.twice,
        "clients_dropped": out.dropped,
        "client_errors": out.errors,
        "frames": out.frames,
        "events_per_s_mean": round(sum(rates) / len(rates), 1) if rates else None,
        "rss_mib": {n: growth(samples, n) for n in names},
    }


# ---- the report ---------------------------------------------------------------------------


def _n(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:,.1f}" if isinstance(x, float) else f"{x:,}" if isinstance(x, int) else str(x)


def _pcts(p: Mapping[str, Any] | None) -> str:
    if not p:
        return "–"
    return f"p50 {_n(p.get('p50'))} ms, p95 {_n(p.get('p95'))} ms, p99 {_n(p.get('p99'))} ms"


def render_markdown(results: Mapping[str, Any], json_rel: str) -> str:
    if "summary" not in results:
        return (
            "\n".join([*header_lines(results), "", f"Not measured: {results.get('error')}"]) + "\n"
        )
    s = results["summary"]
    off = results["offered_per_s"]
    lat = s["latency_ms"]
    lines = [
        *header_lines(results),
        f"Figures: `{json_rel}`; chart: [reliability-soak.svg](reliability-soak.svg).",
        "",
        f"{results['minutes']:g} minutes at {results['scale']:g}× the West Midlands preset "
        f"(offered: {off['reads']:,.0f} plate reads/s in camera batches, {off['pings']:,.0f} "
        f"officer pings/s, {off['calls']:g} calls/s), {results['clients']} websocket clients "
        f"({results.get('clients_connected')} connected: one in ten an analyst, the rest "
        "officers with a 5 km radius). The load reached "
        f"{_n(s['events_per_s_mean'])} events/s on average (the generator shares this "
        "process and the machine with the clients and other work).",
        "",
        f"Alert latency (a hotlisted read a second, read produced to alert frame, at every "
        f"client it reached; {lat['n']:,} deliveries): p50 {_n(lat['p50'])} ms, p95 "
        f"{_n(lat['p95'])} ms, p99 {_n(lat['p99'])} ms, max {_n(lat['max'])} ms. Measured reads "
        f"not shown to every analyst: {s['reads_short_of_an_analyst']} of "
        f"{s['measured_reads']}; shown twice: {s['twice']}; client connections ended: "
        f"{s['clients_dropped']}.",
        "",
        f"Per measured read, at the first client it reached (what the engine took): "
        f"{_pcts(s.get('first_client_ms'))}; at the last (with the fan-out to every "
        f"screen, and this process reading {results['clients']} sockets while it "
        f"produces the load): {_pcts(s.get('last_client_ms'))}.",
        "",
        "| process | RSS first MiB | last | peak | slope over the second half, MiB/min |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, g in s["rss_mib"].items():
        lines.append(
            f"| {name} | {_n(g['first'])} | {_n(g['last'])} | {_n(g['peak'])} "
            f"| {_n(g['slope_mib_per_min'])} |"
        )
    if results.get("restarts"):
        lines.append("")
        lines.append(f"Parts that died and were started again: {results['restarts']}.")
    lines += [
        "",
        "`suite` is the soak's own process (load generator and the clients). A shared "
        "2-core machine: absolute figures are noisy; the shape over time is the point.",
    ]
    return "\n".join(lines) + "\n"


PALETTE = ("#1b5e20", "#1565c0", "#6a1b9a", "#e65100", "#b71c1c", "#00838f", "#5d4037")


def _panel(
    title: str, series: Mapping[str, Sequence[tuple[float, float]]], y0: int, unit: str, width: int
) -> list[str]:
    left, h, right = 70, 170, width - 160
    pts = [p for s in series.values() for p in s]
    if not pts:
        return []
    tmax = max(t for t, _ in pts) or 1.0
    vmax = max(v for _, v in pts) or 1.0
    out = [
        f'<text x="{left}" y="{y0 - 8}" font-family="sans-serif" font-size="13">{escape(title)}</text>',
        f'<line x1="{left}" y1="{y0 + h}" x2="{right}" y2="{y0 + h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{y0}" x2="{left}" y2="{y0 + h}" stroke="#333"/>',
        f'<text x="{left - 6}" y="{y0 + 10}" font-family="sans-serif" font-size="10" '
        f'text-anchor="end">{vmax:,.0f} {unit}</text>',
        f'<text x="{left - 6}" y="{y0 + h}" font-family="sans-serif" font-size="10" '
        f'text-anchor="end">0</text>',
        f'<text x="{right}" y="{y0 + h + 14}" font-family="sans-serif" font-size="10" '
        f'text-anchor="end">{tmax / 60:.1f} min</text>',
    ]
    for i, (name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(
            f"{left + t / tmax * (right - left):.1f},{y0 + h - v / vmax * h:.1f}" for t, v in s
        )
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coords}"/>'
        )
        out.append(
            f'<text x="{right + 10}" y="{y0 + 12 + 14 * i}" font-family="sans-serif" '
            f'font-size="11" fill="{colour}">{escape(name)}</text>'
        )
    return out


def render_svg(results: Mapping[str, Any]) -> str:
    """Two panels over the soak's minutes: resident memory per process, and alert latency
    p50/p99 per window."""
    width = 720
    samples = results.get("samples", [])
    names = sorted({n for s in samples for n in s["rss_mib"]})
    rss = {n: [(s["t_s"], s["rss_mib"][n]) for s in samples if n in s["rss_mib"]] for n in names}
    wins = [w for w in results.get("windows", []) if w.get("p50") is not None]
    lat = {
        "p50": [(w["t_s"], w["p50"]) for w in wins],
        "p99": [(w["t_s"], w["p99"]) for w in wins],
    }
    title = (
        f"Soak: {results.get('minutes', '?')} min at {results.get('scale', '?')}x West Midlands, "
        f"{results.get('clients', '?')} clients ({results.get('commit', '?')}, "
        f"{str(results.get('started_at', ''))[:10]})"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="520" '
        f'viewBox="0 0 {width} 520" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="20" y="22" font-family="sans-serif" font-size="14">{escape(title)}</text>',
        *_panel("Resident memory (MiB)", rss, 60, "MiB", width),
        *_panel("Alert latency per window (ms)", lat, 310, "ms", width),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
