"""The records: cases, timelines, links, evidence metadata, audit, revocations, case numbers.

The audit trail is append-only: a trigger refuses UPDATE and DELETE of
``audit_records`` (and TRUNCATE on PostgreSQL), so not even a bug or a hand-typed
statement can change it; archiving is a deliberate act by the database owner
(docs/records.md).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
REFUSAL = "audit records are append-only"

PG_TRIGGER = [
    f"""
    CREATE FUNCTION rtic_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION rtic_audit_append_only()
    """,
    """
    CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION rtic_audit_append_only()
    """,
]
SQLITE_TRIGGER = [
    f"""
    CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE refused'); END
    """,
]


def _case_fk() -> sa.ForeignKey:
    # Unnamed here: the naming convention of the metadata names it (fk_<table>_case_ref_cases).
    return sa.ForeignKey("cases.case_ref", ondelete="CASCADE")


def _case_tables() -> None:
    op.create_table(
        "cases",
        sa.Column("case_ref", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("grade", sa.Integer),
        sa.Column("officer_in_charge", sa.String(64)),
        sa.Column("attending", sa.JSON, nullable=False),
        sa.Column("area", sa.JSON, nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("closed_at", TZ),
        sa.Column("address", sa.Text),
        sa.Column("reporter", sa.JSON),
        sa.Column("secret_hash", sa.String(256)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("case_ref", name="pk_cases"),
    )
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"])
    op.create_index("ix_cases_closed_at", "cases", ["closed_at"])
    op.create_table(
        "case_access",
        sa.Column("case_ref", sa.String(32), _case_fk(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("case_ref", "kind", "value", name="pk_case_access"),
    )
    op.create_index("ix_case_access_kind_value", "case_access", ["kind", "value"])
    op.create_table(
        "timeline_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("case_ref", sa.String(32), _case_fk(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("citizen_visible", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("staff_note", sa.Text),
        sa.PrimaryKeyConstraint("seq", name="pk_timeline_entries"),
        sa.UniqueConstraint("entry_id", name="uq_timeline_entries_entry_id"),
    )
    op.create_index("ix_timeline_entries_case_ref", "timeline_entries", ["case_ref"])
    op.create_table(
        "case_links",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_ref", sa.String(32), _case_fk(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_case_links"),
        sa.UniqueConstraint("kind", "source_id", name="uq_case_links_kind_source"),
    )
    op.create_index("ix_case_links_case_ref", "case_links", ["case_ref"])
    op.create_table(
        "case_numbers",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_case_numbers"),
    )


def _other_tables() -> None:
    op.create_table(
        "evidence",
        sa.Column("evidence_id", sa.String(128), primary_key=True),
        sa.Column("case_ref", sa.String(32)),
        sa.Column("incident_id", sa.String(128)),
        sa.Column("captured_at", TZ, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("evidence_id", name="pk_evidence"),
    )
    op.create_index("ix_evidence_case_ref", "evidence", ["case_ref"])
    op.create_index("ix_evidence_incident_id", "evidence", ["incident_id"])
    op.create_index("ix_evidence_captured_at", "evidence", ["captured_at"])
    op.create_table(
        "audit_records",
        sa.Column("audit_id", sa.String(128), primary_key=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(256), nullable=False),
        sa.Column("origin", sa.String(256)),
        sa.Column("reason", sa.Text),
        sa.Column("reference", sa.String(256)),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name="pk_audit_records"),
    )
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_index("ix_audit_records_object", "audit_records", ["object_type", "object_id", "at"])
    op.create_table(
        "revocations",
        sa.Column("revocation_id", sa.String(64), primary_key=True),
        sa.Column("jti", sa.String(128)),
        sa.Column("sub", sa.String(128)),
        sa.Column("revoked_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("revocation_id", name="pk_revocations"),
    )
    op.create_index("ix_revocations_jti", "revocations", ["jti"])
    op.create_index("ix_revocations_sub", "revocations", ["sub"])
    op.create_index("ix_revocations_at", "revocations", ["at"])


def upgrade() -> None:
    _case_tables()
    _other_tables()
    dialect = op.get_bind().dialect.name
    for statement in PG_TRIGGER if dialect == "postgresql" else SQLITE_TRIGGER:
        op.execute(statement)


def downgrade() -> None:
    # Dropping the table drops its triggers; the function goes after it.
    for table in (
        "revocations",
        "audit_records",
        "evidence",
        "case_numbers",
        "case_links",
        "timeline_entries",
        "case_access",
        "cases",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION rtic_audit_append_only()")
