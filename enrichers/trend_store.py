"""Where the worker's hourly trend snapshots are kept for their readers.

The worker counts in windowed Faust tables, per input partition (``streams/trends.py``);
every few seconds it writes, for each (partition, hour) that changed, the snapshot of
its counts (JSON, ``analytics.trends.TrendSnapshot``) here. The gateway (the desk's
trends panel) and the worker that checks for anomalies read the hours they need.

Why Redis and not a topic: a reader needs the latest snapshot of each (partition,
hour) of the last 29 days. A compacted topic would keep exactly that, but the
embedded broker (Tansu, in memory) does not compact, so a reader starting from the
topic's beginning would read every snapshot ever sent. One hash per hour
(``Keys.trends``: field = partition) holds the latest, and expires 30 days after its
hour, so memory stays bounded (about 700 hashes). A sorted set (``Keys.trends_changed``)
says when each hour was last written, so a reader asks only for the hours written
since its last read (a replay of last month shows at once, not at the next full read).

``MemoryTrendStore`` is the same for unit tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from enrichers.keys import Keys
from enrichers.redis_io import connect
from rtic.errors import ServiceError

KEEP = timedelta(days=30)  # after the hour's start


def hour_tag(hour: datetime) -> str:
    """``YYYYMMDDTHH`` of an hour, in UTC."""
    return hour.astimezone(UTC).strftime("%Y%m%dT%H")


class TrendStore(Protocol):
    """Snapshots by hour and partition."""

    async def put(self, snapshots: Sequence[tuple[datetime, int, bytes]]) -> None:
        """Keep each ``(hour, partition, snapshot JSON)``, replacing the one before."""
        ...

    async def read(self, hours: Sequence[datetime]) -> dict[datetime, list[bytes]]:
        """The snapshots of each hour asked for (hours with none are left out)."""
        ...

    async def changed_since(self, at: datetime) -> list[datetime]:
        """The hours written at or after ``at`` (the writer's clock)."""
        ...


class RedisTrendStore:
    """Snapshots in Redis: a hash per hour, a field per partition."""

    def __init__(self, client: Any, keys: Keys, *, timeout: float = 1.0) -> None:
        self.redis = client
        self.keys = keys
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", timeout: float = 1.0) -> RedisTrendStore:
        return cls(connect(url, timeout), Keys(prefix), timeout=timeout)

    async def put(self, snapshots: Sequence[tuple[datetime, int, bytes]]) -> None:
        if not snapshots:
            return
        now = datetime.now(UTC)
        pipe = self.redis.pipeline(transaction=False)
        for hour, partition, value in snapshots:
            key = self.keys.trends(hour_tag(hour))
            pipe.hset(key, str(partition), value)
            pipe.expireat(key, int((hour + KEEP).timestamp()))
        changed = self.keys.trends_changed
        pipe.zadd(changed, {hour_tag(h): now.timestamp() for h, _, _ in snapshots})
        pipe.zremrangebyscore(changed, "-inf", (now - KEEP).timestamp())
        pipe.expire(changed, int(KEEP.total_seconds()))
        await self._run(pipe)

    async def changed_since(self, at: datetime) -> list[datetime]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.trends_changed, at.timestamp(), "+inf")
        (tags,) = await self._run(pipe)
        out = []
        for tag in tags:
            text = tag.decode() if isinstance(tag, bytes) else str(tag)
            try:
                out.append(datetime.strptime(text, "%Y%m%dT%H").replace(tzinfo=UTC))
            except ValueError:
                continue
        return out

    async def read(self, hours: Sequence[datetime]) -> dict[datetime, list[bytes]]:
        if not hours:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for hour in hours:
            pipe.hvals(self.keys.trends(hour_tag(hour)))
        replies = await self._run(pipe, limit=self.timeout * 5)
        return {h: list(vals) for h, vals in zip(hours, replies, strict=True) if vals}

    async def _run(self, pipe: Any, limit: float | None = None) -> list[Any]:
        try:
            async with asyncio.timeout(limit or self.timeout):
                result: list[Any] = await pipe.execute()
                return result
        except Exception as exc:
            raise ServiceError(f"redis: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self.redis.aclose()


class MemoryTrendStore:
    """The same in memory (unit tests)."""

    def __init__(self) -> None:
        self.hours: dict[datetime, dict[int, bytes]] = {}
        self.written: dict[datetime, datetime] = {}

    async def put(self, snapshots: Sequence[tuple[datetime, int, bytes]]) -> None:
        for hour, partition, value in snapshots:
            self.hours.setdefault(hour, {})[partition] = value
            self.written[hour] = datetime.now(UTC)

    async def read(self, hours: Sequence[datetime]) -> dict[datetime, list[bytes]]:
        return {h: list(self.hours[h].values()) for h in hours if self.hours.get(h)}

    async def changed_since(self, at: datetime) -> list[datetime]:
        return [h for h, w in self.written.items() if w >= at]
