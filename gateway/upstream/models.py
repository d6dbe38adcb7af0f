"""The outbox table: upstream messages written with the state change they report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.runtime.rows import Base, UTCDateTime

__all__ = ["OutboxRow", "OutboxState"]


class OutboxState:
    """Values of :attr:`OutboxRow.state`."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class OutboxRow(Base):
    """One upstream message, from enqueue to delivery or the dead-letter list.

    ``payload`` is the message's fields as JSON, sealed by the outbox's payload
    protector (personal data is encrypted at rest). ``card_key`` orders
    delivery: a card's next message waits until the one before it is delivered
    or dead. ``attempts`` counts sends; every send after the first carries the
    repeat flag.
    """

    __tablename__ = "upstream_outbox"
    __table_args__ = (
        Index("ix_upstream_outbox_state_card", "state", "card_key", "id"),
        Index("ix_upstream_outbox_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    target: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(32))
    card_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)
