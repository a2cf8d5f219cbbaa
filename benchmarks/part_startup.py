"""Part ``startup``: from ``rtic up`` to the first alert at a websocket client.

``rtic up`` is started as a user would (with its simulator), on ports and a topic
prefix of its own, a broker URL where nothing listens (so it starts its own Tansu),
the local Redis and a new SQLite file. As soon as the broker answers, the contract's
topics are made sure of (what the worker does first) and a hotlist entry goes to
``rtic.reference.v1``; a read of that plate is produced every half second until an
alert arrives at a websocket client, connected as soon as the gateway answers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

from benchmarks.harness import ROOT, Services, drop_redis_keys, http_get, load
from cli.services import free_port, port_answers
from rtic.kafka import ensure_topics, make_producer
from rtic.tokens import issue_token
from rtic.topics import Topics

SECRET = "bench-startup-secret-0123456789abcdef"


async def run(services: Services, log_dir: Path) -> dict[str, Any]:
    kafka_port, gateway_port = free_port(), free_port()
    prefix = f"up{int(time.time()) % 100_000}."
    directory = log_dir / "startup"
    directory.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": f"kafka://127.0.0.1:{kafka_port}",
        "RTIC_REDIS_URL": services.redis_url,
        "RTIC_TOPIC_PREFIX": prefix,
        "RTIC_APP_ID": f"{prefix}engine",
        "RTIC_GATEWAY_PORT": str(gateway_port),
        "RTIC_WORKER_WEB_PORT": str(free_port()),
        "RTIC_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'records.sqlite3'}",
        "RTIC_EVIDENCE_DIR": str(directory / "evidence"),
        "RTIC_TOKEN_SECRET": SECRET,
    }
    topics = Topics.with_prefix(prefix)
    kafka_url = env["RTIC_KAFKA_URL"]
    marks: dict[str, Any] = {}
    before = load()
    log = open(directory / "rtic-up.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if b"] ready in" in line and "ready" not in marks:
                marks["ready"] = time.perf_counter() - t0

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not port_answers("127.0.0.1", kafka_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rtic up: the broker did not answer")
            await asyncio.sleep(0.05)
        marks["broker"] = time.perf_counter() - t0
        await ensure_topics(kafka_url, topics.all())
        producer = make_producer(kafka_url, linger_ms=0)
        await producer.start()
        try:
            entry = {
                "kind": "hotlist",
                "op": "upsert",
                "id": "HL-UP",
                "entry": {"vrm": "BN55 FRM", "reason": "stolen"},
            }
            await producer.send_and_wait(topics.reference, orjson.dumps(entry), key=b"HL-UP")
            token = issue_token(
                SECRET, sub="bench", role="rtic_analyst", now=datetime.now(UTC), ttl_seconds=600
            )
            sent = 0

            async def send_read() -> None:
                nonlocal sent
                sent += 1
                read = {
                    "read_id": f"UP-{sent}",
                    "vrm": "BN55 FRM",
                    "camera_id": "CAM-UP",
                    "read_at": datetime.now(UTC).isoformat(),
                    "lat": 52.4862,
                    "lon": -1.8904,
                    "confidence": 0.95,
                }
                await producer.send_and_wait(topics.anpr, orjson.dumps(read), key=b"CAM-UP")

            await send_read()
            while http_get(f"http://127.0.0.1:{gateway_port}/healthz", timeout=0.5) is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("rtic up: the gateway did not answer")
                await asyncio.sleep(0.1)
            marks["gateway"] = time.perf_counter() - t0
            url = f"ws://127.0.0.1:{gateway_port}/ws"
            async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.recv()  # hello
                await ws.send(orjson.dumps({"type": "subscribe"}).decode())
                next_read = time.perf_counter()
                while "alert" not in marks:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("rtic up: no alert within 120 s")
                    if time.perf_counter() >= next_read:
                        await send_read()
                        next_read = time.perf_counter() + 0.5
                    try:
                        async with asyncio.timeout(0.1):
                            msg = orjson.loads(await ws.recv())
                    except TimeoutError:
                        continue
                    if msg.get("type") == "alert":
                        marks["alert"] = time.perf_counter() - t0
                        marks["alert_rule"] = msg.get("rule_id")
        finally:
            await producer.stop()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(timeout=5)
        log.close()
        drop_redis_keys(services.redis_url, prefix)
    result = {
        "command": "rtic up",
        "broker_s": round(marks["broker"], 2),
        "gateway_s": round(marks["gateway"], 2),
        "ready_s": round(marks["ready"], 2) if "ready" in marks else None,
        "first_alert_s": round(marks["alert"], 2),
        "first_alert_rule": marks.get("alert_rule"),
        "reads_sent": sent,
        "load_before": before,
    }
    print(
        f"startup: broker {result['broker_s']} s, gateway {result['gateway_s']} s, ready "
        f"{result['ready_s']} s, first alert {result['first_alert_s']} s; load {before}",
        flush=True,
    )
    return result
