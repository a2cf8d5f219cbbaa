"""History enrichment: calls and incidents at an address (and calls by a caller) and
within 50 m in the last 28 days, warning markers, a plate's hotlist hits, the open
incidents it is a vehicle of, and its recent ANPR trail.

``History`` builds the ``history`` part of each event's enrichment block from what its
storage answers, a batch at a time. What the storage answers is the same whether it
is Redis (``RedisHistory``: one script call per batch, never one per event) or memory
(``enrichers.stores.MemoryHistory``, for tests and tryouts), so both give the same
blocks. Interpreting the answers is pure (``_hotlist_hits``, ``_trail``, the call and
incident indexes of ``enrichers.event_index``) and tested without a server.

Calls and incidents are logged where every worker can read them (Redis streams, see
``enrichers/keys.py``) and indexed in memory; hotlists and markers are written by the
reference store (``enrichers.reference``) and read here, in the same round trip as
the batch's own writes.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from pydantic import BaseModel

import enrichers.lua as lua
from enrichers.event_index import EventIndex, EventRecord
from enrichers.keys import Keys, normalise_address
from enrichers.redis_io import call_script, queue_script, run_pipeline
from rtic.enrichment import HistoryBlock, HotlistHit, LinkedIncident, TrailRead
from rtic.plates import canonical_vrm, fold_misreads, normalise_vrm
from rtic.schemas import CallV1, EventKind, IncidentEventV1, PlateReadV1

RECENT = 5  # how many recent ids an enrichment block lists
LOG_CHUNK = 5_000  # call or incident log entries read at a time when a worker starts
TRAIL_KEEP = 20  # reads kept per plate (the list is trimmed back to this past twice as many)
TRAIL_TTL_S = 7 * 86_400  # a plate's trail expires about a week after its reads stop
TRAIL_SHOWN = 5
NEARBY_RADIUS_M = 50


# ---- what stored entries mean (pure) ---------------------------------------------------


def _decode_entries(raw: bytes | str | None) -> list[dict[str, Any]]:
    """The entries of one hotlist or marker field: a JSON map of id -> entry JSON."""
    if not raw:
        return []
    try:
        entries = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(entries, dict):  # valid JSON but not a map: as bad as broken JSON
        return []
    out = []
    for v in entries.values():
        try:
            entry = orjson.loads(v) if isinstance(v, str) else v
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def _live(entry: dict[str, Any], at: datetime) -> bool:
    exp = entry.get("expires_at")
    if not exp:
        return True
    try:
        return datetime.fromisoformat(exp) > at
    except (TypeError, ValueError):
        return True


def _hotlist_hits(read: PlateReadV1, raw: bytes | str | None) -> list[HotlistHit]:
    """Live hotlist entries for a read, each marked ``match: exact | misread``."""
    if not raw:
        return []
    plate = normalise_vrm(read.vrm)
    hits = []
    for entry in _decode_entries(raw):
        if not _live(entry, read.read_at):
            continue
        exact = normalise_vrm(str(entry.get("vrm", ""))) == plate
        hits.append({**entry, "match": "exact" if exact else "misread"})
    hits.sort(key=lambda e: (e["match"] != "exact", str(e.get("id", ""))))
    return cast(list[HotlistHit], hits)


def _trail(raw: list[Any] | None, read_id: str) -> list[TrailRead]:
    """The plate's previous reads, newest first, this read and redeliveries left out."""
    out, seen = [], {read_id}
    for item in raw or []:
        try:
            r = orjson.loads(item)
        except orjson.JSONDecodeError:
            continue
        if r.get("read_id") in seen:
            continue
        seen.add(r.get("read_id"))
        out.append(r)
        if len(out) >= TRAIL_SHOWN:
            break
    return out


def _as_list(value: Any) -> list[Any]:
    """Lua's cjson writes an empty array as ``{}``: read either as a list."""
    return value if isinstance(value, list) else []


@functools.lru_cache(maxsize=65_536)
def _address_key(address: str) -> str:
    """``normalise_address``, remembered: the same addresses call again and again."""
    return normalise_address(address)


def _logged_record(row: Any, logged_ms: int) -> EventRecord | None:
    """A call or incident record from a log entry's row, None if the row is not one."""
    if not (isinstance(row, list) and len(row) == 7):
        return None
    ident, ms, address, person, lat, lon, category = row
    if not (
        isinstance(ident, str)
        and isinstance(ms, int)
        and isinstance(address, str)
        and isinstance(person, str)
        and isinstance(lat, int | float)
        and isinstance(lon, int | float)
        and isinstance(category, str)
    ):
        return None
    return EventRecord(ident, ms, address, person, float(lat), float(lon), category, logged_ms)


