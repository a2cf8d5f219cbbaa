"""Fan-out: thousands of websocket clients on one gateway, some of them stalled.

Runs ``rtic gateway`` as its own process on its own Tansu, a temporary SQLite
database and the Redis at RTIC_REDIS_URL (or an embedded one), connects
``--clients`` websocket clients to it from ``--procs`` client processes (each
process holds many connections on one event loop, with the ``websockets``
asyncio client), then produces alerts straight to ``rtic.alerts.v1`` at a
steady rate, in two phases of ``--seconds`` each:

1. **all reading**: every client reads its socket;
2. **1 % stalled**: ``--stalled`` of the clients stop reading their socket (they
   stop calling ``recv``: the client library stops reading the socket once its
   own small buffer is full, as a frozen phone would). The others go on.

The clients are officers (``--officers`` of them) subscribed with their position
and a radius of 1 to 5 km, spread over the force area, and analysts subscribed
to one district or a few wards, and to two or three severities. The stalled
ones are analysts subscribed to everything: they are sent every alert, so their
queue fills first. Each alert is a contract-shaped ``rtic.alerts.v1`` message
at a random place in the force area (its area codes from the real boundaries);
its ``created_at`` is set when it is produced, and each client takes its
arrival time minus ``created_at`` as the delivery latency (one clock: one
machine).

What it reports:

- delivery latency percentiles (p50, p95, p99, max) over every delivery, for the
  clients that keep reading, in each phase, and the spread of each client's own
  p99; whether each such client got exactly the alerts ``push.access`` admits
  for it (none missing, none twice);
- memory per client: the gateway's resident memory before the clients connect
  and once they are connected and subscribed, the difference divided by their
  number;
- what happened to the stalled: the gateway's 1013 closes
  (``rtic_gateway_overflow_closes_total``) and when they came, and what each
  stalled client read once it read again (alerts, then the close code);
- the CPU used by the gateway and by the client processes in each phase (the
  clients must not be the bottleneck), and the machine's load (``uptime``).

``--profile FILE`` samples the gateway with py-spy during phase 2 (collapsed
stacks, one line a stack) and prints the functions that cost most.

Usage::

    python benchmarks/fanout.py [--clients 5000] [--rate 20] [--seconds 60] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_throughput import machine

SEVERITIES = ("critical", "high", "medium")
RADII_M = (1000.0, 2000.0, 3000.0, 4000.0, 5000.0)
CONNECTS_AT_ONCE = 32  # handshakes in flight per client process
PHASES = ("reading", "stalled")


@dataclass(frozen=True)
class ClientSpec:
    """One client: who it is, what it subscribes to, whether it stalls in phase 2."""

    index: int
    role: str
    sub: str
    subscribe: dict[str, Any]
    stalls: bool = False


@dataclass
class ClientResult:
    """What one client saw."""

    index: int
    connected: bool = False
    error: str | None = None
    # phase -> [(alert_id, latency in ms)]
    received: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    stopped_at: float | None = None  # a stalled client: when it stopped reading
    close_code: int | None = None
    close_reason: str | None = None
    alerts_after_resume: int = 0


# ---- the workload ------------------------------------------------------------------------


def force_points(
    data_dir: Path, n: int, rng: random.Random
) -> list[tuple[float, float, list[str]]]:
    """``n`` random points inside the force area, each with its area codes (broadest first:
    district, then ward)."""
    from enrichers.geo import GeoIndex

    geo = GeoIndex.load(data_dir)
    points: list[tuple[float, float, list[str]]] = []
    while len(points) < n:
        lats = [rng.uniform(52.35, 52.70) for _ in range(4096)]
        lons = [rng.uniform(-2.25, -1.40) for _ in range(4096)]
        for lat, lon, areas in zip(lats, lons, geo.areas(lats, lons), strict=True):
            codes = geo.area_codes(areas)
            if codes:
                points.append((lat, lon, codes))
    return points[:n]


def client_specs(
    n: int,
    officers: float,
    stalled: int,
    points: list[tuple[float, float, list[str]]],
    rng: random.Random,
) -> list[ClientSpec]:
    """Officers with a position and a radius; analysts with area and severity filters; the
    last ``stalled`` analysts subscribed to everything (and stalling)."""
    districts = sorted({codes[0] for _, _, codes in points})
    wards = sorted({c for _, _, codes in points for c in codes[1:]})
    n_officers = round(n * officers)
    specs: list[ClientSpec] = []
    for i in range(n):
        if i < n_officers:
            lat, lon, _ = points[i % len(points)]
            sub = {"position": {"lat": lat, "lon": lon}, "radius_m": rng.choice(RADII_M)}
            specs.append(ClientSpec(i, "officer", f"PC-{i:05d}", sub))
        elif i >= n - stalled:
            specs.append(ClientSpec(i, "rtic_analyst", f"analyst-{i:05d}", {}, stalls=True))
        else:
            areas = [rng.choice(districts)] if rng.random() < 0.6 else rng.sample(wards, 4)
            sev = rng.sample(SEVERITIES, rng.choice((2, 3)))
            sub = {"areas": areas, "severities": sev}
            specs.append(ClientSpec(i, "rtic_analyst", f"analyst-{i:05d}", sub))
    return specs


def make_alert(
    i: int, phase: str, point: tuple[float, float, list[str]], rng: random.Random
) -> dict[str, Any]:
    """A contract-shaped alert like the hotlist rule's (``created_at`` set when produced)."""
    lat, lon, codes = point
    listed = f"BN{rng.randint(10, 99)} {rng.choice('ABCDEFGH')}{rng.choice('JKLMNP')}{rng.choice('RSTUVW')}"
    camera = f"CAM-{rng.randint(1, 400):04d}"
    return {
        "alert_id": f"FAN-{phase}-{i:06d}",
        "rule_id": "anpr_verified_hit",
        "severity": rng.choices(SEVERITIES, (1, 3, 4))[0],
        "title": f"Hotlisted vehicle {listed} (stolen) read by {camera}",
        "summary": f"{listed} (stolen) read by camera {camera}, heading north. Verified by an analyst.",
        "created_at": "",
        "source_event_ids": [f"READ-{phase}-{i:06d}"],
        "location": {"lat": lat, "lon": lon},
        "area": codes,
        "audience": {
            "roles": ["officer", "rtic_analyst", "supervisor"],
            "areas": codes,
            "officers": [],
        },
        "details": {
            "vrm": listed,
            "vrm_read": listed,
            "reason": "stolen",
            "camera_id": camera,
            "confidence": round(rng.uniform(0.8, 0.99), 2),
            "hotlist_entry": {
                "id": f"HL-{rng.randint(1, 2000):05d}",
                "vrm": listed,
                "reason": "stolen",
            },
            "why": f"Plate {listed} matches hotlist entry {listed} (stolen); verified by an analyst.",
            "rule": {"id": "anpr_verified_hit", "params": {"group_window_s": 0}},
        },
        "version": 1,
    }


