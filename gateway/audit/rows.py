"""The audit chain and its signed checkpoints (append-only)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.runtime.rows import Base, UTCDateTime


class AuditEntryRow(Base):
    """One audit entry, hash-chained to the one before (see :mod:`security.audit`).

    The table is append-only: database triggers refuse UPDATE and DELETE.
    ``details`` is canonical JSON, already redacted (no secrets, masked numbers).
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(128))


class AuditCheckpointRow(Base):
    """The signed end of one business day of the audit chain (append-only too)."""

    __tablename__ = "audit_checkpoints"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditAnchorRow(Base):
    """The signed end of one checkpoint period (hourly by default; append-only too).

    ``period_start``/``period_end`` are seconds since the epoch (UTC, the end
    excluded); ``last_seq`` 0 with the zero hash while the chain was empty.
    """

    __tablename__ = "audit_anchors"

    period_end: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    period_start: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditAnchorPendingRow(Base):
    """An anchor not yet acknowledged by the broker: written with it, deleted once sent."""

    __tablename__ = "audit_anchors_pending"

    period_end: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
