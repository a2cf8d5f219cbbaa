"""History enrichment, kept in Redis: hotlists, warning markers, call history at an
address and by a caller, calls and incidents within 50 m in the last 28 days, a
plate's recent ANPR trail, and officers' last pings (for nearest units).

The key layout is in ``enrichers/keys.py``. ``HistoryStore.enrich`` works on a
whole batch with one pipelined round trip, never one per event (small Lua
scripts keep a look-up and its write in one command). Interpreting what Redis
returned is pure (``_hotlist_hits``, ``_nearby``, ``_trail``)
so it is tested without a server.

If Redis does not answer within the settings' timeout a method raises
``ServiceError`` (worth retrying); if it answers with an error, ``EnrichmentError``
(not worth retrying). Either way the stream marks the batch
``enrichment.partial`` and goes on.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError, ResponseError

from enrichers.call_index import CallIndex, CallRecord
from enrichers.keys import Keys, canonical_vrm, fold_misreads, normalise_address, normalise_vrm
from rtic.errors import EnrichmentError, ServiceError
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
CALL_LOG_CHUNK = 5_000  # log entries read at a time when a worker starts
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
WEEK_S = 7 * 86_400

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


def _week(ts: float) -> str:
    """The ISO week of an epoch time, as used in geo history keys (``2026-W48``)."""
    year, week, _ = datetime.fromtimestamp(ts, UTC).isocalendar()
    return f"{year}-W{week:02d}"


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


def _members(
    raw: list[Any] | None, own_id: str, lo: float, hi: float
) -> dict[str, tuple[str, int]]:
    """Geo history members (``id|category|ts``) timed within [lo, hi], by id; ``own_id`` left out."""
    found: dict[str, tuple[str, int]] = {}
    for item in raw or []:
        member = item.decode() if isinstance(item, bytes) else str(item)
        ident, _, rest = member.partition("|")
        category, _, ts_text = rest.rpartition("|")
        try:
            ts = int(ts_text)
        except ValueError:
            continue
        if ident == own_id or not (lo <= ts <= hi):
            continue
        found[ident] = (category, ts)
    return found


def _nearby(raw: list[Any] | None, own_id: str, at: datetime, window_s: int) -> dict[str, Any]:
    """Calls or incidents within 50 m in the window before ``at``: counts by category, last few."""
    now = at.timestamp()
    found = _members(raw, own_id, now - window_s, now)
    by_category: dict[str, int] = {}
    for category, _ in found.values():
        by_category[category] = by_category.get(category, 0) + 1
    recent = sorted(found.items(), key=lambda kv: kv[1][1], reverse=True)[:RECENT]
    return {
        "radius_m": NEARBY_RADIUS_M,
        "count": len(found),
        "by_category": by_category,
        "recent": [
            {"id": i, "category": c, "at": datetime.fromtimestamp(ts, UTC).isoformat()}
            for i, (c, ts) in recent
        ],
    }


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


def _logged_call(row: Any, logged_ms: int) -> CallRecord | None:
    """A call record from a log entry's row, None if the row is not one."""
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
    return CallRecord(ident, ms, address, person, float(lat), float(lon), category, logged_ms)


def _call_record(call: CallV1) -> CallRecord:
    loc = call.location
    return CallRecord(
        call.call_id,
        round(call.received_at.timestamp() * 1000),
        _address_key(loc.address) if loc.address else "",
        call.caller.person_id if call.caller and call.caller.person_id else "",
        loc.lat,
        loc.lon,
        call.category,
    )


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

