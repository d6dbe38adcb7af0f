"""Transactional outbox of upstream messages (platform, bank) with its dead letters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_upstream_outbox_message_id")),
    )
    op.create_index("ix_upstream_outbox_state_card", "upstream_outbox", ["state", "card_key", "id"])
    op.create_index("ix_upstream_outbox_state_due", "upstream_outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_upstream_outbox_state_due", table_name="upstream_outbox")
    op.drop_index("ix_upstream_outbox_state_card", table_name="upstream_outbox")
    op.drop_table("upstream_outbox")
