"""A batch says which operation its card list asks for.

``batches.operation``: ``batch-apply`` (new cards, 001 §1.2), or ``reissue``,
``replace``, ``renew`` (补换卡明细表, 001 §3.2): the rows name holders whose card
is lost, damaged or expiring; each gets a new card made with the batch, and the
old one is cancelled when it is. Existing batches are applications.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "batches",
        sa.Column("operation", sa.String(16), nullable=False, server_default="batch-apply"),
    )


def downgrade() -> None:
    op.drop_column("batches", "operation")
