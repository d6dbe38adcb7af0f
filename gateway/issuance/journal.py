"""The production journal in the database: jobs, their steps, and stock movements.

Implements :class:`production.ports.Journal` with SQLAlchemy. Tables (migrations
``0006`` and ``0008``):

- ``production_jobs``: one row per job (one per application: unique), where it
  stands, and what its chip said;
- ``production_job_personal`` (migration ``0008``): the holder's personal data
  (social security number, name, sex, ethnicity, birth date, name extension,
  photo) as one sealed blob (``personal_enc``) per job, sealed by the
  :class:`FieldSealer` given (the daemon passes its ``PersonalDataVault``). It
  is a table of its own because it is written only when the order changes (at
  submission and at pre-open), while the job's row is rewritten at every step:
  in SQLite an update rewrites the whole row, and the photo makes the blob some
  30 KB;
- ``production_steps``: the step journal, one row per begun/done/failed step;
- ``production_stock``: stock movements, keyed so that recording twice counts once.

:meth:`SqlJournal.record` stores a job's new state, its step event and its stock
movements in one transaction; concurrent writes share a transaction (see
:class:`SqlJournal`).

Why one module of this size: the journal and its SQLite writer thread share
one write plan (:class:`_Plan`) and the statements it runs; what a crash may
lose is decided by both together, so they are read together. The tables are in
:mod:`gateway.issuance.rows`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import json
import sqlite3
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, cast

import structlog
from sqlalchemy import (
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.issuance.rows import (
    ProductionJobPersonalRow,
    ProductionJobRow,
    ProductionStepRow,
    StockEntryRow,
)
from gateway.runtime.db import session_factory
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

    from sqlalchemy import Connection, Dialect, Table
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "FieldSealer",
    "JournalWriterStoppedError",
    "ProductionJobPersonalRow",
    "ProductionJobRow",
    "ProductionStepRow",
    "SqlJournal",
    "StockEntryRow",
]

log = structlog.get_logger(__name__)

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
            "enable_on_issue": order.enable_on_issue,
        },
        ensure_ascii=False,
    )


class JournalWriterStoppedError(Exception):
    """The journal's writer stopped (the event loop is shutting down) before a write."""

    def __init__(self) -> None:
        """The message says it all."""
        super().__init__("the production journal's writer stopped before this write")


class JournalWriteError(Exception):
    """A write the journal had accepted without waiting could not be stored."""

    def __init__(self) -> None:
        """The cause is chained."""
        super().__init__("an earlier production journal write failed")


WriteKind = Literal["add_job", "record", "stock", "barrier"]


@dataclass(slots=True, eq=False)
class _Write:
    kind: WriteKind
    job: JobRecord | None
    event: StepEvent | None
    stock: Sequence[StockEntry]
    done: asyncio.Future[None]


def _settle(write: _Write, error: BaseException | None) -> None:
    if write.done.done():
        return
    if error is None:
        write.done.set_result(None)
    else:
        write.done.set_exception(error)


_JOBS: Final = cast("Table", ProductionJobRow.__table__)
_STEPS: Final = cast("Table", ProductionStepRow.__table__)
_STOCK: Final = cast("Table", StockEntryRow.__table__)
_PERSONAL: Final = cast("Table", ProductionJobPersonalRow.__table__)
_UPDATE_JOB: Final = update(_JOBS).where(_JOBS.c.job_id == bindparam("b_job_id"))
_UPDATE_PERSONAL: Final = update(_PERSONAL).where(_PERSONAL.c.job_id == bindparam("b_job_id"))
#: Columns an update leaves alone.
_SET_ONCE: Final = frozenset({"job_id", "application_id", "created_at"})
#: The connection settings the SQLite writer copies from the engine's connections.
_MIRRORED_PRAGMAS: Final = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")


