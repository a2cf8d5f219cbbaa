"""The edge of the time-based rules: tracked states in tables, fired on a clock.

``DeadlineBook`` moves events into the states of ``rules/deadlines.py`` and runs
the time-based rules over them. It works on two mutable mappings of bytes to
bytes: in the worker these are Faust tables (``response-promises`` keyed by
incident id, co-partitioned with ``rtic.incidents.v1``; ``critical-alerts``
keyed by alert id, co-partitioned with ``rtic.alerts.v1`` and
``rtic.alert-acks.v1``), so the states are in changelog topics, survive a
worker restart and move with their partitions; in ``rtic rules test`` they are
plain dicts.

Firing does not write the tables (Faust only lets a table change inside its
agent, where the partition is known). Alert ids are stable per key and stage,
so the book remembers which ids it has sent for the keys it still tracks and
sends each once; after a restart a due alert may be sent once more with the
same id, which the gateway shows once (at-least-once, as everywhere).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from rtic.schemas import AlertAckV1, AlertV1, IncidentEventV1
from rules.base import Rule, RuleStats, evaluate_timed
from rules.deadlines import track_ack, track_alert, track_incident

Table = MutableMapping[bytes, bytes]
AreaCodes = Callable[[float, float], list[str]]


class DeadlineBook:
    """Tracked incidents and critical alerts, and the alerts their deadlines raise."""

    def __init__(self, promises: Table, critical: Table, area_codes: AreaCodes) -> None:
        self.promises = promises
        self.critical = critical
        self.area_codes = area_codes
        self._sent: dict[tuple[str, bytes], set[str]] = {}

    @staticmethod
    def _update(table: Table, key: bytes, new: dict[str, Any] | None) -> None:
        if new is None:
            if key in table:
                del table[key]
        else:
            table[key] = orjson.dumps(new)

    @staticmethod
    def _state(table: Table, key: bytes) -> dict[str, Any] | None:
        raw = table.get(key)
        return orjson.loads(raw) if raw else None

    def on_incident(self, event: IncidentEventV1) -> None:
        key = event.incident_id.encode()
        state = self._state(self.promises, key)
        area = (
            state["area"]
            if state and "area" in state
            else self.area_codes(event.location.lat, event.location.lon)
        )
        self._update(self.promises, key, track_incident(state, event, list(area)))

    def on_alert(self, alert: AlertV1) -> None:
        key = alert.alert_id.encode()
        state = self._state(self.critical, key)
        new = track_alert(state, alert)
        if new is not state:
            self._update(self.critical, key, new)

    def on_ack(self, ack: AlertAckV1) -> None:
        key = ack.alert_id.encode()
        self._update(self.critical, key, track_ack(self._state(self.critical, key), ack))

    def due(
        self, rules: Sequence[Rule], now: datetime, stats: RuleStats | None = None
    ) -> list[AlertV1]:
        """Alerts whose deadline has passed at ``now`` and that were not sent before."""
        out: list[AlertV1] = []
        live: set[tuple[str, bytes]] = set()
        for tracks, table in (("incident", self.promises), ("critical_alert", self.critical)):
            for key, raw in list(table.items()):
                live.add((tracks, key))
                state = orjson.loads(raw)
                for alert in evaluate_timed(rules, tracks, state, now, stats):
                    sent = self._sent.setdefault((tracks, key), set())
                    if alert.alert_id not in sent:
                        sent.add(alert.alert_id)
                        out.append(alert)
        for gone in set(self._sent) - live:  # states dropped (arrived, closed, acknowledged)
            del self._sent[gone]
        return out
