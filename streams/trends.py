"""Live trends in the worker: windowed Faust tables, their snapshots, and the anomaly check.

**Counting.** Calls (``rtic.calls.v1``) and incident events (``rtic.incidents.v1``)
are counted by their input agents, each fetched batch as it goes through the
pipeline (``Worker.observe`` in ``streams/app.py``: a second agent on an input topic
would put it on Faust's per-message delivery and validate each event again);
alerts (``rtic.alerts.v1``, for ANPR hotlist hits) by an agent of their own, one
event at a time. What each event adds is ``analytics.trends`` (pure); the counts
go into one Faust table with **tumbling hourly windows** that **expire after 29 days**
(``trend-counts``: Faust drops a window 29 days after its end, on the wall clock),
by the event's own time (``received_at``, ``at``, the read's time). A second table
(``trend-incident-starts``, by incident id: the incidents topic's key) keeps when each
incident was created and assigned until its first arrival, for the time to attend.

Each table key ends with the input partition it was counted from
(``calls.ward|E05001193|0``): Faust writes a table's changelog to the partition of the
event being processed, so a key counted from one partition only is restored whole
when that partition moves to another worker, and several workers never write one key.

**Publishing.** Every ``RTIC_TRENDS_PUBLISH_S`` seconds the worker writes, for each
(partition, hour) whose counts changed, a snapshot of all its counts to Redis
(``enrichers/trend_store.py``; after a start or a rebalance, every hour of its
partitions again). Only partitions it holds as active are written (a standby's copy
never overwrites the active's). The gateway's ``GET /api/desk/trends`` and the
anomaly check read them (``analytics.trends.TrendFeed``).

**Anomalies.** On the group's leader only (one worker), every
``RTIC_ANOMALY_CHECK_S`` seconds: the calls by ward and by district of the current
and the previous hour against the model of ``analytics/anomaly.py`` on the counts of
the four weeks before; an anomalous area raises an analyst alert on
``rtic.alerts.v1`` (rule ``demand_anomaly``, a stable id per area and hour, a new
version as its count rises). Snoozes apply as to any rule.

Counting is at least once: an event processed again after a crash (its offset not yet
committed) is counted again, as Faust tables are without exactly-once processing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from analytics.anomaly import (
    HISTORY_HOURS,
    AnomalyParams,
    anomaly_alert,
    detect,
    hour_start,
)
from analytics.trends import (
    AREA_LEVELS,
    RETAIN,
    TrendFeed,
    TrendSnapshot,
    attend_counters,
    event_counters,
)
from enrichers.trend_store import RedisTrendStore, TrendStore
from rtic.errors import ContractError, ServiceError
from rtic.schemas import (
    AlertV1,
    CallV1,
    EventKind,
    IncidentEventV1,
    decode_json,
    dumps,
)
from streams.pipeline import Output

if TYPE_CHECKING:
    from streams.app import Worker

log = logging.getLogger(__name__)

WINDOW_S = 3600.0
HIT_RULES = frozenset({"anpr_hotlist_hit"})


@dataclass(frozen=True)
class AreaInfo:
    """Names, districts and a point inside each area (for the alerts)."""

    names: dict[str, str]
    district_of: dict[str, str]
    points: dict[str, tuple[float, float]]
    codes: dict[str, list[str]]  # level -> every code


def area_info(geo: Any) -> AreaInfo:
    """From the worker's ``GeoIndex``: each district's and ward's name, district and a
    point inside it."""
    names: dict[str, str] = {}
    points: dict[str, tuple[float, float]] = {}
    codes: dict[str, list[str]] = {}
    district_of: dict[str, str] = {}
    for level in AREA_LEVELS:
        layer = geo.levels[level]
        codes[level] = [str(c) for c in layer.codes]
        for code, name, poly in zip(layer.codes, layer.names, layer.geoms, strict=True):
            pt = poly.representative_point()
            names[str(code)] = str(name)
            points[str(code)] = (round(pt.y, 6), round(pt.x, 6))
    for ward, (lat, lon) in ((c, points[c]) for c in codes["ward"]):
        found = geo.areas([lat], [lon])[0].get("district")
        if found:
            district_of[ward] = found["code"]
    return AreaInfo(names, district_of, points, codes)


class TrendCounter:
    """The windowed tables of one worker, what changed in them, and their publishing."""

    def __init__(self, worker: Worker, store: TrendStore | None = None) -> None:
        self.worker = worker
        app, settings = worker.app, worker.settings
        self.table = app.Table(
            "trend-counts",
            default=float,
            partitions=settings.topic_partitions,
            # No key or value type: Faust serialises both as JSON.
            help="Hourly counts by series, key and input partition (29 days).",
        )
        tumbling: Any = self.table.tumbling(WINDOW_S, expires=RETAIN)
        self.windows = tumbling.relative_to(self._event_time)  # the event's own time
        self.starts = app.Table(
            "trend-incident-starts",
            default=None,
            partitions=settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
            help="When each incident was created and assigned, until its first arrival.",
        )
        self.at = 0.0  # the time of the event being counted (epoch seconds)
        self.dirty: set[tuple[int, float]] = set()  # (partition, window start)
        self.index: dict[tuple[int, float], set[Any]] = {}  # -> table keys
        self.published_for: frozenset[int] | None = None
        self._store = store
        self.published = 0

    def _event_time(self, event: Any = None) -> float:
        return self.at

    @property
    def store(self) -> TrendStore:
        if self._store is None:
            s = self.worker.settings
            self._store = RedisTrendStore.from_url(
                s.redis_url, prefix=s.topic_prefix, timeout=s.redis_timeout
            )
        return self._store

    # ---- counting (inside an agent: the event being processed is Faust's current one) ----

    def count(
        self, partition: int, at: datetime, counters: Iterable[tuple[str, str, float]]
    ) -> None:
        """Add ``counters`` in the hour of ``at``; an event older than the windows keep
        (29 days, on the wall clock) is not counted."""
        ts = at.timestamp()
        if ts < time.time() - RETAIN.total_seconds():
            return
        self.at = ts
        start = ts - ts % WINDOW_S
        keys = self.index.setdefault((partition, start), set())
        for series, key, amount in counters:
            name = f"{series}|{key}|{partition}"
            self.windows[name] += amount
            keys.add((name, (start, start + WINDOW_S - 0.1)))
        self.dirty.add((partition, start))

    def on_call(self, partition: int, call: CallV1, geo: Any) -> None:
        loc = call.location
        self.count(
            partition,
            call.received_at,
            event_counters("calls", self._areas(geo, loc.lat, loc.lon), call.grade, call.category),
        )

    def on_incident(self, partition: int, inc: IncidentEventV1, geo: Any) -> None:
        key = inc.incident_id.encode()
        state = _state(self.starts.get(key))
        if inc.event == "created":
            loc = inc.location
            areas = self._areas(geo, loc.lat, loc.lon)
            self.count(
                partition, inc.at, event_counters("incidents", areas, inc.grade, inc.category)
            )
            if state is None:
                self.starts[key] = orjson.dumps({"created": inc.at.isoformat()})
        elif inc.event == "assigned":
            if state is not None and "assigned" not in state:
                self.starts[key] = orjson.dumps({**state, "assigned": inc.at.isoformat()})
        elif inc.event == "arrived":
            if state is not None:
                created, assigned = _time(state.get("created")), _time(state.get("assigned"))
                self.count(partition, inc.at, attend_counters(inc.grade, created, assigned, inc.at))
                del self.starts[key]  # the first arrival counts; later ones find no start
        elif inc.event == "closed" and state is not None:
            del self.starts[key]

    def on_alert(self, partition: int, alert: AlertV1) -> None:
        if alert.rule_id not in HIT_RULES:
            return
        camera = alert.details.get("camera_id")
        read_at = _time(alert.details.get("read_at")) or alert.created_at
        if isinstance(camera, str) and camera:
            self.count(partition, read_at, [("anpr_hits.camera", camera, 1.0)])

    @staticmethod
    def _areas(geo: Any, lat: float, lon: float) -> dict[str, str]:
        found = geo.areas([lat], [lon])[0]
        return {level: found[level]["code"] for level in AREA_LEVELS if found.get(level)}

    # ---- publishing (a timer) -----------------------------------------------------------

    def active_partitions(self) -> frozenset[int]:
        calls = self.worker.topics.calls
        return frozenset(
            tp.partition for tp in self.worker.app.assignor.assigned_actives() if tp.topic == calls
        )

    def _reindex(self, partitions: frozenset[int]) -> None:
        """After a start or a rebalance: every window the table holds, marked changed."""
        self.index = {}
        for raw_key in list(self.table.keys()):
            try:
                name, (start, _end) = raw_key
                partition = int(str(name).rsplit("|", 1)[1])
            except (TypeError, ValueError, IndexError):
                continue
            self.index.setdefault((partition, float(start)), set()).add(
                (name, (float(start), float(_end)))
            )
        self.dirty = {k for k in self.index if k[0] in partitions}

    def take_snapshots(self, now: datetime) -> tuple[set[tuple[int, float]], list[Any]]:
        """The changed (partition, hour)s of the active partitions, taken (what the agents
        count from now on is marked changed again), and their snapshots, built at once:
        nothing is awaited between reading the table and taking the marks."""
        active = self.active_partitions()
        if active != self.published_for:
            self._reindex(active)
            self.published_for = active
        taken, self.dirty = self.dirty, set()
        oldest = time.time() - RETAIN.total_seconds() - WINDOW_S
        out = []
        for partition, start in sorted(taken):
            if partition not in active or start < oldest:
                continue
            counts: dict[str, dict[str, float]] = {}
            for raw_key in self.index.get((partition, start), ()):
                value = self.table.get(raw_key)
                if not value:
                    continue
                series, key, _ = raw_key[0].split("|", 2)
                counts.setdefault(series, {})[key] = float(value)
            hour = datetime.fromtimestamp(start, UTC)
            snap = TrendSnapshot(hour=hour, partition=partition, counts=counts, published_at=now)
            out.append((hour, partition, snap.model_dump_json().encode()))
        return taken, out

    async def publish(self, now: datetime) -> int:
        """Write the changed snapshots; what could not be written stays changed."""
        tables: Any = self.worker.app.tables
        if self.worker.app.rebalancing or not tables.recovery.completed.is_set():
            return 0  # the tables are still being restored
        taken, snaps = self.take_snapshots(now)
        if not snaps:
            return 0
        try:
            await self.store.put(snaps)
        except ServiceError as exc:
            log.warning("trend counts not written (kept for the next try): %s", exc)
            self.dirty |= taken
            return 0
        self.published += len(snaps)
        oldest = time.time() - RETAIN.total_seconds() - WINDOW_S
        for key in [k for k in self.index if k[1] < oldest]:
            del self.index[key]
        return len(snaps)


def _state(raw: bytes | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


class AnomalyCheck:
    """The leader's check for unusual demand, with the alerts it has sent (id -> version)."""

    def __init__(self, worker: Worker, feed: TrendFeed) -> None:
        self.worker = worker
        self.feed = feed
        s = worker.settings
        self.params = AnomalyParams(
            alpha=s.anomaly_alpha,
            min_count=s.anomaly_min_count,
            min_history_hours=s.anomaly_min_history_hours,
        )
        self.sent: dict[str, int] = {}
        self._areas: AreaInfo | None = None

    def areas(self) -> AreaInfo:
        if self._areas is None:
            self._areas = area_info(self.worker.pipeline().geo)
        return self._areas

    async def alerts(self, now: datetime) -> list[AlertV1]:
        """New alerts and new versions for the current and the previous hour."""
        book = await self.feed.refresh(now)
        info = self.areas()
        out = []
        current = hour_start(now)
        for hour in (current - timedelta(hours=1), current):
            for level in AREA_LEVELS:
                series = f"calls.{level}"
                history = book.history(series, hour, HISTORY_HOURS + 1, info.codes[level])
                found = detect(history, hour, book.counts(hour, series), self.params)
                for anomaly in found:
                    alert = anomaly_alert(
                        anomaly,
                        level=level,
                        name=info.names.get(anomaly.code, anomaly.code),
                        district=(
                            info.district_of.get(anomaly.code) if level == "ward" else anomaly.code
                        ),
                        location=info.points.get(anomaly.code),
                        now=now,
                        params=self.params,
                    )
                    if self.sent.get(alert.alert_id, 0) >= alert.version:
                        continue
                    self.sent[alert.alert_id] = alert.version
                    out.append(alert)
        cutoff = current - timedelta(hours=2)
        for key in [k for k in self.sent if _hour_of_id(k) < cutoff]:
            del self.sent[key]
        return out


