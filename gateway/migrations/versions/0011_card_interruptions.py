"""Each card remembers the interruptions in force on its three state machines.

Also ``cards.electronic_card_at``: when the card's electronic card was
requested (once per card).

``cards.interruptions`` holds, per machine, the loss reports, locks,
cancellations, freezes and closures in force, each with the state it
interrupted, so that cancel loss, unlock, rollback, unfreeze and reopen return
to that state instead of a fixed one (``gateway/people/lifecycle.py``).

Rows already in an interrupted state have no record of what was under the
interruption. The upgrade gives each the one entry the code before this
revision assumed (a loss or lock over a normal application and an active
card, a freeze over an active account, a cancellation over a normal,
active card), so those cards behave as they did; rows made from now on are
exact. A formal loss over a temporary one, or a cancellation over a loss,
cannot be told apart afterwards and is recorded as the single interruption
its state shows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: (machine, state column, state, interruption, state assumed under it).
_LEGACY = (
    ("application", "application_state", "4", "temporary-loss", "1"),
    ("application", "application_state", "2", "formal-loss", "1"),
    ("application", "application_state", "3", "lock", "1"),
    ("application", "application_state", "9", "cancellation", "1"),
    ("card", "card_state", "06", "temporary-loss", "04"),
    ("card", "card_state", "05", "formal-loss", "04"),
    ("card", "card_state", "09", "cancellation", "04"),
    ("bank", "bank_state", "frozen", "freeze", "active"),
)


def upgrade() -> None:
    op.add_column(
        "cards",
        sa.Column("interruptions", sa.JSON(), nullable=False, server_default="{}"),
    )
    op.add_column(
        "cards", sa.Column("electronic_card_at", sa.DateTime(timezone=True), nullable=True)
    )
    bind = op.get_bind()
    cards = sa.table(
        "cards",
        sa.column("id", sa.Integer()),
        sa.column("application_state", sa.String()),
        sa.column("card_state", sa.String()),
        sa.column("bank_state", sa.String()),
        sa.column("interruptions", sa.JSON()),
    )
    rows = bind.execute(
        sa.select(cards.c.id, cards.c.application_state, cards.c.card_state, cards.c.bank_state)
    ).all()
    for row in rows:
        states = {
            "application_state": row.application_state,
            "card_state": row.card_state,
            "bank_state": row.bank_state,
        }
        held = {
            machine: [[interruption, under]]
            for machine, column, state, interruption, under in _LEGACY
            if states[column] == state
        }
        if held:
            bind.execute(sa.update(cards).where(cards.c.id == row.id).values(interruptions=held))


def downgrade() -> None:
    op.drop_column("cards", "electronic_card_at")
    op.drop_column("cards", "interruptions")
