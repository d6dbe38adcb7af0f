"""Business core: persons (encrypted), cards, applications, receipts, idempotency, approvals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id_index", sa.String(64), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("id_masked", sa.String(32), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
        sa.UniqueConstraint("id_index", name=op.f("uq_persons_id_index")),
    )
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("card_number", sa.String(16), nullable=True),
        sa.Column("card_code", sa.String(32), nullable=True),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("application_state", sa.String(2), nullable=False),
        sa.Column("card_state", sa.String(2), nullable=False),
        sa.Column("bank_state", sa.String(16), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_cards_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
    )
    op.create_index(op.f("ix_cards_person_id"), "cards", ["person_id"])
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_number", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("case", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("fee_yuan", sa.Integer(), nullable=False),
        sa.Column("fee_waived", sa.Boolean(), nullable=False),
        _when("accepted_at"),
        sa.Column("deadline", sa.Date(), nullable=True),
        _when("completed_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_applications_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_applications_card_id_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("receipt_number", name=op.f("uq_applications_receipt_number")),
    )
    for column in ("operation", "status", "person_id"):
        op.create_index(op.f(f"ix_applications_{column}"), "applications", [column])
    op.create_table(
        "receipt_sequences",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_receipt_sequences")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        _when("created_at"),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("terminal_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("supervisor", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
        sa.Column("used_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("receipt_sequences")
    for column in ("operation", "status", "person_id"):
        op.drop_index(op.f(f"ix_applications_{column}"), "applications")
    op.drop_table("applications")
    op.drop_index(op.f("ix_cards_person_id"), "cards")
    op.drop_table("cards")
    op.drop_table("persons")
