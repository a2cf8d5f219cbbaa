"""The engine's clocks: the wall clock live, the event clock in replays.

Rules and timers never read the time themselves; they are handed ``now`` by
the edge that runs them, which asks one of these clocks. ``RTIC_RULE_CLOCK``
chooses: ``wall`` (live streams: now is now) or ``event`` (replays of
recorded data: now is the latest event time the worker has seen, so a
deadline two minutes after an incident passes when the replay reaches the
events two minutes later, at whatever speed it plays).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

ClockMode = Literal["wall", "event"]


def utc_now() -> datetime:
    """The wall clock's now, timezone-aware UTC: the one default clock of every edge."""
    return datetime.now(UTC)


@runtime_checkable
class Clock(Protocol):
    """What an edge asks for the time; ``observe`` is told every event time it sees."""

    def __call__(self) -> datetime: ...

    def observe(self, at: datetime) -> None: ...


class WallClock:
    """Now is now (UTC); event times do not move it."""

    def __call__(self) -> datetime:
        return utc_now()

    def observe(self, at: datetime) -> None:
        return None


class EventClock:
    """Now is the latest event time observed (never goes back).

    Before any event is seen it answers ``start`` (the wall clock's now when
    it was made, unless given): a worker that has seen nothing fires nothing.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._seen = False

    def __call__(self) -> datetime:
        return self._now

    def observe(self, at: datetime) -> None:
        if not self._seen or at > self._now:
            self._now = at
            self._seen = True


def make_clock(mode: ClockMode) -> Clock:
    """The clock for ``RTIC_RULE_CLOCK``."""
    return EventClock() if mode == "event" else WallClock()


class _Given:
    """A plain ``() -> datetime`` as a clock that events do not move (tests, tools)."""

    def __init__(self, fn: Callable[[], datetime]) -> None:
        self._fn = fn

    def __call__(self) -> datetime:
        return self._fn()

    def observe(self, at: datetime) -> None:
        return None


def as_clock(clock: Clock | Callable[[], datetime]) -> Clock:
    """A clock from a clock, or from a function that tells the time."""
    if isinstance(clock, Clock):
        return clock
    return _Given(clock)
