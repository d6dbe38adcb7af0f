"""The production journal in the database: jobs, their steps, and stock movements.

Implements :class:`production.ports.Journal` with SQLAlchemy. Tables (migration
``0006``):

- ``production_jobs``: one row per job (one per application: unique), where it
  stands, and what its chip said; the holder's personal data (social security
  number, name, sex, ethnicity, birth date, name extension, photo) is one
  sealed blob (``personal_enc``), sealed by the :class:`FieldSealer` given
  (the daemon passes its ``PersonalDataVault``);
- ``production_steps``: the step journal, one row per begun/done/failed step;
- ``production_stock``: stock movements, keyed so that recording twice counts once.

:meth:`SqlJournal.record` stores a job's new state, its step event and its stock
movements in one transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from gateway.persistence.db import session_factory
from gateway.persistence.models import Base, UTCDateTime
from production.model import (
    ChipFacts,
    JobRecord,
    JobStatus,
    Order,
    Phase,
    Priority,
    StepEvent,
    StepName,
    StockEntry,
    StockKind,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

__all__ = ["FieldSealer", "ProductionJobRow", "ProductionStepRow", "SqlJournal", "StockEntryRow"]

_PERSONAL_FIELD = "production_jobs.personal_enc"
_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class FieldSealer(Protocol):
    """Encrypts one field's text (``PersonalDataVault`` fits)."""

    def seal(self, field: str, text: str) -> bytes:
        """Encrypt ``text`` bound to the field name."""
        ...

    def open(self, field: str, blob: bytes) -> str:
        """Decrypt what :meth:`seal` made for the same field."""
        ...


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


def _personal(order: Order) -> str:
    return json.dumps(
        {
            "ssn": order.ssn,
            "name": order.name,
            "sex": order.sex,
            "ethnicity": order.ethnicity,
            "birth_date": order.birth_date.isoformat(),
            "name_extension": order.name_extension,
            "photo": base64.b64encode(order.photo).decode() if order.photo else None,
        },
        ensure_ascii=False,
    )