def _call_record(call: CallV1) -> EventRecord:
    loc = call.location
    return EventRecord(
        call.call_id,
        round(call.received_at.timestamp() * 1000),
        _address_key(loc.address) if loc.address else "",
        call.caller.person_id if call.caller and call.caller.person_id else "",
        loc.lat,
        loc.lon,
        call.category,
    )


def _incident_record(incident: IncidentEventV1) -> EventRecord:
    """An incident as its log and index keep it (no person: markers cover persons)."""
    loc = incident.location
    return EventRecord(
        incident.incident_id,
        round(incident.at.timestamp() * 1000),
        _address_key(loc.address) if loc.address else "",
        "",
        loc.lat,
        loc.lon,
        incident.category,
    )


# A vehicle of an incident as the open incidents' vehicles keep it: (entry id, canonical
# plate, entry JSON; '' when the incident closed and the entry goes).
VehicleChange = tuple[str, str, str]


def _vehicle_changes(incidents: Sequence[IncidentEventV1]) -> list[VehicleChange]:
    """The vehicles of open incidents, for plate reads: kept while the incident is open,
    removed when it closes."""
    out = []
    for inc in incidents:
        for vehicle in inc.vehicles or []:
            plate = canonical_vrm(vehicle.vrm)
            entry_id = f"{inc.incident_id}|{plate}"
            if inc.event == "closed":
                out.append((entry_id, plate, ""))
                continue
            doc = orjson.dumps(
                {
                    "id": entry_id,
                    "incident_id": inc.incident_id,
                    "vrm": vehicle.vrm,
                    "role": vehicle.role,
                    "category": inc.category,
                    "grade": inc.grade,
                    "units": inc.units or [],
                    "at": inc.at.isoformat(),
                }
            ).decode()
            out.append((entry_id, plate, doc))
    return out


# A round trip's answer for calls or incidents: the address markers (a field per
# event), the person markers (a field per person asked), when the log took the batch
# (its entry id's time in ms; 0 for nothing logged).
Shared = tuple[list[Any], list[Any], int]
# The reads' answer: for each read with a hotlist or open-incident field, [its position
# from 1, hotlist field, vehicles field, the plate's previous reads].
ReadsAnswer = list[list[Any]]


