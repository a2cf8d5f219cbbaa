"""History enrichment: hotlists, warning markers and call history, kept in Redis.

The key layout is in ``enrichers/keys.py``. Every method works on a whole
batch with one pipelined round trip (reference changes: two), never one
per event. Interpreting what Redis returned is pure (``_hotlist_hits``,
``_call_history``) so it is tested without a server.

If Redis does not answer within the settings' timeout the method raises
``ServiceError``; the stream marks the batch ``enrichment.partial`` and goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError

from enrichers.keys import Keys, canonical_vrm, normalise_address, normalise_vrm
from rtic.errors import ServiceError
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
_HISTORY_FIELD = {"calls_address": "calls_at_address", "calls_person": "calls_by_person"}


def _decode_entries(raw: dict[Any, Any] | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    out = []
    for v in raw.values():
        try:
            out.append(orjson.loads(v))
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


def _hotlist_hits(read: PlateReadV1, raw: dict[Any, Any] | None) -> list[dict[str, Any]]:
    """Live hotlist entries for a read, each marked ``match: exact | misread``."""
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
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceError(f"redis: {type(exc).__name__}: {exc}".strip(": ")) from exc

    async def hotlist_for_reads(self, reads: Sequence[PlateReadV1]) -> list[list[dict[str, Any]]]:
        """Live hotlist entries for each read (misread-tolerant), one round trip."""
        if not reads:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for read in reads:
            pipe.hgetall(self.keys.hotlist(canonical_vrm(read.vrm)))
        raw = await self._run(pipe)
        return [_hotlist_hits(read, r) for read, r in zip(reads, raw, strict=True)]

    async def record_calls(self, calls: Sequence[CallV1]) -> list[dict[str, Any]]:
        """Record each call in its address's and caller's history; return the history.

        A redelivered call (same ``call_id``) is not counted twice.
        """
        if not calls:
            return []
        pipe = self.redis.pipeline(transaction=False)
        plan: list[tuple[str, ...]] = []
        for call in calls:
            ts = call.received_at.timestamp()
            steps: list[str] = []
            address = call.location.address
            person = call.caller.person_id if call.caller else None
            for what, key in (
                (
                    "address",
                    self.keys.calls_at_address(normalise_address(address)) if address else None,
                ),
                ("person", self.keys.calls_by_person(person) if person else None),
            ):
                if key is None:
                    continue
                pipe.zadd(key, {call.call_id: ts})
                pipe.zremrangebyscore(key, "-inf", ts - self.window_s)
                pipe.zrangebyscore(key, ts - self.window_s, ts, withscores=True)
                pipe.expire(key, self.window_s)
                steps.append(f"calls_{what}")
            if address:
                pipe.hgetall(self.keys.address_markers(normalise_address(address)))
                steps.append("markers_address")
            if person:
                pipe.hgetall(self.keys.person_markers(person))
                steps.append("markers_person")
            plan.append(tuple(steps))
        raw = await self._run(pipe)
        out: list[dict[str, Any]] = []
        pos = 0
        for call, steps in zip(calls, plan, strict=True):
            block: dict[str, Any] = {"markers": []}
            for step in steps:
                if step.startswith("calls_"):
                    block[_HISTORY_FIELD[step]] = _call_history(raw[pos + 2])
                    pos += 4
                else:
                    block["markers"].extend(
                        m for m in _decode_entries(raw[pos]) if _live(m, call.received_at)
                    )
                    pos += 1
            out.append(block)
        return out

    async def markers_for_incidents(
        self, incidents: Sequence[IncidentEventV1]
    ) -> list[dict[str, Any]]:
        """Warning markers on each incident's address and persons, one round trip."""
        if not incidents:
            return []
        pipe = self.redis.pipeline(transaction=False)
        counts = []
        for inc in incidents:
            n = 0
            if inc.location.address:
                pipe.hgetall(self.keys.address_markers(normalise_address(inc.location.address)))
                n += 1
            for person in inc.persons or []:
                pipe.hgetall(self.keys.person_markers(person.person_id))
                n += 1
            counts.append(n)
        raw = await self._run(pipe)
        out, pos = [], 0
        for inc, n in zip(incidents, counts, strict=True):
            markers = [
                m for r in raw[pos : pos + n] for m in _decode_entries(r) if _live(m, inc.at)
            ]
            out.append({"markers": markers})
            pos += n
        return out

    async def apply_reference(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Apply hotlist and marker upserts and deletes, in order."""
        if not changes:
            return
        # Round trip 1: where each id lives now (an upsert may move it, a delete removes it).
        pipe = self.redis.pipeline(transaction=False)
        for ch in changes:
            index = self.keys.hotlist_index if ch.kind == "hotlist" else self.keys.marker_index
            pipe.hget(index, ch.id)
        current = await self._run(pipe)
        # Round trip 2: the writes, in message order.
        pipe = self.redis.pipeline(transaction=True)
        for ch, where in zip(changes, current, strict=True):
            index = self.keys.hotlist_index if ch.kind == "hotlist" else self.keys.marker_index
            old = where.decode() if isinstance(where, bytes) else where
            if ch.kind in ("geofence", "place"):
                key = self.keys.reference(ch.kind)
                if ch.op == "delete":
                    pipe.hdel(key, ch.id)
                else:
                    pipe.hset(key, ch.id, orjson.dumps(ch.entry))
                continue
            if old:
                pipe.hdel(self._container(ch.kind, old), ch.id)
            if ch.op == "delete":
                pipe.hdel(index, ch.id)
                continue
            entry = ch.validated_entry()
            assert entry is not None
            slot = self._slot(entry)
            doc = {**entry.model_dump(mode="json", exclude_none=True), "id": ch.id}
            pipe.hset(self._container(ch.kind, slot), ch.id, orjson.dumps(doc))
            pipe.hset(index, ch.id, slot)
        await self._run(pipe)

    def _slot(self, entry: BaseModel) -> str:
        if isinstance(entry, HotlistEntryV1):
            return canonical_vrm(entry.vrm)
        if isinstance(entry, PersonMarkerV1):
            return f"person:{entry.person_id}"
        if isinstance(entry, AddressMarkerV1):
            return f"address:{normalise_address(entry.address)}"
        raise TypeError(type(entry).__name__)

    def _container(self, kind: str, slot: str) -> str:
        if kind == "hotlist":
            return self.keys.hotlist(slot)
        what, _, ident = slot.partition(":")
        return (
            self.keys.person_markers(ident)
            if what == "person"
            else self.keys.address_markers(ident)
        )