def _hour_of_id(alert_id: str) -> datetime:
    try:
        return datetime.strptime(alert_id.rsplit(":", 1)[1], "%Y%m%dT%H").replace(tzinfo=UTC)
    except (ValueError, IndexError):
        return datetime.min.replace(tzinfo=UTC)


def add_trend_agents(worker: Worker) -> TrendCounter:
    """The counting agents, the publishing timer and the leader's anomaly check."""
    app, topics, settings = worker.app, worker.topics, worker.settings
    counter = TrendCounter(worker)
    check = AnomalyCheck(worker, TrendFeed(counter.store))
    app.rtic_trends = counter  # type: ignore[attr-defined]

    # Calls and incidents are counted in their input agents (``Worker.observe``).
    worker.observe(
        EventKind.CALL,
        lambda partition, call: counter.on_call(partition, call, worker.pipeline().geo),
    )
    worker.observe(
        EventKind.INCIDENT,
        lambda partition, inc: counter.on_incident(partition, inc, worker.pipeline().geo),
    )

    @app.agent(app.topic(topics.alerts, value_type=bytes, key_type=bytes), name="trends_alerts")
    async def count_hits(stream: Any) -> None:
        """ANPR hotlist hits by camera."""
        async for event in stream.events():
            try:
                alert = AlertV1.model_validate(decode_json(event.value))
            except (ContractError, ValidationError):
                continue  # the deadline agent dead-letters it
            counter.on_alert(event.message.partition, alert)

    @app.timer(settings.trends_publish_s)
    async def publish_trends() -> None:
        """Changed hourly counts to Redis for the desk and the anomaly check."""
        await counter.publish(datetime.now(UTC))

    @app.timer(settings.anomaly_check_s, on_leader=True)
    async def check_anomalies() -> None:
        """Unusual demand by ward and district: analyst alerts (the leader only)."""
        pipe = worker.pipeline()
        now = worker.clock()
        try:
            alerts = await check.alerts(now)
        except ServiceError as exc:
            log.warning("anomaly check skipped: %s", exc)
            return
        alerts = pipe.drop_snoozed(alerts, now)
        if alerts:
            pipe.stats.alerts += len(alerts)
            await worker.send(
                Output(
                    messages=[(topics.alerts, a.alert_id.encode(), dumps(a)) for a in alerts],
                    alerts=alerts,
                )
            )

    return counter
