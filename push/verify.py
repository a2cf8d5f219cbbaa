"""Verify before action, the gateway's part: ``verify`` messages, ``verification`` frames,
and ``GET /api/anpr/cameras``.

A hotlist hit reaches people as a "check the plate" alert (``anpr_hotlist_hit`` with
``details.verification.state == "pending"``). A person who may see it answers
``{"type": "verify", "alert_id", "outcome": "verified" | "not_a_match", "note"?}``:

- who may: an analyst or a supervisor; an officer or a case officer the alert was
  sent to (on this connection, or whose audience and subscription admit them now);
  never a citizen or a contact handler. An alert id the gateway does not hold, or one
  the client may not see, is the error ``not_found`` (the same answer for both); one
  that is no plate check, or whose check was already decided, ``not_pending``.
- the gateway answers ``verify_ack {alert_id, outcome, verification_id}`` once the
  verification is on ``rtic.verifications.v1`` (``VerificationV1``, key ``alert_id``,
  with the alert as the gateway holds it); it also acknowledges the pending alert on
  ``rtic.alert-acks.v1`` (``action: ack``, ``note: "verify: <outcome>"``: the check is
  answered, so it does not escalate as unacknowledged) and audits the act
  (``alert_verified`` / ``alert_not_a_match``).
- when the gateway reads a verification back from the topic, the first one for an
  alert version is pushed as ``verification {alert_id, version, outcome, by, role, at,
  verification_id}`` to every subscribed client that holds the alert (it was sent to
  them, they may see it, or they are an analyst or a supervisor), and the alert the
  gateway keeps for resume says the new state (``details.verification.state``: the
  outcome). Later decisions of the same version are not pushed (the worker ignores
  them too: first decision wins).

The worker's verification agent (``streams/verifications.py``) raises the actionable
``anpr_verified_hit`` for a verified check and counts decisions per camera in Redis;
``GET /api/anpr/cameras`` (analyst, supervisor) lists those counts with the checks
still pending in the gateway's recent alerts, worst camera first.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from enrichers.verifications import VerificationStore
from push.audit import act_record
from push.fanout import ACK_ROLES, Client, Fanout, frame
from push.web import _json, client_address, error_body, require
from rtic.casework import AuditAction, AuditObject, stable_id
from rtic.client_messages import BadClientMessage, Verify
from rtic.errors import ServiceError
from rtic.schemas import AlertAckV1, Role, VerificationV1
from rtic.tokens import Principal

log = logging.getLogger(__name__)

DECISIONS_REMEMBERED = 50_000
AUDIT_ACTIONS = {
    "verified": AuditAction.ALERT_VERIFIED,
    "not_a_match": AuditAction.ALERT_NOT_A_MATCH,
}


class VerificationSink(Protocol):
    """Where verifications go (the Kafka edge: ``rtic.verifications.v1``)."""

    def verification(self, verification: VerificationV1) -> None:
        """Record a verification; must not block."""
        ...


def pending_check(alert: dict[str, Any]) -> dict[str, Any] | None:
    """The alert's plate check if it waits for a person (``state: pending``), else None."""
    check = (alert.get("details") or {}).get("verification")
    if isinstance(check, dict) and check.get("state") == "pending":
        return check
    return None


def may_verify(core: Fanout, client: Client, alert: dict[str, Any]) -> bool:
    """Whether this client may see, and so answer, this alert: the one rule of the
    gateway for acting on an alert (``Fanout.may_see``, ``push.access.may_see_alert``)."""
    alert_id = alert.get("alert_id")
    return isinstance(alert_id, str) and core.may_see(client, alert_id)