# ---- the client processes ----------------------------------------------------------------


def raise_open_files(wanted: int) -> tuple[int, int]:
    """Raise this process's open file limit towards ``wanted`` (up to the hard limit, or
    above it where allowed); the limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, soft), max(wanted, hard)))
        except (ValueError, OSError):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def client_process(
    specs: list[ClientSpec],
    url: str,
    secret: str,
    control: dict[str, Any],
    ready: Any,
    results: Any,
) -> None:
    """One client process: its clients on one event loop, until told to stop."""
    raise_open_files(len(specs) + 256)
    out = asyncio.run(_clients(specs, url, secret, control, ready))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((out, usage.ru_utime + usage.ru_stime))


async def _clients(
    specs: list[ClientSpec], url: str, secret: str, control: dict[str, Any], ready: Any
) -> list[ClientResult]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from rtic.tokens import issue_token

    stall, resume = asyncio.Event(), asyncio.Event()
    stop = asyncio.Event()
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    connected = 0
    all_in = asyncio.Event()
    results = [ClientResult(s.index) for s in specs]

    async def one(spec: ClientSpec, res: ClientResult) -> None:
        nonlocal connected
        token = issue_token(
            secret, sub=spec.sub, role=spec.role, now=datetime.now(UTC), ttl_seconds=3 * 3600
        )
        try:
            async with gate:
                ws = await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {token}"},
                    ping_interval=None,  # the gateway pings; the client answers while it reads
                    open_timeout=120,
                    compression=None,
                    max_queue=16,
                )
                hello = orjson.loads(await ws.recv())
                assert hello["type"] == "hello", hello
                await ws.send(orjson.dumps({"type": "subscribe", **spec.subscribe}).decode())
                reply = orjson.loads(await ws.recv())
                assert reply["type"] == "subscribed", reply
        except Exception as exc:  # counted and reported: a benchmark, not a test
            res.error = repr(exc)
            connected += 1
            if connected == len(specs):
                all_in.set()
            return
        res.connected = True
        connected += 1
        if connected == len(specs):
            all_in.set()
        received = res.received
        try:
            while True:
                if spec.stalls and stall.is_set() and res.stopped_at is None:
                    res.stopped_at = time.time()  # stops reading: frames pile up at the gateway
                    await resume.wait()
                raw = await ws.recv()
                now = time.time()
                if raw.startswith('{"type":"alert"'):
                    msg = orjson.loads(raw)
                    made = datetime.fromisoformat(msg["created_at"]).timestamp()
                    if res.stopped_at is not None:
                        res.alerts_after_resume += 1
                    alert_id = msg["alert_id"]  # FAN-<phase>-<n>
                    received.setdefault(alert_id.split("-")[1], []).append(
                        (alert_id, (now - made) * 1e3)
                    )
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                res.close_code, res.close_reason = exc.rcvd.code, exc.rcvd.reason
            elif exc.sent is not None:
                res.close_code, res.close_reason = exc.sent.code, f"(sent) {exc.sent.reason}"
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
            raise

    tasks = [asyncio.create_task(one(s, r)) for s, r in zip(specs, results, strict=True)]
    await all_in.wait()
    ready.put(sum(r.connected for r in results))

    async def follow() -> None:  # the parent's orders, by multiprocessing events
        while not stop.is_set():
            if control["stall"].is_set():
                stall.set()
            if control["resume"].is_set():
                resume.set()
            if control["stop"].is_set():
                stop.set()
            await asyncio.sleep(0.05)

    await follow()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return results


# ---- the gateway -------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(base_url: str, name: str) -> float:
    text = urllib.request.urlopen(f"{base_url}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            if urllib.request.urlopen(f"{base_url}/healthz", timeout=2).status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"gateway not healthy within {timeout} s:\n{log.read_text()[-3000:]}")


async def produce(kafka_url: str, topic: str, alerts: list[dict[str, Any]], rate: float) -> float:
    """Produce ``alerts`` at ``rate`` a second, each stamped when sent; the rate achieved."""
    from rtic.kafka import make_producer

    producer = make_producer(kafka_url)
    await producer.start()
    try:
        t0 = time.perf_counter()
        for i, alert in enumerate(alerts):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            alert["created_at"] = datetime.now(UTC).isoformat()
            await producer.send(topic, orjson.dumps(alert), key=alert["alert_id"].encode())
        await producer.flush()
        return len(alerts) / (time.perf_counter() - t0)
    finally:
        await producer.stop()


# ---- the run -----------------------------------------------------------------------------


@dataclass
class PhaseStats:
    gateway_cpu: float = 0.0  # share of one core
    seconds: float = 0.0
    rate: float = 0.0
    deliveries: int = 0


def percentiles(values: np.ndarray) -> tuple[float, float, float, float]:
    if not len(values):
        return (float("nan"),) * 4  # type: ignore[return-value]
    p50, p95, p99, top = np.percentile(values, [50, 95, 99, 100])
    return float(p50), float(p95), float(p99), float(top)


def _ms(x: float) -> float | None:
    return None if x != x else round(float(x), 1)  # NaN (no deliveries): None


def expected_for(specs: list[ClientSpec], alerts: list[dict[str, Any]]) -> dict[int, set[str]]:
    """Which alerts ``push.access`` admits for each client (the gateway's own rule)."""
    from push.access import admits_alert, parse_subscription
    from rtic.schemas import Role
    from rtic.tokens import Principal

    out: dict[int, set[str]] = {}
    for spec in specs:
        who = Principal(sub=spec.sub, role=Role(spec.role))
        sub = parse_subscription(spec.subscribe)
        out[spec.index] = {a["alert_id"] for a in alerts if admits_alert(who, sub, a)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--officers", type=float, default=0.8, help="share of officers")
    parser.add_argument("--stalled-share", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--queue", type=int, default=None, help="RTIC_GATEWAY_CLIENT_QUEUE")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the gateway (phase 2)")
    parser.add_argument("--check", type=int, default=300, help="clients checked for exact delivery")
    parser.add_argument("--dump", type=Path, default=None, help="every delivery (.npz)")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--label", default="", help="a note for the record (what changed)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures (the suite's)")
    args = parser.parse_args()

    from cli.services import free_port, redis_answers, start_embedded_redis, start_tansu
    from records.migrate import upgrade
    from rtic.kafka import ensure_topics
    from rtic.settings import Settings
    from rtic.topics import Topics

    # Each connection is a file on both sides: the gateway inherits this limit.
    want = args.clients + 1024
    soft, hard = raise_open_files(want)
    if soft < want:
        sys.exit(f"open files limited to {soft} (hard {hard}): {want} needed; raise `ulimit -n`")

    rng = random.Random(15)
    stalled = round(args.clients * args.stalled_share)
    n_alerts = int(args.rate * args.seconds)
    settings = Settings()
    print("placing clients and alerts in the force area ...", flush=True)
    points = force_points(settings.data_dir, args.clients + 2 * n_alerts, rng)
    specs = client_specs(args.clients, args.officers, stalled, points[: args.clients], rng)
    alerts = {
        ph: [
            make_alert(i, ph, points[args.clients + k * n_alerts + i], rng) for i in range(n_alerts)
        ]
        for k, ph in enumerate(PHASES)
    }

    redis_url = settings.redis_url
    embedded = None if redis_answers(redis_url) else start_embedded_redis()
    tansu = start_tansu(port=free_port())
    work = Path(tempfile.mkdtemp(prefix="rtic-fanout-"))
    prefix = f"fan{int(time.time())}."
    port = free_port()
    secret = "fanout-benchmark-secret-0123456789abcdef"
    db_url = f"sqlite+aiosqlite:///{work / 'rtic.sqlite3'}"
    topics = Topics.with_prefix(prefix)
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": tansu.url,
        "RTIC_REDIS_URL": embedded.url if embedded else redis_url,
        "RTIC_TOPIC_PREFIX": prefix,
        "RTIC_GATEWAY_PORT": str(port),
        "RTIC_TOKEN_SECRET": secret,
        # Every client connects from this machine: no per-address cap (push/wslimits.py).
        "RTIC_WS_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "RTIC_DATABASE_URL": db_url,
        **({"RTIC_GATEWAY_CLIENT_QUEUE": str(args.queue)} if args.queue else {}),
    }
    base_url = f"http://127.0.0.1:{port}"
    log_path = work / "gateway.log"
    print(f"gateway log: {log_path}", flush=True)
    gateway: subprocess.Popen[bytes] | None = None
    procs: list[Any] = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(ensure_topics(tansu.url, topics.all()))
        upgrade(db_url)
        with log_path.open("wb") as log:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "gateway"], env=env, stdout=log, stderr=log
            )
        wait_healthy(base_url, gateway, 120, log_path)
        time.sleep(2.0)  # the gateway's start-up reads (boards, desk stats) settle
        rss_before = rss_mib(gateway.pid)

        # Clients: an equal share of each kind in each process (stalled ones spread too).
        ctx = mp.get_context("spawn")
        control = {k: ctx.Event() for k in ("stall", "resume", "stop")}
        ready, results = ctx.Queue(), ctx.Queue()
        shares = [specs[i :: args.procs] for i in range(args.procs)]
        print(f"connecting {args.clients} clients from {args.procs} processes ...", flush=True)
        t_connect = time.perf_counter()
        cpu0 = cpu_seconds(gateway.pid)
        for share in shares:
            p = ctx.Process(
                target=client_process,
                args=(
                    share,
                    base_url.replace("http", "ws") + "/ws",
                    secret,
                    control,
                    ready,
                    results,
                ),
            )
            p.start()
            procs.append(p)
        connected = sum(ready.get(timeout=600) for _ in procs)
        connect_s = time.perf_counter() - t_connect
        connect_cpu = cpu_seconds(gateway.pid) - cpu0
        time.sleep(3.0)
        rss_after = rss_mib(gateway.pid)
        print(
            f"{connected}/{args.clients} connected in {connect_s:.1f} s; gateway RSS "
            f"{rss_before:.0f} -> {rss_after:.0f} MiB",
            flush=True,
        )

        load_before = os.getloadavg()
        phases: dict[str, PhaseStats] = {}
        overflow_times: list[tuple[float, float]] = []
        for ph in PHASES:
            stats = phases[ph] = PhaseStats()
            if ph == "stalled":
                control["stall"].set()
                time.sleep(0.2)
                if args.profile:
                    profiler = subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "-p",
                            str(gateway.pid),
                            "-d",
                            str(int(args.seconds)),
                            "-r",
                            "50",
                            "-f",
                            "raw",
                            "-o",
                            str(args.profile),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            print(f"phase {ph}: {n_alerts} alerts at {args.rate:g}/s ...", flush=True)
            cpu0, t0 = cpu_seconds(gateway.pid), time.perf_counter()
            stall_t0 = time.time()
            sent0 = metric(base_url, "rtic_gateway_frames_sent_total")

            async def watch(t_start: float) -> None:
                while True:
                    await asyncio.sleep(1.0)
                    closes = await asyncio.to_thread(
                        metric, base_url, "rtic_gateway_overflow_closes_total"
                    )
                    if not overflow_times or overflow_times[-1][1] != closes:
                        overflow_times.append((time.time() - t_start, closes))

            async def run_phase(
                batch: list[dict[str, Any]], t_start: float, watching: bool
            ) -> float:
                watcher = asyncio.create_task(watch(t_start)) if watching else None
                try:
                    return await produce(tansu.url, topics.alerts, batch, args.rate)
                finally:
                    await asyncio.sleep(3.0)  # the last alerts arrive
                    if watcher:
                        watcher.cancel()

            stats.rate = asyncio.run(run_phase(alerts[ph], stall_t0, ph == "stalled"))
            stats.seconds = time.perf_counter() - t0
            stats.gateway_cpu = (cpu_seconds(gateway.pid) - cpu0) / stats.seconds
            stats.deliveries = int(metric(base_url, "rtic_gateway_frames_sent_total") - sent0)
        if profiler is not None:
            profiler.wait(timeout=60)
        rss_end = rss_mib(gateway.pid)
        load_after = os.getloadavg()
        overflow_closes = metric(base_url, "rtic_gateway_overflow_closes_total")

        control["resume"].set()  # the stalled read again: what do they find?
        time.sleep(10.0)
        control["stop"].set()
        out: list[ClientResult] = []
        client_cpu = 0.0
        for _ in procs:
            part, cpu = results.get(timeout=300)
            out.extend(part)
            client_cpu += cpu
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        if gateway is not None:
            gateway.terminate()
            try:
                gateway.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gateway.kill()
        tansu.stop()
        if embedded:
            embedded.stop()

    # ---- figures ------------------------------------------------------------------------
    by_index = {s.index: s for s in specs}
    readers = [r for r in out if r.connected and not by_index[r.index].stalls]
    stalled_res = [r for r in out if by_index[r.index].stalls]
    lat = {ph: np.array([ms for r in readers for _, ms in r.received.get(ph, [])]) for ph in PHASES}
    client_p99 = {
        ph: np.array(
            [
                np.percentile([ms for _, ms in r.received[ph]], 99)
                for r in readers
                if r.received.get(ph)
            ]
        )
        for ph in PHASES
    }
    # Exact delivery, checked for a sample of the readers against push.access's rule.
    sample = random.Random(1).sample(readers, min(args.check, len(readers)))
    expected = expected_for(
        [by_index[r.index] for r in sample], alerts["reading"] + alerts["stalled"]
    )
    missing = duplicated = extra = 0
    for r in sample:
        got = Counter(a for ph in PHASES for a, _ in r.received.get(ph, []))
        want = expected[r.index]
        missing += len(want - set(got))
        extra += len(set(got) - want)
        duplicated += sum(c - 1 for c in got.values() if c > 1)
    errors = Counter((r.error or "")[:80] for r in out if not r.connected)
    close_codes = Counter((r.close_code, r.close_reason) for r in stalled_res)
    stalled_stopped = [r.stopped_at for r in stalled_res if r.stopped_at]
    first_close = next((t for t, c in overflow_times if c > 0), None)
    all_closed = next((t for t, c in overflow_times if c >= stalled), None)
    per_client_kib = (rss_after - rss_before) * 1024 / max(connected, 1)
    run_s = sum(p.seconds for p in phases.values())

    lines = [
        f"clients: {connected}/{args.clients} connected ({round(args.clients * args.officers)} officers, "
        f"{args.clients - round(args.clients * args.officers)} analysts of which {stalled} stall) "
        f"in {connect_s:.1f} s (gateway CPU {connect_cpu:.1f} s); failures: {dict(errors) or 'none'}",
        f"memory: gateway RSS {rss_before:.0f} MiB before, {rss_after:.0f} MiB connected "
        f"({per_client_kib:.0f} KiB per client), {rss_end:.0f} MiB after both phases",
    ]
    for ph in PHASES:
        p50, p95, p99, top = percentiles(lat[ph])
        cp = client_p99[ph]
        lines.append(
            f"phase {ph}: {phases[ph].rate:.1f} alerts/s, {phases[ph].deliveries} frames sent "
            f"({phases[ph].deliveries / phases[ph].seconds:.0f}/s), gateway CPU "
            f"{phases[ph].gateway_cpu:.0%} of a core; readers' deliveries {len(lat[ph])}: "
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {top:.0f} ms; "
            f"clients' own p99: median {np.median(cp):.0f} ms, worst {cp.max():.0f} ms"
            if len(cp)
            else f"phase {ph}: nothing received"
        )
    lines += [
        f"exact delivery ({len(sample)} readers checked against push.access): "
        f"{missing} missing, {duplicated} twice, {extra} not theirs",
        f"stalled: {len(stalled_stopped)} stopped reading; gateway 1013 closes {overflow_closes:.0f} "
        f"(first after {first_close if first_close is None else round(first_close)} s, all after "
        f"{all_closed if all_closed is None else round(all_closed)} s); on reading again they found "
        f"{sum(r.alerts_after_resume for r in stalled_res)} alerts then closes {dict(close_codes)}",
        f"client processes: {client_cpu:.0f} CPU s in all over about {connect_s + run_s + 15:.0f} s "
        f"({args.procs} processes); load average {load_before[0]:.1f} before the phases, "
        f"{load_after[0]:.1f} after",
    ]
    print("\n".join(lines))
    if args.json:
        summary = {
            "clients": args.clients,
            "connected": connected,
            "officers": round(args.clients * args.officers),
            "stalled": stalled,
            "client_processes": args.procs,
            "connect_s": round(connect_s, 1),
            "connect_failures": dict(errors),
            "rss_before_mib": round(rss_before, 1),
            "rss_connected_mib": round(rss_after, 1),
            "rss_end_mib": round(rss_end, 1),
            "kib_per_client": round(per_client_kib, 1),
            "phases": [
                {
                    "phase": ph,
                    "alerts_per_s": round(phases[ph].rate, 1),
                    "frames_per_s": round(phases[ph].deliveries / phases[ph].seconds),
                    "gateway_cpu": round(phases[ph].gateway_cpu, 3),
                    "deliveries": len(lat[ph]),
                    "latency_ms": dict(
                        zip(
                            ("p50", "p95", "p99", "max"),
                            map(_ms, percentiles(lat[ph])),
                            strict=True,
                        )
                    ),
                    "client_p99_median_ms": _ms(float(np.median(client_p99[ph])))
                    if len(client_p99[ph])
                    else None,
                    "client_p99_worst_ms": _ms(float(client_p99[ph].max()))
                    if len(client_p99[ph])
                    else None,
                }
                for ph in PHASES
            ],
            "checked": len(sample),
            "missing": missing,
            "twice": duplicated,
            "not_theirs": extra,
            "stalled_stopped": len(stalled_stopped),
            "overflow_closes": int(overflow_closes),
            "stalled_close_codes": {str(k): v for k, v in close_codes.items()},
            "client_cpu_s": round(client_cpu, 1),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
            "summary": lines,
        }
        args.json.write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    if args.dump:
        rows = [
            (PHASES.index(a.split("-")[1]), int(a.split("-")[2]), r.index, ms)
            for r in out
            for ph in PHASES
            for a, ms in r.received.get(ph, [])
        ]
        np.savez_compressed(args.dump, deliveries=np.array(rows, dtype=np.float64))
    if args.record:
        record(
            args, lines, phases, lat, client_p99, per_client_kib, rss_before, rss_after, load_before
        )


