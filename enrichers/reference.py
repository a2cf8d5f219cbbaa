"""Reference data and officers' positions, kept in Redis.

- Hotlists and warning markers: one look-up hash each (canonical plate, person id or
  normalised address -> JSON map of entries), read by ``enrichers.history`` in each
  batch's round trip. An upsert or delete moves one entry atomically (``UPSERT_ENTRY``).
- Live layers (geofences, operator places): a hash per kind (id -> entry JSON) and a
  change counter; workers hold the whole layer in memory and reload it when the
  counter moves (``enrichers.zones``).
- Officers' last pings, for nearest units (``enrichers.zones.Officers``).

Snoozes are a live layer of the same layout, in a store of their own
(``enrichers.snoozes``). The key layout is in ``enrichers/keys.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel

import enrichers.lua as lua
from enrichers.keys import Keys, normalise_address
from enrichers.redis_io import queue_script, run_pipeline
from rtic.plates import canonical_vrm
from rtic.schemas import (
    AddressMarkerV1,
    HotlistEntryV1,
    OfficerLocationV1,
    PersonMarkerV1,
    ReferenceChangeV1,
)

LAYER_KINDS = ("geofence", "place")  # the live layers this store keeps


def json_hash(raw: dict[Any, Any] | None) -> dict[str, dict[str, Any]]:
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


def layer_entry(change: ReferenceChangeV1) -> bytes:
    """A live layer's entry as its hash keeps it (validated, nulls left out)."""
    entry = change.validated_entry()
    assert entry is not None  # an upsert's entry is validated on the way in
    return orjson.dumps(entry.model_dump(mode="json", exclude_none=True))


def lookup_entry(change: ReferenceChangeV1, keys: Keys) -> tuple[str, str, str]:
    """A hotlist entry's or marker's place (hash, field) and JSON, with its id."""
    entry = change.validated_entry()
    assert entry is not None
    map_key, field = _place(entry, keys)
    doc = orjson.dumps({**entry.model_dump(mode="json", exclude_none=True), "id": change.id})
    return map_key, field, doc.decode()


def officer_state(ping: OfficerLocationV1) -> bytes:
    """An officer's last ping as the officers' hash keeps it."""
    return orjson.dumps(
        {
            "officer_id": ping.officer_id,
            "callsign": ping.callsign,
            "status": ping.status,
            "at": ping.at.isoformat(),
            "lat": ping.lat,
            "lon": ping.lon,
        }
    )


def _place(entry: BaseModel, keys: Keys) -> tuple[str, str]:
    """The hash and field an entry lives in."""
    if isinstance(entry, HotlistEntryV1):
        return keys.hotlist, canonical_vrm(entry.vrm)
    if isinstance(entry, PersonMarkerV1):
        return keys.person_markers, entry.person_id
    if isinstance(entry, AddressMarkerV1):
        return keys.address_markers, normalise_address(entry.address)
    raise TypeError(type(entry).__name__)


def queue_layer_change(pipe: Any, keys: Keys, change: ReferenceChangeV1) -> None:
    """A live layer's upsert or delete, and its change counter moved (so workers reload)."""
    key = keys.reference(change.kind)
    if change.op == "delete":
        pipe.hdel(key, change.id)
    else:
        pipe.hset(key, change.id, layer_entry(change))
    pipe.incr(keys.reference_version(change.kind))


async def read_layer(
    client: Any, keys: Keys, kind: str, limit_s: float
) -> tuple[int, dict[str, dict[str, Any]]]:
    """A live layer and its version, read together (one transaction)."""

    def fill(pipe: Any) -> None:
        pipe.get(keys.reference_version(kind))
        pipe.hgetall(keys.reference(kind))

    version, raw = await run_pipeline(client, fill, limit_s, transaction=True)
    return int(version or 0), json_hash(raw)


class RedisReference:
    """Hotlists, markers, geofences, operator places and officers' pings in Redis."""

    def __init__(self, client: Any, keys: Keys, *, timeout: float = 1.0) -> None:
        self.redis = client
        self.keys = keys
        self.timeout = timeout
        self._upsert_script = client.register_script(lua.UPSERT_ENTRY)

    async def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Apply upserts and deletes, in order, each atomically, in one round trip:
        hotlists and markers into their look-up hashes, geofences and places into
        their layers (moving the layer's change counter)."""
        if not changes:
            return
        keys = self.keys

        def fill(pipe: Any) -> None:
            for ch in changes:
                if ch.kind in LAYER_KINDS:
                    queue_layer_change(pipe, keys, ch)
                    continue
                index = keys.hotlist_index if ch.kind == "hotlist" else keys.marker_index
                args = ("", "", "") if ch.op == "delete" else lookup_entry(ch, keys)
                queue_script(pipe, self._upsert_script, (index,), (ch.id, *args))

        await run_pipeline(self.redis, fill, self.timeout, scripts=(self._upsert_script,))

    async def layer_versions(self, kinds: Sequence[str]) -> list[int]:
        """The change counters of live layers (0 if never changed)."""

        def fill(pipe: Any) -> None:
            for kind in kinds:
                pipe.get(self.keys.reference_version(kind))

        return [int(v or 0) for v in await run_pipeline(self.redis, fill, self.timeout)]

    async def layer(self, kind: str) -> tuple[int, dict[str, dict[str, Any]]]:
        """A live layer (geofences or places) and its version, read together."""
        return await read_layer(self.redis, self.keys, kind, self.timeout)

    async def record_officers(self, pings: Sequence[OfficerLocationV1]) -> None:
        """Keep each officer's last ping (a batch, one round trip)."""
        if not pings:
            return

        def fill(pipe: Any) -> None:
            for ping in pings:
                pipe.hset(self.keys.officer_state, ping.officer_id, officer_state(ping))

        await run_pipeline(self.redis, fill, self.timeout)

    async def officer_states(self) -> dict[str, dict[str, Any]]:
        """Every officer's last ping (the workers index them for nearest units)."""
        (raw,) = await run_pipeline(
            self.redis, lambda pipe: pipe.hgetall(self.keys.officer_state), self.timeout
        )
        return json_hash(raw)
