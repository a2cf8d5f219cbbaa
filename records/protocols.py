"""What the durable records offer the floors above: cases, audit, evidence, revocations.

The case module (``cases/``), its agents (``streams/``) and the web edge
(``push/``) depend on these protocols only; ``records.sql`` implements them
on SQLAlchemy 2 (PostgreSQL in production, SQLite embedded) and
``records.memory`` in memory for unit tests. Every writer is idempotent: it
upserts by the record's own stable id, so a redelivered message changes
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rtic.casework import (
    AuditObject,
    AuditV1,
    CaseLinkV1,
    CaseRef,
    CaseStatus,
    EvidenceV1,
    LinkKind,
    TimelineEntryV1,
    TimelineKind,
)


class ReporterV1(BaseModel):
    """Who reported the case and how to reach them (never sent to other citizens)."""

    model_config = ConfigDict(extra="forbid")

    person_id: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class CaseRow(BaseModel):
    """A case as stored (one row), without its timeline and links."""

    model_config = ConfigDict(extra="forbid")

    case_ref: CaseRef
    status: CaseStatus
    category: str
    grade: Literal[1, 2, 3, 4] | None = None
    officer_in_charge: str | None = None
    attending: list[str] = Field(default_factory=list, description="officers sent to it")
    area: list[str] = Field(default_factory=list)
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    address: str | None = None
    reporter: ReporterV1 | None = None
    secret_hash: str | None = Field(None, description="the citizen's secret, hashed (scrypt)")
    version: int = Field(1, ge=1, description="raised by every change")


class CaseView(BaseModel):
    """A case with its timeline (oldest first), links and evidence: what staff open."""

    model_config = ConfigDict(extra="forbid")

    case: CaseRow
    timeline: list[TimelineEntryV1]
    links: list[CaseLinkV1]
    evidence: list[EvidenceV1]


@dataclass(frozen=True)
class CaseWrite:
    """One ``CaseStore.save`` of a batch given to ``CaseStore.save_many``."""

    case: CaseRow
    entries: Sequence[TimelineEntryV1] = ()
    links: Sequence[CaseLinkV1] = ()


class CaseStore(Protocol):
    """Cases, their timelines, links and evidence."""

    async def next_case_number(self, year: int) -> int:
        """The next number of ``year``'s sequence (atomic across writers)."""
        ...

    async def case_for_link(self, kind: LinkKind, source_id: str) -> str | None:
        """The reference of the case a call, incident, alert, evidence item... is linked to."""
        ...

    async def cases_for_links(
        self, keys: Sequence[tuple[LinkKind, str]]
    ) -> dict[tuple[LinkKind, str], str]:
        """``case_for_link`` of many links in one read: the linked ones' case references
        (a link in no case is left out)."""
        ...

    async def get_case(self, case_ref: str) -> CaseRow | None: ...

    async def save(
        self,
        case: CaseRow,
        entries: Sequence[TimelineEntryV1] = (),
        links: Sequence[CaseLinkV1] = (),
    ) -> list[TimelineEntryV1]:
        """Upsert the case by reference; add the entries (by ``entry_id``) and links (by kind
        and id) it does not have yet. Returns the entries that were new."""
        ...

    async def save_many(self, writes: Sequence[CaseWrite]) -> list[list[TimelineEntryV1]]:
        """Every write as ``save`` would do it, in order, in one transaction: all or nothing
        (a write that fails leaves none of the batch stored). Returns, for each write, the
        entries that were new (an entry in two writes is new in the first only)."""
        ...

    async def view(self, case_ref: str) -> CaseView | None: ...

    async def list_cases(
        self,
        *,
        officer: str | None = None,
        areas: Sequence[str] | None = None,
        status: Sequence[CaseStatus] | None = None,
        limit: int = 200,
    ) -> list[CaseRow]:
        """Cases newest first: those ``officer`` is in charge of or attending, and/or those
        in any of ``areas``; no filter given means every case (supervisors force-wide)."""
        ...

    async def save_evidence(self, item: EvidenceV1, case_ref: str | None) -> bool:
        """Store an evidence item's metadata (by ``evidence_id``); True if it was new."""
        ...

    async def get_evidence(self, evidence_id: str) -> tuple[EvidenceV1, str | None] | None:
        """An item's metadata and the case it belongs to."""
        ...


class PortalCredential(BaseModel):
    """A citizen's way back into their case: the case reference and its secret, hashed
    (``scrypt$n$r$p$salt$hash``: the parameters stored with the hash; never the secret)."""

    model_config = ConfigDict(extra="forbid")

    case_ref: CaseRef
    secret_hash: str = Field(min_length=1, max_length=256)
    call_id: str = Field(min_length=1, description="the report's call on rtic.calls.v1")
    created_at: AwareDatetime


