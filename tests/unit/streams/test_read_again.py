"""A jump in an input topic's offsets is read again, not taken for a gap
(``_Consumer._read_again``, streams/transport.py; docs/reliability.md, "Events lost at
a SIGTERM"). Faust's own answer to such a jump, ``_add_gap``, counts the offsets in
between as acknowledged, so a commit passes records no agent saw."""

from __future__ import annotations

import logging
from typing import Any

from faust.types import TP

from streams.transport import _Consumer


class _Fetcher:
    """What ``_read_again`` uses of the consumer: its log, ``seek`` and its own dict."""

    def __init__(self, fail: bool = False) -> None:
        self.log = logging.getLogger("test.read_again")
        self.sought: list[tuple[TP, int]] = []
        self.fail = fail

    async def seek(self, tp: TP, offset: int) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sought.append((tp, offset))


async def _read_again(fetcher: _Fetcher, tp: TP, first: int, found: int) -> bool:
    fn: Any = _Consumer._read_again
    return bool(await fn(fetcher, tp, first, found))


async def test_a_jump_is_read_again_from_the_first_missing_offset() -> None:
    fetcher, tp = _Fetcher(), TP("rtic.anpr.v1", 0)
    assert await _read_again(fetcher, tp, 452, 2776)
    assert fetcher.sought == [(tp, 452)]
    # Read again, the records come: another jump later on is another read again.
    assert await _read_again(fetcher, tp, 3000, 3100)
    assert fetcher.sought == [(tp, 452), (tp, 3000)]


async def test_the_same_jump_after_reading_again_is_a_gap() -> None:
    """The broker has no records there (a real gap): Faust's way, once, no endless loop."""
    fetcher, tp = _Fetcher(), TP("rtic.anpr.v1", 0)
    assert await _read_again(fetcher, tp, 10, 20)
    assert not await _read_again(fetcher, tp, 10, 20)
    assert fetcher.sought == [(tp, 10)]
    # Each partition on its own.
    other = TP("rtic.calls.v1", 0)
    assert await _read_again(fetcher, other, 10, 20)


async def test_a_failed_seek_still_keeps_the_jump_from_being_a_gap() -> None:
    """Not counted as acknowledged: the commit stops at the first missing offset, and the
    partition is read again from there later (``_refetch_skipped``)."""
    fetcher = _Fetcher(fail=True)
    assert await _read_again(fetcher, TP("rtic.calls.v1", 2), 5, 9)
