"""``rtic up``, the embedded default, as a user runs it: live events within 30 s, clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import orjson
import psutil
import pytest
from websockets.asyncio.client import connect

from cli.services import free_port
from rtic.tokens import issue_token

pytestmark = pytest.mark.e2e


def test_rtic_up_runs_everything_and_stops_cleanly(redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kafka_port, gateway_port = free_port(), free_port()
    prefix = f"up{os.getpid()}{int(time.time())}."
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": f"kafka://127.0.0.1:{kafka_port}",
        "RTIC_REDIS_URL": redis_url,
        "RTIC_GATEWAY_PORT": str(gateway_port),
        "RTIC_TOPIC_PREFIX": prefix,
        "RTIC_APP_ID": prefix + "engine",
        "RTIC_TOKEN_SECRET": "up-test-secret",
    }
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--rate", "30"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    started = time.monotonic()
    try:
        deadline = started + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{gateway_port}/healthz", timeout=1
                ) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("gateway not up within 30 s:\n" + (tmp_path / "up.log").read_text())
        token = issue_token(
            "up-test-secret", sub="t", role="rtic_analyst", now=datetime.now(UTC), ttl_seconds=300
        )
        # The page must be served whatever the working directory of `rtic up`.
        with urllib.request.urlopen(
            f"http://127.0.0.1:{gateway_port}/?token={token}", timeout=5
        ) as page:
            assert page.status == 200 and b"RTIC live" in page.read()

        async def first_event() -> dict:
            async with connect(f"ws://127.0.0.1:{gateway_port}/ws?token={token}") as ws:
                await ws.recv()  # hello
                await ws.send(orjson.dumps({"type": "subscribe", "events": True}).decode())
                async with asyncio.timeout(max(1.0, 30 - (time.monotonic() - started))):
                    while True:
                        msg = orjson.loads(await ws.recv())
                        if msg["type"] == "event":
                            return msg

        event = asyncio.run(first_event())
        assert event["event"]["enrichment"]["kind"] == event["kind"]
        assert event["event"]["enrichment"]["in_force_area"] is True, event
        assert time.monotonic() - started < 30
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 4  # tansu, worker, gateway, simulator
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=30)
        finally:
            log.close()
    output = (tmp_path / "up.log").read_text()
    assert "dashboard:  http://127.0.0.1:" in output and "?token=" in output
    assert "/handler?token=" in output
    assert "/officer?token=" in output and "/portal" in output
    assert "[rtic up] stopped" in output
    import redis

    client = redis.Redis.from_url(redis_url)  # leave the shared Redis as it was
    keys = list(client.scan_iter(match=f"{prefix}rtic:*", count=10_000))
    if keys:
        client.unlink(*keys)
    client.close()
    time.sleep(0.5)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
