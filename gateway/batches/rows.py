"""ORM models of employer batches (批量制卡): the batch and its rows.

Declared on :class:`gateway.runtime.rows.Base` and listed in :mod:`gateway.tables`;
the schema comes from migration ``0007``. Personal data of a row (identity
number, name, phone, address, ethnicity) is sealed by the
:class:`~gateway.people.vault.PersonalDataVault` field by field; the identity number
is found through its blind index and shown masked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.runtime.rows import Base, UTCDateTime

__all__ = ["BatchItemRow", "BatchRow"]


class BatchRow(Base):
    """One employer batch: the card list accepted from the employer's handler.

    ``status``: ``imported`` (checked, rows stored) -> ``submitted`` (valid rows
    queued for production) -> ``finished`` (every submitted row made, failed,
    taken out or picked up and enabled).
    """

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: The acceptance (受理) of the batch: receipt number, deadline, archived files.
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    employer: Mapped[str] = mapped_column(String(128))
    #: The handler who brought the list (a person row: sealed, blind index).
    handler_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    priority: Mapped[str] = mapped_column(String(8))  # urgent | normal
    #: ``batch-apply`` (new cards) or ``reissue`` / ``replace`` / ``renew`` (补换卡明细表).
    operation: Mapped[str] = mapped_column(
        String(16), default="batch-apply", server_default="batch-apply"
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_invalid: Mapped[int] = mapped_column(Integer)
    terminal_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class BatchItemRow(Base):
    """One row of a batch's card list.

    ``status``: ``invalid`` (problems listed in ``problems``), ``ready`` (valid,
    not submitted), ``queued`` (submitted, waiting for production: card state
    ``00``), ``producing`` (handed to production: card ``01``), ``produced``
    (card ``02``, waiting for pickup), ``failed``, ``single`` (taken out:
    batch-to-single), ``picked-up`` (card ``03``), ``enabled`` (card ``04``).
    """

    __tablename__ = "batch_rows"
    __table_args__ = (UniqueConstraint("batch_id", "line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(32))  # 序号 as the employer wrote it
    status: Mapped[str] = mapped_column(String(16), index=True)
    id_index: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    id_masked: Mapped[str] = mapped_column(String(32))
    #: Sealed JSON of the row's personal fields (column ``batch_rows.personal``).
    personal_enc: Mapped[bytes] = mapped_column(LargeBinary)
    photo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    scan_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    #: JSON list of ``[column, code, title_zh, title_en]`` (no personal data).
    problems: Mapped[str | None] = mapped_column(Text, default=None)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), default=None)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), default=None)
    job_id: Mapped[str | None] = mapped_column(String(64), default=None)
    failure: Mapped[str | None] = mapped_column(String(128), default=None)
    #: The batch-to-single application (receipt) when the row was taken out.
    single_receipt: Mapped[str | None] = mapped_column(String(32), default=None)
    produced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    picked_up_by: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), default=None)
    #: When the automatic enabling is due (96 h after pickup).
    enable_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True, default=None)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
