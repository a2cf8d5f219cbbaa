"""``rtic up``'s watch loop (cli/up.py) on real processes: a part that keeps crashing
makes it give up with a clear message; the broker or the embedded Redis it started
dying is said, not hidden behind a fresh one; stopping leaves nothing running.

The restart policy itself is tested without processes (tests/unit/cli/test_supervise.py);
the whole of ``rtic up`` under ``kill -9`` in tests/e2e/test_rtic_up_supervise.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest

from cli.services import start_embedded_redis, start_tansu
from cli.supervise import RestartPolicy, Supervisor
from cli.up import GaveUp, _Parts

pytestmark = pytest.mark.integration


def _watch_until_gave_up(parts: _Parts, timeout: float) -> GaveUp:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            parts.watch(time.monotonic())
        except GaveUp as exc:
            return exc
        time.sleep(0.05)
    raise AssertionError(f"rtic up did not give up within {timeout} s")


def test_a_part_that_keeps_crashing_makes_it_give_up(capsys: pytest.CaptureFixture) -> None:
    policy = RestartPolicy(first_delay_s=0.1, max_delay_s=0.2, max_restarts=2, window_s=60)
    parts = _Parts(env=dict(os.environ), supervisor=Supervisor(policy))
    try:
        # A bad argument: `rtic simulate` exits 2 at once, every time.
        parts.spawn("feeder", lambda n: ["simulate", "--rate", f"not-a-rate-{n}"])
        gave_up = _watch_until_gave_up(parts, 60)
    finally:
        parts.stop()
    out = capsys.readouterr().out
    assert re.search(r"feeder \(pid \d+\) exit code 2; restart 1 in 0\.1 s", out), out
    assert re.search(r"feeder \(pid \d+\) exit code 2; restart 2 in 0\.2 s", out), out
    assert re.search(r"feeder restarted \(pid \d+; restart 2\)", out), out
    assert "restart 3" not in out
    assert "feeder exited 3 times within 60 s (restarted 2 times in all)" in str(gave_up)
    assert "giving up" in str(gave_up)
    assert "[rtic up] restarts: feeder 2" in out


def test_giving_up_on_a_part_that_is_not_essential_stops_only_it(
    capsys: pytest.CaptureFixture,
) -> None:
    policy = RestartPolicy(first_delay_s=0.1, max_delay_s=0.1, max_restarts=1, window_s=60)
    parts = _Parts(env=dict(os.environ), supervisor=Supervisor(policy))
    try:
        parts.spawn("simulator", lambda n: ["simulate", "--rate", "bad"], essential=False)
        (simulator,) = parts.children
        deadline = time.monotonic() + 60
        while "giving up on it" not in (out := capsys.readouterr().out) or simulator.proc:
            assert time.monotonic() < deadline, out
            parts.watch(time.monotonic())  # never raises GaveUp here
            time.sleep(0.05)
        assert re.search(r"simulator \(pid \d+\) exit code 2; simulator exited 2 times", out)
        assert "the rest goes on" in out
        for _ in range(5):  # and it stays stopped
            parts.watch(time.monotonic())
            time.sleep(0.2)
        assert simulator.proc is None and simulator.restart_at is None
    finally:
        parts.stop()


def test_the_broker_dying_is_said_and_not_restarted(tmp_path: Path) -> None:
    parts = _Parts(env=dict(os.environ))
    parts.tansu = start_tansu(log_dir=tmp_path)
    try:
        parts.watch(time.monotonic())  # alive: nothing to say
        parts.tansu.process.send_signal(signal.SIGKILL)
        parts.tansu.process.wait(timeout=10)
        gave_up = _watch_until_gave_up(parts, 5)
    finally:
        parts.stop()
    assert f"the broker (Tansu at {parts.tansu.url}) killed by SIGKILL" in str(gave_up)
    assert "Not restarting it" in str(gave_up) and "start `rtic up` again" in str(gave_up)


def test_the_embedded_redis_dying_is_said(tmp_path: Path) -> None:
    parts = _Parts(env=dict(os.environ))
    parts.embedded_redis = start_embedded_redis(tmp_path)
    pid = parts.embedded_redis.server.pid
    try:
        parts.watch(time.monotonic())
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=10)
        gave_up = _watch_until_gave_up(parts, 5)
    finally:
        parts.stop()
    assert "the embedded Redis" in str(gave_up) and "Not restarting it" in str(gave_up)


def test_stop_leaves_nothing_running_even_with_a_restart_pending(
    tansu_url: str, redis_url: str
) -> None:
    policy = RestartPolicy(first_delay_s=5.0)
    env = {
        **os.environ,
        "RTIC_KAFKA_URL": tansu_url,
        "RTIC_REDIS_URL": redis_url,
        "RTIC_TOPIC_PREFIX": f"svstop{os.getpid()}.",
    }
    parts = _Parts(env=env, supervisor=Supervisor(policy))
    parts.spawn("simulator", lambda n: ["simulate", "--rate", "1"])  # runs until stopped
    parts.spawn("broken", lambda n: ["simulate", "--rate", "bad"])  # exits at once
    running, broken = parts.children
    assert running.proc is not None
    simulator = running.proc
    deadline = time.monotonic() + 30
    while broken.restart_at is None and time.monotonic() < deadline:
        parts.watch(time.monotonic())
        time.sleep(0.05)
    assert broken.proc is None and broken.restart_at is not None  # restart pending, 5 s away
    assert simulator.poll() is None
    parts.stop()
    assert simulator.poll() is not None
    assert broken.proc is None  # the pending restart never happened
