"""The records' tables, as SQLAlchemy 2 typed ORM classes.

These classes describe the schema the migrations build (``records/migrations``);
``records.sql`` reads and writes them. Every table is keyed by the record's own
stable id (``case_ref``, ``entry_id``, ``evidence_id``, ``audit_id``...), which is
what makes the writers idempotent: a redelivered message hits the same key and
changes nothing.

::

    cases            one row a case (case_ref)
     +- case_access  who may find it: ('officer', id) and ('area', code) rows, so
     |               "my cases" and "my areas" are indexed lookups, not JSON scans
     +- timeline_entries  (entry_id unique; seq keeps insertion order)
     +- case_links   (kind, source_id) unique: a call belongs to one case
    evidence         metadata only (evidence_id); case_ref may be empty
    audit_records    append-only (audit_id); a trigger refuses UPDATE and DELETE
    revocations      revoked token ids and subjects (revocation_id)
    case_numbers     (year, last): the per-year sequence of case references
    portal_credentials  a citizen's secret, hashed (case_ref; the case may not be
                     written yet when the report is made)
    statements       witness statements, every version kept ((statement_id, version))

Times are stored timezone-aware: ``timestamptz`` on PostgreSQL; on SQLite, which
has no time zones, as UTC, with the zone put back when read (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names fixed by convention, so migrations can name what they drop.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect (naive values are refused)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: records keep timezone-aware times")
        value = value.astimezone(UTC)
        # SQLite stores text without a zone: store UTC, so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012  (SQLAlchemy reads it as a class attribute)
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class CaseRecord(Base):
    __tablename__ = "cases"

    case_ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(64))
    grade: Mapped[int | None] = mapped_column(Integer)
    officer_in_charge: Mapped[str | None] = mapped_column(String(64))
    attending: Mapped[list[str]]
    area: Mapped[list[str]]
    opened_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    address: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[dict[str, Any] | None]
    secret_hash: Mapped[str | None] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)


class CaseAccessRecord(Base):
    """Who may find a case: one row per officer (in charge or attending) and per area."""

    __tablename__ = "case_access"

    case_ref: Mapped[str] = mapped_column(
        ForeignKey("cases.case_ref", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # 'officer' | 'area'
    value: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_case_access_kind_value", "kind", "value"),)


class TimelineEntryRecord(Base):
    __tablename__ = "timeline_entries"

    # seq: insertion order, for entries that happened at the same instant.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(64), unique=True)
    case_ref: Mapped[str] = mapped_column(
        ForeignKey("cases.case_ref", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    citizen_visible: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(128))
    staff_note: Mapped[str | None] = mapped_column(Text)


class CaseLinkRecord(Base):
    __tablename__ = "case_links"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(
        ForeignKey("cases.case_ref", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(128))

    __table_args__ = (UniqueConstraint("kind", "source_id", name="uq_case_links_kind_source"),)


class EvidenceRecord(Base):
    """An item's metadata: the indexed facts as columns, the whole message as JSON."""

    __tablename__ = "evidence"

    evidence_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # Not a foreign key: an item may arrive before (or without) the case it belongs to.
    case_ref: Mapped[str | None] = mapped_column(String(32), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(128), index=True)
    captured_at: Mapped[datetime] = mapped_column(index=True)
    data: Mapped[dict[str, Any]]


class AuditRecord(Base):
    """One audit record. Append-only: no code path updates or deletes it."""

    __tablename__ = "audit_records"

    audit_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str] = mapped_column(String(256))
    origin: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_audit_records_object", "object_type", "object_id", "at"),)


class RevocationRecord(Base):
    __tablename__ = "revocations"

    revocation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str | None] = mapped_column(String(128), index=True)
    sub: Mapped[str | None] = mapped_column(String(128), index=True)
    revoked_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(index=True)


class CaseNumberRecord(Base):
    __tablename__ = "case_numbers"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


class PortalCredentialRecord(Base):
    """A reported case's secret, hashed. Not a foreign key: the report's case is written
    by the case worker after the portal has answered."""

    __tablename__ = "portal_credentials"

    case_ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(256))
    call_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class StatementRecord(Base):
    """One version of a witness statement (append-only by code: no update path)."""

    __tablename__ = "statements"

    statement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    case_ref: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(128))
    by_role: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]]
