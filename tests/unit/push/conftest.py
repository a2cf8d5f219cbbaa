"""Factories for the gateway's unit tests: cases, evidence, and a database in memory
(``records.MemoryRecords``: the behaviour of the SQL stores, without a server)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from records import MemoryRecords
from records.protocols import CaseRow, ReporterV1
from rtic.casework import (
    CaseLinkV1,
    CaseStatus,
    EvidenceKind,
    EvidenceV1,
    LinkKind,
    TimelineEntryV1,
    TimelineKind,
    stable_id,
)
from tests.conftest import NOW

BRUM = "E08000025"
COVENTRY = "E08000026"


@pytest.fixture
def records() -> MemoryRecords:
    return MemoryRecords()


def make_case(case_ref: str = "WM-2026-0000001", **overrides: Any) -> CaseRow:
    """A case as stored: received, in Birmingham, officer OFF-1 in charge, OFF-2 attending."""
    base: dict[str, Any] = {
        "case_ref": case_ref,
        "status": CaseStatus.UNDER_INVESTIGATION,
        "category": "burglary",
        "grade": 3,
        "officer_in_charge": "OFF-1",
        "attending": ["OFF-2"],
        "area": [BRUM],
        "opened_at": NOW,
        "updated_at": NOW,
        "address": "12 Example Street, Birmingham B7 4AA",
        "reporter": ReporterV1(person_id="P-1", name="A Person", phone="07700900001"),
        "secret_hash": "scrypt$not-for-anyone",
    }
    return CaseRow(**{**base, **overrides})


def make_entry(
    case_ref: str, kind: TimelineKind, minutes: int, text: str, **overrides: Any
) -> TimelineEntryV1:
    return TimelineEntryV1(
        entry_id=stable_id("entry", case_ref, kind, minutes),
        case_ref=case_ref,
        kind=kind,
        at=NOW + timedelta(minutes=minutes),
        text=text,
        **overrides,
    )


def make_evidence(evidence_id: str = "EV-1", **overrides: Any) -> EvidenceV1:
    base: dict[str, Any] = {
        "evidence_id": evidence_id,
        "kind": EvidenceKind.BODY_WORN_VIDEO,
        "captured_by": "OFF-2",
        "captured_at": NOW,
        "sha256": "a" * 64,
        "storage_uri": f"s3://evidence/{evidence_id}.mp4",
        "incident_id": "INC-1",
    }
    return EvidenceV1(**{**base, **overrides})


async def store_case(records: Any, case: CaseRow | None = None) -> CaseRow:
    """Store a case with a timeline (one staff-only entry), a link and an item of evidence."""
    case = case or make_case()
    ref = case.case_ref
    entries = [
        make_entry(ref, TimelineKind.RECEIVED, 0, "We received your report"),
        make_entry(ref, TimelineKind.OFFICER_ASSIGNED, 5, "An officer has been assigned"),
        make_entry(
            ref,
            TimelineKind.ALERT_RAISED,
            6,
            "An alert was raised",
            citizen_visible=False,
            staff_note="hotlist hit on AB12CDE",
        ),
        make_entry(
            ref,
            TimelineKind.OFFICER_ATTENDED,
            30,
            "An officer visited",
            staff_note="suspect known to us",
        ),
    ]
    await records.cases.save(case, entries, [CaseLinkV1(kind=LinkKind.CALL, id=f"CALL-{ref}")])
    await records.cases.save_evidence(make_evidence(f"EV-{ref}"), ref)
    return case
