"""The worker's own copy of hotlists and warning markers, for when Redis is away.

History lives in Redis (``enrichers.history``); when Redis does not answer, a batch
goes on with place enrichment and ``enrichment.partial`` says why. Before issue 14
that meant a stolen car passing a camera during a Redis blip raised no alert, then or
later: the read's hotlist hit was in Redis only. A hit is the one thing that must not
be lost, so every worker keeps the hotlist entries and warning markers in memory as
well, from the reference changes themselves (``rtic.reference.v1``, read whole and
followed by ``streams/reference_copy.py``; the pipeline also applies the changes of
its own batches here first, before Redis, so a change that arrives during the
outage is in the copy at once). When Redis fails, ``ReferenceCopy.history`` gives
the blocks it can: hotlist hits for reads, markers for calls and incidents. The
trail, linked incidents and the call and incident history stay out (they are
Redis's), and ``partial`` still says history is partial.

The copy is bounded (``max_entries``): past the bound an upsert of a new entry is
refused and counted (``refused``), while changes to entries already held and deletes
still apply; ``complete`` is then False and the partial reason says so. Plain values
in and out: no Kafka, no Redis, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from pydantic import BaseModel

from enrichers.history import _decode_entries, _hotlist_hits, _live
from enrichers.keys import Keys, normalise_address
from enrichers.reference import lookup_entry
from enrichers.stores import EntryMaps
from rtic.enrichment import HistoryBlock, Marker
from rtic.errors import ContractError
from rtic.plates import fold_misreads, normalise_vrm
from rtic.schemas import CallV1, EventKind, IncidentEventV1, PlateReadV1, ReferenceChangeV1

KINDS = ("hotlist", "person_marker", "address_marker")  # what the copy keeps
DEFAULT_MAX_ENTRIES = 200_000


class ReferenceCopy:
    """Hotlist entries and markers by id, laid out as Redis keeps them (``EntryMaps``)."""

    def __init__(
        self,
        keys: Keys | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        ready: bool = True,
    ) -> None:
        self.keys = keys or Keys()
        self.max_entries = max_entries
        # False while the copy is being read from the start of the reference topic: a
        # batch Redis cannot enrich is then held rather than judged on half a copy.
        self.ready = ready
        self.maps = EntryMaps()
        self.refused = 0  # upserts of new entries left out because of the bound
        self.applied = 0  # changes applied (upserts and deletes)

    def __len__(self) -> int:
        return sum(len(index) for index in self.maps.indexes.values())

    @property
    def complete(self) -> bool:
        """False once an entry was left out because of the bound."""
        return self.refused == 0

    def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Hotlist and marker upserts and deletes, in order (other kinds are not kept; an
        upsert whose entry does not validate is skipped: the pipeline dead-letters it)."""
        keys = self.keys
        for ch in changes:
            if ch.kind not in KINDS:
                continue
            index = keys.hotlist_index if ch.kind == "hotlist" else keys.marker_index
            if ch.op == "delete":
                self.maps.upsert(index, ch.id, "", "", "")
                self.applied += 1
                continue
            if ch.id not in self.maps.indexes.get(index, {}) and len(self) >= self.max_entries:
                self.refused += 1
                continue
            try:
                place = lookup_entry(ch, keys)
            except ContractError:
                continue
            self.maps.upsert(index, ch.id, *place)
            self.applied += 1

    def history(self, kind: EventKind, events: Sequence[BaseModel]) -> list[HistoryBlock | None]:
        """What the copy knows of each event's history: hotlist hits of a read (no
        trail, no linked incidents), live markers of a call's or an incident's address
        and persons (no call or incident history); None for other kinds."""
        if kind is EventKind.ANPR:
            return [self._read(cast(PlateReadV1, e)) for e in events]
        if kind is EventKind.CALL:
            return [self._call(cast(CallV1, e)) for e in events]
        if kind is EventKind.INCIDENT:
            return [self._incident(cast(IncidentEventV1, e)) for e in events]
        return [None for _ in events]

    def _read(self, read: PlateReadV1) -> HistoryBlock:
        raw = self.maps.field(self.keys.hotlist, fold_misreads(normalise_vrm(read.vrm)))
        return {"hotlist": _hotlist_hits(read, raw)}

    def _markers(self, address: str | None, persons: Sequence[str]) -> list[Marker]:
        found = []
        if address:
            found += _decode_entries(
                self.maps.field(self.keys.address_markers, normalise_address(address))
            )
        for person in persons:
            found += _decode_entries(self.maps.field(self.keys.person_markers, person))
        return cast(list[Marker], found)

    def _call(self, call: CallV1) -> HistoryBlock:
        persons = [call.caller.person_id] if call.caller and call.caller.person_id else []
        markers = self._markers(call.location.address, persons)
        return {"markers": [m for m in markers if _live(dict(m), call.received_at)]}

    def _incident(self, inc: IncidentEventV1) -> HistoryBlock:
        markers = self._markers(inc.location.address, [p.person_id for p in inc.persons or []])
        return {"markers": [m for m in markers if _live(dict(m), inc.at)]}