# Calls or incidents of a batch in one command. ARGV[1] a JSON array of items
# {id, ts, w (window s), zk: [call-history set keys], gk: [weekly geo keys, current
# first], m: geo member to record ('' for none), lon, lat}; ARGV[2] the radius in
# metres, ARGV[3] the geo sets' lifetime. For each item: every call-history set gets
# the call (scored by time), is trimmed to the window and read back; the weekly geo
# sets are searched within the radius; with {er: metres, ew: seconds} also within er
# for members of the last ew seconds (emerging incidents); then the item is recorded
# in this week's set. The answer is one JSON string: per item {h: [ids per call set],
# n: [geo members], e: [geo members within er and ew]}.
# Keys are named in ARGV: fine on one Redis server, not on Redis Cluster.
_HISTORY_BATCH = r"""
local items = cjson.decode(ARGV[1])
local radius, geo_ttl = ARGV[2], ARGV[3]
local out = {}
for i, it in ipairs(items) do
  local h, n = {}, {}
  for j, key in ipairs(it.zk) do
    redis.call('ZADD', key, it.ts, it.id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', it.ts - it.w)
    h[j] = redis.call('ZRANGEBYSCORE', key, it.ts - it.w, it.ts)
    redis.call('EXPIRE', key, it.w)
  end
  for _, key in ipairs(it.gk) do
    local found = redis.call('GEOSEARCH', key, 'FROMLONLAT', it.lon, it.lat, 'BYRADIUS', radius, 'm')
    for _, m in ipairs(found) do n[#n + 1] = m end
  end
  local e = {}
  if it.er and it.er > 0 then
    -- calls within it.er metres in the last it.ew seconds (this week's and last week's sets)
    for k = 1, math.min(2, #it.gk) do
      local found = redis.call('GEOSEARCH', it.gk[k], 'FROMLONLAT', it.lon, it.lat, 'BYRADIUS', it.er, 'm')
      for _, m in ipairs(found) do
        local ts = tonumber(string.match(m, '|(%d+)$'))
        if ts and ts >= it.ts - it.ew and ts <= it.ts then e[#e + 1] = m end
      end
    end
  end
  if it.m ~= '' then
    redis.call('GEOADD', it.gk[1], it.lon, it.lat, it.m)
    redis.call('EXPIRE', it.gk[1], geo_ttl)
  end
  out[i] = {h = h, n = n, e = e}
end
return cjson.encode(out)
"""

