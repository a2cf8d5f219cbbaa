"""Snoozes, kept in Redis: analysts' orders to hold back a rule's alerts in an area or
for a plate until a time (``rtic.schemas.SnoozeV1``).

Written as reference changes of kind ``snooze`` (from the dashboard, through the
gateway, or ``rtic reference load``), kept as a live layer (a hash of id -> entry JSON
and a change counter, as geofences and places are): every worker reloads the layer
when the counter moves and holds alerts back with it (``rules.snooze``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enrichers.keys import Keys
from enrichers.redis_io import run_pipeline
from enrichers.reference import queue_layer_change, read_layer
from rtic.schemas import ReferenceChangeV1

KIND = "snooze"


class RedisSnoozes:
    """The snooze layer in Redis."""

    def __init__(self, client: Any, keys: Keys, *, timeout: float = 1.0) -> None:
        self.redis = client
        self.keys = keys
        self.timeout = timeout

    async def apply(self, changes: Sequence[ReferenceChangeV1]) -> None:
        """Snooze upserts and deletes (lifts), in order, in one round trip."""
        if not changes:
            return

        def fill(pipe: Any) -> None:
            for ch in changes:
                queue_layer_change(pipe, self.keys, ch)

        await run_pipeline(self.redis, fill, self.timeout)

    async def version(self) -> int:
        """The layer's change counter (0 if never changed)."""
        (raw,) = await run_pipeline(
            self.redis, lambda pipe: pipe.get(self.keys.reference_version(KIND)), self.timeout
        )
        return int(raw or 0)

    async def entries(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """Every snooze (id -> entry) and the layer's version, read together."""
        return await read_layer(self.redis, self.keys, KIND, self.timeout)
