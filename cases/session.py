"""The case book's view of its store: reads cached, a batch's writes in one transaction.

``CaseSession`` sits between ``cases.book.CaseBook`` and a ``CaseStore``. The case
worker is one per deployment (docs/cases.md, "Limits"), so every case, link and
timeline entry it reads was either written by itself or is in the database
unchanged; it can keep what it read or wrote in memory and trust it:

- **reads** (``case_for_link``, ``get_case``, ``timeline``) come from a bounded
  LRU cache (``cache_size`` cases, and as many links), filled from the store on a
  miss; a link known to be absent is cached too (only this worker adds links);
- **writes** (``save``) are held as pending until ``flush``, which gives them to
  ``CaseStore.save_many``: one transaction for a whole batch. Which entries are
  new is judged from the case's cached timeline, so the book's updates do not
  wait for the database.

Pending writes are read back by the same session (a case opened by one message
of a batch is found by the next), and are never evicted before their flush.
Only a successful flush moves them into the cache; ``discard`` (after a failed
flush, or a batch to be tried again) drops them and empties the cache, so what
is read next comes from the database again. A process starts with an empty
cache. Evidence is saved at once (it is rare), after a flush of what is
pending (its row refers to its case).

What the cache does not see: a case deleted by ``rtic db purge`` in another
process (only cases closed for years) stays in the cache until evicted or
until the worker restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Generic, TypeVar

from records.protocols import CaseRow, CaseStore, CaseWrite
from rtic.casework import CaseLinkV1, EvidenceV1, LinkKind, TimelineEntryV1

DEFAULT_CACHE_SIZE = 20_000
K = TypeVar("K")
V = TypeVar("V")
LinkKey = tuple[LinkKind, str]


class _Lru(Generic[K, V]):
    """A dictionary that forgets the least recently used keys beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: K) -> bool:
        return key in self._data

    def get(self, key: K) -> V:
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class CaseSession:
    """A ``CaseStore`` seen through a cache, with writes held until ``flush``.

    Args:
        store: the store the cases are kept in.
        cache_size: how many cases (with their timelines) and links are kept in
            memory; 0 keeps none past a flush (every read goes to the store).
    """

    def __init__(self, store: CaseStore, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.store = store
        self._cases: _Lru[str, CaseRow] = _Lru(cache_size)
        self._timelines: _Lru[str, list[TimelineEntryV1]] = _Lru(cache_size)
        self._links: _Lru[LinkKey, str | None] = _Lru(cache_size)
        self._writes: list[CaseWrite] = []
        self._pending_cases: dict[str, CaseRow] = {}
        self._pending_timelines: dict[str, list[TimelineEntryV1]] = {}
        self._pending_links: dict[LinkKey, str] = {}

    @property
    def pending(self) -> int:
        """How many writes wait for ``flush``."""
        return len(self._writes)

    async def next_case_number(self, year: int) -> int:
        """The store's next number (its own transaction: a number is never given twice)."""
        return await self.store.next_case_number(year)

    async def case_for_link(self, kind: LinkKind, source_id: str) -> str | None:
        key = (kind, source_id)
        if key in self._pending_links:
            return self._pending_links[key]
        if key in self._links:
            return self._links.get(key)
        ref = await self.store.case_for_link(kind, source_id)
        self._links.put(key, ref)
        return ref

    async def prefetch_links(self, keys: Sequence[LinkKey]) -> None:
        """Read the links of a whole batch in one query (those not known yet), so the
        messages' own look-ups, found or not, come from the cache."""
        missing = list(
            dict.fromkeys(k for k in keys if k not in self._pending_links and k not in self._links)
        )
        if not missing:
            return
        found = await self.store.cases_for_links(missing)
        for key in missing:
            self._links.put(key, found.get(key))

    async def get_case(self, case_ref: str) -> CaseRow | None:
        case = self._pending_cases.get(case_ref)
        if case is None:
            if case_ref in self._cases:
                case = self._cases.get(case_ref)
            else:
                case = await self.store.get_case(case_ref)
                if case is None:
                    return None  # not cached: a case opened elsewhere (the portal) may come
                self._cases.put(case_ref, case)
        return case.model_copy(deep=True)

    def opening(self, case_ref: str) -> None:
        """Say that ``case_ref`` is being opened: the store has no row of it (a fresh
        number, or ``get_case`` found none), so it has no entries either (they belong
        to a stored case) and its timeline need not be read."""
        if case_ref not in self._pending_timelines and case_ref not in self._timelines:
            self._pending_timelines[case_ref] = []

    async def timeline(self, case_ref: str) -> list[TimelineEntryV1]:
        """The case's entries (stored and pending), in the order they were saved."""
        return list(await self._timeline(case_ref))

    async def _timeline(self, case_ref: str) -> list[TimelineEntryV1]:
        if case_ref in self._pending_timelines:
            return self._pending_timelines[case_ref]
        if case_ref in self._timelines:
            return self._timelines.get(case_ref)
        view = await self.store.view(case_ref)
        timeline = list(view.timeline) if view else []
        self._timelines.put(case_ref, timeline)
        return timeline

    async def save(
        self,
        case: CaseRow,
        entries: Sequence[TimelineEntryV1] = (),
        links: Sequence[CaseLinkV1] = (),
    ) -> list[TimelineEntryV1]:
        """Hold a write for ``flush``; the entries the case does not have yet (as
        ``CaseStore.save`` would return them)."""
        for entry in entries:
            if entry.case_ref != case.case_ref:
                raise ValueError(
                    f"entry {entry.entry_id} is of {entry.case_ref}, not {case.case_ref}"
                )
        ref = case.case_ref
        timeline = list(await self._timeline(ref))
        known = {e.entry_id for e in timeline}
        new: list[TimelineEntryV1] = []
        for entry in entries:
            if entry.entry_id not in known:
                known.add(entry.entry_id)
                new.append(entry)
        stored = self._pending_cases.get(ref) or (
            self._cases.get(ref) if ref in self._cases else None
        )
        if stored is None or stored.version <= case.version:
            self._pending_cases[ref] = case.model_copy(deep=True)
        elif ref not in self._pending_cases:
            self._pending_cases[ref] = stored
        self._pending_timelines[ref] = timeline + new
        for link in links:
            if await self.case_for_link(link.kind, link.id) is None:
                self._pending_links[(link.kind, link.id)] = ref
        self._writes.append(CaseWrite(case.model_copy(deep=True), list(entries), list(links)))
        return new

    async def save_evidence(self, item: EvidenceV1, case_ref: str | None) -> bool:
        """Store an evidence item at once (after what is pending: it may be its case)."""
        await self.flush()
        return await self.store.save_evidence(item, case_ref)

    async def flush(self) -> None:
        """Write what is pending in one transaction, then keep it in the cache. On any
        failure nothing is kept (``discard``) and the error is raised."""
        if not self._writes:
            return
        try:
            await self.store.save_many(self._writes)
        except BaseException:
            self.discard()
            raise
        for ref, case in self._pending_cases.items():
            self._cases.put(ref, case)
        for ref, timeline in self._pending_timelines.items():
            self._timelines.put(ref, timeline)
        for key, ref in self._pending_links.items():
            self._links.put(key, ref)
        self._clear_pending()

    def discard(self) -> None:
        """Forget what is pending, and the cache with it (the next reads go to the store)."""
        self._clear_pending()
        self._cases.clear()
        self._timelines.clear()
        self._links.clear()

    def _clear_pending(self) -> None:
        self._writes = []
        self._pending_cases = {}
        self._pending_timelines = {}
        self._pending_links = {}
