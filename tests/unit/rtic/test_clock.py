"""The wall clock tells the time; the event clock follows the latest event and never goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rtic.clock import EventClock, WallClock, as_clock, make_clock
from tests.conftest import NOW


def test_event_clock_moves_with_events_and_never_back() -> None:
    clock = EventClock(start=NOW + timedelta(days=1))
    clock.observe(NOW)  # the first event sets it, even before the start
    assert clock() == NOW
    clock.observe(NOW + timedelta(minutes=5))
    clock.observe(NOW + timedelta(minutes=1))
    assert clock() == NOW + timedelta(minutes=5)


def test_wall_clock_ignores_events() -> None:
    clock = WallClock()
    clock.observe(NOW - timedelta(days=400))
    assert abs(clock() - datetime.now(UTC)) < timedelta(seconds=5)


def test_settings_choose_the_clock_and_functions_become_clocks() -> None:
    assert isinstance(make_clock("event"), EventClock)
    assert isinstance(make_clock("wall"), WallClock)
    fixed = as_clock(lambda: NOW)
    fixed.observe(NOW + timedelta(hours=1))
    assert fixed() == NOW
    event = EventClock()
    assert as_clock(event) is event
