"""The trend agents take events in batches: grouped by input partition, each group's
last event the current one (where Faust sends a table write's changelog), and the
previous current event back afterwards."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.streams import current_event

from streams.trends import by_partition


class Event:
    """What the agents read of Faust's event (weakly referable, as Faust's are)."""

    def __init__(self, partition: int, offset: int) -> None:
        self.message = SimpleNamespace(partition=partition, offset=offset)


def event(partition: int, offset: int) -> Any:
    return Event(partition, offset)


def test_groups_keep_order_and_make_their_last_event_current() -> None:
    events = [event(0, 1), event(2, 1), event(0, 2), event(2, 2), event(1, 1), event(0, 3)]
    seen = []
    for partition, group in by_partition(events):
        now = current_event()
        assert now is group[-1]
        assert all(e.message.partition == partition for e in group)
        seen.append((partition, [e.message.offset for e in group]))
    assert seen == [(0, [1, 2, 3]), (2, [1, 2]), (1, [1])]
    assert current_event() is None


def test_the_current_event_is_restored_when_the_caller_fails() -> None:
    try:
        for _partition, _group in by_partition([event(0, 1), event(1, 1)]):
            raise RuntimeError("a bug while counting")
    except RuntimeError:
        pass
    assert current_event() is None
