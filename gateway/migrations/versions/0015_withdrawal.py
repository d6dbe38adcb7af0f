"""An application can be withdrawn before its card is made, and its fee reversed.

``applications.fee_account`` (the card number of the account a fee was debited
from, for the reversal), ``withdrawn_at`` and ``withdrawal_reason``.

A reissue or replacement under way now records its own interruption on the
old card (``replacement``), which a withdrawal pops. Cards already in ``07`` or
``08`` get the entry (over a formal loss, or over an active card).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("fee_account", sa.String(16), nullable=True))
    op.add_column(
        "applications", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("applications", sa.Column("withdrawal_reason", sa.String(256), nullable=True))
    cards = sa.table(
        "cards",
        sa.column("id", sa.Integer()),
        sa.column("card_state", sa.String()),
        sa.column("interruptions", sa.JSON()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(cards.c.id, cards.c.card_state, cards.c.interruptions).where(
            cards.c.card_state.in_(("07", "08"))
        )
    ).all()
    for row in rows:
        held = dict(row.interruptions or {})
        under = "05" if row.card_state == "07" else "04"
        held["card"] = [*held.get("card", []), ["replacement", under]]
        bind.execute(sa.update(cards).where(cards.c.id == row.id).values(interruptions=held))


def downgrade() -> None:
    for column in ("withdrawal_reason", "withdrawn_at", "fee_account"):
        op.drop_column("applications", column)