class SqlJournal:
    """The production journal on the daemon's engine.

    Args:
        engine: The async engine (schema at revision ``0006`` or later).
        sealer: Encrypts the personal data of each job.
    """

    def __init__(self, engine: AsyncEngine, sealer: FieldSealer) -> None:
        """Bind to the engine."""
        self._sessions = session_factory(engine)
        self._sealer = sealer

    # ------------------------------------------------------------ rows

    def _fill(self, row: ProductionJobRow, job: JobRecord, now: dt.datetime) -> None:
        chip = job.chip
        row.priority = int(job.priority)
        row.status = job.status.value
        row.updated_at = now
        row.step = job.step.value if job.step else None
        row.phase = job.phase.value if job.phase else None
        row.card_seq = job.card_seq
        row.station = job.station
        row.feeder = job.feeder
        row.region = job.order.region
        row.card_number = job.order.card_number
        row.issue_date = job.issue_date
        row.atr = chip.atr if chip else None
        row.card_id_code = chip.card_id_code if chip else None
        row.chip_serial = chip.chip_serial if chip else None
        row.spec_version = chip.spec_version if chip else None
        row.failure = job.failure
        row.personal_enc = self._sealer.seal(_PERSONAL_FIELD, _personal(job.order))

    def _job(self, row: ProductionJobRow) -> JobRecord:
        personal: dict[str, Any] = json.loads(self._sealer.open(_PERSONAL_FIELD, row.personal_enc))
        photo = personal.get("photo")
        order = Order(
            application_id=row.application_id,
            ssn=personal["ssn"],
            name=personal["name"],
            sex=personal["sex"],
            ethnicity=personal["ethnicity"],
            birth_date=dt.date.fromisoformat(personal["birth_date"]),
            region=row.region,
            name_extension=personal.get("name_extension"),
            photo=base64.b64decode(photo) if photo else None,
            card_number=row.card_number,
        )
        chip = None
        if row.card_id_code and row.atr and row.chip_serial and row.spec_version:
            chip = ChipFacts(row.atr, row.card_id_code, row.chip_serial, row.spec_version)
        return JobRecord(
            job_id=row.job_id,
            order=order,
            priority=Priority(row.priority),
            status=JobStatus(row.status),
            created_at=row.created_at,
            step=StepName(row.step) if row.step else None,
            phase=Phase(row.phase) if row.phase else None,
            card_seq=row.card_seq,
            station=row.station,
            feeder=row.feeder,
            issue_date=row.issue_date,
            chip=chip,
            failure=row.failure,
        )

    @staticmethod
    def _step_row(event: StepEvent) -> ProductionStepRow:
        return ProductionStepRow(
            job_id=event.job_id,
            step=event.step.value,
            phase=event.phase.value,
            card_seq=event.card_seq,
            at=event.at,
            station=event.station,
            detail=event.detail[:128],
        )

    @staticmethod
    async def _add_stock(session: AsyncSession, entries: Sequence[StockEntry]) -> None:
        if not entries:
            return
        keys = [entry.key for entry in entries]
        known = set(
            await session.scalars(select(StockEntryRow.key).where(StockEntryRow.key.in_(keys)))
        )
        for entry in entries:
            if entry.key in known:
                continue
            known.add(entry.key)
            session.add(
                StockEntryRow(
                    key=entry.key,
                    feeder=entry.feeder,
                    kind=entry.kind.value,
                    quantity=entry.quantity,
                    at=entry.at,
                    operator=entry.operator,
                    reason=entry.reason[:128],
                    box=entry.box,
                    job_id=entry.job_id,
                    approver=entry.approver,
                )
            )

    # ------------------------------------------------------------ Journal

    async def add_job(self, job: JobRecord, event: StepEvent) -> JobRecord:
        """Store a new job; if its application already has one, return that one."""
        existing = await self._by_application(job.order.application_id)
        if existing is not None:
            return existing
        try:
            async with self._sessions.begin() as session:
                row = ProductionJobRow(
                    job_id=job.job_id,
                    application_id=job.order.application_id,
                    created_at=job.created_at,
                )
                self._fill(row, job, event.at)
                session.add(row)
                await session.flush()
                session.add(self._step_row(event))
        except IntegrityError:
            found = await self._by_application(job.order.application_id)
            if found is None:
                raise
            return found
        return job

    async def _by_application(self, application_id: str) -> JobRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(ProductionJobRow).where(ProductionJobRow.application_id == application_id)
            )
            return None if row is None else self._job(row)

    async def record(
        self, job: JobRecord, event: StepEvent, stock: Sequence[StockEntry] = ()
    ) -> None:
        """Store the job's new state, the step event and the stock entries at once."""
        async with self._sessions.begin() as session:
            row = await session.get(ProductionJobRow, job.job_id)
            if row is None:
                row = ProductionJobRow(
                    job_id=job.job_id,
                    application_id=job.order.application_id,
                    created_at=job.created_at,
                )
                session.add(row)
            self._fill(row, job, event.at)
            await session.flush()
            session.add(self._step_row(event))
            await self._add_stock(session, stock)

    async def load_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(ProductionJobRow, job_id)
            return None if row is None else self._job(row)

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs neither issued nor failed, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ProductionJobRow)
                .where(ProductionJobRow.status.in_(_UNFINISHED))
                .order_by(ProductionJobRow.created_at, ProductionJobRow.job_id)
            )
            return [self._job(row) for row in rows]

    async def step_events(self, job_id: str) -> list[StepEvent]:
        """The job's step journal, in order."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ProductionStepRow)
                .where(ProductionStepRow.job_id == job_id)
                .order_by(ProductionStepRow.id)
            )
            return [
                StepEvent(
                    job_id=row.job_id,
                    step=StepName(row.step),
                    phase=Phase(row.phase),
                    card_seq=row.card_seq,
                    at=row.at,
                    station=row.station,
                    detail=row.detail,
                )
                for row in rows
            ]

    async def add_stock(self, entries: Sequence[StockEntry]) -> None:
        """Store stock entries (known keys are skipped), in one transaction."""
        async with self._sessions.begin() as session:
            await self._add_stock(session, entries)

    async def stock_entries(self, feeder: str | None = None) -> list[StockEntry]:
        """Stock entries (of one feeder), oldest first."""
        query = select(StockEntryRow).order_by(StockEntryRow.at, StockEntryRow.key)
        if feeder is not None:
            query = query.where(StockEntryRow.feeder == feeder)
        async with self._sessions() as session:
            rows = await session.scalars(query)
            return [
                StockEntry(
                    key=row.key,
                    feeder=row.feeder,
                    kind=StockKind(row.kind),
                    quantity=row.quantity,
                    at=row.at,
                    operator=row.operator,
                    reason=row.reason,
                    box=row.box,
                    job_id=row.job_id,
                    approver=row.approver,
                )
                for row in rows
            ]
