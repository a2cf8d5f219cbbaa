"""History enrichment, kept in Redis: hotlists, warning markers, calls and incidents
at an address (and calls by a caller) and within 50 m in the last 28 days, a plate's
recent ANPR trail, and officers' last pings (for nearest units).

The key layout is in ``enrichers/keys.py``. ``HistoryStore.enrich`` works on a
whole batch with one pipelined round trip, never one per event (small Lua
scripts keep a look-up and its write in one command). Interpreting what Redis
returned is pure (``_hotlist_hits``, ``_trail``, and the call and incident indexes
of ``enrichers.event_index``) so it is tested without a server.

If Redis does not answer within the settings' timeout a method raises
``ServiceError`` (worth retrying); if it answers with an error, ``EnrichmentError``
(not worth retrying). Either way the stream marks the batch
``enrichment.partial`` and goes on.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError, ResponseError

from enrichers.event_index import EventIndex, EventRecord
from enrichers.keys import Keys, normalise_address
from rtic.errors import EnrichmentError, ServiceError
from rtic.plates import canonical_vrm, fold_misreads, normalise_vrm
from rtic.schemas import (
    AddressMarkerV1,
    CallV1,
    EventKind,
    HotlistEntryV1,
    IncidentEventV1,
    OfficerLocationV1,
    PersonMarkerV1,
    PlateReadV1,
    ReferenceChangeV1,
)

RECENT = 5  # how many recent ids an enrichment block lists
LOG_CHUNK = 5_000  # call or incident log entries read at a time when a worker starts
# Reference kinds kept as one versioned hash each (id -> entry JSON, plus a change
# counter): workers hold the whole layer in memory and reload it when the counter moves.
VERSIONED_KINDS = ("geofence", "place", "snooze")


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


def _hotlist_hits(read: PlateReadV1, raw: bytes | str | None) -> list[dict[str, Any]]:
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
    return hits


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRAIL_KEEP = 20  # reads kept per plate (the list is trimmed back to this past twice as many)
TRAIL_TTL_S = 7 * 86_400  # a plate's trail expires about a week after its reads stop
TRAIL_SHOWN = 5
NEARBY_RADIUS_M = 50

Finish = Callable[[list[Any]], list[dict[str, Any]]]


class _Batch:
    """A pipeline and the position of each command's reply in it."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.size = 0

    def add(self, command: str, *args: Any, **kwargs: Any) -> int:
        getattr(self.pipe, command)(*args, **kwargs)
        self.size += 1
        return self.size - 1


def _trail(raw: list[Any] | None, read_id: str) -> list[dict[str, Any]]:
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


def _json_hash(raw: dict[Any, Any] | None) -> dict[str, dict[str, Any]]:
    """A Redis hash of JSON objects, decoded; a value that is not a JSON object is skipped."""
    out = {}
    for k, v in (raw or {}).items():
        try:
            value = orjson.loads(v)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):  # anything else is as unusable as broken JSON
            out[k.decode() if isinstance(k, bytes) else k] = value
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


class _SharedLog:
    """A history log in Redis (a stream every worker appends its batches to and reads
    the others' from) and this worker's index of it."""

    def __init__(self, key: str, index: EventIndex) -> None:
        self.key = key
        self.index = index
        self.seen: str | None = None  # the last entry indexed; None: not read yet


