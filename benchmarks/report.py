"""The suite's pure parts: percentiles, the results file's shape, comparing two runs,
the section of docs/benchmarks.md and the chart. No I/O, no clock."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

SCHEMA = 1
PARTS = ("peers", "latency", "calls", "startup", "scaleout", "memory", "fanout")
# What names a run within a part's list of runs (for comparing two results files).
RUN_KEYS = ("system", "per_message", "feed", "rate", "kind", "workers", "partitions", "phase")
# Numbers that are not figures of the system measured (not compared).
NOT_FIGURES = ("load_before", "load_after", "load", "pid", "port")
TOP_KEYS = (
    "suite",
    "schema",
    "started_at",
    "commit",
    "command",
    "machine",
    "load",
    "quick",
    "parts",
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks
    (numpy's default); None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def percentiles(values: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max of latencies (ms), rounded."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
    }


def problems(results: Any) -> list[str]:
    """What is wrong with a results file's shape (empty: nothing)."""
    if not isinstance(results, Mapping):
        return ["not a JSON object"]
    out = [f"missing '{k}'" for k in TOP_KEYS if k not in results]
    if results.get("suite") != "rtic-bench":
        out.append("'suite' is not 'rtic-bench'")
    if results.get("schema") != SCHEMA:
        out.append(f"'schema' is not {SCHEMA}")
    parts = results.get("parts")
    if not isinstance(parts, Mapping):
        out.append("'parts' is not an object")
    else:
        out.extend(f"unknown part '{name}'" for name in parts if name not in PARTS)
        out.extend(
            f"part '{name}' is not an object"
            for name, part in parts.items()
            if not isinstance(part, Mapping)
        )
    return out


def _label(run: Mapping[str, Any], index: int) -> str:
    named = [f"{k}={run[k]}" for k in RUN_KEYS if k in run]
    return ",".join(named) if named else str(index)


