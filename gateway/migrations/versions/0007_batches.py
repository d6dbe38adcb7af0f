"""Employer batches (批量制卡): batches and their rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("employer", sa.String(128), nullable=False),
        sa.Column("handler_person_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_invalid", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_batches_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["handler_person_id"],
            ["persons.id"],
            name=op.f("fk_batches_handler_person_id_persons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index(op.f("ix_batches_application_id"), "batches", ["application_id"])
    op.create_index(op.f("ix_batches_status"), "batches", ["status"])
    op.create_table(
        "batch_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("id_index", sa.String(64), nullable=True),
        sa.Column("id_masked", sa.String(32), nullable=False),
        sa.Column("personal_enc", sa.LargeBinary(), nullable=False),
        sa.Column("photo_sha256", sa.String(64), nullable=True),
        sa.Column("scan_sha256", sa.String(64), nullable=True),
        sa.Column("problems", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("failure", sa.String(128), nullable=True),
        sa.Column("single_receipt", sa.String(32), nullable=True),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("picked_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("picked_up_by", sa.Integer(), nullable=True),
        sa.Column("enable_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_rows_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_batch_rows_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["picked_up_by"], ["persons.id"], name=op.f("fk_batch_rows_picked_up_by_persons")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_batch_rows_card_id_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_rows")),
        sa.UniqueConstraint("batch_id", "line", name=op.f("uq_batch_rows_batch_id")),
    )
    for column in ("batch_id", "status", "id_index", "enable_due_at"):
        op.create_index(op.f(f"ix_batch_rows_{column}"), "batch_rows", [column])


def downgrade() -> None:
    for column in ("batch_id", "status", "id_index", "enable_due_at"):
        op.drop_index(op.f(f"ix_batch_rows_{column}"), "batch_rows")
    op.drop_table("batch_rows")
    op.drop_index(op.f("ix_batches_status"), "batches")
    op.drop_index(op.f("ix_batches_application_id"), "batches")
    op.drop_table("batches")
