"""The desk's charts: hourly aggregates of what the gateway reads, over the last 24 hours.

``DeskStats`` is pure (no I/O, the clock injected): the gateway hands it every
message its Kafka edge reads (``observe``, from ``Gateway.deliver``) and
``GET /api/desk/stats`` (analysts, supervisors) answers ``snapshot()``:

- calls by grade and by category per hour, from ``rtic.enriched.v1`` (the
  enrichment's ``kind`` is ``call``), bucketed by ``received_at``;
- ANPR hits per hour (alerts of the ``anpr_hotlist_hit`` rule, by ``created_at``)
  and verifications per hour by outcome (``rtic.verifications.v1``, by ``at``;
  the first decision on an alert counts, as the verification worker keeps it);
- open alerts by age band and severity now: alerts read and not yet acknowledged,
  assigned or dismissed (``rtic.alert-acks.v1``).

Each call, alert and verification is counted once (by its id), so a redelivery or
a re-read after a restart counts nothing twice.

What it knows after a gateway restart (the choice, written down): the Kafka edge
re-reads the last ``gateway_resume_buffer`` alerts and acks at start, so ANPR hits
and open alerts come back as far as that buffer goes; calls and verifications are
re-read by ``replay_recent`` from their own topics (``rtic.calls.v1`` and
``rtic.verifications.v1``) from 24 hours back, by the broker's timestamps where it
answers them, else from the topic's start, keeping only the last 24 hours by the
message's own time. The records database was not used: it holds cases, which are
only the calls that became crimes, not every call. The snapshot says when each
series was seeded (``seeded``) and since when the gateway has been counting
(``since``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from push.web import _json, require
from rtic.clock import utc_now
from rtic.kafka import FETCH_MAX_WAIT_MS, bootstrap_servers
from rtic.schemas import Role
from rtic.tokens import Principal

log = logging.getLogger(__name__)

HOURS = 24
HIT_RULES = frozenset({"anpr_hotlist_hit"})  # the hotlist rule (a plate to check)
OUTCOMES = ("verified", "not_a_match")
CLOSING_ACTIONS = frozenset({"ack", "assign", "dismiss"})
AGE_BANDS: tuple[tuple[str, timedelta | None], ...] = (
    ("under 15 min", timedelta(minutes=15)),
    ("15 to 60 min", timedelta(hours=1)),
    ("1 to 4 hours", timedelta(hours=4)),
    ("4 to 24 hours", timedelta(hours=24)),
    ("over 24 hours", None),
)
SEEN_LIMIT = 200_000  # ids remembered to count each once (a day of a busy force's calls)
OPEN_LIMIT = 20_000  # open alerts held for the age chart
Clock = Callable[[], datetime]


def _when(value: Any) -> datetime | None:
    """An aware datetime from an ISO text, or None."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


class _Seen:
    """Ids counted already, oldest forgotten first past a bound."""

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self.ids: OrderedDict[str, None] = OrderedDict()
        self.limit = limit

    def first(self, key: str) -> bool:
        if key in self.ids:
            return False
        self.ids[key] = None
        if len(self.ids) > self.limit:
            self.ids.popitem(last=False)
        return True