@dataclass(slots=True)
class _Plan:
    """One transaction's rows, computed (and sealed) before it starts."""

    new_jobs: list[dict[str, Any]] = field(default_factory=list)
    new_personal: list[dict[str, Any]] = field(default_factory=list)
    #: Jobs whose row may be missing (inserted if so): the row and its personal data.
    unknown: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    personal: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    stock: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to store."""
        return not (self.new_jobs or self.unknown or self.updates or self.steps or self.stock)


def _store(conn: Connection, plan: _Plan) -> None:
    """Execute ``plan`` on ``conn`` (inside its transaction); a sync function for both paths."""
    if plan.new_jobs:
        conn.execute(insert(_JOBS), plan.new_jobs)
        conn.execute(insert(_PERSONAL), plan.new_personal)
    if plan.unknown:
        query = select(_JOBS.c.job_id).where(_JOBS.c.job_id.in_(plan.unknown))
        found = set(conn.scalars(query))
        missing = [rows for job_id, rows in plan.unknown.items() if job_id not in found]
        if missing:
            conn.execute(insert(_JOBS), [job for job, _ in missing])
            conn.execute(insert(_PERSONAL), [personal for _, personal in missing])
    if plan.updates:
        conn.execute(_UPDATE_JOB, plan.updates)
    if plan.personal:
        conn.execute(_UPDATE_PERSONAL, plan.personal)
    if plan.steps:
        conn.execute(insert(_STEPS), plan.steps)
    if plan.stock:
        _insert_stock(conn, list(plan.stock.values()))


def _insert_stock(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose key is not stored yet."""
    dialect = conn.dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(_STOCK).on_conflict_do_nothing(index_elements=["key"])
    elif dialect == "sqlite":
        statement = sqlite.insert(_STOCK).on_conflict_do_nothing(index_elements=["key"])
    else:
        keys = [row["key"] for row in rows]
        known = set(conn.scalars(select(_STOCK.c.key).where(_STOCK.c.key.in_(keys))))
        rows = [row for row in rows if row["key"] not in known]
        if not rows:
            return
        statement = insert(_STOCK)
    conn.execute(statement, rows)


class _Statement:
    """A Core statement compiled once for SQLite, with its parameters' converters."""

    def __init__(
        self,
        statement: Any,  # noqa: ANN401 - any Core statement
        table: Table,
        keys: Sequence[str],
        dialect: Dialect,
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        columns = {column.key: column for column in table.columns}
        self._order = [
            (name, columns[name].type.bind_processor(dialect) if name in columns else None)
            for name in compiled.positiontup or ()
        ]

    def rows(self, values: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Positional parameters, converted as SQLAlchemy converts them."""
        return [
            tuple(
                row[name] if convert is None else convert(row[name])
                for name, convert in self._order
            )
            for row in values
        ]


class _SqliteWriter:
    """The journal's own SQLite connection, used from one thread of its own.

    Through aiosqlite every call of a statement (cursor, execute, close, commit)
    is a round trip to its thread, and SQLAlchemy's execution costs about half a
    millisecond of the event loop's time per transaction; here a transaction is
    one round trip to a thread that runs ``sqlite3`` with statements compiled
    once by SQLAlchemy and values converted by the columns' own types (what is
    stored is what SQLAlchemy would store). The connection gets the settings
    the engine's connections have (journal mode, ``synchronous``, foreign keys,
    busy timeout), read from one of them.
    """

    def __init__(self, path: str, pragmas: dict[str, Any], dialect: Dialect) -> None:
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="production-journal")
        self._path = path
        self._pragmas = [f"PRAGMA {name}={value}" for name, value in pragmas.items()]
        job_columns = [c.key for c in _JOBS.columns]
        changing = [k for k in job_columns if k not in _SET_ONCE]
        self._insert_job = _Statement(insert(_JOBS), _JOBS, job_columns, dialect)
        self._update = _Statement(_UPDATE_JOB, _JOBS, [*changing, "b_job_id"], dialect)
        personal_columns = [c.key for c in _PERSONAL.columns]
        self._insert_personal = _Statement(insert(_PERSONAL), _PERSONAL, personal_columns, dialect)
        self._update_personal = _Statement(
            _UPDATE_PERSONAL, _PERSONAL, ["personal_enc", "b_job_id"], dialect
        )
        step_columns = [c.key for c in _STEPS.columns if c.key != "id"]
        self._insert_step = _Statement(insert(_STEPS), _STEPS, step_columns, dialect)
        ignore = sqlite.insert(_STOCK).on_conflict_do_nothing(index_elements=["key"])
        self._insert_stock = _Statement(ignore, _STOCK, [c.key for c in _STOCK.columns], dialect)
        self._exists = _Statement(
            select(_JOBS.c.job_id).where(_JOBS.c.job_id == bindparam("b_job_id")),
            _JOBS,
            ["b_job_id"],
            dialect,
        )
        self._held = _Held()
        weakref.finalize(self, _close, self.thread, self._held)

    def _connection(self) -> sqlite3.Connection:
        if self._held.conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in self._pragmas:
                conn.execute(pragma)
            self._held.conn = conn
        return self._held.conn

    def store(self, plan: _Plan) -> None:
        """Store ``plan`` in one transaction (runs in :attr:`thread`)."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            missing = [
                rows
                for job_id, rows in plan.unknown.items()
                if conn.execute(self._exists.sql, (job_id,)).fetchone() is None
            ]
            jobs = [*plan.new_jobs, *(job for job, _ in missing)]
            personal = [*plan.new_personal, *(personal for _, personal in missing)]
            if jobs:
                conn.executemany(self._insert_job.sql, self._insert_job.rows(jobs))
                conn.executemany(self._insert_personal.sql, self._insert_personal.rows(personal))
            if plan.updates:
                conn.executemany(self._update.sql, self._update.rows(plan.updates))
            if plan.personal:
                update = self._update_personal
                conn.executemany(update.sql, update.rows(plan.personal))
            if plan.steps:
                conn.executemany(self._insert_step.sql, self._insert_step.rows(plan.steps))
            if plan.stock:
                stock = self._insert_stock
                conn.executemany(stock.sql, stock.rows(list(plan.stock.values())))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@dataclass(slots=True)
