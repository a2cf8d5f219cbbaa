"""Case updates on their way from ``rtic.cases.v1`` to the fan-out core.

A ``rtic.cases.v1`` message names the officer in charge and the case's areas
but not every officer attending, and officers attending may see the case. So
before the core decides who gets a ``case_update`` frame, the gateway reads
the stored case (``CaseStore.get_case``) for its officers. That read is I/O:
it happens here, in a task of its own, one update at a time so a case's
updates keep their order, never in the Kafka edge's consume loop (alerts do
not wait for the database). If the case cannot be read in time, the update
goes out with the scope it states itself (officer in charge, areas).

The queue is bounded (``MAX_PENDING``); case updates come at the pace people
work, so a full queue means the database is stuck: the update is dropped,
counted and logged (clients reload a case when they open it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from push.access import CaseScope
from push.fanout import Fanout
from records.protocols import CaseStore

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
READ_TIMEOUT_S = 2.0


class CaseFeed:
    """Case updates, in order, each with the stored case's scope, into the core."""

    def __init__(self, core: Fanout, cases: CaseStore | None) -> None:
        """``cases`` None: each update goes with the scope it states."""
        self.core = core
        self.cases = cases
        self.pending: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=MAX_PENDING)

    def offer(self, update: dict[str, Any]) -> None:
        """Queue an update the Kafka edge read (never blocks)."""
        try:
            self.pending.put_nowait(update)
        except asyncio.QueueFull:
            self.core.metrics.case_updates.labels("dropped").inc()
            log.warning("case updates are not being read from the database: update dropped")

    async def scope(self, update: dict[str, Any]) -> CaseScope:
        """The case's scope: the stored case's officers and areas, else what the update
        states."""
        ref = update.get("case_ref")
        if self.cases is not None and isinstance(ref, str):
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    row = await self.cases.get_case(ref)
            except Exception as exc:
                log.warning("could not read case %s for its officers: %r", ref, exc)
                row = None
            if row is not None:
                # The case worker stores a change before it publishes it: the row is
                # the case as of this update or later, and says who is on it now.
                return CaseScope.of_row(row)
        return CaseScope.of_update(update)

    async def handle(self, update: dict[str, Any]) -> None:
        """One update: its scope, then the core's fan-out."""
        self.core.publish_case(update, await self.scope(update))

    async def run(self) -> None:
        """Forward updates until cancelled."""
        while True:
            update = await self.pending.get()
            try:
                await self.handle(update)
            except Exception:
                log.exception("could not push a case update")
