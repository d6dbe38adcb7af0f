"""Business days that were closed (日终).

``business_days``: one row per day closed at least once: ``status`` (``closed``,
or ``open`` after a supervisor reopened it, with the reason), who closed it and
when, and the close's summary (counts and differences, JSON). A closed day takes
no new acceptances, fees or withdrawals.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "business_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopened_by", sa.String(64), nullable=True),
        sa.Column("reopen_reason", sa.String(256), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("business_days")