class History:
    """History for batches of events, from whatever storage a subclass talks to.

    A subclass answers two round trips (``_share``, ``_reads``); this class indexes
    calls and incidents (``enrichers.event_index``) and turns the answers into blocks.
    """

    def __init__(self, keys: Keys, *, history_days: int = 28) -> None:
        self.keys = keys
        self.window_s = history_days * 86_400
        self.calls = EventIndex(self.window_s, NEARBY_RADIUS_M, RECENT)
        self.incidents = EventIndex(self.window_s, NEARBY_RADIUS_M, RECENT)
        self._lock = asyncio.Lock()  # one batch of calls or incidents at a time

    async def enrich(
        self,
        kind: EventKind,
        events: Sequence[BaseModel],
        emerging: tuple[float, float] | None = None,
    ) -> list[HistoryBlock | None]:
        """Everything history knows about a batch of one kind, in one round trip.

        Per event, its ``history`` block: hotlist hits, open incidents' vehicles and
        the ANPR trail for reads; call history, nearby calls and incidents and markers
        for calls; markers and nearby history for incidents (see ``_enrich_calls``,
        ``_enrich_incidents``). Other kinds have none (None). With ``emerging``
        (radius in metres, window in seconds), each call's block also lists the other
        calls within that radius and window (``recent_calls_nearby``).
        """
        if not events:
            return []
        if kind is EventKind.CALL:
            return await self._enrich_calls(cast(Sequence[CallV1], events), emerging)
        if kind is EventKind.INCIDENT:
            return await self._enrich_incidents(cast(Sequence[IncidentEventV1], events))
        if kind is EventKind.ANPR:
            return await self._enrich_reads(cast(Sequence[PlateReadV1], events))
        return [None for _ in events]

    # ---- the storage's round trips ---------------------------------------------------

    async def _share(
        self,
        addresses: list[str],
        persons: list[str],
        log: EventIndex,
        rows: list[tuple[Any, ...]],
        vehicles: Sequence[VehicleChange] = (),
    ) -> Shared:
        """Read the markers of ``addresses`` and ``persons``, log ``rows`` (records of
        ``log``'s kind; none: nothing logged) and apply the open incidents' vehicle
        changes, in one round trip. Called holding ``_lock``."""
        raise NotImplementedError

    async def _reads(self, entries: list[tuple[str, str, str]]) -> ReadsAnswer:
        """Hotlist and vehicle fields and previous reads of each read's plate (see
        ``ReadsAnswer``), then each read pushed onto its plate's trail; one round trip."""
        raise NotImplementedError

    # ---- blocks ------------------------------------------------------------------------

    async def _enrich_reads(self, reads: Sequence[PlateReadV1]) -> list[HistoryBlock | None]:
        """Hotlist hits, open incidents' vehicles and, for a listed or linked plate, its
        trail. The reads go in as one JSON argument and come back as one JSON string,
        so the cost per read on this side is an ``orjson`` item."""
        trail_key, dumps = self.keys.trail, orjson.dumps
        entries = []
        for r in reads:  # inline: a function call per read shows in the benchmark
            plate = normalise_vrm(r.vrm)
            doc = {
                "read_id": r.read_id,
                "camera_id": r.camera_id,
                "at": r.read_at.isoformat(),
                "lat": r.lat,
                "lon": r.lon,
            }
            entries.append((fold_misreads(plate), trail_key(plate), dumps(doc).decode()))
        answer = await self._reads(entries)
        out: list[HistoryBlock | None] = [{"hotlist": []} for _ in reads]
        for i, hot, vehicles, previous in answer:
            read = reads[i - 1]
            hits = _hotlist_hits(read, hot or None)
            block: HistoryBlock = {"hotlist": hits}
            linked = cast(list[LinkedIncident], _decode_entries(vehicles or None))
            if linked:
                block["linked_incidents"] = linked
            if hits or linked:
                block["trail"] = _trail(_as_list(previous), read.read_id)
            out[i - 1] = block
        return out

    async def _enrich_calls(
        self, calls: Sequence[CallV1], emerging: tuple[float, float] | None
    ) -> list[HistoryBlock | None]:
        """Markers, call history from the call index (calls at the address, by the
        caller, within 50 m, and the emerging-incident search) and incidents at the
        address and within 50 m from the incident index, after the round trip that
        logs the batch."""
        records = [_call_record(c) for c in calls]
        async with self._lock:
            addr_markers, person_markers, logged_ms = await self._share(
                [r.address for r in records],
                [r.person for r in records],
                self.calls,
                [r.fields() for r in records],
            )
            for r in records:
                r.logged_ms = logged_ms
            blocks = self.calls.add_and_ask(records, emerging)
            prior = self.incidents.ask(records)
        out: list[HistoryBlock | None] = []
        for i, (block, incidents) in enumerate(zip(blocks, prior, strict=True)):
            if "at_address" in incidents:
                block["incidents_at_address"] = incidents["at_address"]
            block["incidents_nearby"] = incidents["nearby"]
            a, p = addr_markers[i], person_markers[i]
            if a is None and p is None:
                block["markers"] = []
            else:
                at = calls[i].received_at
                markers = _decode_entries(a) + _decode_entries(p)
                block["markers"] = [m for m in markers if _live(m, at)]
            out.append(cast(HistoryBlock, block))
        return out

    async def _enrich_incidents(
        self, incidents: Sequence[IncidentEventV1]
    ) -> list[HistoryBlock | None]:
        """Markers on the address and persons; other incidents within 50 m (``nearby``)
        and at the address; calls within 50 m and at the address: in the 28 days up to
        each event's time. Created events are logged, and the open incidents' vehicles
        kept up to date, in the same round trip."""
        records = [_incident_record(inc) for inc in incidents]
        created = [r for r, inc in zip(records, incidents, strict=True) if inc.event == "created"]
        persons = [[p.person_id for p in inc.persons or []] for inc in incidents]
        async with self._lock:
            addr_markers, person_markers, logged_ms = await self._share(
                [r.address for r in records],
                [p for ps in persons for p in ps],
                self.incidents,
                [r.fields() for r in created],
                _vehicle_changes(incidents),
            )
            for r in created:
                r.logged_ms = logged_ms
            self.incidents.add(created)
            own = self.incidents.ask(records)
            calls = self.calls.ask(records)
        out: list[HistoryBlock | None] = []
        pos = 0
        for i, inc in enumerate(incidents):
            found = _decode_entries(addr_markers[i])
            for _ in persons[i]:
                found += _decode_entries(person_markers[pos])
                pos += 1
            block: HistoryBlock = {
                "markers": [m for m in found if _live(m, inc.at)],  # type: ignore[misc]
                "nearby": own[i]["nearby"],
                "calls_nearby": calls[i]["nearby"],
            }
            if "at_address" in own[i]:
                block["incidents_at_address"] = own[i]["at_address"]
                block["calls_at_address"] = calls[i]["at_address"]
            out.append(block)
        return out


def _queue_xrange(pipe: Any, key: str, start: str) -> None:
    pipe.xrange(key, min=start, count=LOG_CHUNK)


class _SharedLog:
    """A history log in Redis (a stream every worker appends its batches to and reads
    the others' from) and this worker's index of it."""

    def __init__(self, key: str, index: EventIndex) -> None:
        self.key = key
        self.index = index
        self.seen: str | None = None  # the last entry indexed; None: not read yet


