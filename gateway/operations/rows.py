"""Accepted applications and the day's receipt numbers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.runtime.rows import Base, UTCDateTime, in_clause

#: Operations of which a holder has at most one open (``accepted``) application.
ONE_OPEN_APPLICATION: Final = ("reissue", "replace", "renew")


_OPEN: Final = text(f"status = 'accepted' AND {in_clause('operation', ONE_OPEN_APPLICATION)}")


class ApplicationRow(Base):
    """One accepted business request (受理), found by its receipt number.

    A holder has at most one open reissue, replacement and renewal each.
    """

    __tablename__ = "applications"
    __table_args__ = (
        Index(
            "uq_applications_open_per_person", "person_id", "operation", unique=True,
            sqlite_where=_OPEN, postgresql_where=_OPEN,
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_number: Mapped[str] = mapped_column(String(32), unique=True)
    operation: Mapped[str] = mapped_column(String(32), index=True)
    case: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), default=None)
    terminal_id: Mapped[str] = mapped_column(String(64))
    fee_yuan: Mapped[int] = mapped_column(Integer, default=0)
    fee_waived: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``none`` (no fee), ``due`` (nothing is made until settled), ``settling`` (a
    #: bank debit under way), ``settled``, ``waived``, ``unrecorded`` (before 0012).
    fee_status: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    #: ``cash``, ``pos``, ``debit`` (settled); ``policy``, ``approval`` (waived).
    fee_method: Mapped[str | None] = mapped_column(String(16), default=None)
    #: The card number of the account a debit was taken from (for its reversal).
    fee_account: Mapped[str | None] = mapped_column(String(16), default=None)
    #: When and why the application was withdrawn before its card was made.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(256), default=None)
    #: The POS reference or the bank's debit receipt.
    fee_reference: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The branch's fee receipt number (``F`` and the receipt number), once settled.
    fee_receipt: Mapped[str | None] = mapped_column(
        String(32), default=None, unique=True, index=True
    )
    #: When the fee was settled, or when a debit was claimed (``settling``).
    fee_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: ``not-required``, ``incomplete`` (the operation's credential, scene and
    #: signature images are not all archived yet), ``complete``, ``waived``.
    archive_status: Mapped[str] = mapped_column(
        String(16), default="not-required", server_default="not-required", index=True
    )
    #: Why a supervisor waived the missing images (``waived``), and who.
    archive_waiver: Mapped[str | None] = mapped_column(String(256), default=None)
    archive_waived_by: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The terminal that settled the fee.
    fee_terminal: Mapped[str | None] = mapped_column(String(64), default=None)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[date | None] = mapped_column(Date, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: An online application's number at the platform (one application each).
    online_ref: Mapped[str | None] = mapped_column(
        String(32), default=None, unique=True, index=True
    )
    #: When and by whom an online application was verified at the window (线下核验);
    #: its card is made only after that.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    verified_by: Mapped[str | None] = mapped_column(String(64), default=None)


class ReceiptSequenceRow(Base):
    """The last receipt sequence number used on a day."""

    __tablename__ = "receipt_sequences"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class BusinessDayRow(Base):
    """A business day's close (日终): once closed, nothing more is posted on it.

    ``status``: ``closed`` or ``open`` (reopened by a supervisor, with the reason).
    ``summary``: the close's counts and differences (JSON), as answered.
    """

    __tablename__ = "business_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(8))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    reopened_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    reopened_by: Mapped[str | None] = mapped_column(String(64), default=None)
    reopen_reason: Mapped[str | None] = mapped_column(String(256), default=None)
