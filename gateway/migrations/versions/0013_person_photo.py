"""The holder's photo is kept with the person, encrypted like the other personal data.

``persons.photo_enc``: the JPEG taken or brought at the window (AES-256-GCM in
the key store, the column name as associated data). It is sent to the platform
in pre-open, printed on the card face, replaced by a reissue's new photo, and
spares the holder a new one when the record has it (002 §6.1.3.2 b).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("persons", sa.Column("photo_enc", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("persons", "photo_enc")
