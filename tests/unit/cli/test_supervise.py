"""The restart policy of ``rtic up`` (cli/supervise.py), on plain numbers for time."""

from __future__ import annotations

import signal

import pytest

from cli.supervise import GiveUp, Restart, RestartPolicy, Supervisor, describe_exit


def crash_loop(sup: Supervisor, name: str, *, start: float, uptime: float, times: int) -> list:
    """``times`` exits of ``name``, each after ``uptime`` s up, restarted when told."""
    now, decisions = start, []
    for _ in range(times):
        now += uptime
        decision = sup.exited(name, now)
        decisions.append(decision)
        if isinstance(decision, GiveUp):
            break
        now += decision.delay_s
        sup.started(name, now)
    return decisions


def test_backoff_doubles_up_to_the_cap() -> None:
    sup = Supervisor(RestartPolicy(max_restarts=100, window_s=1.0))
    sup.started("worker", 0.0)
    decisions = crash_loop(sup, "worker", start=0.0, uptime=2.0, times=8)
    assert [d.delay_s for d in decisions] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert [d.count for d in decisions] == list(range(1, 9))


def test_backoff_starts_again_after_the_part_stayed_up() -> None:
    sup = Supervisor()
    sup.started("gateway", 0.0)
    first = crash_loop(sup, "gateway", start=0.0, uptime=5.0, times=3)
    assert [d.delay_s for d in first] == [0.5, 1.0, 2.0]
    t = 5.0 + 0.5 + 5.0 + 1.0 + 5.0 + 2.0  # the third restart
    # Up 59 s: still the growing delay; then up 60 s: back to the first delay.
    assert sup.exited("gateway", t + 59.0) == Restart(delay_s=4.0, count=4)
    sup.started("gateway", t + 63.0)
    assert sup.exited("gateway", t + 63.0 + 60.0) == Restart(delay_s=0.5, count=5)


def test_gives_up_after_too_many_exits_in_the_window() -> None:
    sup = Supervisor(RestartPolicy(max_restarts=5, window_s=120.0))
    sup.started("worker", 0.0)
    decisions = crash_loop(sup, "worker", start=0.0, uptime=1.0, times=10)
    assert all(isinstance(d, Restart) for d in decisions[:5])
    assert isinstance(decisions[5], GiveUp) and len(decisions) == 6
    assert "worker exited 6 times within 120 s" in decisions[5].reason
    assert "restarted 5 times" in decisions[5].reason


def test_exits_spread_wider_than_the_window_never_give_up() -> None:
    # One exit every 30 s, each after 29 s up: never more than 4 in 120 s.
    sup = Supervisor(RestartPolicy(max_restarts=5, window_s=120.0))
    sup.started("cases", 0.0)
    decisions = crash_loop(sup, "cases", start=0.0, uptime=29.0, times=40)
    assert len(decisions) == 40 and all(isinstance(d, Restart) for d in decisions)
    assert decisions[-1].count == 40
    assert max(d.delay_s for d in decisions) == 10.0


def test_parts_are_counted_apart() -> None:
    sup = Supervisor(RestartPolicy(max_restarts=1, window_s=60.0))
    sup.started("worker", 0.0)
    sup.started("gateway", 0.0)
    assert sup.exited("worker", 1.0) == Restart(0.5, 1)
    sup.started("worker", 1.5)
    assert sup.exited("gateway", 2.0) == Restart(0.5, 1)  # the worker's exits are not its
    assert isinstance(sup.exited("worker", 3.0), GiveUp)
    assert sup.restarts() == {"worker": 1, "gateway": 1}


def test_an_unknown_part_is_an_error() -> None:
    with pytest.raises(KeyError):
        Supervisor().exited("nobody", 1.0)


@pytest.mark.parametrize(
    "policy",
    [
        {"first_delay_s": 0},
        {"first_delay_s": 5, "max_delay_s": 1},
        {"max_restarts": -1},
        {"window_s": 0},
        {"stable_after_s": 0},
    ],
)
def test_nonsense_policies_are_refused(policy: dict) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**policy)


def test_describe_exit() -> None:
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(-200) == "killed by signal 200"
