"""Identity documents in a table of their own: one person may hold several.

``identity_documents``: the person, the document type (``protocols.documents``),
the blind index of the number (unique with the type: a document belongs to one
person), the number sealed as an identity number, and its masked form. The
person stays keyed by the social security number (``persons.id_index``).

Every stored person's identity number moves over as a PRC identity card
(``prc-id-card``): the same blind index and the same sealed number.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("doc_type", sa.String(32), nullable=False),
        sa.Column("number_index", sa.String(64), nullable=False),
        sa.Column("number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("number_masked", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("doc_type", "number_index", name="uq_identity_documents_number"),
    )
    op.create_index(
        "ix_identity_documents_person_id", "identity_documents", ["person_id"], unique=False
    )
    op.execute(
        "INSERT INTO identity_documents "
        "(person_id, doc_type, number_index, number_enc, number_masked, created_at) "
        "SELECT id, 'prc-id-card', id_index, id_number_enc, id_masked, created_at FROM persons"
    )


def downgrade() -> None:
    op.drop_index("ix_identity_documents_person_id", table_name="identity_documents")
    op.drop_table("identity_documents")
