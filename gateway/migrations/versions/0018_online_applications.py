"""Online applications the platform sends to this branch for verification.

``applications.online_ref``: the platform's number of an online application
(unique: one application each, however often the platform sends it);
``verified_at`` / ``verified_by``: when and by which terminal the citizen was
verified at the window (线下核验). Earlier rows have none of these.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("online_ref", sa.String(32), nullable=True))
    op.add_column(
        "applications", sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("applications", sa.Column("verified_by", sa.String(64), nullable=True))
    op.create_index("ix_applications_online_ref", "applications", ["online_ref"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_applications_online_ref", table_name="applications")
    for column in ("verified_by", "verified_at", "online_ref"):
        op.drop_column("applications", column)
