"""``rtic up``, the embedded default, as a user runs it: live events within 30 s, clean stop;
links with one-use login tickets (no token in its output); outside development it refuses
the development secret before starting anything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from websockets.asyncio.client import connect

from cli.services import free_port
from rtic.settings import DEV_TOKEN_SECRET

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
        ticket = _dashboard_ticket(tmp_path / "up.log", deadline=time.monotonic() + 30)
        token = _exchange(gateway_port, ticket)
        assert token["role"] == "rtic_analyst" and token["sub"] == "rtic-analyst"
        with pytest.raises(urllib.error.HTTPError) as again:  # one use
            _exchange(gateway_port, ticket)
        assert again.value.code == 401
        # The page must be served whatever the working directory of `rtic up`.
        with urllib.request.urlopen(
            f"http://127.0.0.1:{gateway_port}/?ticket={ticket}", timeout=5
        ) as page:
            assert page.status == 200 and b"RTIC live" in page.read()

        async def first_event() -> dict:
            bearer = {"Authorization": f"Bearer {token['token']}"}
            async with connect(
                f"ws://127.0.0.1:{gateway_port}/ws", additional_headers=bearer
            ) as ws:
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
        except subprocess.TimeoutExpired:
            # Not stopped: the test fails, and leaves no engine running (loading the
            # machine) for the tests after it.
            for process in [*psutil.Process(up.pid).children(recursive=True), up]:
                with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                    process.kill()
            raise
        finally:
            log.close()
    output = (tmp_path / "up.log").read_text()
    assert "dashboard:  http://127.0.0.1:" in output and "/?ticket=" in output
    assert "/handler?ticket=" in output
    assert "/officer?ticket=" in output and "/portal" in output
    assert "token=" not in output and not re.search(r"eyJ[\w-]+\.[\w-]+\.", output)  # no JWT
    assert "up-test-secret" not in output
    assert "DEVELOPMENT SECRET" not in output  # a secret of its own, if a short one
    assert "[rtic up] stopped" in output
    import redis

    client = redis.Redis.from_url(redis_url)  # leave the shared Redis as it was
    keys = list(client.scan_iter(match=f"{prefix}rtic:*", count=10_000))
    if keys:
        client.unlink(*keys)
    client.close()
    time.sleep(0.5)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []


def _dashboard_ticket(log: Path, deadline: float) -> str:
    """The ticket of the dashboard's link, once ``rtic up`` has printed it."""
    while time.monotonic() < deadline:
        found = re.search(r"dashboard:  http://\S+/\?ticket=([\w-]+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    pytest.fail("no dashboard link:\n" + log.read_text())


def _exchange(port: int, ticket: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/session/ticket",
        data=orjson.dumps({"ticket": ticket}),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        body: dict[str, Any] = orjson.loads(answer.read())
        return body


@pytest.mark.parametrize(
    ("secret", "why"),
    [(None, "is the development secret"), ("short-but-not-dev", "shorter than 32 bytes")],
)
def test_rtic_up_refuses_the_development_secret_in_production(
    secret: str | None, why: str, tmp_path: Path
) -> None:
    kafka_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTIC_")}
    env |= {"RTIC_ENVIRONMENT": "production", "RTIC_KAFKA_URL": f"kafka://127.0.0.1:{kafka_port}"}
    if secret:
        env["RTIC_TOKEN_SECRET"] = secret
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "up"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to start" in done.stderr and why in done.stderr
    assert "Tansu" not in done.stdout  # nothing was started
    assert DEV_TOKEN_SECRET not in done.stdout + done.stderr
    assert secret is None or secret not in done.stdout + done.stderr
    for command in (["gateway"], ["token", "--role", "rtic_analyst", "--sub", "x"]):
        refused = subprocess.run(
            [sys.executable, "-m", "cli.main", *command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert "eyJ" not in refused.stdout
