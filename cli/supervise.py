"""The restart policy of ``rtic up``: pure, no processes, no clock.

``rtic up`` (``cli/up.py``) starts the engine's parts as child processes and
polls them. When one exits without having been asked to, ``up.py`` tells the
``Supervisor``, which answers with a decision:

- ``Restart(delay_s, count)``: start it again after ``delay_s``. The delay
  doubles on each exit (0.5 s, 1 s, 2 s ... up to 10 s) and goes back to 0.5 s
  once the part has stayed up 60 s: a part killed once comes back at once; a
  part that crashes on start does not spin the machine.
- ``GiveUp(reason)``: the part exited more than 5 times within 120 s. A part
  that cannot stay up is a fault to fix (a bad setting, a service away), not
  one to hide behind an endless loop, so ``rtic up`` stops everything and says
  why.

Every time is a ``now`` passed in (seconds on any monotonic clock), so the
policy is tested without processes or sleeping (tests/unit/cli/test_supervise.py).
"""

from __future__ import annotations

import signal
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    """How soon to restart a part that exited, and when to stop trying."""

    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    stable_after_s: float = 60.0  # up this long: the next exit starts the backoff again
    max_restarts: int = 5  # more exits than this within window_s: give up
    window_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0 < self.first_delay_s <= self.max_delay_s:
            raise ValueError("need 0 < first_delay_s <= max_delay_s")
        if self.max_restarts < 0 or self.window_s <= 0 or self.stable_after_s <= 0:
            raise ValueError("max_restarts >= 0, window_s > 0 and stable_after_s > 0")


@dataclass(frozen=True)
class Restart:
    """Start the part again after ``delay_s``; ``count`` is its restarts so far, this one
    included."""

    delay_s: float
    count: int


@dataclass(frozen=True)
class GiveUp:
    """Stop trying: the part cannot stay up."""

    reason: str


Decision = Restart | GiveUp


@dataclass
class _Part:
    started_at: float
    next_delay_s: float
    restarts: int = 0
    exits: deque[float] = field(default_factory=deque)  # times of recent exits


class Supervisor:
    """The restart book of every part ``rtic up`` watches (by name)."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._parts: dict[str, _Part] = {}

    def started(self, name: str, now: float) -> None:
        """``name`` was (re)started at ``now``."""
        part = self._parts.get(name)
        if part is None:
            self._parts[name] = _Part(started_at=now, next_delay_s=self.policy.first_delay_s)
        else:
            part.started_at = now

    def exited(self, name: str, now: float) -> Decision:
        """``name`` exited at ``now`` without being asked to: restart it, or give up."""
        policy = self.policy
        part = self._parts.get(name)
        if part is None:
            raise KeyError(f"{name} was never started")
        if now - part.started_at >= policy.stable_after_s:
            part.next_delay_s = policy.first_delay_s
        part.exits.append(now)
        while part.exits and part.exits[0] <= now - policy.window_s:
            part.exits.popleft()
        if len(part.exits) > policy.max_restarts:
            return GiveUp(
                f"{name} exited {len(part.exits)} times within {policy.window_s:.0f} s "
                f"(restarted {part.restarts} times in all)"
            )
        delay = part.next_delay_s
        part.next_delay_s = min(delay * 2, policy.max_delay_s)
        part.restarts += 1
        return Restart(delay_s=delay, count=part.restarts)

    def restarts(self) -> dict[str, int]:
        """Restarts so far, per part (parts never restarted: 0)."""
        return {name: part.restarts for name, part in self._parts.items()}


def describe_exit(returncode: int) -> str:
    """A child's return code as a person reads it: ``exit code 1``, ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
