"""The desk's trends panel: the last 24 hours against the same hours of four weeks before.

``GET /api/desk/trends?level=district|ward`` (analysts, supervisors) answers
``analytics.trends.TrendBook.panel`` over the hourly snapshots the workers write to
Redis (``streams/trends.py``, ``enrichers/trend_store.py``): calls by area (the areas
furthest above their baseline first, ``top`` of them), calls and incidents
force-wide, calls by grade and category, ANPR hotlist hits by camera and the mean
time to attend by grade, each with its baseline: the mean of the same hour one, two,
three and four weeks before, over the weeks observed (``weeks``: how many, hour by
hour; none observed gives ``null``). Force-wide counts: no person, call or alert is
named in them.

The gateway reads the store at most every ``REFRESH_S`` seconds (the last three hours
each time, all 29 days every ten minutes; ``analytics.trends.TrendFeed``), on its own
clock (the wall clock live).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from analytics.trends import AREA_LEVELS, TrendFeed
from enrichers.trend_store import MemoryTrendStore, TrendStore
from push.web import _json, error_body, require
from rtic.errors import ServiceError
from rtic.schemas import Role
from rtic.tokens import Principal

REFRESH_S = 2.0
TOP_MAX = 200


class DeskTrends:
    """The gateway's copy of the trend counts, refreshed on demand."""

    def __init__(self, store: TrendStore, clock: Callable[[], datetime]) -> None:
        self.feed = TrendFeed(store)
        self.clock = clock
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    def use_store(self, store: TrendStore) -> None:
        self.feed = TrendFeed(store)
        self._read_at = float("-inf")

    async def panel(self, level: str, top: int) -> dict[str, Any]:
        now = self.clock()
        async with self._lock:
            if time.monotonic() - self._read_at >= REFRESH_S:
                await self.feed.refresh(now)
                self._read_at = time.monotonic()
        return self.feed.book.panel(now, level, top)


def trends_of(app: Any) -> DeskTrends:
    """The app's trends (the gateway puts its own on ``app.state.desk_trends``; an app
    without one gets one over an empty store, on the core's clock)."""
    found = getattr(app.state, "desk_trends", None)
    if not isinstance(found, DeskTrends):
        found = DeskTrends(MemoryTrendStore(), app.state.edge.core.clock)
        app.state.desk_trends = found
    return found


@require(Role.RTIC_ANALYST, Role.SUPERVISOR)
async def desk_trends(request: Request, who: Principal) -> Response:
    """``GET /api/desk/trends``: the trends panel (``level``: ``district``, the default,
    or ``ward``; ``top``: how many areas, 12 by default)."""
    level = request.query_params.get("level", "district")
    if level not in AREA_LEVELS:
        return _json(
            error_body("bad_request", f"level must be one of: {', '.join(AREA_LEVELS)}"), 400
        )
    try:
        top = int(request.query_params.get("top", "12"))
    except ValueError:
        top = -1
    if not 1 <= top <= TOP_MAX:
        return _json(error_body("bad_request", f"top must be a whole number 1 to {TOP_MAX}"), 400)
    try:
        panel = await trends_of(request.app).panel(level, top)
    except ServiceError as exc:
        return _json(error_body("unavailable", f"the trend counts are not readable: {exc}"), 503)
    return _json(panel)


def trends_routes() -> list[BaseRoute]:
    """The trends panel's route (``push.web.routes`` adds it)."""
    return [Route("/api/desk/trends", desk_trends)]
