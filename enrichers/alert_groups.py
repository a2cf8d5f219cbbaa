"""Open alerts: repeated hits of a rule folded into one alert that is updated (same id,
higher version) instead of a new alert each time.

The pipeline calls ``fold_repeated`` on a batch's alerts after the rules (and the
snoozes) have had their say. A rule asks for grouping with ``make_alert(group=...)``:
the alert carries its group's key and ``details.group.window_s``. The open groups are
kept where every worker sees them (``RedisAlertGroups``: one script call per batch;
``enrichers.stores.MemoryAlertGroups`` in tests), on the event clock, so a replay
groups as the live stream did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import orjson

import enrichers.lua as lua
from enrichers.keys import Keys
from enrichers.redis_io import call_script
from rtic.errors import EnrichmentError, ServiceError
from rtic.schemas import AlertV1

log = logging.getLogger(__name__)


class GroupHit(NamedTuple):
    """One alert's hit on its group."""

    group: str  # the group's key (``AlertV1.group``)
    alert_id: str  # the id the alert takes if it opens the group
    source: str  # the hit's source events (a redelivered hit is not counted twice)
    window_s: float  # how long the group stays open after its last hit
    at: float  # the hit's time on the event clock (epoch seconds)


class OpenAlert(NamedTuple):
    """The open alert a hit went into."""

    alert_id: str
    version: int  # 1 when the hit opened it
    hits: int
    first_at: float  # epoch seconds of the first hit


class AlertGroupStore(Protocol):
    """Where open alerts are kept."""

    async def fold(self, hits: Sequence[GroupHit]) -> list[OpenAlert]:
        """The open alert each hit went into, in order, in one round trip."""
        ...


class RedisAlertGroups:
    """Open alerts in Redis (``rtic:open-alert:{group}``), expiring on their own."""

    def __init__(self, client: Any, keys: Keys, *, timeout: float = 1.0) -> None:
        self.keys = keys
        self.timeout = timeout
        self._script = client.register_script(lua.GROUP)

    async def fold(self, hits: Sequence[GroupHit]) -> list[OpenAlert]:
        if not hits:
            return []
        payload = orjson.dumps(
            [
                {
                    "k": self.keys.open_alert(h.group),
                    "a": h.alert_id,
                    "s": h.source,
                    "w": max(int(h.window_s), 1),
                    "t": h.at,
                }
                for h in hits
            ]
        )
        raw = await call_script(self._script, (), (payload,), self.timeout)
        return [OpenAlert(str(a), int(v), int(n), float(f)) for a, v, n, f in orjson.loads(raw)]


def group_window(alert: AlertV1) -> float:
    """How long an alert's group stays open between hits (0: not grouped)."""
    return float(alert.details.get("group", {}).get("window_s") or 0)


async def fold_repeated(
    alerts: list[AlertV1], store: AlertGroupStore | None, now: datetime
) -> list[AlertV1]:
    """The batch's alerts with repeated hits folded into their open alerts.

    An alert that joins an open one takes its id, a higher version, ``created_at``
    from the first hit and ``details.hits`` / ``first_hit_at``; of several hits of
    one group in a batch only the latest version goes out. Without the store (none,
    or Redis failing) the alerts go out ungrouped: more alerts, none lost.
    """
    grouped = [a for a in alerts if a.group and group_window(a) > 0]
    if not grouped or store is None:
        return alerts
    hits = [
        GroupHit(
            a.group or "",
            a.alert_id,
            ",".join(a.source_event_ids),
            group_window(a),
            now.timestamp(),
        )
        for a in grouped
    ]
    try:
        answers = await store.fold(hits)
    except (ServiceError, EnrichmentError) as exc:
        log.warning("alerts not grouped (sent as they are): %s", exc)
        return alerts
    latest: dict[str, AlertV1] = {}
    for alert, open_alert in zip(grouped, answers, strict=True):
        folded = _folded(alert, open_alert, now)
        if (
            open_alert.alert_id not in latest
            or latest[open_alert.alert_id].version < folded.version
        ):
            latest[open_alert.alert_id] = folded
    folded_in = {id(a) for a in grouped}
    return [a for a in alerts if id(a) not in folded_in] + list(latest.values())


def _folded(alert: AlertV1, open_alert: OpenAlert, now: datetime) -> AlertV1:
    """An alert as a hit of its open alert."""
    alert_id, version, count, first = open_alert
    update: dict[str, Any] = {"alert_id": alert_id, "version": version}
    if version > 1:
        first_at = datetime.fromtimestamp(first, UTC)
        update["updated_at"] = now
        update["created_at"] = first_at
        label = alert.details["group"].get("label")
        if label:
            update["summary"] = f"{alert.summary} ({count} {label} since {first_at:%H:%M:%S}Z)"
        update["details"] = {**alert.details, "hits": count, "first_hit_at": first_at.isoformat()}
    return alert.model_copy(update=update)
