"""Card production: jobs, their step journal, and the blank-card stock ledger.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "production_jobs",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("application_id", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.String(32), nullable=True),
        sa.Column("phase", sa.String(16), nullable=True),
        sa.Column("card_seq", sa.Integer(), nullable=False),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("feeder", sa.String(64), nullable=True),
        sa.Column("region", sa.String(12), nullable=False),
        sa.Column("card_number", sa.String(32), nullable=True),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("atr", sa.String(96), nullable=True),
        sa.Column("card_id_code", sa.String(32), nullable=True),
        sa.Column("chip_serial", sa.String(32), nullable=True),
        sa.Column("spec_version", sa.String(8), nullable=True),
        sa.Column("failure", sa.String(128), nullable=True),
        sa.Column("personal_enc", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_production_jobs")),
        sa.UniqueConstraint("application_id", name=op.f("uq_production_jobs_application_id")),
    )
    op.create_index(op.f("ix_production_jobs_status"), "production_jobs", ["status"])
    op.create_table(
        "production_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("card_seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["production_jobs.job_id"],
            name=op.f("fk_production_steps_job_id_production_jobs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_steps")),
    )
    op.create_index(op.f("ix_production_steps_job_id"), "production_steps", ["job_id"])
    op.create_table(
        "production_stock",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("feeder", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("box", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("approver", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_production_stock")),
    )
    for column in ("feeder", "at", "job_id"):
        op.create_index(op.f(f"ix_production_stock_{column}"), "production_stock", [column])


def downgrade() -> None:
    for column in ("feeder", "at", "job_id"):
        op.drop_index(op.f(f"ix_production_stock_{column}"), "production_stock")
    op.drop_table("production_stock")
    op.drop_index(op.f("ix_production_steps_job_id"), "production_steps")
    op.drop_table("production_steps")
    op.drop_index(op.f("ix_production_jobs_status"), "production_jobs")
    op.drop_table("production_jobs")
