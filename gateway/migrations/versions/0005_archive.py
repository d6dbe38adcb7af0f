"""Archived images of window operations (content-addressed files).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_archive_files_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_files")),
    )
    for column in ("application_id", "sha256", "stored_at"):
        op.create_index(op.f(f"ix_archive_files_{column}"), "archive_files", [column])


def downgrade() -> None:
    for column in ("application_id", "sha256", "stored_at"):
        op.drop_index(op.f(f"ix_archive_files_{column}"), "archive_files")
    op.drop_table("archive_files")
