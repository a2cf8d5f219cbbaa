"""The audit buffer: deliveries folded per alert version, acts one record each, bounded,
stable ids."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from push.audit import GATEWAY_ACTOR, AuditBuffer, Recipient, act_record
from push.metrics import GatewayMetrics
from rtic.casework import AuditAction, AuditObject
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW

AN = Principal("an-1", Role.RTIC_ANALYST, jti="tok-1")


def recipient(sub: str, n: int = 1) -> Recipient:
    return Recipient(sub, "officer", "10.0.0.9", f"conn-{sub}-{n}")


def test_deliveries_of_one_alert_version_fold_into_one_record_listing_every_client() -> None:
    buffer = AuditBuffer(origin="gateway@test")
    buffer.delivered("a1", 1, NOW, [recipient("OFF-1"), recipient("OFF-2")])
    buffer.delivered("a1", 1, NOW + timedelta(seconds=1), [recipient("OFF-3")])  # a resume
    buffer.delivered("a1", 2, NOW, [recipient("OFF-1")])  # the next version
    buffer.delivered("a2", 1, NOW, [])  # reached nobody: nothing to record
    first, second = buffer.drain()
    assert (first.object_id, first.detail["version"], first.detail["count"]) == ("a1", 1, 3)
    assert [r["sub"] for r in first.detail["recipients"]] == ["OFF-1", "OFF-2", "OFF-3"]
    assert first.detail["recipients"][0] == {
        "sub": "OFF-1",
        "role": "officer",
        "origin": "10.0.0.9",
        "connection": "conn-OFF-1-1",
    }
    assert (first.actor, first.role, first.origin) == (GATEWAY_ACTOR, "system", "gateway@test")
    assert first.action is AuditAction.ALERT_DELIVERED and first.object_type is AuditObject.ALERT
    assert (second.object_id, second.detail["version"]) == ("a1", 2)
    assert len(buffer) == 0 and buffer.drain() == []


def test_ids_are_stable_so_a_retried_batch_is_the_same_records() -> None:
    def one() -> list[str]:
        buffer = AuditBuffer()
        buffer.delivered("a1", 1, NOW, [recipient("OFF-1"), recipient("OFF-2")])
        buffer.act(act_record(AN, AuditAction.ALERT_OPENED, AuditObject.ALERT, "a1", NOW))
        return [r.audit_id for r in buffer.drain()]

    assert one() == one()
    other = AuditBuffer()
    other.delivered("a1", 1, NOW, [recipient("OFF-1"), recipient("OFF-2", 2)])  # reconnected
    assert other.drain()[0].audit_id not in one()
    later = act_record(AN, AuditAction.ALERT_OPENED, AuditObject.ALERT, "a1", NOW + timedelta(1))
    assert later.audit_id not in one()


def test_acts_say_who_what_when_from_where_and_why() -> None:
    record = act_record(
        AN,
        AuditAction.HISTORY_SEARCH,
        AuditObject.PLATE,
        "AB12CDE",
        NOW,
        origin="10.1.2.3",
        reason="stolen vehicle enquiry",
        reference="OP-KESTREL",
        detail={"found": {"trail": 2}},
    )
    assert (record.actor, record.role, record.at, record.origin) == (
        "an-1",
        Role.RTIC_ANALYST,
        NOW,
        "10.1.2.3",
    )
    assert (record.reason, record.reference) == ("stolen vehicle enquiry", "OP-KESTREL")


def test_acts_drain_first_and_in_order_within_a_batch_limit() -> None:
    buffer = AuditBuffer()
    buffer.delivered("a1", 1, NOW, [recipient("OFF-1")])
    for i in range(5):
        buffer.act(act_record(AN, AuditAction.ALERT_ACK, AuditObject.ALERT, f"a{i}", NOW))
    batch = buffer.drain(3)
    assert [r.object_id for r in batch] == ["a0", "a1", "a2"]
    rest = buffer.drain(10)
    assert [r.action for r in rest] == [AuditAction.ALERT_ACK] * 2 + [AuditAction.ALERT_DELIVERED]


def test_a_full_buffer_drops_new_entries_counts_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = GatewayMetrics()
    buffer = AuditBuffer(metrics, max_entries=2)
    with caplog.at_level(logging.WARNING, logger="push.audit"):
        for i in range(4):
            buffer.delivered(f"a{i}", 1, NOW, [recipient("OFF-1")])
        for i in range(3):
            buffer.act(act_record(AN, AuditAction.SNOOZE, AuditObject.ALERT, f"s{i}", NOW))
    assert len(buffer) == 4 and buffer.dropped == 3
    assert metrics.value("rtic_gateway_audit_dropped_total", action="alert_delivered") == 2
    assert metrics.value("rtic_gateway_audit_dropped_total", action="snooze") == 1
    assert metrics.value("rtic_gateway_audit_buffered") == 4
    assert "audit buffer full" in caplog.text  # once, not once per drop
    assert caplog.text.count("audit buffer full") == 1
    buffer.drain()
    assert metrics.value("rtic_gateway_audit_buffered") == 0


def test_the_flusher_is_woken_on_every_record() -> None:
    woken: list[int] = []
    buffer = AuditBuffer()
    buffer.on_record = lambda: woken.append(len(buffer))
    buffer.delivered("a1", 1, NOW, [recipient("OFF-1")])
    buffer.act(act_record(AN, AuditAction.UNSNOOZE, AuditObject.ALERT, "s1", NOW))
    assert woken == [1, 2]
