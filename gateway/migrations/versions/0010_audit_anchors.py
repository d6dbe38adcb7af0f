"""Audit checkpoints per period (hourly by default), and those not yet sent off the box.

``audit_anchors`` is append-only like the other audit tables (database
triggers); ``audit_anchors_pending`` names the anchors the central monitor has
not been sent yet (written in the anchor's transaction, deleted once the
broker acknowledged it), so a restart or a broker outage loses none.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_anchors",
        sa.Column("period_end", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period_end", name=op.f("pk_audit_anchors")),
    )
    op.create_table(
        "audit_anchors_pending",
        sa.Column("period_end", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("period_end", name=op.f("pk_audit_anchors_pending")),
    )
    if op.get_bind().dialect.name == "postgresql":  # the function is revision 0002's
        op.execute(
            "CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_anchors_no_{operation.lower()} BEFORE {operation} "
                "ON audit_anchors BEGIN SELECT RAISE(ABORT, 'audit tables are append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_anchors_append_only ON audit_anchors")
    op.drop_table("audit_anchors_pending")
    op.drop_table("audit_anchors")
