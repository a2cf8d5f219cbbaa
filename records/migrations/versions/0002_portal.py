"""The citizen portal: report credentials (a secret's scrypt hash per case) and witness
statements (every version kept).

Revision ID: 0002_portal
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_portal"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portal_credentials",
        sa.Column("case_ref", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(256), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("case_ref", name="pk_portal_credentials"),
    )
    op.create_table(
        "statements",
        sa.Column("statement_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("case_ref", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("by_role", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("statement_id", "version", name="pk_statements"),
    )
    op.create_index("ix_statements_case_ref", "statements", ["case_ref"])


def downgrade() -> None:
    op.drop_table("statements")
    op.drop_table("portal_credentials")
