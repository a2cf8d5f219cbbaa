"""``rtic up`` supervises its parts: ``kill -9`` of the worker, then of the gateway.

``rtic up`` runs as a user runs it (its own Tansu, the local Redis, a SQLite file of
its own, the simulator at a gentle rate). A hotlist entry goes in and an analyst's
websocket client watches for its alerts. The worker is killed with SIGKILL and
hotlisted reads are sent at once; then the same for the gateway (the client
reconnects and resumes from the last alert it saw, as the desk does). For each kill
the test counts reads sent after it against alerts delivered, and times the
recovery; ``rtic up`` must restart the part (logged, counted), keep the same broker
process with every topic, and stop cleanly at the end with nothing left running.

Figures are printed (``pytest -s``) and quoted in docs/reliability.md, "Supervision".
The time budgets are wide (on a loaded 2-core box a part took up to a minute to
start): the test asserts that every read is alerted, once, and that the broker
stayed; the recovery times are measured, not asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cli.services import free_port
from rtic.kafka import bootstrap_servers, make_producer
from rtic.tokens import issue_token
from rtic.topics import Topics

pytestmark = pytest.mark.e2e

SECRET = "supervise-test-secret-0123456789abcdef"
READS_PER_KILL = 20
READ_RATE = 10.0  # reads/s after each kill: the 20 span the 2 s the part is away
PLATE_LISTED, PLATE_READ = "SV26 KIL", "5V26 K1L"  # a misread of the listed plate


def _part(up: subprocess.Popen[bytes], marker: str) -> psutil.Process:
    """The child of ``rtic up`` whose command line holds ``marker``."""
    for child in psutil.Process(up.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if marker in " ".join(child.cmdline()):
                return child
    raise LookupError(f"no part of rtic up runs {marker!r}")


async def _part_after(up: subprocess.Popen[bytes], marker: str, old: int, timeout: float) -> int:
    """The pid of the part running ``marker`` once it is not ``old`` any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(LookupError, psutil.NoSuchProcess):
            if (pid := _part(up, marker).pid) != old:
                return pid
        await asyncio.sleep(0.1)
    raise AssertionError(f"{marker!r} was not restarted within {timeout} s")


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=1) as resp:
        return dict(orjson.loads(resp.read()))


