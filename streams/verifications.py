"""The verification agent: plate checks answered on ``rtic.verifications.v1``.

The gateway writes a person's ``verify`` (``rtic.schemas.VerificationV1``, with the
pending "check the plate" alert as it held it). For each message, in order:

- a message that is not a verification of a pending plate check becomes a dead
  letter, as on every other input topic (the stream goes on);
- the first decision for the alert version wins (``enrichers.verifications``: kept
  in Redis, counted per camera in the same step); a later or losing one changes
  nothing (logged);
- the winning ``verified`` decision raises the actionable alert
  (``rules.anpr_verified``) for the officers around the read, from their last pings,
  and the desk; ``not_a_match`` raises nothing: it is counted against the camera
  (``GET /api/anpr/cameras`` on the gateway) and audited by the gateway.

A redelivered winning message raises the same alert again (stable id and version:
the gateway pushes it once). If Redis does not answer, the message is held and tried
again (a decision must not be lost); Faust commits its offset only after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from enrichers.stores import RedisStores
from enrichers.verifications import RedisVerifications, VerificationStore
from rtic.clock import Clock
from rtic.errors import ContractError, ServiceError
from rtic.schemas import AlertV1, VerificationV1, decode_json, dumps
from rtic.topics import Topics
from rules.anpr_verified import PENDING_RULE_ID, RULE_ID, VerifiedCheck
from rules.base import Rule, RuleContext
from streams.pipeline import Output, RawRecord

if TYPE_CHECKING:
    from streams.app import Worker

log = logging.getLogger(__name__)

Officers = Callable[[], Awaitable[Mapping[str, Mapping[str, Any]]]]
DeadLetter = Callable[[RawRecord, str], tuple[str, bytes | None, bytes]]


class NotACheck(ContractError):
    """A verification of something other than a pending plate check."""


def parse(raw: bytes | None) -> tuple[VerificationV1, AlertV1]:
    """A message to (the verification, the pending alert it answers), or
    ``ContractError`` / ``ValidationError`` saying why not."""
    v = VerificationV1.model_validate(decode_json(raw))
    pending = AlertV1.model_validate(v.alert)
    if pending.alert_id != v.alert_id:
        raise NotACheck(f"alert_id {v.alert_id!r} but the alert given is {pending.alert_id!r}")
    check = pending.details.get("verification")
    if pending.rule_id != PENDING_RULE_ID or not isinstance(check, dict):
        raise NotACheck(f"alert {v.alert_id} ({pending.rule_id}) is not a plate check")
    return v, pending


class Verifications:
    """What the agent does with one message (no Faust: unit-tested on the memory store)."""

    def __init__(
        self,
        topics: Topics,
        store: VerificationStore,
        officers: Officers,
        rules: Callable[[], Sequence[Rule]],
        clock: Clock,
        dead_letter: DeadLetter,
    ) -> None:
        self.topics = topics
        self.store = store
        self.officers = officers
        self.rules = rules
        self.clock = clock
        self.dead_letter = dead_letter
        self.decided = 0
        self.ignored = 0  # decisions that came after the first

    async def process(self, record: RawRecord) -> Output:
        """One message: its dead letter, or the alert a first ``verified`` raises.
        ``ServiceError`` when Redis does not answer (the caller retries)."""
        try:
            v, pending = parse(record.value)
        except (ContractError, ValidationError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return Output(messages=[self.dead_letter(record, reason)], dead_letters=1)
        camera = v.camera_id or str(pending.details.get("camera_id") or "")
        decision = await self.store.decide(
            v.alert_id, pending.version, v.verification_id, v.outcome, camera
        )
        if not decision.first:
            self.ignored += 1
            log.info(
                "verification %s of %s v%d: already decided by %s",
                v.verification_id,
                v.alert_id,
                pending.version,
                decision.verification_id,
            )
            return Output()
        self.decided += 1
        log.info(
            "plate check %s v%d: %s by %s %s (camera %s)",
            v.alert_id,
            pending.version,
            v.outcome,
            v.role.value,
            v.by,
            camera or "unknown",
        )
        if v.outcome != "verified":
            return Output()
        alerts = await self._raise(v)
        return Output(
            messages=[(self.topics.alerts, a.alert_id.encode(), dumps(a)) for a in alerts],
            alerts=alerts,
        )

    async def _raise(self, v: VerificationV1) -> list[AlertV1]:
        rule = next((r for r in self.rules() if r.spec.rule_id == RULE_ID and r.spec.enabled), None)
        if rule is None:
            log.warning("verified check %s: rule %s is disabled, no alert", v.alert_id, RULE_ID)
            return []
        officers = await self.officers()
        ctx: RuleContext[Any] = RuleContext(now=self.clock(), enrichment={}, spec=rule.spec)
        try:
            return rule.fn(VerifiedCheck(v, officers), ctx)
        except Exception:
            log.exception("rule %s failed on verification %s", RULE_ID, v.verification_id)
            return []


def add_verification_agent(worker: Worker) -> None:
    """The agent over ``rtic.verifications.v1``, one message at a time (they are few)."""
    app, topics = worker.app, worker.topics
    handler: Verifications | None = None

    def verifications() -> Verifications:
        nonlocal handler
        if handler is None:
            pipe = worker.pipeline()
            stores = pipe.stores
            if not isinstance(stores, RedisStores):
                raise ServiceError("verifications need the Redis stores")
            store = RedisVerifications(
                stores.redis, stores.keys, timeout=worker.settings.redis_timeout
            )
            handler = Verifications(
                topics,
                store,
                stores.reference.officer_states,
                lambda: pipe.rules,
                pipe.clock,
                lambda rec, reason: pipe.dead_letter(rec, reason, pipe.clock()),
            )
        return handler

    @app.agent(
        app.topic(topics.verifications, value_type=bytes, key_type=bytes), name="verifications"
    )
    async def verify(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            record = RawRecord(m.topic, m.partition, m.offset, m.key, m.value)
            worker.metrics.events_in.labels(m.topic).inc()
            delay = 0.2
            while True:
                try:
                    out = await verifications().process(record)
                    break
                except ServiceError as exc:
                    worker.metrics.batch_errors.labels("retried").inc()
                    log.warning("verification held, retrying in %.1fs: %s", delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except Exception as exc:  # never crash the agent: a dead letter says why
                    log.exception("verification agent failed on %s@%d", m.topic, m.offset)
                    worker.metrics.batch_errors.labels("dead_lettered").inc()
                    await worker.dead_letter(event, f"internal error: {type(exc).__name__}: {exc}")
                    out = Output()
                    break
            await worker.send(out)