class DeskStats:
    """Hourly counts of calls, ANPR hits and verifications, and the open alerts."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.since = clock()
        # hour start -> series -> key -> count
        self.hours: dict[datetime, dict[str, dict[str, int]]] = {}
        self.open_alerts: OrderedDict[str, tuple[datetime, str]] = OrderedDict()
        self.closed: _Seen = _Seen()
        self.seeded: dict[str, str] = {}
        self._calls, self._alerts, self._verified = _Seen(), _Seen(), _Seen()

    # ---- what the gateway reads -------------------------------------------------------

    def observe(self, kind: str, message: dict[str, Any]) -> None:
        """One message the Kafka edge read (``Gateway.deliver``'s kinds); never raises on
        a message it does not understand."""
        if not isinstance(message, dict):
            return
        if kind == "enriched":
            events = message.get("reads") if "reads" in message else [message]
            for event in events if isinstance(events, list) else []:
                if isinstance(event, dict):
                    self._enriched(event)
        elif kind == "alert":
            self.alert(message)
        elif kind == "ack":
            self.ack(message)
        elif kind == "verification":
            self.verification(message)

    def _enriched(self, event: dict[str, Any]) -> None:
        if (event.get("enrichment") or {}).get("kind") == "call":
            self.call(event)

    def call(self, call: dict[str, Any]) -> None:
        """A call (enriched or as received): counted by grade and category at its hour."""
        call_id, at = call.get("call_id"), _when(call.get("received_at"))
        if not isinstance(call_id, str) or at is None or not self._recent(at):
            return
        if not self._calls.first(call_id):
            return
        grade = call.get("grade")
        self._add(at, "calls_by_grade", str(grade) if grade in (1, 2, 3, 4) else "ungraded")
        category = call.get("category")
        self._add(at, "calls_by_category", category if isinstance(category, str) else "unknown")

    def alert(self, alert: dict[str, Any]) -> None:
        """An alert (any version): an ANPR hit at its hour, and open until acted on."""
        alert_id, at = alert.get("alert_id"), _when(alert.get("created_at"))
        if not isinstance(alert_id, str) or at is None:
            return
        if not self._alerts.first(alert_id):
            return
        if alert.get("rule_id") in HIT_RULES and self._recent(at):
            self._add(at, "anpr", "hits")
        if alert_id in self.closed.ids:
            return  # its ack was read first (a re-read after a restart)
        severity = alert.get("severity")
        self.open_alerts[alert_id] = (at, severity if isinstance(severity, str) else "unknown")
        while len(self.open_alerts) > OPEN_LIMIT:
            self.open_alerts.popitem(last=False)

    def ack(self, ack: dict[str, Any]) -> None:
        """Someone acknowledged, assigned or dismissed an alert: no longer open."""
        alert_id = ack.get("alert_id")
        if isinstance(alert_id, str) and ack.get("action") in CLOSING_ACTIONS:
            self.closed.first(alert_id)
            self.open_alerts.pop(alert_id, None)

    def verification(self, v: dict[str, Any]) -> None:
        """A plate check's outcome, the first on its alert, at its hour."""
        alert_id, at, outcome = v.get("alert_id"), _when(v.get("at")), v.get("outcome")
        if not isinstance(alert_id, str) or at is None or outcome not in OUTCOMES:
            return
        if self._recent(at) and self._verified.first(alert_id):
            self._add(at, "anpr", str(outcome))

    def _recent(self, at: datetime) -> bool:
        now = self.clock()
        return now - timedelta(hours=HOURS) < at <= now + timedelta(minutes=5)

    def _add(self, at: datetime, series: str, key: str) -> None:
        counts = self.hours.setdefault(_hour(at), {}).setdefault(series, {})
        counts[key] = counts.get(key, 0) + 1
        self._prune()

    def _prune(self) -> None:
        oldest = _hour(self.clock()) - timedelta(hours=HOURS)
        for hour in [h for h in self.hours if h <= oldest]:
            del self.hours[hour]

    # ---- what the desk is sent --------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The last 24 hours, hour by hour (oldest first), and the open alerts by age."""
        now = self.clock()
        self._prune()
        last = _hour(now)
        hours = [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]

        def series(name: str) -> dict[str, list[int]]:
            keys = sorted({k for h in hours for k in self.hours.get(h, {}).get(name, {})})
            return {k: [self.hours.get(h, {}).get(name, {}).get(k, 0) for h in hours] for k in keys}

        anpr = series("anpr")
        bands = []
        lower = timedelta(0)
        for label, upper in AGE_BANDS:
            inside = [
                sev
                for at, sev in self.open_alerts.values()
                if lower <= now - at and (upper is None or now - at < upper)
            ]
            by_severity: dict[str, int] = {}
            for sev in inside:
                by_severity[sev] = by_severity.get(sev, 0) + 1
            bands.append({"label": label, "count": len(inside), "by_severity": by_severity})
            lower = upper or lower
        return {
            "generated_at": now.isoformat(),
            "since": self.since.isoformat(),
            "seeded": dict(self.seeded),
            "hours": [h.isoformat() for h in hours],
            "calls": {
                "by_grade": series("calls_by_grade"),
                "by_category": series("calls_by_category"),
            },
            "anpr": {k: anpr.get(k, [0] * HOURS) for k in ("hits", *OUTCOMES)},
            "open_alerts": {"total": len(self.open_alerts), "by_age": bands},
        }


# ---- seeding after a restart ------------------------------------------------------------


async def replay_recent(
    kafka_url: str,
    topic: str,
    handle: Callable[[dict[str, Any]], None],
    since: datetime,
    *,
    within_s: float = 60.0,
) -> int:
    """Read ``topic`` from ``since`` (by broker timestamps where the broker answers them,
    else from the start) up to its end as it is now, handing each JSON message to
    ``handle``; how many were handed. A missing topic reads nothing."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # rtic/kafka.py
    )
    await consumer.start()
    handed = 0
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return 0
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        begins = await consumer.beginning_offsets(parts)
        starts = dict(begins)
        with contextlib.suppress(Exception):  # not every broker answers by time
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in parts}
            )
            for tp, at in found.items():
                starts[tp] = at.offset if at is not None else ends[tp]
        waiting = {tp for tp in parts if starts[tp] < ends[tp]}
        for tp in parts:
            consumer.seek(tp, starts[tp])
        async with asyncio.timeout(within_s):
            while waiting:
                batches = await consumer.getmany(*waiting, timeout_ms=200, max_records=5000)
                for tp, records in batches.items():
                    for rec in records:
                        if rec.offset >= ends[tp]:
                            break
                        if rec.value is not None:
                            with contextlib.suppress(ValueError):
                                message = orjson.loads(rec.value)
                                if isinstance(message, dict):
                                    handle(message)
                                    handed += 1
                    if records and records[-1].offset >= ends[tp] - 1:
                        waiting.discard(tp)
                for tp in list(waiting):
                    if await consumer.position(tp) >= ends[tp]:
                        waiting.discard(tp)
    finally:
        await consumer.stop()
    return handed


async def seed(stats: DeskStats, kafka_url: str, topics: dict[str, str]) -> None:
    """Re-read the last 24 hours of ``topics`` (kind -> topic: ``call``,
    ``verification``) into ``stats``; a failure is logged and the desk starts empty."""
    since = stats.clock() - timedelta(hours=HOURS)
    handlers: dict[str, Callable[[dict[str, Any]], None]] = {
        "call": stats.call,
        "verification": stats.verification,
    }
    for kind, topic in topics.items():
        try:
            count = await replay_recent(kafka_url, topic, handlers[kind], since)
        except Exception as exc:
            log.warning("desk stats: could not re-read %s: %r", topic, exc)
            stats.seeded[kind] = f"not seeded: {type(exc).__name__}"
            continue
        stats.seeded[kind] = f"{count} re-read from {topic} at {stats.clock().isoformat()}"


# ---- HTTP ---------------------------------------------------------------------------------


def stats_of(app: Any) -> DeskStats:
    """The app's desk stats (the gateway puts its own on ``app.state.desk_stats``; an
    app without one gets an empty one on the core's clock)."""
    found = getattr(app.state, "desk_stats", None)
    if not isinstance(found, DeskStats):
        found = DeskStats(app.state.edge.core.clock)
        app.state.desk_stats = found
    return found


@require(Role.RTIC_ANALYST, Role.SUPERVISOR)
async def desk_stats(request: Request, who: Principal) -> Response:
    """``GET /api/desk/stats``: the desk's charts (force-wide counts: no person, no
    alert or call is named in them)."""
    return _json(stats_of(request.app).snapshot())


def desk_routes() -> list[BaseRoute]:
    """The desk's routes (``push.web.routes`` adds them)."""
    return [Route("/api/desk/stats", desk_stats)]
