"""History enrichment: hotlists, warning markers and call history, kept in Redis.

The key layout is in ``enrichers/keys.py``. Every method works on a whole
batch with one pipelined round trip, never one per event. Interpreting what Redis returned is pure (``_hotlist_hits``,
``_call_history``) so it is tested without a server.

If Redis does not answer within the settings' timeout a method raises
``ServiceError`` (worth retrying); if it answers with an error, ``EnrichmentError``
(not worth retrying). Either way the stream marks the batch
``enrichment.partial`` and goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError, ResponseError

from enrichers.keys import Keys, canonical_vrm, normalise_address, normalise_vrm
from rtic.errors import EnrichmentError, ServiceError
from rtic.schemas import (
    AddressMarkerV1,
    CallV1,
    HotlistEntryV1,
    IncidentEventV1,
    PersonMarkerV1,
    PlateReadV1,
    ReferenceChangeV1,
)

RECENT = 5  # how many recent ids an enrichment block lists


def _decode_entries(raw: bytes | str | None) -> list[dict[str, Any]]:
    """The entries of one hotlist or marker field: a JSON map of id -> entry JSON."""
    if not raw:
        return []
    try:
        entries = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    out = []
    for v in entries.values():
        try:
            out.append(orjson.loads(v) if isinstance(v, str) else v)
        except orjson.JSONDecodeError:
            continue
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


def _call_history(members: Sequence[tuple[Any, float]] | None) -> dict[str, Any]:
    """Count and the most recent call ids from a scored set range."""
    members = members or []
    ids = [m.decode() if isinstance(m, bytes) else str(m) for m, _ in members]
    return {"count": len(ids), "recent": ids[-RECENT:][::-1]}


# Move entry ARGV[1] to field ARGV[3] of map hash ARGV[2] (or delete it when ARGV[2] is
# empty), keeping the index KEYS[1] (id -> map key \x1f field) right. Atomic. The map
# keys are passed as arguments because an entry's old place is only known from the
# index: fine on one Redis server (not Redis Cluster).
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

    async def hotlist_for_reads(self, reads: Sequence[PlateReadV1]) -> list[list[dict[str, Any]]]:
        """Live hotlist entries for each read (misread-tolerant): one HMGET for the batch."""
        if not reads:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.hotlist, [canonical_vrm(r.vrm) for r in reads])
        (raw,) = await self._run(pipe)
        return [_hotlist_hits(read, r) for read, r in zip(reads, raw, strict=True)]

    async def record_calls(self, calls: Sequence[CallV1]) -> list[dict[str, Any]]:
        """Record each call in its address's and caller's history; return the history.

        A redelivered call (same ``call_id``) is not counted twice.
        """
        if not calls:
            return []
        addresses = [
            normalise_address(c.location.address) if c.location.address else "" for c in calls
        ]
        persons = [c.caller.person_id if c.caller and c.caller.person_id else "" for c in calls]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.address_markers, addresses)
        pipe.hmget(self.keys.person_markers, persons)
        plan: list[list[str]] = []
        for call, address, person in zip(calls, addresses, persons, strict=True):
            ts = call.received_at.timestamp()
            steps = []
            for field, key in (
                ("calls_at_address", self.keys.calls_at_address(address) if address else None),
                ("calls_by_person", self.keys.calls_by_person(person) if person else None),
            ):
                if key is None:
                    continue
                pipe.zadd(key, {call.call_id: ts})
                pipe.zremrangebyscore(key, "-inf", ts - self.window_s)
                pipe.zrangebyscore(key, ts - self.window_s, ts, withscores=True)
                pipe.expire(key, self.window_s)
                steps.append(field)
            plan.append(steps)
        raw = await self._run(pipe)
        address_markers, person_markers = raw[0], raw[1]
        out: list[dict[str, Any]] = []
        pos = 2
        for i, (call, steps) in enumerate(zip(calls, plan, strict=True)):
            markers = [
                m
                for m in _decode_entries(address_markers[i]) + _decode_entries(person_markers[i])
                if _live(m, call.received_at)
            ]
            block: dict[str, Any] = {"markers": markers}
            for field in steps:
                block[field] = _call_history(raw[pos + 2])
                pos += 4
            out.append(block)
        return out

    async def markers_for_incidents(
        self, incidents: Sequence[IncidentEventV1]
    ) -> list[dict[str, Any]]:
        """Warning markers on each incident's address and persons: two HMGETs for the batch."""
        if not incidents:
            return []
        addresses = [
            normalise_address(i.location.address) if i.location.address else "" for i in incidents
        ]
        persons = [[p.person_id for p in i.persons or []] for i in incidents]
        flat_persons = [p for ps in persons for p in ps] or [""]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.address_markers, addresses)
        pipe.hmget(self.keys.person_markers, flat_persons)
        by_address, by_person = await self._run(pipe)
        out, pos = [], 0
        for i, inc in enumerate(incidents):
            found = _decode_entries(by_address[i])
            for _ in persons[i]:
                found += _decode_entries(by_person[pos])
                pos += 1
            out.append({"markers": [m for m in found if _live(m, inc.at)]})
        return out

    async def apply_reference(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Apply hotlist and marker upserts and deletes, in order, each atomically."""
        if not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        for ch in changes:
            if ch.kind in ("geofence", "place"):
                key = self.keys.reference(ch.kind)
                if ch.op == "delete":
                    pipe.hdel(key, ch.id)
                else:
                    pipe.hset(key, ch.id, orjson.dumps(ch.entry))
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

    def _place(self, entry: BaseModel) -> tuple[str, str]:
        """The hash and field an entry lives in."""
        if isinstance(entry, HotlistEntryV1):
            return self.keys.hotlist, canonical_vrm(entry.vrm)
        if isinstance(entry, PersonMarkerV1):
            return self.keys.person_markers, entry.person_id
        if isinstance(entry, AddressMarkerV1):
            return self.keys.address_markers, normalise_address(entry.address)
        raise TypeError(type(entry).__name__)
