"""Fees are owed, settled or waived on the application, with the branch's fee receipt.

``fee_status``: ``none``, ``due`` (the card is not made until it is settled),
``settling`` (a bank debit under way), ``settled``, ``waived``; ``fee_method``,
``fee_reference`` (POS reference or the bank's receipt), ``fee_receipt`` (the
branch's fee receipt number, unique), ``fee_at`` and ``fee_terminal``.

Rows from before this revision recorded only the amount and whether it was
waived: a waived fee becomes ``waived`` by ``approval`` (the only way then), an
unwaived one ``unrecorded`` (taken at the counter outside the daemon, or not at
all), which holds nothing back.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "applications",
        sa.Column("fee_status", sa.String(16), nullable=False, server_default="none"),
    )
    op.add_column("applications", sa.Column("fee_method", sa.String(16), nullable=True))
    op.add_column("applications", sa.Column("fee_reference", sa.String(64), nullable=True))
    op.add_column("applications", sa.Column("fee_receipt", sa.String(32), nullable=True))
    op.add_column("applications", sa.Column("fee_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("applications", sa.Column("fee_terminal", sa.String(64), nullable=True))
    op.create_index("ix_applications_fee_receipt", "applications", ["fee_receipt"], unique=True)
    applications = sa.table(
        "applications",
        sa.column("fee_yuan", sa.Integer()),
        sa.column("fee_waived", sa.Boolean()),
        sa.column("fee_status", sa.String()),
        sa.column("fee_method", sa.String()),
    )
    bind = op.get_bind()
    bind.execute(
        sa.update(applications)
        .where(applications.c.fee_yuan > 0, applications.c.fee_waived.is_(True))
        .values(fee_status="waived", fee_method="approval")
    )
    bind.execute(
        sa.update(applications)
        .where(applications.c.fee_yuan > 0, applications.c.fee_waived.is_(False))
        .values(fee_status="unrecorded")
    )


def downgrade() -> None:
    op.drop_index("ix_applications_fee_receipt", table_name="applications")
    for column in (
        "fee_terminal", "fee_at", "fee_receipt", "fee_reference", "fee_method", "fee_status"
    ):  # fmt: skip
        op.drop_column("applications", column)
