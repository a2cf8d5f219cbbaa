"""The engine's state, by what it stores, each behind a small protocol:

==================  ==========================================  ===========================
store               holds                                       Redis / memory
==================  ==========================================  ===========================
``HistoryStore``    call and incident logs, ANPR trails, open   ``RedisHistory`` /
                    incidents' vehicles (enrichment from them)  ``MemoryHistory``
``ReferenceStore``  hotlists, markers, geofences, operator      ``RedisReference`` /
                    places, officers' last pings                ``MemoryReference``
``SnoozeStore``     analysts' snoozes                           ``RedisSnoozes`` /
                                                                ``MemorySnoozes``
``AlertGroupStore`` open alerts of repeated hits                ``RedisAlertGroups`` /
                                                                ``MemoryAlertGroups``
==================  ==========================================  ===========================

``Stores`` bundles one of each for the pipeline: ``RedisStores.from_url`` for a
worker (one client shared by the four), ``Stores.memory()`` for unit tests of the
pipeline and anything else that runs without a server. The memory stores keep what
Redis keeps, in the same layout where the history enricher reads it (a hotlist
field is the same JSON map), so the pipeline gives the same blocks on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from enrichers.alert_groups import AlertGroupStore, GroupHit, OpenAlert, RedisAlertGroups
from enrichers.event_index import EventIndex
from enrichers.history import (
    TRAIL_KEEP,
    TRAIL_SHOWN,
    History,
    ReadsAnswer,
    RedisHistory,
    Shared,
    VehicleChange,
)
from enrichers.keys import Keys
from enrichers.redis_io import connect
from enrichers.reference import (
    LAYER_KINDS,
    RedisReference,
    json_hash,
    layer_entry,
    lookup_entry,
    officer_state,
)
from enrichers.snoozes import RedisSnoozes
from rtic.enrichment import HistoryBlock
from rtic.schemas import EventKind, OfficerLocationV1, ReferenceChangeV1

__all__ = [
    "AlertGroupStore",
    "HistoryStore",
    "MemoryAlertGroups",
    "MemoryHistory",
    "MemoryReference",
    "MemorySnoozes",
    "RedisStores",
    "ReferenceStore",
    "SnoozeStore",
    "Stores",
]


class HistoryStore(Protocol):
    """History: the pipeline's view of it (``enrichers.history.History``)."""

    async def enrich(
        self,
        kind: EventKind,
        events: Sequence[BaseModel],
        emerging: tuple[float, float] | None = None,
    ) -> list[HistoryBlock | None]:
        """Each event's ``history`` block (None for kinds without one), recording the
        batch as it goes, in one round trip."""
        ...


class ReferenceStore(Protocol):
    """Reference data and officers' positions (``enrichers.reference``)."""

    async def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Apply hotlist, marker, geofence and place changes, in order."""
        ...

    async def layer_versions(self, kinds: Sequence[str]) -> list[int]:
        """The change counters of live layers (``geofence``, ``place``)."""
        ...

    async def layer(self, kind: str) -> tuple[int, dict[str, dict[str, Any]]]:
        """A live layer (id -> entry) and its version."""
        ...

    async def record_officers(self, pings: Sequence[OfficerLocationV1]) -> None:
        """Keep each officer's last ping."""
        ...

    async def officer_states(self) -> dict[str, dict[str, Any]]:
        """Every officer's last ping."""
        ...


