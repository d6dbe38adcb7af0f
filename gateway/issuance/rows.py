"""Production's tables: jobs, their sealed personal data, step journal, blank-card stock.

See :mod:`gateway.issuance.journal` for how they are written.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.runtime.rows import Base, UTCDateTime

__all__ = ["ProductionJobPersonalRow", "ProductionJobRow", "ProductionStepRow", "StockEntryRow"]


class ProductionJobRow(Base):
    """One production job (see :class:`production.model.JobRecord`)."""

    __tablename__ = "production_jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    application_id: Mapped[str] = mapped_column(String(64), unique=True)
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    step: Mapped[str | None] = mapped_column(String(32))
    phase: Mapped[str | None] = mapped_column(String(16))
    card_seq: Mapped[int] = mapped_column(Integer)
    station: Mapped[str | None] = mapped_column(String(64))
    feeder: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(12))
    card_number: Mapped[str | None] = mapped_column(String(32))
    issue_date: Mapped[dt.date | None] = mapped_column(Date)
    atr: Mapped[str | None] = mapped_column(String(96))
    card_id_code: Mapped[str | None] = mapped_column(String(32))
    chip_serial: Mapped[str | None] = mapped_column(String(32))
    spec_version: Mapped[str | None] = mapped_column(String(8))
    failure: Mapped[str | None] = mapped_column(String(128))
    personal: Mapped[ProductionJobPersonalRow] = relationship(lazy="joined", innerjoin=True)


class ProductionJobPersonalRow(Base):
    """A job's sealed personal data (see the module's docstring)."""

    __tablename__ = "production_job_personal"

    job_id: Mapped[str] = mapped_column(ForeignKey("production_jobs.job_id"), primary_key=True)
    personal_enc: Mapped[bytes] = mapped_column(LargeBinary)


class ProductionStepRow(Base):
    """One line of a job's step journal."""

    __tablename__ = "production_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("production_jobs.job_id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(16))
    card_seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    station: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(128))


class StockEntryRow(Base):
    """One blank-card stock movement (see :class:`production.model.StockEntry`)."""

    __tablename__ = "production_stock"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    feeder: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    operator: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(128))
    box: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    approver: Mapped[str | None] = mapped_column(String(64))