# Move entry ARGV[1] to field ARGV[3] of map hash ARGV[2] (or delete it when ARGV[2] is
# empty), keeping the index KEYS[1] (id -> map key \x1f field) right. Atomic. The map
# keys are passed as arguments because an entry's old place is only known from the
# index: fine on one Redis server (not Redis Cluster).
# A batch of reads in one command. KEYS[1] the hotlist hash, KEYS[2] the vehicles of open
# incidents (same layout: canonical plate -> JSON map of entries); ARGV[1] a JSON array of
# [canonical plate, trail key, read JSON]; ARGV[2..4] keep, ttl, shown. Both hashes are
# read for the whole batch at once (HMGET); for each read with a hotlist or
# open-incident field, the answer lists [its position, the fields ('' if none), the
# plate's previous reads];
# then the read is pushed onto its trail (trimmed past twice `keep`, so rarely) and the
# trail's expiry set on its first read and refreshed every 8th. The answer is one JSON string. Trail keys are named in ARGV,
# not KEYS, to keep the call small: fine on one Redis server, not on Redis Cluster.
_READS = r"""
local reads = cjson.decode(ARGV[1])
local keep, ttl, shown = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local plates = {}
for i, item in ipairs(reads) do plates[i] = item[1] end
local function hmget(key)
  local out = {}
  for s = 1, #plates, 4000 do
    local e = math.min(s + 3999, #plates)
    local got = redis.call('HMGET', key, unpack(plates, s, e))
    for j = 1, e - s + 1 do out[s + j - 1] = got[j] end
  end
  return out
end
local hot, linked = hmget(KEYS[1]), hmget(KEYS[2])
local out = {}
for i, item in ipairs(reads) do
  local h, v = hot[i], linked[i]
  if h or v then out[#out + 1] = {i, h or '', v or '', redis.call('LRANGE', item[2], 0, shown - 1)} end
  local n = redis.call('LPUSH', item[2], item[3])
  if n > 2 * keep then redis.call('LTRIM', item[2], 0, keep - 1) end
  if n == 1 or n % 8 == 0 then redis.call('EXPIRE', item[2], ttl) end
end
return cjson.encode(out)
"""

# A batch of calls' or incidents' round trip, in one command (so atomic): the address
# and person markers (ARGV[1], ARGV[2]: hashes; ARGV[3]: JSON [[address keys], [person
# ids]]); the entries of each log in ARGV[4] (JSON [[log key, last id seen], ...]) after
# that id, what other workers appended since this one last looked; then, unless ARGV[6]
# is empty, the batch appended to log ARGV[5] as field c = ARGV[6], that log trimmed to
# ids from ARGV[7]. Answer: [address markers, person markers, [entries per log], the
# appended entry's id or ''].
_LOGS_ROUND = r"""
local asked = cjson.decode(ARGV[3])
local function hmget(key, fields)
  local out = {}
  for s = 1, #fields, 4000 do
    local e = math.min(s + 3999, #fields)
    local got = redis.call('HMGET', key, unpack(fields, s, e))
    for j = 1, #got do out[s + j - 1] = got[j] end
  end
  return out
end
local am, pm = hmget(ARGV[1], asked[1]), hmget(ARGV[2], asked[2])
local others = {}
for i, log in ipairs(cjson.decode(ARGV[4])) do
  others[i] = redis.call('XRANGE', log[1], '(' .. log[2], '+')
end
local id = ''
if ARGV[6] ~= '' then
  id = redis.call('XADD', ARGV[5], 'MINID', '~', ARGV[7], '*', 'c', ARGV[6])
end
return {am, pm, others, id}
"""

# Repeated hits of a rule, folded into one open alert. ARGV[1] a JSON array of
# {k: the group's key, a: the alert id a new group takes, s: the hit's source id,
# w: the window in seconds, t: the event time (epoch s)}. A group stays open while hits
# keep coming within the window of each other, on the event clock (so replays group
# as live streams do). A hit already counted (a redelivery) does
# not count again. Answer: JSON, per hit [alert id, version, hits, first time].
_GROUP = r"""
local items = cjson.decode(ARGV[1])
local out = {}
for i, it in ipairs(items) do
  local src = it.k .. ':src'
  local alert_id = redis.call('HGET', it.k, 'alert_id')
  local last = tonumber(redis.call('HGET', it.k, 'last'))
  if alert_id and last and it.t - last > it.w then
    redis.call('DEL', it.k, src)  -- the window passed on the event clock: a new alert
    alert_id = false
  end
  if not alert_id then
    alert_id = it.a
    redis.call('HSET', it.k, 'alert_id', it.a, 'version', 1, 'first', it.t, 'last', it.t)
    redis.call('SADD', src, it.s)
  elseif redis.call('SADD', src, it.s) == 1 then
    redis.call('HINCRBY', it.k, 'version', 1)
    if it.t > last then redis.call('HSET', it.k, 'last', it.t) end
  end
  -- Memory bound on the wall clock; the window itself is kept on the event clock above.
  redis.call('EXPIRE', it.k, 2 * it.w + 60)
  redis.call('EXPIRE', src, 2 * it.w + 60)
  out[i] = {alert_id, tonumber(redis.call('HGET', it.k, 'version')), redis.call('SCARD', src),
            tonumber(redis.call('HGET', it.k, 'first'))}
end
return cjson.encode(out)
"""

