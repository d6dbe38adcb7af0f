"""Production jobs' sealed personal data in a table of its own.

A job's row is rewritten at every step, and SQLite rewrites a whole row on
update: with the photo, the sealed blob made each step write some 30 KB. It is
now written only when the order changes (at submission and at pre-open). The
blobs move as they are (sealed for the same field name).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "production_job_personal",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("personal_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["production_jobs.job_id"],
            name=op.f("fk_production_job_personal_job_id_production_jobs"),
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_production_job_personal")),
    )
    op.execute(
        "INSERT INTO production_job_personal (job_id, personal_enc) "
        "SELECT job_id, personal_enc FROM production_jobs"
    )
    # SQLite (3.35 and later) drops the column in place; a batch copy of the table
    # would fail, as the steps and the personal data refer to it.
    op.drop_column("production_jobs", "personal_enc")


def downgrade() -> None:
    op.add_column("production_jobs", sa.Column("personal_enc", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE production_jobs SET personal_enc = (SELECT p.personal_enc "
        "FROM production_job_personal p WHERE p.job_id = production_jobs.job_id)"
    )
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add NOT NULL in place
        op.alter_column("production_jobs", "personal_enc", nullable=False)
    op.drop_table("production_job_personal")
