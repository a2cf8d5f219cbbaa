"""Live patrol priorities in the gateway: fitted on the engine's recent calls, written to
``rtic.priorities.v1`` and answered to the desk (``GET /api/desk/priorities``).

Why the gateway and not a stream worker: the model needs every call of the force, and
the gateway's Kafka edge reads every partition of ``rtic.enriched.v1``, where a worker
of a group sees only its share. The fit is small (areas x 28 days) and runs in a
thread, so the gateway's loop never waits on it.

- ``observe`` (from ``Gateway.deliver``): each enriched call of a modelled category
  joins the recent events, in the LSOA the enrichment found (``enrichment.areas.lsoa``).
- ``run``: at start the last ``window`` of ``rtic.calls.v1`` is re-read (calls carry no
  enrichment, so their LSOA is looked up in the shipped boundaries), so a restart loses
  nothing; then every ``RTIC_PRIORITIES_INTERVAL_S`` the priorities are refitted if a
  call came in or a quarter of an hour passed (the periods move with the clock), and
  each new list is written to the topic (key ``"force"``) and kept for the desk.
- A call with no usable id, time, place or category is ignored here (the pipeline
  dead-letters what breaks the contract); a call outside the force area has no LSOA and
  is not modelled.

Who sees them: analysts and supervisors (the desk). A priority's reasons are call ids,
categories, times and areas, never a caller, an address or a description.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from analytics.live import LiveEvent, LiveSettings, RecentEvents, priorities
from enrichers.boundaries import boundaries_geojson, boundary_levels
from push.deskstats import replay_recent
from push.web import _json, require
from rtic.clock import utc_now
from rtic.errors import ServiceError
from rtic.priorities import PrioritiesV1
from rtic.schemas import Role, dumps
from rtic.settings import Settings
from rtic.tokens import Principal

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Publish = Callable[[str, str, bytes], Awaitable[None]]
REFIT_AT_LEAST_EVERY = timedelta(minutes=15)
TOPIC_KEY = "force"


class AreaLookup:
    """LSOAs of the shipped boundaries: the one a point is in, and each one's centre."""

    def __init__(self, geojson: dict[str, Any]) -> None:
        features = geojson.get("features", [])
        self.codes = [f["properties"]["code"] for f in features]
        self.names = [f["properties"]["name"] for f in features]
        geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
        self.tree = shapely.STRtree(geoms)
        self.centres = {
            code: (round(p.y, 6), round(p.x, 6))
            for code, p in zip(self.codes, (g.representative_point() for g in geoms), strict=True)
        }

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> AreaLookup | None:
        if "lsoa" not in boundary_levels(data_dir):
            return None
        return cls(boundaries_geojson(data_dir, "lsoa"))

    def at(self, lat: float, lon: float) -> tuple[str, str] | None:
        found = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        if not len(found):
            return None
        i = int(min(found))
        return self.codes[i], self.names[i]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class PatrolPriorities:
    """The recent calls, the latest priorities, and the loop that refits them."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        publish: Publish | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.topic = topic
        self.publish = publish
        self.clock = clock
        self.interval_s = settings.priorities_interval_s
        self.data_dir = settings.data_dir
        self.categories = frozenset(settings.priorities_categories)
        self.live = LiveSettings(
            period=timedelta(hours=settings.priorities_period_hours),
            window=timedelta(days=settings.priorities_window_days),
            top=settings.priorities_top,
            bandwidth_m=settings.priorities_bandwidth_m,
            kappa=settings.priorities_kappa,
            categories=tuple(sorted(self.categories)),
        )
        self.recent = RecentEvents(self.live.window)
        self.areas: AreaLookup | None = None
        self.current: PrioritiesV1 | None = None
        self.state = "starting: re-reading recent calls"
        self.published: str | None = None  # the last priorities_id written to the topic
        self._fitted_version = -1
        self._fitted_at: datetime | None = None

    # ---- what the gateway reads -----------------------------------------------------

    def observe(self, kind: str, message: dict[str, Any]) -> None:
        """A message of the Kafka edge (``Gateway.deliver``): enriched calls only."""
        if kind != "enriched" or not isinstance(message, dict):
            return
        enrichment = message.get("enrichment")
        if isinstance(enrichment, dict) and enrichment.get("kind") == "call":
            areas = enrichment.get("areas")
            lsoa = areas.get("lsoa") if isinstance(areas, dict) else None
            self.call(message, lsoa if isinstance(lsoa, dict) else None)

    def call(self, call: dict[str, Any], lsoa: dict[str, Any] | None = None) -> bool:
        """A call (enriched, or as received with ``lsoa`` looked up): kept if it is of a
        modelled category, has an id, a time and a place in an LSOA, and is new."""
        call_id, category = call.get("call_id"), call.get("category")
        if not isinstance(call_id, str) or not call_id or category not in self.categories:
            return False
        try:
            at = datetime.fromisoformat(str(call.get("received_at")))
        except ValueError:
            return False
        location = call.get("location")
        if at.tzinfo is None or not isinstance(location, dict):
            return False
        lat, lon = _number(location.get("lat")), _number(location.get("lon"))
        if lat is None or lon is None:
            return False
        code, name = (lsoa or {}).get("code"), (lsoa or {}).get("name")
        if not isinstance(code, str) and self.areas is not None:
            found = self.areas.at(lat, lon)
            code, name = found if found else (None, None)
        if not isinstance(code, str) or not code:
            return False
        event = LiveEvent(call_id, str(category), at, lat, lon, code, str(name or code))
        return self.recent.add(event, self.clock())

    # ---- fitting and publishing -------------------------------------------------------

    def due(self, now: datetime) -> bool:
        """Refit when calls changed or the periods moved on since the last fit."""
        return self.recent.version != self._fitted_version or (
            self._fitted_at is None or now - self._fitted_at >= REFIT_AT_LEAST_EVERY
        )

    async def refit(self) -> PrioritiesV1 | None:
        """Fit now (in a thread) if due; the new priorities, or None."""
        now = self.clock()
        self.recent.prune(now)
        if not self.due(now):
            return None
        version, events = self.recent.version, self.recent.events()
        centres = self.areas.centres if self.areas is not None else None
        result = await asyncio.to_thread(priorities, events, now, self.live, centres)
        self._fitted_version, self._fitted_at = version, now
        self.current = result
        self.state = (
            f"fitted on {result.events_used} calls"
            if result.events_used
            else "no calls of the modelled categories in the window"
        )
        return result

    async def write(self, result: PrioritiesV1) -> None:
        if self.publish is None:
            return
        try:
            await self.publish(self.topic, TOPIC_KEY, dumps(result))
        except ServiceError as exc:
            log.warning("patrol priorities not written to %s: %s", self.topic, exc)
            return
        self.published = result.priorities_id

    async def seed(self, kafka_url: str, calls_topic: str) -> None:
        """The window's calls from ``rtic.calls.v1`` (a failure is logged: the
        priorities then start from the calls that come)."""
        if self.areas is None:
            self.areas = await asyncio.to_thread(AreaLookup.from_data_dir, self.data_dir)
        since = self.clock() - self.live.window

        def handle(message: dict[str, Any]) -> None:
            self.call(message)

        try:
            count = await replay_recent(kafka_url, calls_topic, handle, since, within_s=120.0)
            log.info("patrol priorities: %d calls re-read from %s", count, calls_topic)
        except Exception as exc:
            log.warning("patrol priorities: could not re-read %s: %r", calls_topic, exc)

    async def run(self, kafka_url: str, calls_topic: str) -> None:
        """Seed, then refit and write every ``interval_s`` until cancelled."""
        await self.seed(kafka_url, calls_topic)
        while True:
            try:
                result = await self.refit()
                if result is not None:
                    await self.write(result)
            except asyncio.CancelledError:
                raise
            except Exception:  # a fault in one fit must not end the loop
                log.exception("patrol priorities: the fit failed")
                self.state = "the last fit failed (see the gateway's log)"
            await asyncio.sleep(self.interval_s)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "published": self.published,
            "current": self.current.model_dump(mode="json") if self.current else None,
        }


# ---- HTTP ---------------------------------------------------------------------------------


@require(Role.RTIC_ANALYST, Role.SUPERVISOR)
async def desk_priorities(request: Request, who: Principal) -> Response:
    """``GET /api/desk/priorities``: ``{state, published, current: PrioritiesV1 | null}``."""
    found = getattr(request.app.state, "priorities", None)
    if not isinstance(found, PatrolPriorities):
        return _json({"state": "not running in this gateway", "published": None, "current": None})
    return _json(found.snapshot())


def priorities_routes() -> list[BaseRoute]:
    """The priorities' route (``push.web.routes`` adds it)."""
    return [Route("/api/desk/priorities", desk_priorities)]