class SnoozeStore(Protocol):
    """Analysts' snoozes (``enrichers.snoozes``)."""

    async def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Apply snooze upserts and deletes, in order."""
        ...

    async def version(self) -> int:
        """The layer's change counter."""
        ...

    async def entries(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """Every snooze (id -> entry) and the layer's version."""
        ...


# ---- in memory ----------------------------------------------------------------------


class EntryMaps:
    """Hashes of JSON maps of entries kept by id, as ``enrichers.lua.UPSERT_ENTRY``
    keeps them in Redis: a field is ``{entry id: entry JSON}``, an index finds an
    entry's field by its id (so an upsert moves it, a delete removes it)."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[str, dict[str, str]]] = {}  # hash -> field -> entries
        self.indexes: dict[str, dict[str, tuple[str, str]]] = {}  # index -> id -> place

    def upsert(self, index: str, entry_id: str, map_key: str, field: str, doc: str) -> None:
        """Put an entry in ``map_key[field]`` (``map_key`` empty: remove it)."""
        where = self.indexes.setdefault(index, {})
        old = where.pop(entry_id, None)
        if old is not None:
            entries = self.maps.get(old[0], {}).get(old[1], {})
            entries.pop(entry_id, None)
            if not entries:
                self.maps.get(old[0], {}).pop(old[1], None)
        if not map_key:
            return
        self.maps.setdefault(map_key, {}).setdefault(field, {})[entry_id] = doc
        where[entry_id] = (map_key, field)

    def field(self, map_key: str, field: str) -> bytes | None:
        """A field as HMGET answers it: the JSON map, or None."""
        entries = self.maps.get(map_key, {}).get(field)
        return orjson.dumps(entries) if entries else None


class MemoryReference:
    """Reference data and officers' positions in memory."""

    def __init__(self, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self.entries = EntryMaps()  # hotlists and markers (and, for history, vehicles)
        self.layers: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in LAYER_KINDS}
        self.versions = dict.fromkeys(LAYER_KINDS, 0)
        self.officers: dict[str, bytes] = {}

    async def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        for ch in changes:
            if ch.kind in LAYER_KINDS:
                _change_layer(self.layers[ch.kind], ch)
                self.versions[ch.kind] += 1
                continue
            index = self.keys.hotlist_index if ch.kind == "hotlist" else self.keys.marker_index
            args = ("", "", "") if ch.op == "delete" else lookup_entry(ch, self.keys)
            self.entries.upsert(index, ch.id, *args)

    async def layer_versions(self, kinds: Sequence[str]) -> list[int]:
        return [self.versions.get(kind, 0) for kind in kinds]

    async def layer(self, kind: str) -> tuple[int, dict[str, dict[str, Any]]]:
        return self.versions.get(kind, 0), dict(self.layers.get(kind, {}))

    async def record_officers(self, pings: Sequence[OfficerLocationV1]) -> None:
        for ping in pings:
            self.officers[ping.officer_id] = officer_state(ping)

    async def officer_states(self) -> dict[str, dict[str, Any]]:
        return json_hash(self.officers)


def _change_layer(layer: dict[str, dict[str, Any]], change: ReferenceChangeV1) -> None:
    if change.op == "delete":
        layer.pop(change.id, None)
    else:
        layer[change.id] = orjson.loads(layer_entry(change))


class MemorySnoozes:
    """Snoozes in memory."""

    def __init__(self) -> None:
        self.layer: dict[str, dict[str, Any]] = {}
        self.changes = 0

    async def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        for ch in changes:
            _change_layer(self.layer, ch)
            self.changes += 1

    async def version(self) -> int:
        return self.changes

    async def entries(self) -> tuple[int, dict[str, dict[str, Any]]]:
        return self.changes, dict(self.layer)


class MemoryHistory(History):
    """History in memory: one process's calls, incidents and trails, reading hotlists
    and markers from a ``MemoryReference``. Nothing is shared or trimmed by age of
    logging (a process's lifetime is short); the history window itself holds."""

    def __init__(self, reference: MemoryReference, *, history_days: int = 28) -> None:
        super().__init__(reference.keys, history_days=history_days)
        self.entries = reference.entries
        self.trails: dict[str, list[str]] = {}  # trail key -> read JSON, newest first

    async def _reads(self, entries: list[tuple[str, str, str]]) -> ReadsAnswer:
        keys, maps = self.keys, self.entries
        out: ReadsAnswer = []
        for i, (plate, trail_key, doc) in enumerate(entries, start=1):
            hot = maps.field(keys.hotlist, plate)
            vehicles = maps.field(keys.incident_vehicles, plate)
            trail = self.trails.setdefault(trail_key, [])
            if hot or vehicles:
                out.append([i, hot or "", vehicles or "", trail[: TRAIL_SHOWN + 1]])
            trail.insert(0, doc)
            if len(trail) > 2 * TRAIL_KEEP:
                del trail[TRAIL_KEEP:]
        return out

    async def _share(
        self,
        addresses: list[str],
        persons: list[str],
        log: EventIndex,
        rows: list[tuple[Any, ...]],
        vehicles: Sequence[VehicleChange] = (),
    ) -> Shared:
        keys, maps = self.keys, self.entries
        for entry_id, plate, doc in vehicles:
            target = (keys.incident_vehicles, plate) if doc else ("", "")
            maps.upsert(keys.incident_vehicles_index, entry_id, *target, doc)
        return (
            [maps.field(keys.address_markers, a) for a in addresses],
            [maps.field(keys.person_markers, p) for p in persons],
            0,  # the index is the whole log here: nothing to forget by logging time
        )


class MemoryAlertGroups:
    """Open alerts in memory, with the rules of ``enrichers.lua.GROUP``."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}

    async def fold(self, hits: Sequence[GroupHit]) -> list[OpenAlert]:
        out = []
        for h in hits:
            window = max(int(h.window_s), 1)
            group = self.groups.get(h.group)
            if group is not None and h.at - group["last"] > window:
                group = None  # the window passed on the event clock: a new alert
            if group is None:
                group = self.groups[h.group] = {
                    "alert_id": h.alert_id,
                    "version": 1,
                    "first": h.at,
                    "last": h.at,
                    "sources": {h.source},
                }
            elif h.source not in group["sources"]:
                group["sources"].add(h.source)
                group["version"] += 1
                group["last"] = max(group["last"], h.at)
            out.append(
                OpenAlert(
                    group["alert_id"], group["version"], len(group["sources"]), group["first"]
                )
            )
        return out


# ---- the bundle ---------------------------------------------------------------------


@dataclass(frozen=True)
class Stores:
    """One store of each kind, as the pipeline uses them."""

    history: HistoryStore
    reference: ReferenceStore
    snoozes: SnoozeStore
    alert_groups: AlertGroupStore

    @classmethod
    def memory(cls, *, history_days: int = 28) -> Stores:
        """Stores in memory (unit tests, tryouts without a server)."""
        reference = MemoryReference()
        return cls(
            MemoryHistory(reference, history_days=history_days),
            reference,
            MemorySnoozes(),
            MemoryAlertGroups(),
        )

    async def close(self) -> None:
        """Release what the stores hold (nothing, in memory)."""


@dataclass(frozen=True)
class RedisStores(Stores):
    """The four stores on one Redis client."""

    redis: Any
    keys: Keys

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "", history_days: int = 28, timeout: float = 1.0
    ) -> RedisStores:
        """Stores on the Redis at ``url``, keys under ``prefix``; every command bounded by
        ``timeout`` seconds."""
        client, keys = connect(url, timeout), Keys(prefix)
        return cls(
            RedisHistory(client, keys, history_days=history_days, timeout=timeout),
            RedisReference(client, keys, timeout=timeout),
            RedisSnoozes(client, keys, timeout=timeout),
            RedisAlertGroups(client, keys, timeout=timeout),
            client,
            keys,
        )

    async def close(self) -> None:
        await self.redis.aclose()
