"""History search: what the engine's Redis holds about a plate, a person or an address.

Read-only. An analyst's audited search (``POST /api/search`` on the gateway) asks
one of three questions, answered from the same keys the enrichers write
(``enrichers/keys.py``), nothing else:

- a plate: its live hotlist entries (exact and misread matches), the open
  incidents it is a vehicle of, and its ANPR trail (the last reads kept,
  newest first);
- a person: their warning markers and the calls they made that the call log
  still holds (the history window and a day);
- an address: its warning markers and the calls and incidents logged there.

The call and incident logs are streams of batches; a search reads them newest
first, a chunk at a time, and stops once it has ``limit`` matches. Searches are
rare and audited; the logs are trimmed to the history window, so a scan is
bounded. Decoding is pure (``records_matching``, ``live_entries``) and tested
without a server; the Redis side is tested against a real Redis.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson

from enrichers.history import TRAIL_KEEP, _decode_entries, _live, _logged_record
from enrichers.keys import Keys, normalise_address
from enrichers.redis_io import connect, run_pipeline
from rtic.plates import canonical_vrm, normalise_vrm

Subject = Literal["plate", "person", "address"]
LIMIT = 100  # calls or incidents a search lists at most
SCAN_CHUNK = 500  # log entries (batches) read per round trip


class HistorySearch(Protocol):
    """What the gateway asks of history (``RedisHistorySearch``; a fake in unit tests)."""

    async def search(self, subject: Subject, value: str, at: datetime) -> dict[str, Any]:
        """Everything held about ``value`` (a plate, a person id or an address) at ``at``."""
        ...


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def live_entries(raw: bytes | str | None, at: datetime) -> list[dict[str, Any]]:
    """The entries of a hotlist or marker field that have not expired at ``at``."""
    return [e for e in _decode_entries(raw) if _live(e, at)]


def hotlist_matches(raw: bytes | str | None, vrm: str, at: datetime) -> list[dict[str, Any]]:
    """Live hotlist entries for a plate, each marked ``match: exact | misread``."""
    plate = normalise_vrm(vrm)
    out = []
    for entry in live_entries(raw, at):
        exact = normalise_vrm(str(entry.get("vrm", ""))) == plate
        out.append({**entry, "match": "exact" if exact else "misread"})
    out.sort(key=lambda e: (e["match"] != "exact", str(e.get("id", ""))))
    return out


def trail_reads(raw: Iterable[Any]) -> list[dict[str, Any]]:
    """A plate's trail as stored (JSON reads, newest first), decoded, without repeats."""
    out, seen = [], set()
    for item in raw:
        try:
            read = orjson.loads(item)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(read, dict) or read.get("read_id") in seen:
            continue
        seen.add(read.get("read_id"))
        out.append(read)
    return out


def records_matching(
    entries: Sequence[Any], wanted: Callable[[str, str], bool]
) -> list[dict[str, Any]]:
    """The records of log entries (as XRANGE/XREVRANGE answer them) that ``wanted``
    (address key, person id) accepts, newest first within the chunk."""
    out: list[dict[str, Any]] = []
    for _, fields in entries:
        raw = fields.get(b"c", fields.get("c")) if isinstance(fields, dict) else None
        try:
            rows = orjson.loads(raw) if raw is not None else []
        except orjson.JSONDecodeError:
            continue
        if not isinstance(rows, list):
            continue
        for row in rows:
            record = _logged_record(row, 0)
            if record is None or not wanted(record.address, record.person):
                continue
            item: dict[str, Any] = {
                "id": record.id,
                "at": _iso(record.ms),
                "category": record.category,
                "lat": record.lat,
                "lon": record.lon,
            }
            if record.address:
                item["address_key"] = record.address
            out.append(item)
    out.sort(key=lambda item: item["at"], reverse=True)
    return out


def _queue_xrevrange(pipe: Any, key: str, end: str) -> None:
    pipe.xrevrange(key, max=end, min="-", count=SCAN_CHUNK)


class RedisHistorySearch:
    """History search on the engine's Redis (the workers' keys, under their prefix)."""

    def __init__(self, client: Any, keys: Keys, *, timeout: float = 1.0) -> None:
        self.redis = client
        self.keys = keys
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", timeout: float = 1.0) -> RedisHistorySearch:
        """A search on the Redis at ``url``, keys under ``prefix`` (the topic prefix)."""
        return cls(connect(url, timeout), Keys(prefix), timeout=timeout)

    async def close(self) -> None:
        await self.redis.aclose()

    async def search(self, subject: Subject, value: str, at: datetime) -> dict[str, Any]:
        """See ``HistorySearch.search``; ``ServiceError`` if Redis does not answer."""
        if subject == "plate":
            return await self.plate(value, at)
        if subject == "person":
            return await self.person(value, at)
        return await self.address(value, at)

    async def plate(self, vrm: str, at: datetime) -> dict[str, Any]:
        """Hotlist entries, open incidents' vehicles and the ANPR trail of a plate."""
        keys, folded = self.keys, canonical_vrm(vrm)

        def fill(pipe: Any) -> None:
            pipe.hget(keys.hotlist, folded)
            pipe.hget(keys.incident_vehicles, folded)
            pipe.lrange(keys.trail(normalise_vrm(vrm)), 0, 2 * TRAIL_KEEP - 1)

        hot, vehicles, trail = await run_pipeline(self.redis, fill, self.timeout)
        return {
            "plate": normalise_vrm(vrm),
            "hotlist": hotlist_matches(hot, vrm, at),
            "linked_incidents": _decode_entries(vehicles),
            "trail": trail_reads(trail or []),
        }

    async def person(self, person_id: str, at: datetime) -> dict[str, Any]:
        """A person's warning markers and the calls they made."""
        (raw,) = await run_pipeline(
            self.redis, lambda pipe: pipe.hget(self.keys.person_markers, person_id), self.timeout
        )
        calls = await self._scan(self.keys.call_log, lambda _, person: person == person_id)
        return {"person_id": person_id, "markers": live_entries(raw, at), "calls": calls}

    async def address(self, address: str, at: datetime) -> dict[str, Any]:
        """An address's warning markers and the calls and incidents logged there."""
        key = normalise_address(address)
        (raw,) = await run_pipeline(
            self.redis, lambda pipe: pipe.hget(self.keys.address_markers, key), self.timeout
        )

        def here(address_key: str, _: str) -> bool:
            return address_key == key

        return {
            "address_key": key,
            "markers": live_entries(raw, at),
            "calls": await self._scan(self.keys.call_log, here),
            "incidents": await self._scan(self.keys.incident_log, here),
        }

    async def _scan(
        self, log_key: str, wanted: Callable[[str, str], bool], limit: int = LIMIT
    ) -> list[dict[str, Any]]:
        """Matching records of a log, newest first, at most ``limit``."""
        found: list[dict[str, Any]] = []
        end = "+"
        while len(found) < limit:
            (entries,) = await run_pipeline(
                self.redis, functools.partial(_queue_xrevrange, key=log_key, end=end), self.timeout
            )
            found += records_matching(entries, wanted)
            if len(entries) < SCAN_CHUNK:
                break
            last = entries[-1][0]
            end = f"({last.decode() if isinstance(last, bytes) else last}"
        return found[:limit]