def flatten(value: Any, path: str = "") -> dict[str, float]:
    """Every figure of a results file as ``part.run.figure`` -> number. Runs in a list
    are named by their identifying fields (``system=worker,per_message=1``)."""
    out: dict[str, float] = {}
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, int | float):
        if math.isfinite(value):
            out[path] = float(value)
        return out
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in NOT_FIGURES:
                continue
            out.update(flatten(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            name = _label(v, i) if isinstance(v, Mapping) else str(i)
            out.update(flatten(v, f"{path}[{name}]"))
    return out


def compare(
    a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(figure, in A, in B, B / A) for every figure of either run's parts, in A's order
    then B's new ones."""
    fa, fb = flatten(a.get("parts", {})), flatten(b.get("parts", {}))
    keys = list(fa) + [k for k in fb if k not in fa]
    rows = []
    for k in keys:
        x, y = fa.get(k), fb.get(k)
        ratio = round(y / x, 3) if x not in (None, 0) and y is not None else None
        rows.append((k, x, y, ratio))
    return rows


def render_compare(
    a: Mapping[str, Any], b: Mapping[str, Any], rows: Sequence[tuple[str, Any, Any, Any]]
) -> str:
    def head(r: Mapping[str, Any]) -> str:
        return f"{r.get('commit', '?')} at {r.get('started_at', '?')}, load {r.get('load', {}).get('before', '?')}"

    lines = [f"A: {head(a)}", f"B: {head(b)}", "", f"{'figure':<70} {'A':>12} {'B':>12} {'B/A':>7}"]
    for k, x, y, ratio in rows:
        lines.append(
            f"{k[:70]:<70} {_num(x):>12} {_num(y):>12} {('' if ratio is None else f'{ratio:.2f}'):>7}"
        )
    return "\n".join(lines)


def _num(x: Any, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        if digits == 0 and abs(x) >= 10:
            return f"{x:,.0f}"
        return f"{x:,.{max(digits, 1)}f}" if digits or x != int(x) else f"{int(x):,}"
    return str(x)


def _ratio(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}×"


# ---- docs/benchmarks.md ---------------------------------------------------------------


def render_markdown(results: Mapping[str, Any], json_path: str, chart_path: str | None) -> str:
    """The section of docs/benchmarks.md for one run of the suite."""
    parts = results.get("parts", {})
    load = results.get("load", {})
    out = [
        f"## {results['started_at'][:16].replace('T', ' ')} UTC: the suite, `{results['command']}`",
        "",
        f"Commit `{results['commit']}`{' (with uncommitted changes)' if results.get('dirty') else ''}. "
        f"Machine: {results['machine']}. Load (1/5/15 min) before: {load.get('before')}, "
        f"after: {load.get('after')}; `uptime` before: `{load.get('uptime', '?')}`. "
        f"{'A quick run (small loads, a smoke check: not figures to quote). ' if results.get('quick') else ''}"
        f"Broker: Tansu (in memory, one process); Redis: {results.get('redis', 'local server')}. "
        f"Results: `{json_path}` (compare two runs with `rtic bench --compare A.json B.json`).",
        "",
    ]
    if chart_path:
        out += [f"![Plate reads per second, worker and peers]({chart_path})", ""]
    renderers = {
        "peers": _md_peers,
        "latency": _md_latency,
        "calls": _md_calls,
        "startup": _md_startup,
        "scaleout": _md_scaleout,
        "memory": _md_memory,
        "fanout": _md_fanout,
    }
    for name in PARTS:
        if name not in parts:
            continue
        part = parts[name]
        if "error" in part:
            out += [f"### {name}", "", f"Not measured: {part['error']}", ""]
            continue
        out += renderers[name](part)
    return "\n".join(out).rstrip() + "\n"


def _feed(per_message: Any) -> str:
    return "one read per message" if per_message == 1 else f"camera batches of {per_message}"


def _md_peers(part: Mapping[str, Any]) -> list[str]:
    w = part.get("workload", {})
    out = [
        "### The worker against its peers (same workload, same broker, back to back)",
        "",
        f"{w.get('reads', 0):,} plate reads from {w.get('cameras')} cameras, a "
        f"{w.get('hotlist', 0):,}-plate hotlist loaded through `rtic.reference.v1`, "
        f"{w.get('hits', 0):,} hotlisted reads ({w.get('hits_misread', 0):,} of them misread). "
        "Each system drains the reads from a backlog on `rtic.anpr.v1`; reads/s from the "
        "first output message to the last, as a consumer of `rtic.enriched.v1` sees them.",
        "",
        "| feed | system | reads/s | worker ÷ system | hits alerted | misreads alerted | false alerts | reads out | RSS (MiB) | load before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    ratios = part.get("ratios", {})
    for r in part.get("runs", []):
        ratio = (
            "1"
            if r["system"] == "worker"
            else _ratio(ratios.get(str(r["per_message"]), {}).get(r["system"]))
        )
        out.append(
            f"| {_feed(r['per_message'])} | {r['system']} | {_num(r.get('reads_per_s'))} | {ratio} | "
            f"{r.get('hits_alerted')}/{r.get('hits')} | {r.get('misread_alerted')}/{r.get('hits_misread')} | "
            f"{r.get('false_alerts')} | {_num(r.get('reads_out'))} | {_num(r.get('rss_mib'))} | {r.get('load_before')} |"
        )
    out += [
        "",
        "The peers (`benchmarks/peers.py`) decode, validate with `PlateReadV1`, look up the "
        "areas in the geo index, look the plate up in an in-memory hotlist with misreads "
        "folded, and produce the enriched read and an alert per hit. The worker also keeps "
        "history in Redis (hotlist, trail, open incidents' vehicles: one script call per "
        "batch), checks geofences, runs the ten rules, snoozes and folds repeated hits "
        "(Redis), dead-letters bad input and runs its deadline agents.",
        "",
    ]
    return out


def _md_latency(part: Mapping[str, Any]) -> list[str]:
    out = [
        "### Alert latency: read produced to alert frame at a websocket client",
        "",
        "Worker, case worker and gateway as processes; reads produced at a steady rate, "
        f"{part.get('hit_share', 0.01):.0%} of them hotlisted; each hit's alert timed at an "
        "analyst's websocket. *Sustained*: the reads were produced at the rate offered, the "
        "worker had taken at least 95 % of the messages a second after production ended "
        "(its `rtic_worker_events_in_total`), and every alert arrived.",
        "",
        "| rate offered (reads/s) | feed | produced at (reads/s) | seconds | alerts | p50 (ms) | p95 | p99 | max | sustained | load before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in part.get("runs", []):
        lat = r.get("latency_ms", {})
        out.append(
            f"| {_num(r['rate'])} | {_feed(r['per_message'])} | {_num(r.get('produced_rate'))} | {r.get('seconds')} | "
            f"{r.get('alerts_received')}/{r.get('alerts_expected')} | {_num(lat.get('p50'), 1)} | "
            f"{_num(lat.get('p95'), 1)} | {_num(lat.get('p99'), 1)} | {_num(lat.get('max'), 1)} | "
            f"{_num(r.get('sustained'))} | {r.get('load_before')} |"
        )
    if part.get("highest_sustained"):
        singles = [r for r in part.get("runs", []) if r.get("per_message") == 1]
        lat = singles[-1].get("latency_ms", {}) if singles else {}
        out += [
            "",
            "One read per message, the highest rate the worker kept up with (throughput; "
            f"the latency shows its queue): {part['highest_sustained']}, alert latency there "
            f"p50 {_num(lat.get('p50'), 1)} ms, p99 {_num(lat.get('p99'), 1)} ms.",
        ]
    return [*out, ""]


def _md_calls(part: Mapping[str, Any]) -> list[str]:
    out = [
        "### Calls and incidents through the whole path",
        "",
        "Calls and incident lifecycle events from the demand simulator's model, through the "
        "worker (enrichment, history, rules), the case worker and the gateway. Paced: "
        "latency from produce to the `event` frame at an analyst's websocket "
        "(`events: true`). Burst: a backlog produced at once, drained by the worker "
        "(events/s from its own counters, `rtic_worker_events_in_total`, first taken to "
        "last).",
        "",
        "| phase | kind | events | rate (events/s) | frames | p50 (ms) | p95 | p99 | max | load before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in part.get("runs", []):
        lat = r.get("latency_ms") or {}
        out.append(
            f"| {r['phase']} | {r['kind']} | {_num(r.get('events'))} | {_num(r.get('rate'))} | "
            f"{_num(r.get('frames'))} | {_num(lat.get('p50'), 1)} | {_num(lat.get('p95'), 1)} | "
            f"{_num(lat.get('p99'), 1)} | {_num(lat.get('max'), 1)} | {r.get('load_before')} |"
        )
    return [*out, ""]


def _md_startup(part: Mapping[str, Any]) -> list[str]:
    return [
        "### Start-up: `rtic up` to the first alert",
        "",
        f"`{part.get('command')}` from nothing running (its own Tansu; the local Redis; a new "
        "SQLite file). A hotlist entry and a matching read are produced as soon as the "
        "broker answers, and a read again every half second until an alert arrives at a "
        "websocket client connected as soon as the gateway answers.",
        "",
        "| broker answers (s) | gateway answers (s) | 'ready' printed (s) | first alert at the client (s) | load before |",
        "|---:|---:|---:|---:|---|",
        f"| {_num(part.get('broker_s'), 1)} | {_num(part.get('gateway_s'), 1)} | {_num(part.get('ready_s'), 1)} | "
        f"{_num(part.get('first_alert_s'), 1)} | {part.get('load_before')} |",
        "",
    ]


def _md_scaleout(part: Mapping[str, Any]) -> list[str]:
    out = [
        "### Scale-out: workers on partitions",
        "",
        f"{_num(part.get('reads'))} reads in {_feed(part.get('per_message'))} over "
        f"{part.get('cameras', 200)} cameras (keyed by camera), produced once every worker "
        "of the group has its partitions. *Alerts once*: every hotlisted read has exactly one "
        "alert id after dedup; duplicates are redelivered alert messages (same id). "
        "*Messages per worker*: each worker's `rtic_worker_events_in_total` for "
        "`rtic.anpr.v1` (a worker left without a partition of it takes none). Every worker "
        "shares this machine's two cores with the broker, Redis and the producer: more "
        "workers add no CPU here, so these figures show the load shared correctly, not a "
        "speed-up.",
        "",
        "| workers | partitions | phase | reads/s | reads out | hits alerted once | duplicate alert messages | messages per worker | load before |",
        "|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for r in part.get("runs", []):
        if "error" in r:
            out.append(
                f"| {r['workers']} | {r['partitions']} | {r['phase']} | not measured: {r['error']} "
                "| | | | | |"
            )
            continue
        out.append(
            f"| {r['workers']} | {r['partitions']} | {r['phase']} | {_num(r.get('reads_per_s'))} | "
            f"{_num(r.get('reads_out'))}/{_num(r.get('reads'))} | {r.get('hits_alerted_once')}/{r.get('hits')} | "
            f"{r.get('duplicate_alerts')} | {r.get('per_worker')} | {r.get('load_before')} |"
        )
    for r in part.get("runs", []):
        if r.get("phase") == "churn" and "error" not in r:
            out += ["", _churn_note(r)]
    return [*out, ""]


def _churn_note(r: Mapping[str, Any]) -> str:
    if r.get("all_out_within_s") is not None:
        out = f"all out {r['all_out_within_s']} s after production began"
    else:
        out = f"**{r['reads'] - r['reads_out']:,} reads not out** {r.get('drained_s')} s after it began"
    inp = r.get("input")
    checked = (
        f" ({r['produce_failures']} sends failed; on the input topic {inp['missing_on_input']} "
        f"reads missing, {inp['twice_on_input']} twice)"
        if inp is not None and "produce_failures" in r
        else ""
    )
    crashed = "; ".join(r.get("crashed") or [])
    return (
        f"Churn: {r['reads']:,} reads at {r.get('rate_offered', 0):,.0f} reads/s on "
        f"{r['partitions']} partitions; {'; '.join(r.get('events', []))}; produced in "
        f"{r.get('produced_s')} s{checked}; {out}; {r['reads_out']:,}/{r['reads']:,} reads out "
        f"({r.get('reads_redelivered', 0):,} redelivered), {r['hits_alerted_once']}/{r['hits']} "
        f"hits with exactly one alert id, {r['duplicate_alerts']} duplicate alert messages."
        + (f" {crashed}." if crashed else "")
    )


def _md_memory(part: Mapping[str, Any]) -> list[str]:
    return [
        "### Memory: the worker with 28 days of a busy force's history",
        "",
        f"{_num(part.get('calls'))} calls ({_num(part.get('calls_per_day'))} a day for "
        f"{part.get('days')} days) and {_num(part.get('incidents'))} incidents put in the "
        "shared logs through the history store (as the worker writes them); then `rtic "
        "worker` is started and given one call, which makes it read both logs into its "
        "indexes. Resident memory (VmRSS) from /proc.",
        "",
        "| worker started, before history (MiB) | with the history indexed (MiB) | difference (MiB) | bytes per record | first call batch took (s) | load before |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {_num(part.get('rss_start_mib'), 1)} | {_num(part.get('rss_indexed_mib'), 1)} | "
        f"{_num(part.get('rss_delta_mib'), 1)} | {_num(part.get('bytes_per_record'))} | "
        f"{_num(part.get('index_load_s'), 1)} | {part.get('load_before')} |",
        "",
    ]


def _md_fanout(part: Mapping[str, Any]) -> list[str]:
    out = [
        "### Fan-out: websocket clients on one gateway, 1 % stalled",
        "",
        f"`{part.get('command')}`: `rtic gateway` as a process on a Tansu of its own; "
        f"{_num(part.get('connected'))}/{_num(part.get('clients'))} clients connected from "
        f"{part.get('client_processes')} client processes on this machine "
        f"({_num(part.get('officers'))} officers with a position and a radius of 1 to 5 km, the "
        "others analysts filtering by area and severity); alerts produced to "
        "`rtic.alerts.v1` at a steady rate, latency from produce to arrival at each client. "
        f"Phase *reading*: every client reads; phase *stalled*: {_num(part.get('stalled'))} of "
        "the analysts, subscribed to everything, stop reading their sockets. Latencies are "
        "those of the clients that keep reading.",
        "",
        "| phase | alerts/s | frames/s | gateway CPU | deliveries | p50 (ms) | p95 | p99 | max | clients' own p99, median | worst |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ph in part.get("phases", []):
        lat = ph.get("latency_ms") or {}
        cpu = ph.get("gateway_cpu")
        out.append(
            f"| {ph['phase']} | {_num(ph.get('alerts_per_s'), 1)} | {_num(ph.get('frames_per_s'))} | "
            f"{'–' if cpu is None else f'{cpu:.0%}'} | {_num(ph.get('deliveries'))} | "
            f"{_num(lat.get('p50'), 1)} | {_num(lat.get('p95'), 1)} | {_num(lat.get('p99'), 1)} | "
            f"{_num(lat.get('max'), 1)} | {_num(ph.get('client_p99_median_ms'), 1)} | "
            f"{_num(ph.get('client_p99_worst_ms'), 1)} |"
        )
    out += [
        "",
        f"Memory: gateway resident {_num(part.get('rss_before_mib'))} MiB before the clients, "
        f"{_num(part.get('rss_connected_mib'))} MiB with them connected and subscribed: "
        f"{_num(part.get('kib_per_client'))} KiB a client. Exact delivery, "
        f"{_num(part.get('checked'))} reading clients checked against `push.access`: "
        f"{part.get('missing')} missing, {part.get('twice')} twice, {part.get('not_theirs')} "
        f"not theirs. Stalled: {part.get('stalled_stopped')} stopped reading; gateway 1013 "
        f"closes {part.get('overflow_closes')}; their closes on reading again "
        f"{part.get('stalled_close_codes')}. Load before the phases {part.get('load_before')}, "
        f"after {part.get('load_after')}.",
        "",
    ]
    return out


def insert_section(doc: str, section: str) -> str:
    """The document with ``section`` first after its introduction (before the first
    ``##`` heading)."""
    lines = doc.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("## ") or line.startswith("### "):
            return "".join(lines[:i]) + section + "\n" + "".join(lines[i:])
    return doc.rstrip("\n") + "\n\n" + section


# ---- the chart ------------------------------------------------------------------------

COLOURS = {"worker": "#1b5e20", "quix": "#1565c0", "aiokafka": "#6a1b9a"}


def render_svg(results: Mapping[str, Any]) -> str | None:
    """A small bar chart of the peers part: reads/s per system, per feed (None when the
    run has no peers figures)."""
    runs = [
        r for r in results.get("parts", {}).get("peers", {}).get("runs", []) if r.get("reads_per_s")
    ]
    if not runs:
        return None
    feeds = sorted({r["per_message"] for r in runs})
    systems = [s for s in ("worker", "quix", "aiokafka") if any(r["system"] == s for r in runs)]
    top = max(r["reads_per_s"] for r in runs)
    width, bar, gap, left, base, height = 560, 36, 70, 60, 230, 180
    group = len(systems) * bar + gap
    total_w = max(width, left + len(feeds) * group + 20)
    title = f"Plate reads per second ({results.get('commit', '?')}, {results.get('started_at', '')[:10]})"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="300" '
        f'viewBox="0 0 {total_w} 300" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{left}" y="20" font-family="sans-serif" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{base}" x2="{total_w - 10}" y2="{base}" stroke="#333"/>',
    ]
    for fi, feed in enumerate(feeds):
        x0 = left + fi * group
        for si, system in enumerate(systems):
            run = next(
                (r for r in runs if r["per_message"] == feed and r["system"] == system), None
            )
            if run is None:
                continue
            h = run["reads_per_s"] / top * height
            x = x0 + si * bar
            parts.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="{bar - 4}" height="{h:.1f}" '
                f'fill="{COLOURS[system]}"><title>{system}: {run["reads_per_s"]:,.0f} reads/s</title></rect>'
            )
            parts.append(
                f'<text x="{x + (bar - 4) / 2}" y="{base - h - 4:.1f}" font-family="sans-serif" '
                f'font-size="10" text-anchor="middle">{run["reads_per_s"] / 1000:.1f}k</text>'
            )
        label = "1 read/message" if feed == 1 else f"batches of {feed}"
        parts.append(
            f'<text x="{x0 + len(systems) * bar / 2}" y="{base + 18}" font-family="sans-serif" '
            f'font-size="12" text-anchor="middle">{label}</text>'
        )
    for si, system in enumerate(systems):
        y = 262 + 0 * si
        x = left + si * 150
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{COLOURS[system]}"/>')
        name = {"worker": "rtic worker", "quix": "Quix Streams", "aiokafka": "plain aiokafka"}[
            system
        ]
        parts.append(
            f'<text x="{x + 18}" y="{y + 11}" font-family="sans-serif" font-size="12">{name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
