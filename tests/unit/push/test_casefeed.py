"""Case updates through the case feed: the stored case says who attends; in order; the
scope the update states when the database does not answer; bounded."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from push.access import CaseScope
from push.casefeed import CaseFeed
from records import MemoryRecords
from records.protocols import CaseRow
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.unit.push.conftest import BRUM, make_case
from tests.unit.push.test_fanout import drain, make_core
from tests.unit.push.test_fanout_records import REF, connect, update


async def test_officers_attending_get_updates_the_message_does_not_name_them_in(
    records: MemoryRecords,
) -> None:
    await records.cases.save(make_case(REF, officer_in_charge="OFF-1", attending=["OFF-2"]))
    core = make_core()
    attending = connect(core, Principal("OFF-2", Role.OFFICER))
    feed = CaseFeed(core, records.cases)
    assert await feed.scope(update()) == CaseScope(
        REF, "OFF-1", frozenset({"OFF-2"}), frozenset({BRUM})
    )
    feed.offer(update())
    running = asyncio.create_task(feed.run())
    try:
        for _ in range(50):
            if not feed.pending.empty():
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        assert [f["case_ref"] for f in drain(attending)] == [REF]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


class SlowCases:
    """A case store that never answers in time (or fails)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def get_case(self, case_ref: str) -> CaseRow | None:
        if self.fail:
            raise ConnectionError("database away")
        await asyncio.sleep(3600)
        return None


async def test_without_the_database_an_update_goes_with_the_scope_it_states(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("push.casefeed.READ_TIMEOUT_S", 0.01)
    core = make_core()
    in_charge = connect(core, Principal("OFF-1", Role.OFFICER))
    for cases in (SlowCases(), SlowCases(fail=True), None):
        feed = CaseFeed(core, cases)  # type: ignore[arg-type]
        assert await feed.scope(update()) == CaseScope(REF, "OFF-1", frozenset(), frozenset({BRUM}))
    feed = CaseFeed(core, None)
    await feed.handle(update())
    assert len(drain(in_charge)) == 1


async def test_a_case_the_database_does_not_know_yet_goes_with_its_own_scope(
    records: MemoryRecords,
) -> None:
    feed = CaseFeed(make_core(), records.cases)
    assert (await feed.scope(update())).officer_in_charge == "OFF-1"


async def test_updates_keep_their_order_and_a_full_queue_drops_and_counts(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("push.casefeed.MAX_PENDING", 3)
    core = make_core()
    officer = connect(core, Principal("OFF-1", Role.OFFICER))
    feed = CaseFeed(core, None)
    for i in range(5):
        feed.offer(update(update_id=f"u{i}"))
    assert core.metrics.value("rtic_gateway_case_updates_total", kind="dropped") == 2
    while not feed.pending.empty():
        await feed.handle(feed.pending.get_nowait())
    assert [f["update_id"] for f in drain(officer)] == ["u0", "u1", "u2"]