class Verifications:
    """The gateway's verification part: plugged into the core with ``Fanout.handle``."""

    def __init__(
        self,
        core: Fanout,
        sink: VerificationSink,
        store: VerificationStore | None = None,
    ) -> None:
        """``sink``: where verifications are written; ``store``: the per-camera counts
        (Redis; the gateway opens it with its other stores)."""
        self.core = core
        self.sink = sink
        self.store = store
        self.decided: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        core.handle("verify", self.handle)

    # ---- client -> gateway -----------------------------------------------------------

    def handle(self, client: Client, msg: Verify) -> bytes:
        """``verify``: checked, written, acknowledged, audited; ``verify_ack``."""
        who = client.principal
        alert = self.core.recent.get(msg.alert_id)
        if alert is None or not may_verify(self.core, client, alert):
            raise BadClientMessage("not_found", f"no alert {msg.alert_id} to verify", "verify")
        version = int(alert.get("version") or 1)
        check = (alert.get("details") or {}).get("verification")
        if not isinstance(check, dict):
            raise BadClientMessage(
                "not_pending", f"alert {msg.alert_id} is not a plate check to verify", "verify"
            )
        done = self.decided.get((msg.alert_id, version))
        if done is not None or check.get("state") != "pending":
            done = done or check
            raise BadClientMessage(
                "not_pending",
                f"alert {msg.alert_id} was already answered: "
                f"{done.get('outcome', done.get('state'))} by {done.get('by')} at {done.get('at')}",
                "verify",
            )
        now = self.core.clock()
        verification = VerificationV1(
            verification_id=stable_id(
                "verification", msg.alert_id, version, who.sub, who.jti, now.isoformat()
            ),
            alert_id=msg.alert_id,
            outcome=msg.outcome,
            by=who.sub,
            role=who.role,
            at=now,
            note=msg.note,
            camera_id=check.get("camera_id"),
            alert=alert,
        )
        self.sink.verification(verification)
        self.core.sink.ack(
            AlertAckV1(
                alert_id=msg.alert_id,
                action="ack",
                by=who.sub,
                role=who.role,
                at=now,
                note=f"verify: {msg.outcome}",
            )
        )
        self.core.audit.act(
            act_record(
                who,
                AUDIT_ACTIONS[msg.outcome],
                AuditObject.ALERT,
                msg.alert_id,
                now,
                origin=client.origin,
                reason=msg.note,
                detail={
                    "version": version,
                    "verification_id": verification.verification_id,
                    "camera_id": check.get("camera_id"),
                    "read_vrm": check.get("read_vrm"),
                    "listed_vrm": check.get("listed_vrm"),
                },
            )
        )
        log.info(
            "%s %s answered plate check %s: %s", who.role.value, who.sub, msg.alert_id, msg.outcome
        )
        return frame(
            "verify_ack",
            {
                "alert_id": msg.alert_id,
                "outcome": msg.outcome,
                "verification_id": verification.verification_id,
            },
        )

    # ---- Kafka -> clients ------------------------------------------------------------

    def read(self, message: dict[str, Any]) -> None:
        """A verification read from ``rtic.verifications.v1``: the first for its alert
        version is pushed to the clients that hold the alert, and kept."""
        try:
            v = VerificationV1.model_validate(message)
            version = int(v.alert.get("version") or 1)
        except (ValidationError, TypeError, ValueError) as exc:
            log.warning("gateway ignored a verification it cannot read: %s", exc)
            return
        key = (v.alert_id, version)
        if key in self.decided:
            return  # first decision wins, as in the worker (one partition: one order)
        decision = {
            "alert_id": v.alert_id,
            "version": version,
            "outcome": v.outcome,
            "by": v.by,
            "role": v.role.value,
            "at": v.at.isoformat(),
            "verification_id": v.verification_id,
        }
        self.decided[key] = decision
        while len(self.decided) > DECISIONS_REMEMBERED:
            self.decided.popitem(last=False)
        alert = self.core.recent.get(v.alert_id)
        if alert is not None:
            self.mark(alert)
        data = frame("verification", decision)
        for client in list(self.core.clients):
            if client.subscription is None:
                continue
            if (
                v.alert_id in client.sent_alerts
                or client.principal.role in ACK_ROLES
                or (alert is not None and may_verify(self.core, client, alert))
            ):
                client.offer_case(data)  # queued, or the client is closed to reload: never lost

    def mark(self, alert: dict[str, Any]) -> None:
        """Keep, for resume, the alert with its decided state (if it has one)."""
        alert_id = alert.get("alert_id")
        version = int(alert.get("version") or 1)
        decision = self.decided.get((str(alert_id), version))
        if decision is None or pending_check(alert) is None or alert_id not in self.core.recent:
            return
        details = alert.get("details") or {}
        check = {
            **details["verification"],
            "state": decision["outcome"],
            "verification_id": decision["verification_id"],
            "by": decision["by"],
            "role": decision["role"],
            "at": decision["at"],
        }
        # Same key: its place in the resume buffer does not move.
        self.core.recent[str(alert_id)] = {**alert, "details": {**details, "verification": check}}

    # ---- HTTP ------------------------------------------------------------------------

    def pending_by_camera(self) -> Counter[str]:
        """Plate checks still waiting, per camera, among the gateway's recent alerts."""
        waiting: Counter[str] = Counter()
        for alert in self.core.recent.values():
            check = pending_check(alert)
            if check is None:
                continue
            version = int(alert.get("version") or 1)
            if (alert.get("alert_id"), version) not in self.decided:
                waiting[str(check.get("camera_id") or "unknown")] += 1
        return waiting

    async def cameras(self) -> list[dict[str, Any]]:
        """Per camera: verified, not a match and pending checks, worst first (most not a
        match, then the highest share of them, then most pending)."""
        if self.store is None:
            raise ServiceError("the gateway has no verification store")
        counts = await self.store.camera_counts()
        pending = self.pending_by_camera()
        ranked: list[tuple[tuple[int, float, int, str], dict[str, Any]]] = []
        for camera in set(counts) | set(pending):
            c = counts.get(camera, {})
            verified, wrong = int(c.get("verified", 0)), int(c.get("not_a_match", 0))
            decided = verified + wrong
            rate = round(wrong / decided, 3) if decided else None
            waiting = pending.get(camera, 0)
            row = {
                "camera_id": camera,
                "verified": verified,
                "not_a_match": wrong,
                "pending": waiting,
                "not_a_match_rate": rate,
            }
            ranked.append(((-wrong, -(rate or 0.0), -waiting, camera), row))
        ranked.sort(key=lambda r: r[0])
        rows = [row for _, row in ranked]
        return rows


@require(Role.RTIC_ANALYST, Role.SUPERVISOR)
async def anpr_cameras(request: Request, who: Principal) -> Response:
    """``GET /api/anpr/cameras``: plate checks per camera, worst first."""
    verifications: Verifications | None = getattr(request.app.state, "verifications", None)
    if verifications is None:
        return _json(error_body("unavailable", "this gateway does not count plate checks"), 503)
    try:
        rows = await verifications.cameras()
    except ServiceError as exc:
        log.error(
            "camera counts unavailable for %s (%s): %s", who.sub, client_address(request), exc
        )
        return _json(error_body("unavailable", "the camera counts cannot be read now"), 503)
    return _json(
        {
            "cameras": rows,
            "pending_basis": "plate checks waiting among the gateway's recent alerts",
        }
    )