async def _worker_ready(url: str, pid: int, timeout: float) -> float:
    """When the worker ``pid`` says it consumes with partitions assigned and no rebalance
    under way (its /healthz); the deadline if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            health = await asyncio.to_thread(_get_json, url)  # the reader task goes on
            if health["assigned_partitions"] > 0 and not health["rebalancing"]:
                return time.monotonic()
        if not psutil.pid_exists(pid):
            raise AssertionError(f"the restarted worker (pid {pid}) is gone")
        await asyncio.sleep(0.2)
    return deadline


async def _topics(kafka_url: str, prefix: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(kafka_url))
    await consumer.start()
    try:
        return {t for t in await consumer.topics() if t.startswith(prefix)}
    finally:
        await consumer.stop()


class Watcher:
    """Alerts for the test's reads as an analyst's websocket client sees them."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.ws_url, self.token = ws_url, token
        self.arrived: dict[str, float] = {}  # read id -> first arrival (monotonic)
        self.shown: dict[str, int] = {}  # read id -> times shown
        self.last_alert_id: str | None = None
        self.resumed: list[dict[str, Any]] = []
        self.news = asyncio.Event()  # set on every alert

    async def connect(self, timeout: float) -> ClientConnection:
        """Connect (retrying while the gateway is away), subscribe, and resume from the
        last alert seen, if any."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ws = await connect(
                    self.ws_url, additional_headers={"Authorization": f"Bearer {self.token}"}
                )
                break
            except (OSError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(f"gateway not back within {timeout} s") from exc
                await asyncio.sleep(0.2)
        assert orjson.loads(await ws.recv())["type"] == "hello"
        await ws.send(
            orjson.dumps({"type": "subscribe", "severities": ["critical", "high"]}).decode()
        )
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        if self.last_alert_id is not None:
            await ws.send(
                orjson.dumps({"type": "resume", "last_alert_id": self.last_alert_id}).decode()
            )
        return ws

    async def read(self, ws: ClientConnection) -> None:
        """Until the socket closes."""
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                msg = orjson.loads(raw)
                if msg.get("type") in ("resumed", "error"):
                    self.resumed.append(msg)
                    self.news.set()
                if msg.get("type") != "alert" or msg.get("rule_id") != "anpr_hotlist_hit":
                    continue
                self.last_alert_id = msg["alert_id"]
                for read_id in msg["source_event_ids"]:
                    self.shown[read_id] = self.shown.get(read_id, 0) + 1
                    self.arrived.setdefault(read_id, time.monotonic())
                self.news.set()

    async def wait_for(self, read_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(r in self.arrived for r in read_ids):
            self.news.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self.news.wait()
            except TimeoutError:
                return


async def _send_reads(
    producer: AIOKafkaProducer, topic: str, tag: str, count: int, rate: float
) -> list[str]:
    ids = []
    t0 = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        read = {
            "read_id": f"SV-{tag}-{os.getpid()}-{i:03d}",
            "vrm": PLATE_READ,
            "camera_id": "CAM-SV",
            "read_at": datetime.now(UTC).isoformat(),
            "lat": 52.4862,
            "lon": -1.8904,
            "confidence": 0.93,
        }
        await producer.send_and_wait(topic, orjson.dumps(read), key=b"CAM-SV")
        ids.append(read["read_id"])
    return ids


def _figures(watcher: Watcher, read_ids: list[str], killed_at: float) -> dict[str, Any]:
    delivered = [r for r in read_ids if r in watcher.arrived]
    return {
        "sent": len(read_ids),
        "delivered": len(delivered),
        "shown_twice": sum(1 for r in read_ids if watcher.shown.get(r, 0) > 1),
        "first_alert_s": round(min(watcher.arrived[r] for r in delivered) - killed_at, 1)
        if delivered
        else None,
        "all_alerted_s": round(max(watcher.arrived[r] for r in delivered) - killed_at, 1)
        if delivered
        else None,
    }


async def _scenario(up: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> dict:
    kafka_url, prefix = env["RTIC_KAFKA_URL"], env["RTIC_TOPIC_PREFIX"]
    base = f"127.0.0.1:{env['RTIC_GATEWAY_PORT']}"
    topics = Topics.with_prefix(prefix)
    deadline = time.monotonic() + 150  # a busy machine: rtic up itself waits up to 120 s
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://{base}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    break
        if up.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("rtic up not ready:\n" + log.read_text(errors="replace"))
        await asyncio.sleep(0.3)
    token = issue_token(
        SECRET, sub="sv-analyst", role="rtic_analyst", now=datetime.now(UTC), ttl_seconds=600
    )
    watcher = Watcher(f"ws://{base}/ws", token)
    producer = make_producer(kafka_url)
    await producer.start()
    reader: asyncio.Task[None] | None = None
    try:
        entry = {
            "kind": "hotlist",
            "op": "upsert",
            "id": f"HL-SV-{os.getpid()}",
            "entry": {"vrm": PLATE_LISTED, "reason": "stolen", "source": "test"},
        }
        await producer.send_and_wait(topics.reference, orjson.dumps(entry), key=b"HL-SV")
        reader = asyncio.create_task(watcher.read(await watcher.connect(10)))
        # The worker is up and has the entry: a hotlisted read alerts.
        probes: list[str] = []
        while not any(p in watcher.arrived for p in probes):
            if time.monotonic() > deadline:
                raise AssertionError("no probe alert:\n" + log.read_text(errors="replace"))
            probes += await _send_reads(producer, topics.anpr, f"probe{len(probes)}", 1, 1)
            await watcher.wait_for(probes[-1:], 1.0)
        topics_before = await _topics(kafka_url, prefix)
        tansu = _part(up, "--storage-engine")
        figures: dict[str, Any] = {}

        # 1. kill -9 of the worker; reads go on arriving at the broker.
        worker = _part(up, "cli.main worker")
        killed_at = time.monotonic()
        worker.send_signal(signal.SIGKILL)
        sent = await _send_reads(producer, topics.anpr, "worker", READS_PER_KILL, READ_RATE)
        new_worker = await _part_after(up, "cli.main worker", worker.pid, 15)
        worker_url = f"http://127.0.0.1:{env['RTIC_WORKER_WEB_PORT']}/healthz"
        ready = await _worker_ready(worker_url, new_worker, 90)
        await watcher.wait_for(sent, max(0.0, ready + 30 - time.monotonic()))
        figures["worker"] = _figures(watcher, sent, killed_at)
        figures["worker"]["worker_ready_s"] = round(ready - killed_at, 1)
        worker_sent = sent

        # 2. kill -9 of the gateway; the client reconnects and resumes.
        gateway = _part(up, "cli.main gateway")
        killed_at = time.monotonic()
        gateway.send_signal(signal.SIGKILL)
        sent = await _send_reads(producer, topics.anpr, "gateway", READS_PER_KILL, READ_RATE)
        await reader
        reader = asyncio.create_task(watcher.read(await watcher.connect(90)))
        new_gateway = await _part_after(up, "cli.main gateway", gateway.pid, 5)
        await watcher.wait_for(sent, 30)
        figures["gateway"] = _figures(watcher, sent, killed_at)

        figures["worker"]["delivered_by_end"] = sum(r in watcher.arrived for r in worker_sent)
        figures["pids"] = {
            "worker": (worker.pid, new_worker),
            "gateway": (gateway.pid, new_gateway),
        }
        figures["broker_same"] = tansu.is_running() and _part(up, "--storage-engine") == tansu
        figures["topics_before"], figures["topics_after"] = (
            topics_before,
            await _topics(kafka_url, prefix),
        )
        with contextlib.suppress(TimeoutError):  # the reply to resume, if not in yet
            async with asyncio.timeout(5):
                while not watcher.resumed:
                    watcher.news.clear()
                    await watcher.news.wait()
        figures["resumed"] = watcher.resumed
        return figures
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await producer.stop()


def test_rtic_up_restarts_a_killed_worker_and_gateway(redis_url: str, tmp_path: Path) -> None:
    prefix = f"sv{os.getpid()}{int(time.time()) % 100_000}."
    rules = tmp_path / "rules.yaml"  # each read its own alert, to count them
    rules.write_text("rules:\n  anpr_hotlist_hit:\n    params: {group_window_s: 0}\n")
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
        "RTIC_REDIS_URL": redis_url,
        "RTIC_GATEWAY_PORT": str(free_port()),
        "RTIC_WORKER_WEB_PORT": str(free_port()),
        "RTIC_TOPIC_PREFIX": prefix,
        "RTIC_APP_ID": prefix + "engine",
        "RTIC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}",
        "RTIC_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "RTIC_RULES_FILE": str(rules),
        "RTIC_TOKEN_SECRET": SECRET,
    }
    log_path = tmp_path / "up.log"
    log = log_path.open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--rate", "5"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,  # a process group of its own, as in a terminal
    )
    started = time.monotonic()
    try:
        figures = asyncio.run(_scenario(up, env, log_path))
        children = psutil.Process(up.pid).children(recursive=True)
    except (AssertionError, LookupError, psutil.Error, OSError, TimeoutError) as exc:
        tail = log_path.read_text(errors="replace")[-8000:]
        raise AssertionError(f"{exc!r} (rtic up exit code {up.poll()})\n{tail}") from exc
    finally:
        if up.poll() is None:
            # Ctrl-C in a terminal: SIGINT to the whole process group, so every part gets it
            # while `rtic up` stops them; none may be restarted then.
            os.killpg(up.pid, signal.SIGINT)
        try:
            code = up.wait(timeout=40)
        except subprocess.TimeoutExpired as exc:
            for process in [*psutil.Process(up.pid).children(recursive=True), up]:
                with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                    process.kill()
            tail = log_path.read_text(errors="replace")[-8000:]
            raise AssertionError(f"rtic up did not stop within 40 s\n{tail}") from exc
        finally:
            log.close()
            _drop_redis_keys(redis_url, prefix)
    output = log_path.read_text(errors="replace")
    print(
        f"\nrtic up supervision ({time.monotonic() - started:.0f} s in all): "
        f"worker {figures['worker']}, gateway {figures['gateway']}, "
        f"topics {len(figures['topics_before'])} before, {len(figures['topics_after'])} after, "
        f"same broker {figures['broker_same']}, resumed {figures['resumed']}"
    )

    for part in ("worker", "gateway"):
        f = figures[part]
        assert f["delivered"] == f["sent"] == READS_PER_KILL, (part, f, output[-6000:])
        assert f["shown_twice"] == 0, (part, f)
        old, new = figures["pids"][part]
        assert old != new
        assert f"{part} (pid {old}) killed by SIGKILL; restart 1 in 0.5 s" in output
        assert f"{part} restarted (pid {new}; restart 1)" in output
    assert figures["broker_same"], "the broker was restarted or stopped"
    assert figures["topics_before"] and figures["topics_before"] <= figures["topics_after"]
    assert Topics.with_prefix(prefix).anpr in figures["topics_after"]
    assert "giving up" not in output
    assert "[rtic up] restarts: worker 1, gateway 1" in output, output[-3000:]
    stopping = output[output.index("[rtic up] stopping") :]
    assert "restart" not in stopping.replace("[rtic up] restarts:", ""), stopping
    assert code == 0 and "[rtic up] stopped" in output
    # The broker outlived the parts: none retried it while stopping.
    broker_gone = [line for line in stopping.splitlines() if "Connect call failed" in line]
    assert broker_gone == [], broker_gone[:3]
    time.sleep(0.5)
    assert [c for c in children if _alive(c)] == []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _drop_redis_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)  # leave the shared Redis as it was
    try:
        keys = list(client.scan_iter(match=f"{prefix}rtic:*", count=10_000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()
