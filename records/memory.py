"""The records in memory: the same behaviour as ``records.sql``, for unit tests.

``MemoryRecords()`` satisfies ``records.protocols.Records``; the contract tests
(``tests/unit/records/contract.py``) run against it and against both databases,
so what holds here holds there. Nothing here awaits between reading and writing,
so each method is atomic on one event loop, as a transaction is in the database.
Values are copied in and out: a caller that changes a returned model changes
nothing stored.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel

from records.protocols import (
    FIRST_CONTACT_KINDS,
    AuditStore,
    CaseRow,
    CaseStore,
    CaseView,
    CaseWrite,
    ContactTime,
    PortalCredential,
    PortalStore,
    PurgeReport,
    Revocations,
    RevocationStore,
    StatementRow,
    statement_order,
)
from rtic.casework import (
    AuditObject,
    AuditV1,
    CaseLinkV1,
    CaseStatus,
    EvidenceV1,
    LinkKind,
    TimelineEntryV1,
    stable_id,
)

PURGEABLE = ("cases", "evidence", "revocations")
M = TypeVar("M", bound=BaseModel)


def _stored(model: M) -> M:
    """A deep copy with its times in UTC, as a database gives them back."""
    times = {
        name: value.astimezone(UTC)
        for name, value in model
        if isinstance(value, datetime) and value.tzinfo is not None
    }
    return model.model_copy(update=times, deep=True)


@dataclass
class _Evidence:
    item: EvidenceV1
    case_ref: str | None


class MemoryCaseStore:
    """``CaseStore`` in dictionaries."""

    def __init__(self) -> None:
        self.numbers: dict[int, int] = {}
        self.cases: dict[str, CaseRow] = {}
        self.entries: dict[str, list[TimelineEntryV1]] = {}  # by case, in insertion order
        self.entry_ids: set[str] = set()
        self.links: dict[tuple[LinkKind, str], str] = {}  # (kind, id) -> case_ref, in order
        self.evidence: dict[str, _Evidence] = {}

    async def next_case_number(self, year: int) -> int:
        self.numbers[year] = self.numbers.get(year, 0) + 1
        return self.numbers[year]

    async def case_for_link(self, kind: LinkKind, source_id: str) -> str | None:
        return self.links.get((kind, source_id))

    async def cases_for_links(
        self, keys: Sequence[tuple[LinkKind, str]]
    ) -> dict[tuple[LinkKind, str], str]:
        return {key: self.links[key] for key in keys if key in self.links}

    async def get_case(self, case_ref: str) -> CaseRow | None:
        case = self.cases.get(case_ref)
        return case.model_copy(deep=True) if case else None

    async def save(
        self,
        case: CaseRow,
        entries: Sequence[TimelineEntryV1] = (),
        links: Sequence[CaseLinkV1] = (),
    ) -> list[TimelineEntryV1]:
        _check_entries(case, entries)
        return self._save(case, entries, links)

    async def save_many(self, writes: Sequence[CaseWrite]) -> list[list[TimelineEntryV1]]:
        # Every check before any change: a batch that fails changes nothing, as a
        # rolled-back transaction.
        for write in writes:
            _check_entries(write.case, write.entries)
        return [self._save(w.case, w.entries, w.links) for w in writes]

    def _save(
        self, case: CaseRow, entries: Sequence[TimelineEntryV1], links: Sequence[CaseLinkV1]
    ) -> list[TimelineEntryV1]:
        stored = self.cases.get(case.case_ref)
        # A stale writer (an older version of the case) never undoes a newer one.
        if stored is None or stored.version <= case.version:
            self.cases[case.case_ref] = _stored(case)
        new: list[TimelineEntryV1] = []
        for entry in entries:
            if entry.entry_id not in self.entry_ids:
                self.entry_ids.add(entry.entry_id)
                self.entries.setdefault(case.case_ref, []).append(_stored(entry))
                new.append(entry)
        for link in links:
            self.links.setdefault((link.kind, link.id), case.case_ref)
        return new

    async def view(self, case_ref: str) -> CaseView | None:
        case = self.cases.get(case_ref)
        if case is None:
            return None
        order = {e.entry_id: i for i, e in enumerate(self.entries.get(case_ref, []))}
        timeline = sorted(self.entries.get(case_ref, []), key=lambda e: (e.at, order[e.entry_id]))
        evidence = sorted(
            (e.item for e in self.evidence.values() if e.case_ref == case_ref),
            key=lambda i: (i.captured_at, i.evidence_id),
        )
        return CaseView.model_validate(
            {
                "case": case,
                "timeline": timeline,
                "links": [
                    CaseLinkV1(kind=k, id=i) for (k, i), c in self.links.items() if c == case_ref
                ],
                "evidence": evidence,
            }
        ).model_copy(deep=True)

    async def list_cases(
        self,
        *,
        officer: str | None = None,
        areas: Sequence[str] | None = None,
        status: Sequence[CaseStatus] | None = None,
        limit: int = 200,
    ) -> list[CaseRow]:
        def wanted(case: CaseRow) -> bool:
            if status is not None and case.status not in status:
                return False
            if officer is None and areas is None:
                return True
            mine = officer is not None and officer in {case.officer_in_charge, *case.attending}
            in_area = areas is not None and bool(set(areas) & set(case.area))
            return mine or in_area

        found = sorted(
            (c for c in self.cases.values() if wanted(c)),
            key=lambda c: (c.opened_at, c.case_ref),
            reverse=True,
        )
        return [c.model_copy(deep=True) for c in found[:limit]]

    async def save_evidence(self, item: EvidenceV1, case_ref: str | None) -> bool:
        stored = self.evidence.get(item.evidence_id)
        if stored is None:
            self.evidence[item.evidence_id] = _Evidence(_stored(item), case_ref)
            return True
        if stored.case_ref is None and case_ref is not None:
            stored.case_ref = case_ref
        return False

    async def get_evidence(self, evidence_id: str) -> tuple[EvidenceV1, str | None] | None:
        stored = self.evidence.get(evidence_id)
        return (stored.item.model_copy(deep=True), stored.case_ref) if stored else None


def _check_entries(case: CaseRow, entries: Sequence[TimelineEntryV1]) -> None:
    for entry in entries:
        if entry.case_ref != case.case_ref:
            raise ValueError(f"entry {entry.entry_id} is of {entry.case_ref}, not {case.case_ref}")


class MemoryAuditStore:
    """``AuditStore`` in a dictionary: append and read only."""

    def __init__(self) -> None:
        self._records: dict[str, AuditV1] = {}

    async def append(self, records: Sequence[AuditV1]) -> int:
        new = 0
        for record in records:
            if record.audit_id not in self._records:
                self._records[record.audit_id] = _stored(record)
                new += 1
        return new

    def _ordered(self) -> list[AuditV1]:
        return sorted(self._records.values(), key=lambda r: (r.at, r.audit_id))

    async def for_object(
        self, object_type: AuditObject, object_id: str, limit: int = 500
    ) -> list[AuditV1]:
        found = [
            r.model_copy(deep=True)
            for r in self._ordered()
            if r.object_type == object_type and r.object_id == object_id
        ]
        return found[:limit]

    async def since(self, at: datetime) -> AsyncGenerator[AuditV1, None]:
        for record in self._ordered():
            if record.at >= at:
                yield record.model_copy(deep=True)

    async def count_before(self, before: datetime) -> int:
        return sum(1 for r in self._records.values() if r.at < before)


@dataclass(frozen=True)
class _Revocation:
    jti: str | None
    sub: str | None
    by: str
    reason: str
    at: datetime


class MemoryRevocationStore:
    """``RevocationStore`` in a dictionary."""

    def __init__(self) -> None:
        self.rows: dict[str, _Revocation] = {}

    async def revoke(
        self, *, jti: str | None, sub: str | None, by: str, reason: str, at: datetime
    ) -> None:
        if (jti is None) == (sub is None):
            raise ValueError("revoke one token (jti) or one subject's tokens (sub)")
        key = stable_id("rev", jti or "", sub or "", at.isoformat())
        self.rows.setdefault(key, _Revocation(jti, sub, by, reason, at.astimezone(UTC)))

    async def revocations(self) -> Revocations:
        before: dict[str, datetime] = {}
        for row in self.rows.values():
            if row.sub is not None and (row.sub not in before or row.at > before[row.sub]):
                before[row.sub] = row.at
        jtis = frozenset(r.jti for r in self.rows.values() if r.jti is not None)
        return Revocations(token_ids=jtis, subjects_before=before)


class MemoryPortalStore:
    """``PortalStore`` in dictionaries (reads the cases of ``cases``)."""

    def __init__(self, cases: MemoryCaseStore | None = None) -> None:
        self.cases = cases or MemoryCaseStore()
        self.credentials: dict[str, PortalCredential] = {}
        self.rows: dict[tuple[str, int], StatementRow] = {}  # (statement_id, version)

    async def save_credential(self, credential: PortalCredential) -> bool:
        if credential.case_ref in self.credentials:
            return False
        self.credentials[credential.case_ref] = _stored(credential)
        return True

    async def get_credential(self, case_ref: str) -> PortalCredential | None:
        held = self.credentials.get(case_ref)
        return held.model_copy(deep=True) if held else None

    async def add_statement(self, statement: StatementRow, *, amends: bool) -> StatementRow | None:
        versions = [s for (sid, _), s in self.rows.items() if sid == statement.statement_id]
        owners = {(s.case_ref, s.by) for s in versions}
        if amends != bool(owners) or (owners and owners != {(statement.case_ref, statement.by)}):
            return None
        row = _stored(statement.model_copy(update={"version": len(versions) + 1}))
        self.rows[(row.statement_id, row.version)] = row
        return row.model_copy(deep=True)

    async def statements(self, case_ref: str) -> list[StatementRow]:
        rows = [s.model_copy(deep=True) for s in self.rows.values() if s.case_ref == case_ref]
        return statement_order(rows)

    async def contact_times(
        self, grade: int | None, since: datetime, limit: int = 5000
    ) -> list[ContactTime]:
        out = []
        for case in self.cases.cases.values():
            closed = case.status is CaseStatus.CLOSED
            if case.grade != grade or (closed and case.opened_at < since):
                continue
            contacts = [
                e.at
                for e in self.cases.entries.get(case.case_ref, [])
                if e.kind in FIRST_CONTACT_KINDS
            ]
            first = min(contacts).astimezone(UTC) if contacts else None
            out.append(ContactTime(case.case_ref, case.opened_at, first, closed))
        out.sort(key=lambda c: c.opened_at, reverse=True)
        return out[:limit]


class MemoryRecords:
    """``Records`` in memory."""

    def __init__(self) -> None:
        self.case_store = MemoryCaseStore()
        self.audit_store = MemoryAuditStore()
        self.revocation_store = MemoryRevocationStore()
        self.cases: CaseStore = self.case_store
        self.audit: AuditStore = self.audit_store
        self.revocations: RevocationStore = self.revocation_store
        self.portal_store = MemoryPortalStore(self.case_store)
        self.portal: PortalStore = self.portal_store

    async def purge(
        self, before: datetime, kinds: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> PurgeReport:
        """As ``SqlRecords.purge``."""
        chosen = tuple(kinds) if kinds is not None else PURGEABLE
        if "audit" in chosen:
            raise ValueError("audit records are never purged: archive them (docs/records.md)")
        unknown = sorted(set(chosen) - set(PURGEABLE))
        if unknown:
            raise ValueError(f"unknown record kinds {unknown}; purgeable: {', '.join(PURGEABLE)}")
        deleted: dict[str, int] = {}
        if "cases" in chosen:
            deleted.update(self._purge_cases(before, dry_run))
        if "evidence" in chosen:
            orphans = [
                key
                for key, e in self.case_store.evidence.items()
                if e.case_ref is None and e.item.captured_at < before
            ]
            deleted["evidence"] = deleted.get("evidence", 0) + len(orphans)
            if not dry_run:
                for key in orphans:
                    del self.case_store.evidence[key]
        if "revocations" in chosen:
            old = [k for k, r in self.revocation_store.rows.items() if r.at < before]
            deleted["revocations"] = len(old)
            if not dry_run:
                for key in old:
                    del self.revocation_store.rows[key]
        return PurgeReport(deleted=deleted)

    def _purge_cases(self, before: datetime, dry_run: bool) -> dict[str, int]:
        store = self.case_store
        closed = {
            ref
            for ref, c in store.cases.items()
            if c.status == CaseStatus.CLOSED and c.closed_at is not None and c.closed_at < before
        }
        evidence = [k for k, e in store.evidence.items() if e.case_ref in closed]
        entries = [e for ref in closed for e in store.entries.get(ref, [])]
        links = [k for k, ref in store.links.items() if ref in closed]
        portal = self.portal_store
        statements = [k for k, s in portal.rows.items() if s.case_ref in closed]
        counts = {
            "evidence": len(evidence),
            "timeline_entries": len(entries),
            "case_links": len(links),
            "statements": len(statements),
            "cases": len(closed),
        }
        if not dry_run:
            for version in statements:
                del portal.rows[version]
            for ref in closed:
                portal.credentials.pop(ref, None)
            for key in evidence:
                del store.evidence[key]
            for entry in entries:
                store.entry_ids.discard(entry.entry_id)
            for ref in closed:
                store.entries.pop(ref, None)
                del store.cases[ref]
            for link in links:
                del store.links[link]
        return counts

    async def close(self) -> None:
        return None