class StatementRow(BaseModel):
    """One version of a witness statement. An amendment is a new row with the same
    ``statement_id`` and the next ``version``: no version is ever changed."""

    model_config = ConfigDict(extra="forbid")

    statement_id: str = Field(min_length=1, max_length=64)
    version: int = Field(1, ge=1)
    case_ref: CaseRef
    at: AwareDatetime
    by: str = Field(min_length=1, description="the author's token subject")
    by_role: str = Field(min_length=1)
    body: dict[str, Any] = Field(description="the statement as given (push/portal.py)")


FIRST_CONTACT_KINDS = (
    TimelineKind.OFFICER_ASSIGNED,
    TimelineKind.OFFICER_EN_ROUTE,
    TimelineKind.OFFICER_ATTENDED,
)


@dataclass(frozen=True)
class ContactTime:
    """When a case was opened and first contacted (its first ``FIRST_CONTACT_KINDS``
    entry: an officer assigned, on the way or attending), for the next-contact estimate."""

    case_ref: str
    opened_at: datetime
    first_contact_at: datetime | None
    closed: bool


class PortalStore(Protocol):
    """The citizen portal's records: report credentials and witness statements."""

    async def save_credential(self, credential: PortalCredential) -> bool:
        """Store a case's credential; False (and nothing changed) if the case has one."""
        ...

    async def get_credential(self, case_ref: str) -> PortalCredential | None: ...

    async def add_statement(self, statement: StatementRow, *, amends: bool) -> StatementRow | None:
        """Store ``statement`` as a new version (its ``version`` is ignored): version 1 of
        a new ``statement_id`` (``amends`` false), or the next version of an existing one
        of the same case and author (``amends`` true). None, with nothing stored, when the
        id is taken (a new one) or is not this case's and author's (an amendment).
        Versions of one statement are numbered without gaps, even by writers at once."""
        ...

    async def statements(self, case_ref: str) -> list[StatementRow]:
        """Every version of the case's statements, by first version's time, then version."""
        ...

    async def contact_times(
        self, grade: int | None, since: datetime, limit: int = 5000
    ) -> list[ContactTime]:
        """Cases of ``grade`` (None: not graded yet) still open, or opened at or after
        ``since``: when each was opened and first contacted. At most ``limit``, newest
        first."""
        ...


class AuditStore(Protocol):
    """The audit trail: append-only (no update or delete path exists)."""

    async def append(self, records: Sequence[AuditV1]) -> int:
        """Insert the records not stored yet (by ``audit_id``); returns how many were new."""
        ...

    async def for_object(
        self, object_type: AuditObject, object_id: str, limit: int = 500
    ) -> list[AuditV1]:
        """An object's audit history, oldest first."""
        ...

    def since(self, at: datetime) -> AsyncIterator[AuditV1]:
        """Every record at or after ``at``, oldest first (for ``rtic audit export``)."""
        ...


@dataclass(frozen=True)
class Revocations:
    """Revoked token ids, and subjects whose tokens issued before a time are revoked."""

    token_ids: frozenset[str] = frozenset()
    subjects_before: dict[str, datetime] = field(default_factory=dict)

    def refuses(self, jti: str | None, sub: str, issued_at: datetime) -> bool:
        if jti is not None and jti in self.token_ids:
            return True
        before = self.subjects_before.get(sub)
        return before is not None and issued_at <= before


class RevocationStore(Protocol):
    async def revoke(
        self, *, jti: str | None, sub: str | None, by: str, reason: str, at: datetime
    ) -> None:
        """Revoke one token (``jti``) or every token of ``sub`` issued up to ``at``."""
        ...

    async def revocations(self) -> Revocations: ...


@dataclass(frozen=True)
class PurgeReport:
    """How many rows of each record type ``purge`` deleted."""

    deleted: dict[str, int]


class Records(Protocol):
    """The stores of one database, and its upkeep."""

    cases: CaseStore
    audit: AuditStore
    revocations: RevocationStore
    portal: PortalStore

    async def purge(self, before: datetime, kinds: Sequence[str] | None = None) -> PurgeReport:
        """Delete what the retention policy no longer lets the force keep: closed cases
        (with their entries, links, statements and portal credential) and evidence metadata older than ``before``, and
        revocations of tokens long expired. Never the audit trail: the engine has no path
        that updates or deletes an audit record (docs/records.md says how a force archives
        it)."""
        ...

    async def close(self) -> None: ...


def statement_order(rows: Sequence[StatementRow]) -> list[StatementRow]:
    """Statements by their first version's time (then id), each one's versions in order."""
    first: dict[str, tuple[datetime, str]] = {}
    for r in sorted(rows, key=lambda r: r.version):
        first.setdefault(r.statement_id, (r.at, r.statement_id))
    return sorted(rows, key=lambda r: (first[r.statement_id], r.version))


def jsonable(row: BaseModel) -> dict[str, Any]:
    """A record as JSON-ready data (for the HTTP API)."""
    return row.model_dump(mode="json", exclude_none=True)
