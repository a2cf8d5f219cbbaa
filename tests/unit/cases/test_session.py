"""The case book's session (``cases.session.CaseSession``): reads served from its cache,
a batch's writes held until one ``save_many``, nothing kept from a flush that failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from cases.session import CaseSession
from records.memory import MemoryCaseStore
from records.protocols import CaseWrite
from rtic.casework import CaseLinkV1, LinkKind, TimelineEntryV1
from tests.unit.records.contract import make_case, make_entry


class CountingStore(MemoryCaseStore):
    """The in-memory store, counting the calls it gets (and failing ``save_many`` when told)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.fail_with: Exception | None = None

    async def case_for_link(self, kind: LinkKind, source_id: str) -> str | None:
        self.calls["case_for_link"] += 1
        return await super().case_for_link(kind, source_id)

    async def get_case(self, case_ref: str) -> Any:
        self.calls["get_case"] += 1
        return await super().get_case(case_ref)

    async def view(self, case_ref: str) -> Any:
        self.calls["view"] += 1
        return await super().view(case_ref)

    async def save(self, *args: Any, **kwargs: Any) -> list[TimelineEntryV1]:
        self.calls["save"] += 1
        return await super().save(*args, **kwargs)

    async def save_many(self, writes: Sequence[CaseWrite]) -> list[list[TimelineEntryV1]]:
        self.calls["save_many"] += 1
        if self.fail_with is not None:
            raise self.fail_with
        return await super().save_many(writes)


CALL = CaseLinkV1(kind=LinkKind.CALL, id="C-1")


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


async def test_writes_wait_for_flush_and_are_one_save_many(store: CountingStore) -> None:
    session = CaseSession(store)
    one, two = make_case(1), make_case(2)
    assert await session.save(one, [make_entry(one, 1)], [CALL]) == [make_entry(one, 1)]
    await session.save(two, [make_entry(two, 2)])
    # Read back by the session before the flush; not in the store yet.
    assert await session.get_case(one.case_ref) == one
    assert await session.case_for_link(LinkKind.CALL, "C-1") == one.case_ref
    assert await store.get_case(one.case_ref) is None
    assert session.pending == 2
    await session.flush()
    assert store.calls["save_many"] == 1 and store.calls["save"] == 0
    assert session.pending == 0
    assert await store.get_case(two.case_ref) == two
    assert await store.case_for_link(LinkKind.CALL, "C-1") == one.case_ref


async def test_reads_after_a_flush_come_from_the_cache(store: CountingStore) -> None:
    case = make_case(1)
    await store.save(case, [make_entry(case, 1)], [CALL])
    session = CaseSession(store)
    for _ in range(3):
        assert await session.case_for_link(LinkKind.CALL, "C-1") == case.case_ref
        assert await session.case_for_link(LinkKind.CALL, "C-9") is None
        assert await session.get_case(case.case_ref) == case
        assert [e.entry_id for e in await session.timeline(case.case_ref)] == [
            make_entry(case, 1).entry_id
        ]
    assert store.calls == {"save": 1, "case_for_link": 2, "get_case": 1, "view": 1}


async def test_a_returned_case_is_a_copy(store: CountingStore) -> None:
    case = make_case(1)
    session = CaseSession(store)
    await session.save(case)
    got = await session.get_case(case.case_ref)
    assert got is not None
    got.status = got.status.CLOSED
    assert await session.get_case(case.case_ref) == case


async def test_only_entries_the_case_does_not_have_are_new(store: CountingStore) -> None:
    case = make_case(1)
    e1, e2, e3 = (make_entry(case, n) for n in (1, 2, 3))
    await store.save(case, [e1])
    session = CaseSession(store)
    assert await session.save(case, [e1, e2, e2]) == [e2]
    assert await session.save(case, [e2, e3]) == [e3]
    await session.flush()
    view = await store.view(case.case_ref)
    assert view is not None and [e.entry_id for e in view.timeline] == [
        e.entry_id for e in (e1, e2, e3)
    ]


async def test_a_failed_flush_keeps_nothing_and_empties_the_cache(store: CountingStore) -> None:
    case = make_case(1)
    session = CaseSession(store)
    await session.save(case, [make_entry(case, 1)], [CALL])
    store.fail_with = RuntimeError("no database")
    with pytest.raises(RuntimeError):
        await session.flush()
    assert session.pending == 0
    assert await store.get_case(case.case_ref) is None
    # Nothing the failed batch did is believed: the next reads go to the store.
    before = store.calls["get_case"]
    assert await session.get_case(case.case_ref) is None
    assert await session.case_for_link(LinkKind.CALL, "C-1") is None
    assert store.calls["get_case"] == before + 1


async def test_discard_drops_the_pending_writes(store: CountingStore) -> None:
    case = make_case(1)
    session = CaseSession(store)
    await session.save(case, links=[CALL])
    session.discard()
    await session.flush()
    assert store.calls["save_many"] == 0
    assert await session.case_for_link(LinkKind.CALL, "C-1") is None


async def test_the_cache_is_bounded_and_pending_writes_are_never_evicted(
    store: CountingStore,
) -> None:
    session = CaseSession(store, cache_size=2)
    cases = [make_case(n) for n in range(1, 6)]
    for case in cases:
        await session.save(case)
    for case in cases:  # all five pending: every one is read back, none from the store
        assert await session.get_case(case.case_ref) == case
    assert store.calls["get_case"] == 0
    await session.flush()
    for case in reversed(cases):
        assert await session.get_case(case.case_ref) == case
    assert store.calls["get_case"] == 3  # the last two saved were still cached


async def test_an_older_version_saved_later_does_not_replace_the_newer(
    store: CountingStore,
) -> None:
    v2 = make_case(1, version=2, officer_in_charge="OFF-2")
    session = CaseSession(store)
    await session.save(v2)
    await session.save(make_case(1, version=1))
    assert await session.get_case(v2.case_ref) == v2
    await session.flush()
    assert await store.get_case(v2.case_ref) == v2


async def test_evidence_is_saved_after_what_is_pending(store: CountingStore) -> None:
    from tests.unit.records.contract import make_evidence

    case = make_case(1)
    session = CaseSession(store)
    await session.save(case)
    assert await session.save_evidence(make_evidence(1), case.case_ref)
    assert session.pending == 0 and await store.get_case(case.case_ref) == case


async def test_prefetched_links_are_not_read_again(store: CountingStore) -> None:
    case = make_case(1)
    await store.save(case, links=[CALL])
    session = CaseSession(store)
    keys = [(LinkKind.CALL, "C-1"), (LinkKind.INCIDENT, "I-1"), (LinkKind.CALL, "C-1")]
    await session.prefetch_links(keys)
    await session.prefetch_links(keys)  # all known now: no read
    assert await session.case_for_link(LinkKind.CALL, "C-1") == case.case_ref
    assert await session.case_for_link(LinkKind.INCIDENT, "I-1") is None
    assert store.calls["case_for_link"] == 0