_UPSERT_ENTRY = r"""
local function remove(mapkey, field, id)
  local cur = redis.call('HGET', mapkey, field)
  if not cur then return end
  local t = cjson.decode(cur)
  t[id] = nil
  if next(t) == nil then redis.call('HDEL', mapkey, field)
  else redis.call('HSET', mapkey, field, cjson.encode(t)) end
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
local sep = old and string.find(old, '\31', 1, true)
if sep then
  remove(string.sub(old, 1, sep - 1), string.sub(old, sep + 1), ARGV[1])
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local cur = redis.call('HGET', ARGV[2], ARGV[3])
local t = {}
if cur then t = cjson.decode(cur) end
t[ARGV[1]] = ARGV[4]
redis.call('HSET', ARGV[2], ARGV[3], cjson.encode(t))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\31' .. ARGV[3])
return 1
"""


class HistoryStore:
    """Batched reads and writes of history and reference data in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        history_days: int = 28,
        timeout: float = 1.0,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.window_s = history_days * 86_400
        # Call and incident history: a shared log each in Redis, indexed here
        # (enrichers/event_index.py).
        self.calls = EventIndex(self.window_s, NEARBY_RADIUS_M, RECENT)
        self.incidents = EventIndex(self.window_s, NEARBY_RADIUS_M, RECENT)
        self.log_keep_s = self.window_s + 86_400  # wall-clock time a log keeps an entry
        self._call_log = _SharedLog(keys.call_log, self.calls)
        self._incident_log = _SharedLog(keys.incident_log, self.incidents)
        self._logs = (self._call_log, self._incident_log)
        self._logs_lock = asyncio.Lock()
        self.timeout = timeout

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "", history_days: int = 28, timeout: float = 1.0
    ) -> HistoryStore:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=0
        )
        return cls(client, Keys(prefix), history_days=history_days, timeout=timeout)

    async def close(self) -> None:
        await self.redis.aclose()

    async def _run(self, pipe: Any) -> list[Any]:
        try:
            async with asyncio.timeout(self.timeout):
                result: list[Any] = await pipe.execute()
                return result
        except ResponseError as exc:
            # Redis answered, but refused: retrying will not help.
            raise EnrichmentError(f"redis refused: {exc}") from exc
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceError(f"redis: {type(exc).__name__}: {exc}".strip(": ")) from exc

    # ---- one round trip per batch ----------------------------------------------------

    async def enrich(
        self,
        kind: EventKind,
        models: Sequence[BaseModel],
        now: datetime,
        emerging: tuple[float, float] | None = None,
    ) -> list[dict[str, Any]]:
        """Everything Redis knows about a batch of one kind, in one pipelined round trip.

        Returns, per event, the parts of its enrichment block that come from
        Redis: ``history`` (hotlist hits and ANPR trail for reads; call history,
        nearby calls and incidents and markers for calls; markers and nearby
        history for incidents: see ``_enrich_calls``, ``_enrich_incidents``). Officer pings are recorded; workers index them
        for nearest units (``enrichers.zones.Officers``). With ``emerging``
        (radius in metres, window in seconds), each call's block also lists the
        other calls within that radius and window (``recent_calls_nearby``).
        """
        if not models:
            return []
        if kind is EventKind.CALL:
            return await self._enrich_calls(models, emerging)  # type: ignore[arg-type]
        if kind is EventKind.INCIDENT:
            return await self._enrich_incidents(models)  # type: ignore[arg-type]
        batch = _Batch(self.redis.pipeline(transaction=False))
        if kind is EventKind.ANPR:
            finish = self._plan_reads(batch, models, now)  # type: ignore[arg-type]
        elif kind is EventKind.OFFICER_LOCATION:
            finish = self._plan_officers(batch, models)  # type: ignore[arg-type]
        else:
            return [{} for _ in models]
        results = await self._run(batch.pipe)
        return finish(results)

    async def hotlist_for_reads(self, reads: Sequence[PlateReadV1]) -> list[list[dict[str, Any]]]:
        """Live hotlist entries for each read (misread-tolerant): one HMGET for the batch."""
        if not reads:
            return []
        batch = _Batch(self.redis.pipeline(transaction=False))
        i = batch.add("hmget", self.keys.hotlist, [canonical_vrm(r.vrm) for r in reads])
        res = await self._run(batch.pipe)
        return [_hotlist_hits(read, r) for read, r in zip(reads, res[i], strict=True)]

    async def record_calls(self, calls: Sequence[CallV1]) -> list[dict[str, Any]]:
        """Record calls and return each one's history block (see ``enrich``)."""
        blocks = await self.enrich(EventKind.CALL, calls, calls[0].received_at if calls else _EPOCH)
        return [b["history"] for b in blocks]

    async def markers_for_incidents(
        self, incidents: Sequence[IncidentEventV1]
    ) -> list[dict[str, Any]]:
        """Each incident's history block (markers, nearby history; see ``enrich``)."""
        blocks = await self.enrich(
            EventKind.INCIDENT, incidents, incidents[0].at if incidents else _EPOCH
        )
        return [b["history"] for b in blocks]

    # ---- calls and incidents: the shared logs and the indexes ------------------------

    async def _enrich_calls(
        self, calls: Sequence[CallV1], emerging: tuple[float, float] | None
    ) -> list[dict[str, Any]]:
        """Markers, call history from the call index (calls at the address, by the
        caller, within 50 m, and the emerging-incident search) and incidents at the
        address and within 50 m from the incident index, after one script call (see
        ``_share``) that appends the batch to the call log."""
        records = [_call_record(c) for c in calls]
        async with self._logs_lock:
            addr_markers, person_markers, logged_ms = await self._share(
                [r.address for r in records],
                [r.person for r in records],
                self._call_log,
                [r.fields() for r in records],
            )
            for r in records:
                r.logged_ms = logged_ms
            blocks = self.calls.add_and_ask(records, emerging)
            prior = self.incidents.ask(records)
        out = []
        for i, (block, found) in enumerate(zip(blocks, prior, strict=True)):
            if "at_address" in found:
                block["incidents_at_address"] = found["at_address"]
            block["incidents_nearby"] = found["nearby"]
            a, p = addr_markers[i], person_markers[i]
            if a is None and p is None:
                block["markers"] = []
            else:
                at = calls[i].received_at
                found_markers = _decode_entries(a) + _decode_entries(p)
                block["markers"] = [m for m in found_markers if _live(m, at)]
            out.append({"history": block})
        return out

    async def _enrich_incidents(self, incidents: Sequence[IncidentEventV1]) -> list[dict[str, Any]]:
        """Markers on the address and persons; other incidents within 50 m
        (``nearby``) and at the address; calls within 50 m and at the address: in the
        28 days up to each event's time. Created events go into the incident log, in
        the same script call (see ``_share``); the open incidents' vehicles are kept
        up to date in the same round trip."""
        records = [_incident_record(inc) for inc in incidents]
        created = [r for r, inc in zip(records, incidents, strict=True) if inc.event == "created"]
        persons = [[p.person_id for p in inc.persons or []] for inc in incidents]
        async with self._logs_lock:
            addr_markers, person_markers, logged_ms = await self._share(
                [r.address for r in records],
                [p for ps in persons for p in ps],
                self._incident_log,
                [r.fields() for r in created],
                also=functools.partial(self._add_vehicle_changes, incidents=incidents),
            )
            for r in created:
                r.logged_ms = logged_ms
            self.incidents.add(created)
            own = self.incidents.ask(records)
            calls = self.calls.ask(records)
        out, pos = [], 0
        for i, inc in enumerate(incidents):
            found = _decode_entries(addr_markers[i])
            for _ in persons[i]:
                found += _decode_entries(person_markers[pos])
                pos += 1
            block: dict[str, Any] = {
                "markers": [m for m in found if _live(m, inc.at)],
                "nearby": own[i]["nearby"],
                "calls_nearby": calls[i]["nearby"],
            }
            if "at_address" in own[i]:
                block["incidents_at_address"] = own[i]["at_address"]
                block["calls_at_address"] = calls[i]["at_address"]
            out.append({"history": block})
        return out

    async def _share(
        self,
        addresses: list[str],
        persons: list[str],
        log: _SharedLog,
        rows: list[tuple[Any, ...]],
        also: Callable[[Any], None] | None = None,
    ) -> tuple[list[Any], list[Any], int]:
        """A batch's round trip, holding ``_logs_lock``: one script call (so atomic)
        that reads the address and person markers, reads what other workers appended
        to the call and incident logs since this worker last looked (indexed here), and
        appends ``rows`` to ``log`` as one entry (none when there are no rows). ``also``
        adds commands of its own to the same pipeline. Returns the markers and when
        the log took the rows (its entry id's time in ms; 0 for no rows). Each log is
        trimmed to ``log_keep_s`` of wall-clock time, and so are the indexes."""
        for shared in self._logs:
            if shared.seen is None:
                await self._read_log(shared)
        pipe = self.redis.pipeline(transaction=False)
        keep_from = int(time.time() * 1000) - self.log_keep_s * 1000
        pipe.eval(
            _LOGS_ROUND,
            0,
            self.keys.address_markers,
            self.keys.person_markers,
            orjson.dumps([addresses, persons]),
            orjson.dumps([[shared.key, shared.seen] for shared in self._logs]),
            log.key,
            orjson.dumps(rows) if rows else "",
            keep_from,
        )
        if also is not None:
            also(pipe)
        (addr_markers, person_markers, others, logged), *_ = await self._run(pipe)
        for shared, entries in zip(self._logs, others, strict=True):
            self._index_log_entries(shared, entries)
        logged_ms = 0
        if rows:
            log.seen = logged.decode() if isinstance(logged, bytes) else str(logged)
            logged_ms = int(log.seen.split("-", 1)[0])
        for shared in self._logs:
            shared.index.forget_logged_before(keep_from)
        return addr_markers, person_markers, logged_ms

    async def _read_log(self, log: _SharedLog) -> None:
        """Index a whole log (a worker's first batch of calls or incidents), in chunks."""
        start = "-"
        while True:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xrange(log.key, min=start, count=LOG_CHUNK)
            (entries,) = await self._run(pipe)
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

    # ---- planners: add commands to the batch, return how to read the replies ------------

    def _plan_reads(self, batch: _Batch, reads: Sequence[PlateReadV1], now: datetime) -> Finish:
        """One script call for the whole batch: hotlist look-ups, trails of listed plates, trail writes.

        The reads go in as one JSON argument and the answer comes back as one JSON
        string, so the cost per read on this side is an ``orjson`` item, not a
        Redis argument to encode and a reply to parse.
        """
        plates = [normalise_vrm(r.vrm) for r in reads]
        payload = orjson.dumps(
            [
                (
                    fold_misreads(plate),
                    self.keys.trail(plate),
                    orjson.dumps(
                        {
                            "read_id": r.read_id,
                            "camera_id": r.camera_id,
                            "at": r.read_at.isoformat(),
                            "lat": r.lat,
                            "lon": r.lon,
                        }
                    ).decode(),
                )
                for r, plate in zip(reads, plates, strict=True)
            ]
        )
        idx = batch.add(
            "eval",
            _READS,
            2,
            self.keys.hotlist,
            self.keys.incident_vehicles,
            payload,
            TRAIL_KEEP,
            TRAIL_TTL_S,
            TRAIL_SHOWN + 1,
        )

        def finish(res: list[Any]) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = [{"history": {"hotlist": []}} for _ in reads]
            # Only the reads with a hotlist or open-incident field: [position, hotlist
            # field, incident vehicles field, the plate's previous reads].
            for i, hot, vehicles, previous in _as_list(orjson.loads(res[idx])):
                read = reads[i - 1]
                hits = _hotlist_hits(read, hot or None)
                block: dict[str, Any] = {"hotlist": hits}
                linked = _decode_entries(vehicles or None)
                if linked:
                    block["linked_incidents"] = linked
                if hits or linked:
                    block["trail"] = _trail(_as_list(previous), read.read_id)
                out[i - 1] = {"history": block}
            return out

        return finish

    def _add_vehicle_changes(self, pipe: Any, incidents: Sequence[IncidentEventV1]) -> None:
        """The vehicles of open incidents, for plate reads: kept while the incident is
        open, removed when it closes (one ``_UPSERT_ENTRY`` each)."""
        for inc in incidents:
            for vehicle in inc.vehicles or []:
                plate = canonical_vrm(vehicle.vrm)
                entry_id = f"{inc.incident_id}|{plate}"
                if inc.event == "closed":
                    pipe.eval(
                        _UPSERT_ENTRY, 1, self.keys.incident_vehicles_index, entry_id, "", "", ""
                    )
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
                pipe.eval(
                    _UPSERT_ENTRY,
                    1,
                    self.keys.incident_vehicles_index,
                    entry_id,
                    self.keys.incident_vehicles,
                    plate,
                    doc,
                )

    def _plan_officers(self, batch: _Batch, pings: Sequence[OfficerLocationV1]) -> Finish:
        for ping in pings:
            state = orjson.dumps(
                {
                    "officer_id": ping.officer_id,
                    "callsign": ping.callsign,
                    "status": ping.status,
                    "at": ping.at.isoformat(),
                    "lat": ping.lat,
                    "lon": ping.lon,
                }
            )
            batch.add("hset", self.keys.officer_state, ping.officer_id, state)

        def finish(res: list[Any]) -> list[dict[str, Any]]:
            return [{} for _ in pings]

        return finish

    async def apply_reference(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Apply reference upserts and deletes, in order, each atomically: hotlists and
        markers into their look-up hashes, the ``VERSIONED_KINDS`` (geofences, operator
        places, snoozes) into a hash per kind with its change counter."""
        if not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        for ch in changes:
            if ch.kind in VERSIONED_KINDS:
                key = self.keys.reference(ch.kind)
                if ch.op == "delete":
                    pipe.hdel(key, ch.id)
                else:
                    entry = ch.validated_entry()
                    assert entry is not None
                    pipe.hset(
                        key, ch.id, orjson.dumps(entry.model_dump(mode="json", exclude_none=True))
                    )
                pipe.incr(self.keys.reference_version(ch.kind))
                continue
            index = self.keys.hotlist_index if ch.kind == "hotlist" else self.keys.marker_index
            if ch.op == "delete":
                pipe.eval(_UPSERT_ENTRY, 1, index, ch.id, "", "", "")
                continue
            entry = ch.validated_entry()
            assert entry is not None
            map_key, field = self._place(entry)
            doc = orjson.dumps({**entry.model_dump(mode="json", exclude_none=True), "id": ch.id})
            pipe.eval(_UPSERT_ENTRY, 1, index, ch.id, map_key, field, doc.decode())
        await self._run(pipe)

    async def reference_versions(self, kinds: Sequence[str]) -> list[int]:
        """The change counters of live reference layers (0 if never changed)."""
        pipe = self.redis.pipeline(transaction=False)
        for kind in kinds:
            pipe.get(self.keys.reference_version(kind))
        return [int(v or 0) for v in await self._run(pipe)]

    async def reference_entries(self, kind: str) -> tuple[int, dict[str, dict[str, Any]]]:
        """A live reference layer (geofences, places or snoozes) and its version, read together."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.keys.reference_version(kind))
        pipe.hgetall(self.keys.reference(kind))
        version, raw = await self._run(pipe)
        return int(version or 0), _json_hash(raw)

    async def group_alerts(
        self, hits: Sequence[tuple[str, str, str, float, float]]
    ) -> list[tuple[str, int, int, float]]:
        """Fold repeated hits into open alerts: for each (group, candidate id, source id,
        window s, time) the open alert's (id, version, hits, first time). One round trip."""
        if not hits:
            return []
        payload = orjson.dumps(
            [
                {"k": self.keys.open_alert(g), "a": a, "s": src, "w": max(int(w), 1), "t": t}
                for g, a, src, w, t in hits
            ]
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.eval(_GROUP, 0, payload)
        (raw,) = await self._run(pipe)
        return [(str(a), int(v), int(n), float(f)) for a, v, n, f in orjson.loads(raw)]

    async def officer_states(self) -> dict[str, dict[str, Any]]:
        """Every officer's last ping (the workers index them for nearest units)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.officer_state)
        (raw,) = await self._run(pipe)
        return _json_hash(raw)

    def _place(self, entry: BaseModel) -> tuple[str, str]:
        """The hash and field an entry lives in."""
        if isinstance(entry, HotlistEntryV1):
            return self.keys.hotlist, canonical_vrm(entry.vrm)
        if isinstance(entry, PersonMarkerV1):
            return self.keys.person_markers, entry.person_id
        if isinstance(entry, AddressMarkerV1):
            return self.keys.address_markers, normalise_address(entry.address)
        raise TypeError(type(entry).__name__)