class RedisHistory(History):
    """History kept in Redis and shared by every worker (see ``enrichers/keys.py``)."""

    def __init__(
        self, client: Any, keys: Keys, *, history_days: int = 28, timeout: float = 1.0
    ) -> None:
        super().__init__(keys, history_days=history_days)
        self.redis = client
        self.timeout = timeout
        self.log_keep_s = self.window_s + 86_400  # wall-clock time a log keeps an entry
        self._logs = (
            _SharedLog(keys.call_log, self.calls),
            _SharedLog(keys.incident_log, self.incidents),
        )
        self._reads_script = client.register_script(lua.READS)
        self._logs_script = client.register_script(lua.LOGS_ROUND)
        self._upsert_script = client.register_script(lua.UPSERT_ENTRY)

    async def _reads(self, entries: list[tuple[str, str, str]]) -> ReadsAnswer:
        raw = await call_script(
            self._reads_script,
            (self.keys.hotlist, self.keys.incident_vehicles),
            (orjson.dumps(entries), TRAIL_KEEP, TRAIL_TTL_S, TRAIL_SHOWN + 1),
            self.timeout,
        )
        return _as_list(orjson.loads(raw))

    async def _share(
        self,
        addresses: list[str],
        persons: list[str],
        log: EventIndex,
        rows: list[tuple[Any, ...]],
        vehicles: Sequence[VehicleChange] = (),
    ) -> Shared:
        """One script call (so atomic) that reads the markers, reads what other
        workers appended to the call and incident logs since this worker last looked
        (indexed here), and appends ``rows`` to the log as one entry; the vehicle
        changes ride in the same pipeline. Each log is trimmed to ``log_keep_s`` of
        wall-clock time, and so are the indexes."""
        for shared in self._logs:
            if shared.seen is None:
                await self._read_log(shared)
        (own,) = [shared for shared in self._logs if shared.index is log]
        keep_from = int(time.time() * 1000) - self.log_keep_s * 1000
        args = (
            self.keys.address_markers,
            self.keys.person_markers,
            orjson.dumps([addresses, persons]),
            orjson.dumps([[shared.key, shared.seen] for shared in self._logs]),
            own.key,
            orjson.dumps(rows) if rows else "",
            keep_from,
        )
        if vehicles:

            def fill(pipe: Any) -> None:
                queue_script(pipe, self._logs_script, (), args)
                self._queue_vehicles(pipe, vehicles)

            scripts = (self._logs_script, self._upsert_script)
            answer = (await run_pipeline(self.redis, fill, self.timeout, scripts=scripts))[0]
        else:
            answer = await call_script(self._logs_script, (), args, self.timeout)
        addr_markers, person_markers, others, logged = answer
        for shared, entries in zip(self._logs, others, strict=True):
            self._index_log_entries(shared, entries)
        logged_ms = 0
        if rows:
            own.seen = logged.decode() if isinstance(logged, bytes) else str(logged)
            logged_ms = int(own.seen.split("-", 1)[0])
        for shared in self._logs:
            shared.index.forget_logged_before(keep_from)
        return addr_markers, person_markers, logged_ms

    def _queue_vehicles(self, pipe: Any, vehicles: Sequence[VehicleChange]) -> None:
        index, hash_key = self.keys.incident_vehicles_index, self.keys.incident_vehicles
        for entry_id, plate, doc in vehicles:
            args = (entry_id, hash_key, plate, doc) if doc else (entry_id, "", "", "")
            queue_script(pipe, self._upsert_script, (index,), args)

    async def _read_log(self, log: _SharedLog) -> None:
        """Index a whole log (a worker's first batch of calls or incidents), in chunks."""
        start = "-"
        while True:
            (entries,) = await run_pipeline(
                self.redis,
                functools.partial(_queue_xrange, key=log.key, start=start),
                self.timeout,
            )
            self._index_log_entries(log, entries)
            if len(entries) < LOG_CHUNK:
                return
            start = f"({log.seen}"

    @staticmethod
    def _index_log_entries(log: _SharedLog, entries: Sequence[Any]) -> None:
        """Index the records of log entries (other workers' batches, or all at start)."""
        for entry_id, fields in entries:
            ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            logged_ms = int(ident.split("-", 1)[0])
            if isinstance(fields, list):  # from a script: [field, value, ...]
                fields = dict(zip(fields[::2], fields[1::2], strict=False))
            raw = fields.get(b"c", fields.get("c"))
            try:
                rows = orjson.loads(raw) if raw is not None else []
            except orjson.JSONDecodeError:
                rows = []
            found = (
                [_logged_record(row, logged_ms) for row in rows] if isinstance(rows, list) else []
            )
            log.index.add([r for r in found if r is not None])  # None: not a record
            log.seen = ident
        if log.seen is None:
            log.seen = "0-0"