def record(
    args: argparse.Namespace,
    lines: list[str],
    phases: dict[str, PhaseStats],
    lat: dict[str, np.ndarray],
    client_p99: dict[str, np.ndarray],
    per_client_kib: float,
    rss_before: float,
    rss_after: float,
    load: tuple[float, float, float],
) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    argv = sys.argv[1:]
    if "--label" in argv:  # the label is the note after the command, not part of it
        i = argv.index("--label")
        argv = argv[:i] + argv[i + 2 :]
    cmd = " ".join(["python benchmarks/fanout.py", *argv]).replace(" --record", "")
    rows = []
    for ph in PHASES:
        p50, p95, p99, top = percentiles(lat[ph])
        cp = client_p99[ph]
        rows.append(
            f"| {ph} | {phases[ph].rate:.1f} | {phases[ph].deliveries / phases[ph].seconds:.0f} | "
            f"{phases[ph].gateway_cpu:.0%} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {top:.0f} | "
            f"{np.median(cp) if len(cp) else float('nan'):.0f} | {cp.max() if len(cp) else float('nan'):.0f} |"
        )
    with (ROOT / "docs" / "benchmarks.md").open("a") as fh:
        fh.write(
            f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{cmd}`{' (' + args.label + ')' if args.label else ''}\n\n"
            f"Machine: {machine()}; commit {commit}; `uptime` before the phases: {uptime} "
            f"(load {load[0]:.1f}). Broker: Tansu (in memory); `rtic gateway` as a process; "
            f"clients in {args.procs} processes on the same machine.\n\n"
            "| phase | alerts/s | frames/s | gateway CPU | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
            "| clients' p99, median (ms) | clients' p99, worst (ms) |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
            f"Memory per client: {per_client_kib:.0f} KiB (gateway RSS {rss_before:.0f} MiB -> "
            f"{rss_after:.0f} MiB). Latencies are those of the clients that keep reading.\n\n"
            + "\n".join(f"- {line}" for line in lines)
            + "\n"
        )


if __name__ == "__main__":
    main()