# A batch of calls' round trip, in one command (so atomic): the address and person
# markers (ARGV[1], ARGV[2]: hashes; ARGV[3]: JSON [[address keys], [person ids]]), the
# call log's entries after ARGV[5] (what other workers appended since this one's last
# batch), then the batch appended to the log (ARGV[4]) as field c = ARGV[6], the log
# trimmed to ids from ARGV[7]. Answer: [address markers, person markers, entries, id].
_CALLS_ROUND = r"""
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
local others = redis.call('XRANGE', ARGV[4], '(' .. ARGV[5], '+')
local id = redis.call('XADD', ARGV[4], 'MINID', '~', ARGV[7], '*', 'c', ARGV[6])
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
        self._weeks = math.ceil(self.window_s / WEEK_S) + 1  # ISO weeks a window can touch
        # Call history: the shared log in Redis, indexed here (enrichers/call_index.py).
        self.calls = CallIndex(self.window_s, NEARBY_RADIUS_M, RECENT)
        self.call_log_keep_s = self.window_s + 86_400
        self._call_log_seen: str | None = None  # the last log entry indexed
        self._calls_lock = asyncio.Lock()
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
        history for incidents). Officer pings are recorded; workers index them
        for nearest units (``enrichers.zones.Officers``). With ``emerging``
        (radius in metres, window in seconds), each call's block also lists the
        other calls within that radius and window (``recent_calls_nearby``).
        """
        if not models:
            return []
        if kind is EventKind.CALL:
            return await self._enrich_calls(models, emerging)  # type: ignore[arg-type]
        batch = _Batch(self.redis.pipeline(transaction=False))
        if kind is EventKind.ANPR:
            finish = self._plan_reads(batch, models, now)  # type: ignore[arg-type]
        elif kind is EventKind.INCIDENT:
            finish = self._plan_incidents(batch, models, now)  # type: ignore[arg-type]
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

    # ---- calls: the shared log and the index -----------------------------------------

    async def _enrich_calls(
        self, calls: Sequence[CallV1], emerging: tuple[float, float] | None
    ) -> list[dict[str, Any]]:
        """Markers, and call history from the index, after one script call (so atomic)
        that reads the markers and what other workers appended to the call log since
        this one's last batch, and appends this batch."""
        records = [_call_record(c) for c in calls]
        async with self._calls_lock:
            if self._call_log_seen is None:
                await self._read_call_log()
            pipe = self.redis.pipeline(transaction=False)
            wall_ms = int(time.time() * 1000)
            pipe.eval(
                _CALLS_ROUND,
                0,
                self.keys.address_markers,
                self.keys.person_markers,
                orjson.dumps([[r.address for r in records], [r.person for r in records]]),
                self.keys.call_log,
                self._call_log_seen or "0-0",
                orjson.dumps([r.fields() for r in records]),
                wall_ms - self.call_log_keep_s * 1000,
            )
            ((addr_markers, person_markers, others, logged),) = await self._run(pipe)
            self._index_log_entries(others)
            logged_id = logged.decode() if isinstance(logged, bytes) else str(logged)
            logged_ms = int(logged_id.split("-", 1)[0])
            for r in records:
                r.logged_ms = logged_ms
            self.calls.forget_logged_before(wall_ms - self.call_log_keep_s * 1000)
            blocks = self.calls.add_and_ask(records, emerging)
            self._call_log_seen = logged_id
        out = []
        for i, block in enumerate(blocks):
            a, p = addr_markers[i], person_markers[i]
            if a is None and p is None:
                block["markers"] = []
            else:
                at = calls[i].received_at
                found = _decode_entries(a) + _decode_entries(p)
                block["markers"] = [m for m in found if _live(m, at)]
            out.append({"history": block})
        return out

    async def _read_call_log(self) -> None:
        """Index the whole call log (a worker's first batch of calls), in chunks."""
        start = "-"
        while True:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xrange(self.keys.call_log, min=start, count=CALL_LOG_CHUNK)
            (entries,) = await self._run(pipe)
            self._index_log_entries(entries)
            if len(entries) < CALL_LOG_CHUNK:
                return
            start = f"({self._call_log_seen}"

    def _index_log_entries(self, entries: Sequence[Any]) -> None:
        """Index the calls of log entries (other workers' batches, or all at start)."""
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
            found = [_logged_call(row, logged_ms) for row in rows] if isinstance(rows, list) else []
            self.calls.add([r for r in found if r is not None])  # None: not a call record
            self._call_log_seen = ident
        if self._call_log_seen is None:
            self._call_log_seen = "0-0"

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

    def _plan_incidents(
        self, batch: _Batch, incidents: Sequence[IncidentEventV1], now: datetime
    ) -> Finish:
        """Markers on the address and persons, and 50 m history: three commands for the batch."""
        addresses = [
            normalise_address(i.location.address) if i.location.address else "" for i in incidents
        ]
        persons = [[p.person_id for p in i.persons or []] for i in incidents]
        am = batch.add("hmget", self.keys.address_markers, addresses)
        pm = batch.add("hmget", self.keys.person_markers, [p for ps in persons for p in ps] or [""])
        items = [
            self._history_item(
                "incidents",
                inc.incident_id,
                inc.category,
                inc.at,
                inc.location.lat,
                inc.location.lon,
                [],
                inc.event == "created",
            )
            for inc in incidents
        ]
        idx = self._add_history_batch(batch, items)
        for inc in incidents:
            for vehicle in inc.vehicles or []:
                plate = canonical_vrm(vehicle.vrm)
                entry_id = f"{inc.incident_id}|{plate}"
                if inc.event == "closed":
                    batch.add(
                        "eval",
                        _UPSERT_ENTRY,
                        1,
                        self.keys.incident_vehicles_index,
                        entry_id,
                        "",
                        "",
                        "",
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
                batch.add(
                    "eval",
                    _UPSERT_ENTRY,
                    1,
                    self.keys.incident_vehicles_index,
                    entry_id,
                    self.keys.incident_vehicles,
                    plate,
                    doc,
                )

        def finish(res: list[Any]) -> list[dict[str, Any]]:
            answers = orjson.loads(res[idx])
            out, pos = [], 0
            for i, inc in enumerate(incidents):
                found = _decode_entries(res[am][i])
                for _ in persons[i]:
                    found += _decode_entries(res[pm][pos])
                    pos += 1
                block = {
                    "markers": [m for m in found if _live(m, inc.at)],
                    "nearby": _nearby(
                        _as_list(answers[i]["n"]), inc.incident_id, inc.at, self.window_s
                    ),
                }
                out.append({"history": block})
            return out

        return finish

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

    def _history_item(
        self,
        what: str,
        ident: str,
        category: str,
        at: datetime,
        lat: float,
        lon: float,
        call_sets: list[str],
        record: bool,
    ) -> dict[str, Any]:
        """One item of ``_HISTORY_BATCH``: its call-history sets and the weekly geo sets to search."""
        ts = at.timestamp()
        weeks = [self.keys.geo_history(what, _week(ts - WEEK_S * k)) for k in range(self._weeks)]
        return {
            "id": ident,
            "ts": ts,
            "w": self.window_s,
            "zk": call_sets,
            "gk": weeks,
            "m": f"{ident}|{category}|{int(ts)}" if record else "",
            "lon": lon,
            "lat": lat,
        }

    def _add_history_batch(self, batch: _Batch, items: list[dict[str, Any]]) -> int:
        return batch.add(
            "eval",
            _HISTORY_BATCH,
            0,
            orjson.dumps(items),
            NEARBY_RADIUS_M,
            self.window_s + 7 * 86_400,
        )

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
