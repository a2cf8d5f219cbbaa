"""Messages and a movable clock for the case module's tests (built from the shared
factories of tests/conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rtic.casework import CaseUpdateV1, EvidenceV1
from rtic.schemas import AlertAckV1, AlertV1, CallV1, IncidentEventV1
from tests.conftest import NOW, make_call, make_incident

AREA = ["E08000025", "E05011118"]


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def observe(self, at: datetime) -> None:
        return None


def call(**overrides: Any) -> CallV1:
    return CallV1.model_validate(make_call(**overrides))


def incident(**overrides: Any) -> IncidentEventV1:
    return IncidentEventV1.model_validate(make_incident(**overrides))


def alert(source_event_ids: list[str], **overrides: Any) -> AlertV1:
    data: dict[str, Any] = {
        "alert_id": "repeat_caller-abc",
        "rule_id": "repeat_caller",
        "severity": "high",
        "title": "Repeat caller at this address",
        "summary": "Third call in 28 days from 12 Example Street",
        "created_at": (NOW + timedelta(seconds=1)).isoformat(),
        "source_event_ids": source_event_ids,
        "location": None,
        "area": AREA,
        "audience": {"roles": ["rtic_analyst"]},
    }
    data.update(overrides)
    return AlertV1.model_validate(data)


def ack(alert_id: str, **overrides: Any) -> AlertAckV1:
    data: dict[str, Any] = {
        "alert_id": alert_id,
        "action": "ack",
        "by": "analyst-1",
        "role": "rtic_analyst",
        "at": (NOW + timedelta(seconds=30)).isoformat(),
        "note": "seen, caller known",
    }
    data.update(overrides)
    return AlertAckV1.model_validate(data)


def evidence(**overrides: Any) -> EvidenceV1:
    data: dict[str, Any] = {
        "evidence_id": "EV-1",
        "kind": "body_worn_video",
        "captured_by": "OFF-7",
        "captured_at": (NOW + timedelta(minutes=20)).isoformat(),
        "sha256": "ab" * 32,
        "storage_uri": "s3://evidence/EV-1.mp4",
        "filename": "EV-1.mp4",
    }
    data.update(overrides)
    return EvidenceV1.model_validate(data)


def kinds(updates: list[CaseUpdateV1]) -> list[str]:
    """The entry kinds of updates that carry one, in order."""
    return [u.entry.kind.value for u in updates if u.entry is not None]
