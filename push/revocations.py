"""Revoked tokens, as the gateway knows them: the database's list, cached briefly.

``rtic token revoke`` writes a revocation (one token by its ``jti``, or every
token of a subject issued up to now) to the database (``RevocationStore``).
The gateway reads the whole list every ``REFRESH_S`` seconds and checks each
request and each new websocket against the copy in memory, so a check costs no
round trip; after each refresh it closes the open websockets of tokens the list
now refuses. A revoked token is therefore refused everywhere within about
``REFRESH_S`` seconds.

If the database does not answer, the last list read stays in force (a revoked
token stays refused); the failure is logged and counted, and the next refresh
tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from push.metrics import GatewayMetrics
from records.protocols import Revocations, RevocationStore
from rtic.tokens import Principal

log = logging.getLogger(__name__)

REFRESH_S = 5.0
READ_TIMEOUT_S = 3.0


class RevocationCache:
    """The revocation list in memory, refreshed from the store."""

    def __init__(
        self,
        store: RevocationStore | None,
        metrics: GatewayMetrics | None = None,
        *,
        refresh_s: float = REFRESH_S,
    ) -> None:
        """``store`` None: nothing is revoked (a gateway without a database, in tests)."""
        self.store = store
        self.metrics = metrics or GatewayMetrics()
        self.refresh_s = refresh_s
        self.current = Revocations()
        self.on_change: Callable[[Revocations], Any] | None = None  # closes revoked sockets

    def refuses(self, who: Principal) -> bool:
        """Whether this token is revoked (by its id, or its subject's revocation)."""
        return self.current.refuses(who.jti, who.sub, who.issued_at)

    async def refresh(self) -> bool:
        """Read the list again; True if it was read. On change, ``on_change`` is told."""
        if self.store is None:
            return False
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                latest = await self.store.revocations()
        except Exception as exc:  # the database is away: keep the last list
            self.metrics.revocation_refreshes.labels("failed").inc()
            log.warning("could not read the token revocation list: %r", exc)
            return False
        self.metrics.revocation_refreshes.labels("ok").inc()
        changed = latest != self.current
        self.current = latest
        if changed and self.on_change is not None:
            self.on_change(latest)
        return True

    async def run(self) -> None:
        """Refresh every ``refresh_s`` seconds until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_s)
