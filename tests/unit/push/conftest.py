"""Factories for the gateway's unit tests: cases, evidence, and a database in memory
(``FakeRecords``: the protocols of ``records/protocols.py``, as the gateway uses them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from records.protocols import (
    CaseRow,
    CaseView,
    PurgeReport,
    ReporterV1,
    Revocations,
)
from rtic.casework import (
    AuditObject,
    AuditV1,
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


class FakeCases:
    """``CaseStore`` in dicts."""

    def __init__(self) -> None:
        self.rows: dict[str, CaseRow] = {}
        self.entries: dict[str, dict[str, TimelineEntryV1]] = {}
        self.links: dict[str, list[CaseLinkV1]] = {}
        self.link_index: dict[tuple[LinkKind, str], str] = {}
        self.evidence: dict[str, tuple[EvidenceV1, str | None]] = {}
        self.numbers: dict[int, int] = {}

    async def next_case_number(self, year: int) -> int:
        self.numbers[year] = self.numbers.get(year, 0) + 1
        return self.numbers[year]

    async def case_for_link(self, kind: LinkKind, source_id: str) -> str | None:
        return self.link_index.get((kind, source_id))

    async def get_case(self, case_ref: str) -> CaseRow | None:
        return self.rows.get(case_ref)

    async def save(
        self,
        case: CaseRow,
        entries: Sequence[TimelineEntryV1] = (),
        links: Sequence[CaseLinkV1] = (),
    ) -> list[TimelineEntryV1]:
        self.rows[case.case_ref] = case
        mine = self.entries.setdefault(case.case_ref, {})
        new = [e for e in entries if e.entry_id not in mine]
        mine.update({e.entry_id: e for e in new})
        known = self.links.setdefault(case.case_ref, [])
        for link in links:
            if link not in known:
                known.append(link)
                self.link_index[(link.kind, link.id)] = case.case_ref
        return new

    async def view(self, case_ref: str) -> CaseView | None:
        row = self.rows.get(case_ref)
        if row is None:
            return None
        return CaseView(
            case=row,
            timeline=sorted(self.entries.get(case_ref, {}).values(), key=lambda e: e.at),
            links=list(self.links.get(case_ref, [])),
            evidence=[e for e, ref in self.evidence.values() if ref == case_ref],
        )

    async def list_cases(
        self,
        *,
        officer: str | None = None,
        areas: Sequence[str] | None = None,
        status: Sequence[CaseStatus] | None = None,
        limit: int = 200,
    ) -> list[CaseRow]:
        rows = list(self.rows.values())
        if officer is not None:
            rows = [r for r in rows if officer == r.officer_in_charge or officer in r.attending]
        if areas is not None:
            rows = [r for r in rows if set(areas) & set(r.area)]
        if status is not None:
            rows = [r for r in rows if r.status in status]
        return sorted(rows, key=lambda r: r.opened_at, reverse=True)[:limit]

    async def save_evidence(self, item: EvidenceV1, case_ref: str | None) -> bool:
        new = item.evidence_id not in self.evidence
        self.evidence[item.evidence_id] = (item, case_ref)
        return new

    async def get_evidence(self, evidence_id: str) -> tuple[EvidenceV1, str | None] | None:
        return self.evidence.get(evidence_id)


class FakeAudit:
    """``AuditStore`` in a dict, append-only."""

    def __init__(self) -> None:
        self.records: dict[str, AuditV1] = {}

    async def append(self, records: Sequence[AuditV1]) -> int:
        new = [r for r in records if r.audit_id not in self.records]
        self.records.update({r.audit_id: r for r in new})
        return len(new)

    async def for_object(
        self, object_type: AuditObject, object_id: str, limit: int = 500
    ) -> list[AuditV1]:
        found = [
            r
            for r in self.records.values()
            if r.object_type is object_type and r.object_id == object_id
        ]
        return sorted(found, key=lambda r: r.at)[:limit]

    async def since(self, at: datetime) -> AsyncIterator[AuditV1]:
        for r in sorted(self.records.values(), key=lambda r: r.at):
            if r.at >= at:
                yield r


class FakeRevocations:
    """``RevocationStore`` in memory; ``fail`` makes it refuse to answer."""

    def __init__(self) -> None:
        self.token_ids: set[str] = set()
        self.subjects: dict[str, datetime] = {}
        self.fail = False

    async def revoke(
        self, *, jti: str | None, sub: str | None, by: str, reason: str, at: datetime
    ) -> None:
        if jti is not None:
            self.token_ids.add(jti)
        if sub is not None:
            self.subjects[sub] = at

    async def revocations(self) -> Revocations:
        if self.fail:
            raise ConnectionError("database away")
        return Revocations(frozenset(self.token_ids), dict(self.subjects))


class FakeRecords:
    """``Records`` in memory."""

    def __init__(self) -> None:
        self.cases = FakeCases()
        self.audit = FakeAudit()
        self.revocations = FakeRevocations()

    async def purge(self, before: datetime, kinds: Sequence[str] | None = None) -> PurgeReport:
        return PurgeReport({})

    async def close(self) -> None:
        return None


@pytest.fixture
def records() -> FakeRecords:
    return FakeRecords()


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
