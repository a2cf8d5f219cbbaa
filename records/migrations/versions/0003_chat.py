"""Webchats of a case and their messages (issue 13: the portal's webchat).

``chats`` is not tied to ``cases`` by a foreign key: a citizen may start a chat the
moment their report is made, before the case worker has written the case.

Revision ID: 0003
Revises: 0002_portal
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002_portal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("chat_id", sa.String(64), primary_key=True),
        sa.Column("case_ref", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("handler", sa.String(200)),
        sa.Column("handler_name", sa.String(64)),
        sa.Column("waiting_since", TZ),
        sa.Column("escalated_at", TZ),
        sa.Column("call_id", sa.String(200)),
        sa.Column("closed_at", TZ),
        sa.PrimaryKeyConstraint("chat_id", name="pk_chats"),
    )
    op.create_index("ix_chats_case_ref", "chats", ["case_ref"])
    op.create_index("ix_chats_status", "chats", ["status"])
    op.create_table(
        "chat_messages",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column(
            "chat_id",
            sa.String(64),
            sa.ForeignKey("chats.chat_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("case_ref", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("sender_role", sa.String(32), nullable=False),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("sender_name", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_chat_messages"),
        sa.UniqueConstraint("case_ref", "message_id", name="uq_chat_messages_case_message"),
    )
    op.create_index("ix_chat_messages_case_at", "chat_messages", ["case_ref", "at"])


def downgrade() -> None:
    op.drop_table("chat_messages")
    op.drop_table("chats")
