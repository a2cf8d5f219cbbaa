"""The gateway's audit emitter: who was sent what, who opened, acted, viewed and searched.

The fan-out core and the web edge record acts here; the Kafka edge drains the
buffer to ``rtic.audit.v1`` in batches (the case worker's audit writer stores
them in the database). Nothing here does I/O or awaits, so recording never
blocks or slows the fan-out.

Deliveries are aggregated: one ``alert_delivered`` record per alert version
per flush, listing every client it reached in that flush (``detail.recipients``:
``sub``, ``role``, ``origin``, ``connection``). The buffer holds one small entry
per fan-out of an alert, not one per client, so an alert reaching hundreds of
screens costs one entry, and the alert's audit history stays readable (its
opens and acts are not buried under a row per screen). Every other act is one
record, its actor the token's subject.

Bounded: the buffer holds at most ``max_entries`` deliveries and as many acts.
When it is full (Kafka unreachable for long, or a burst far beyond what the
flusher sends), a new entry is dropped, counted in
``rtic_gateway_audit_dropped_total{action}`` and logged (the first, then every
``LOG_EVERY``-th). So the audit of deliveries and websocket acts is complete
while the gateway runs and Kafka answers, and may drop under overload or lose
the last flush interval's records if the gateway dies; the HTTP acts (case
views, searches, audit views) are written before the answer leaves and the
API answers 503 without them (``push/api.py``).

Every record's ``audit_id`` is ``rtic.casework.stable_id`` of the facts it
records, and a batch that fails is retried as the same records, so a retried
produce never doubles a record (the writer upserts by ``audit_id``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from push.metrics import GatewayMetrics
from rtic.casework import AuditAction, AuditObject, AuditV1, stable_id
from rtic.tokens import Principal

log = logging.getLogger(__name__)

MAX_ENTRIES = 50_000  # deliveries (one per fan-out of an alert) and, apart, acts
LOG_EVERY = 1000  # after the first drop, one log line per this many
GATEWAY_ACTOR = "gateway"  # the actor of delivery records (role "system")


@dataclass(frozen=True)
class Recipient:
    """One client an alert version was queued for."""

    sub: str
    role: str
    origin: str | None
    connection: str

    def describe(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "role": self.role,
            "origin": self.origin,
            "connection": self.connection,
        }


@dataclass
class _Delivery:
    alert_id: str
    version: int
    at: datetime
    recipients: list[Recipient] = field(default_factory=list)


def act_record(
    who: Principal,
    action: AuditAction,
    object_type: AuditObject,
    object_id: str,
    at: datetime,
    *,
    origin: str | None = None,
    reason: str | None = None,
    reference: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditV1:
    """One person's act as an audit record; its id is stable (the same act, at the same
    time, by the same token, gives the same id)."""
    return AuditV1(
        audit_id=stable_id(
            "audit", action.value, object_type.value, object_id, who.sub, who.jti, at.isoformat()
        ),
        at=at,
        actor=who.sub,
        role=who.role,
        action=action,
        object_type=object_type,
        object_id=object_id,
        origin=origin,
        reason=reason,
        reference=reference,
        detail=detail or {},
    )


class AuditBuffer:
    """Audit records waiting for the Kafka edge: bounded, never blocking."""

    def __init__(
        self,
        metrics: GatewayMetrics | None = None,
        *,
        max_entries: int = MAX_ENTRIES,
        origin: str | None = None,
    ) -> None:
        """``origin``: where delivery records say they come from (the gateway's address)."""
        self.metrics = metrics or GatewayMetrics()
        self.max_entries = max_entries
        self.origin = origin
        self._deliveries: deque[_Delivery] = deque()
        self._acts: deque[AuditV1] = deque()
        self.dropped = 0
        self.on_record: Callable[[], None] | None = None  # the flusher's wake-up, if any

    def __len__(self) -> int:
        return len(self._deliveries) + len(self._acts)

    def _drop(self, action: AuditAction) -> None:
        self.dropped += 1
        self.metrics.audit_dropped.labels(action.value).inc()
        if self.dropped % LOG_EVERY == 1:
            log.warning(
                "audit buffer full (%d entries): %d audit record(s) dropped so far",
                self.max_entries,
                self.dropped,
            )

    def _recorded(self) -> None:
        self.metrics.audit_buffered.set(len(self))
        if self.on_record is not None:
            self.on_record()

    def delivered(
        self, alert_id: str, version: int, at: datetime, recipients: list[Recipient]
    ) -> None:
        """An alert version was queued for these clients (one fan-out)."""
        if not recipients:
            return
        if len(self._deliveries) >= self.max_entries:
            self._drop(AuditAction.ALERT_DELIVERED)
            return
        self._deliveries.append(_Delivery(alert_id, version, at, recipients))
        self._recorded()

    def act(self, record: AuditV1) -> None:
        """Someone's act (open, ack, snooze, a view, a search...)."""
        if len(self._acts) >= self.max_entries:
            self._drop(record.action)
            return
        self._acts.append(record)
        self._recorded()

    def drain(self, max_records: int = 1000) -> list[AuditV1]:
        """Take up to about ``max_records`` records out: the acts first, then deliveries
        folded into one record per alert version."""
        out: list[AuditV1] = []
        while self._acts and len(out) < max_records:
            out.append(self._acts.popleft())
        folded: dict[tuple[str, int], _Delivery] = {}
        while self._deliveries and len(out) + len(folded) < max_records:
            d = self._deliveries.popleft()
            known = folded.get((d.alert_id, d.version))
            if known is None:
                folded[(d.alert_id, d.version)] = _Delivery(
                    d.alert_id, d.version, d.at, list(d.recipients)
                )
            else:
                known.recipients.extend(d.recipients)
        out.extend(self._delivery_record(d) for d in folded.values())
        self.metrics.audit_buffered.set(len(self))
        return out

    def _delivery_record(self, d: _Delivery) -> AuditV1:
        connections = sorted(r.connection for r in d.recipients)
        return AuditV1(
            audit_id=stable_id("audit", "alert_delivered", d.alert_id, d.version, *connections),
            at=d.at,
            actor=GATEWAY_ACTOR,
            role="system",
            action=AuditAction.ALERT_DELIVERED,
            object_type=AuditObject.ALERT,
            object_id=d.alert_id,
            origin=self.origin,
            detail={
                "version": d.version,
                "count": len(d.recipients),
                "recipients": [r.describe() for r in d.recipients],
            },
        )