class _Held:
    conn: sqlite3.Connection | None = None


def _close(thread: ThreadPoolExecutor, held: _Held) -> None:
    """When the writer is collected: end its thread, close its connection."""
    thread.shutdown(wait=False)
    if held.conn is not None:
        held.conn.close()


class SqlJournal:
    """The production journal on the daemon's engine.

    Writes go through one writer per journal, which stores every write waiting
    at that moment in one transaction (group commit), in the order they were
    made. A caller of :meth:`add_job`, :meth:`add_stock`, or :meth:`record`
    (``durable``) returns once the transaction holding its write has committed,
    so a step is durable before the controller acts on it; another write is only
    queued (see :meth:`record`), and every read waits for the writes queued
    before it.
    Concurrent jobs share a commit instead of queueing for SQLite's write lock.
    A write whose batch fails is stored again alone, and only its own error
    reaches its caller. A job's sealed personal data is written only when its
    order changed (at submission and at pre-open), not at every step. On an
    SQLite file the writer has a connection and a thread of its own (see
    :class:`_SqliteWriter`); elsewhere it uses the engine.

    Args:
        engine: The async engine (schema at revision ``0006`` or later).
        sealer: Encrypts the personal data of each job.
        max_batch: Most writes stored in one transaction.
    """

    def __init__(self, engine: AsyncEngine, sealer: FieldSealer, *, max_batch: int = 64) -> None:
        """Bind to the engine."""
        self._engine = engine
        self._sessions = session_factory(engine)
        self._sealer = sealer
        self._max_batch = max_batch
        self._queue: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None
        self._known: set[str] = set()  # unfinished jobs whose row exists
        self._sealed: dict[str, Order] = {}  # the order whose personal data is stored
        #: Errors of writes nobody waited for, by job: raised at the job's next write.
        self._failed: dict[str, BaseException] = {}
        self._writer_probed = False
        #: Transactions committed (for benchmarks and tests).
        self.commits = 0
        self._sqlite: _SqliteWriter | None = None

    # ------------------------------------------------------------ rows

    @staticmethod
    def _job_values(job: JobRecord, at: dt.datetime) -> dict[str, Any]:
        chip = job.chip
        values: dict[str, Any] = {
            "job_id": job.job_id,
            "application_id": job.order.application_id,
            "created_at": job.created_at,
            "priority": int(job.priority),
            "status": job.status.value,
            "updated_at": at,
            "step": job.step.value if job.step else None,
            "phase": job.phase.value if job.phase else None,
            "card_seq": job.card_seq,
            "station": job.station,
            "feeder": job.feeder,
            "region": job.order.region,
            "card_number": job.order.card_number,
            "issue_date": job.issue_date,
            "atr": chip.atr if chip else None,
            "card_id_code": chip.card_id_code if chip else None,
            "chip_serial": chip.chip_serial if chip else None,
            "spec_version": chip.spec_version if chip else None,
            "failure": job.failure,
        }
        return values

    def _personal_values(self, job: JobRecord) -> dict[str, Any]:
        sealed = self._sealer.seal(_PERSONAL_FIELD, _personal(job.order))
        return {"job_id": job.job_id, "personal_enc": sealed}

    def _job(self, row: ProductionJobRow) -> JobRecord:
        sealed = row.personal.personal_enc
        personal: dict[str, Any] = json.loads(self._sealer.open(_PERSONAL_FIELD, sealed))
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
            enable_on_issue=personal.get("enable_on_issue", True),
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
    def _step_values(event: StepEvent) -> dict[str, Any]:
        return {
            "job_id": event.job_id,
            "step": event.step.value,
            "phase": event.phase.value,
            "card_seq": event.card_seq,
            "at": event.at,
            "station": event.station,
            "detail": event.detail[:128],
        }

    @staticmethod
    def _stock_values(entry: StockEntry) -> dict[str, Any]:
        return {
            "key": entry.key,
            "feeder": entry.feeder,
            "kind": entry.kind.value,
            "quantity": entry.quantity,
            "at": entry.at,
            "operator": entry.operator,
            "reason": entry.reason[:128],
            "box": entry.box,
            "job_id": entry.job_id,
            "approver": entry.approver,
        }

    # ------------------------------------------------------------ writer

    async def _submit(
        self,
        kind: WriteKind,
        *,
        job: JobRecord | None = None,
        event: StepEvent | None = None,
        stock: Sequence[StockEntry] = (),
        wait: bool = True,
    ) -> None:
        """Queue a write for the writer; with ``wait``, until its transaction committed.

        A caller cancelled while its write is still queued takes it back (nothing
        is stored); once the write is in a transaction the caller waits for the
        outcome before the cancellation goes on, so nothing is committed on a
        caller's behalf after it stopped. Without ``wait`` the write is only
        queued; its error, if any, is raised by the next write of the same job
        (:class:`JournalWriteError`), so it stops that job's task as it would
        have stopped it at once.
        """
        if job is not None and job.job_id in self._failed:
            raise JournalWriteError from self._failed.pop(job.job_id)
        loop = asyncio.get_running_loop()
        write = _Write(kind, job, event, stock, loop.create_future())
        self._queue.append(write)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_all(), name="production-journal-writer")
        if not wait:
            write.done.add_done_callback(functools.partial(self._deferred_done, write))
            return
        try:
            await asyncio.shield(write.done)
        except asyncio.CancelledError:
            if write in self._queue:
                self._queue.remove(write)
                write.done.cancel()
                raise
            while not write.done.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(write.done)
            raise

    def _deferred_done(self, write: _Write, done: asyncio.Future[None]) -> None:
        if done.cancelled() or done.exception() is None or write.job is None:
            return
        error = done.exception()
        assert error is not None  # noqa: S101 - checked above
        job_id = write.job.job_id
        log.error("production_journal_write_failed", job_id=job_id, error=type(error).__name__)
        self._failed.setdefault(job_id, error)

    async def _flushed(self) -> None:
        """Wait until every write queued so far is committed (reads see them)."""
        if self._queue or (self._writer is not None and not self._writer.done()):
            await self._submit("barrier")

    async def _write_all(self) -> None:
        """Store queued writes, a batch per transaction, until the queue is empty."""
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: len(batch)]
            try:
                await self._commit(batch)
            except Exception:  # noqa: BLE001 - each write is stored alone for its own error
                for write in batch:
                    try:
                        await self._commit([write])
                    except Exception as exc:  # noqa: BLE001 - handed to its caller
                        _settle(write, exc)
                    else:
                        _settle(write, None)
            except BaseException:
                for write in (*batch, *self._queue):
                    _settle(write, JournalWriterStoppedError())
                self._queue.clear()
                raise
            else:
                for write in batch:
                    _settle(write, None)

    async def _commit(self, batch: Sequence[_Write]) -> None:
        """Store ``batch`` in one transaction: new jobs, job states, steps, stock."""
        plan, sealed, touched = self._plan(batch)
        if plan.empty:
            return  # barriers only
        writer = await self._sqlite_writer()
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(writer.thread, writer.store, plan)
        else:
            async with self._engine.begin() as conn:
                await conn.run_sync(_store, plan)
        self.commits += 1
        self._sealed.update(sealed)
        for job in touched:
            if job.status.finished:  # no state follows: forget the job
                self._known.discard(job.job_id)
                self._sealed.pop(job.job_id, None)
            else:
                self._known.add(job.job_id)

    def _plan(self, batch: Sequence[_Write]) -> tuple[_Plan, dict[str, Order], list[JobRecord]]:
        """The rows of ``batch`` (sealed here, on the caller's thread), ready to store."""
        plan = _Plan()
        sealed: dict[str, Order] = {}  # orders whose personal data this transaction stores
        states: dict[str, tuple[JobRecord, dt.datetime]] = {}  # the last state of each job
        touched: list[JobRecord] = []
        for write in batch:
            if write.job is not None and write.event is not None:
                touched.append(write.job)
                if write.kind == "add_job":
                    plan.new_jobs.append(self._job_values(write.job, write.event.at))
                    plan.new_personal.append(self._personal_values(write.job))
                    sealed[write.job.job_id] = write.job.order
                else:
                    states[write.job.job_id] = (write.job, write.event.at)
            if write.event is not None:
                plan.steps.append(self._step_values(write.event))
            for entry in write.stock:
                plan.stock.setdefault(entry.key, self._stock_values(entry))
        for job_id, (job, at) in states.items():
            last = sealed.get(job_id, self._sealed.get(job_id))
            changed = last is None or (last is not job.order and last != job.order)
            unknown = job_id not in self._known and job_id not in sealed  # inserted if missing
            values = self._job_values(job, at)
            if changed or unknown:
                personal = self._personal_values(job)
                if unknown:
                    plan.unknown[job_id] = (values, personal)
                if changed:
                    sealed_blob = personal["personal_enc"]
                    plan.personal.append({"personal_enc": sealed_blob, "b_job_id": job_id})
                    sealed[job_id] = job.order
            update = {k: v for k, v in values.items() if k not in _SET_ONCE}
            update["b_job_id"] = job_id
            plan.updates.append(update)
        return plan, sealed, touched

    async def _sqlite_writer(self) -> _SqliteWriter | None:
        """On an SQLite file: a connection of its own in a thread of its own (made once)."""
        if self._writer_probed:
            return self._sqlite
        url = self._engine.url
        if url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}:
            async with self._engine.connect() as conn:
                pragmas = {
                    name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                    for name in _MIRRORED_PRAGMAS
                }
            self._sqlite = _SqliteWriter(str(url.database), pragmas, self._engine.dialect)
        self._writer_probed = True
        return self._sqlite

    # ------------------------------------------------------------ Journal

    async def add_job(self, job: JobRecord, event: StepEvent) -> JobRecord:
        """Store a new job; if its application already has one, return that one.

        The unique application id finds the existing job: a second submission
        fails its insert (its transaction alone) and reads the first.
        """
        try:
            await self._submit("add_job", job=job, event=event)
        except (IntegrityError, sqlite3.IntegrityError):
            found = await self._by_application(job.order.application_id)
            if found is None:
                raise
            return found
        return job

    async def _by_application(self, application_id: str) -> JobRecord | None:
        await self._flushed()
        async with self._sessions() as session:
            row = await session.scalar(
                select(ProductionJobRow).where(ProductionJobRow.application_id == application_id)
            )
            return None if row is None else self._job(row)

    async def record(
        self,
        job: JobRecord,
        event: StepEvent,
        stock: Sequence[StockEntry] = (),
        *,
        durable: bool,
    ) -> None:
        """Store the job's new state, the step event and the stock entries at once.

        With ``durable`` they are committed when this returns: the controller
        acts (or reports the job) next. Otherwise they are queued and this
        returns at once: they are committed before any later write of this
        journal (writes commit in order, often in the same transaction as the
        next step's) and before any read of this journal returns. Lost in a
        crash, they are a crash before they were made, which recovery settles
        anyway (docs/production.md, "Crash recovery").
        """
        await self._submit("record", job=job, event=event, stock=stock, wait=durable)

    async def flush(self) -> None:
        """Return once every write queued so far is committed."""
        await self._flushed()

    async def load_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        await self._flushed()
        async with self._sessions() as session:
            row = await session.get(ProductionJobRow, job_id)
            return None if row is None else self._job(row)

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs neither issued nor failed, oldest first."""
        await self._flushed()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ProductionJobRow)
                .where(ProductionJobRow.status.in_(_UNFINISHED))
                .order_by(ProductionJobRow.created_at, ProductionJobRow.job_id)
            )
            return [self._job(row) for row in rows]

    async def step_events(self, job_id: str) -> list[StepEvent]:
        """The job's step journal, in order."""
        await self._flushed()
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(_STEPS).where(_STEPS.c.job_id == job_id).order_by(_STEPS.c.id)
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
        await self._submit("stock", stock=entries)

    async def stock_totals(self) -> dict[str, dict[StockKind, int]]:
        """Per feeder, the sums by kind (one grouped query, not every entry)."""
        await self._flushed()
        query = select(_STOCK.c.feeder, _STOCK.c.kind, func.sum(_STOCK.c.quantity)).group_by(
            _STOCK.c.feeder, _STOCK.c.kind
        )
        totals: dict[str, dict[StockKind, int]] = {}
        async with self._engine.connect() as conn:
            for feeder, kind, quantity in await conn.execute(query):
                totals.setdefault(feeder, {})[StockKind(kind)] = int(quantity)
        return totals

    async def stock_entries(self, feeder: str | None = None) -> list[StockEntry]:
        """Stock entries (of one feeder), oldest first."""
        await self._flushed()
        query = select(_STOCK).order_by(_STOCK.c.at, _STOCK.c.key)
        if feeder is not None:
            query = query.where(_STOCK.c.feeder == feeder)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
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
