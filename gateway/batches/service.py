"""The batch service: an employer's card list from import to enabled cards.

Theory of operation
-------------------

1. **Import** (:meth:`BatchService.import_batch`): the handler's materials are
   checked against the catalogue (``batch-apply``, case ``employer-batch``);
   the card list is read and every row checked with all its problems at once
   (:func:`gateway.batches.cardlist.check_rows`, strict: ethnicity and file
   types too). The acceptance (受理) is an application row with its receipt
   number and 10-working-day deadline; the photos and scans of the valid rows
   go to the archive store against it; every row is stored, its personal data
   sealed by the vault, its identity number as a blind index and masked.
   The problems can be downloaded as the xlsx the employer corrects.
2. **Submit** (:meth:`BatchService.submit`): each valid row gets its person
   (found by blind index, or created) and a card in state ``00``; a person who
   already has a live card is not given a second one (the row becomes
   ``invalid`` with ``card-exists``). The rows are ``queued``.
3. **Production** (:meth:`BatchService.production_round`, a supervised task):
   at most ``in_flight`` rows are with production at a time; the next rows are
   taken urgent batches first, then by submission time, then in line order.
   Taking a row is journaled first (row ``producing``, card ``00`` -> ``01``,
   one transaction), then the order is submitted (priority ``BATCH``: window
   instant issuance goes first). Issued jobs move the card to ``02`` (awaiting
   pickup) with the card number; failed jobs to ``17``.
4. **Batch-to-single** (:meth:`BatchService.to_single`): the holder in person,
   with a supervisor's approval, while the row is still queued (card data
   exists, production has not started): the catalogue's ``batch-to-single``
   operation moves the card to ``01`` and the order goes to production at once
   with window priority.
5. **Pickup** (:meth:`BatchService.pickup`): the handler takes the made cards
   (card ``02`` -> ``03``); another person than the handler who submitted must
   bring the employer's stamped letter, which is archived.
6. **Enabling** (:meth:`BatchService.enable_due`, a supervised task): 96 hours
   after pickup the card is enabled: card ``03`` -> ``04``, application ``0`` ->
   ``1``, and the platform's enable enqueued in the outbox in that transaction.

Why one module of this size: a batch's life (import, submission, production,
pickup, auto-enable) is one state machine over the batch and its rows; each
step reads what the one before stored, so the steps are read together. The card
list's files and checks are in :mod:`gateway.batches.cardlist`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from sqlalchemy import case, func, select, update

from gateway.archive.store import ArchiveKind
from gateway.batches.cardlist import (
    BatchFileError,
    RowReport,
    check_rows,
    read_rows,
    sex_of,
    write_report,
)
from gateway.batches.errors import BatchReason, BatchRefusal
from gateway.batches.rows import BatchItemRow, BatchRow
from gateway.operations.catalogue import CATALOGUE, Case, Channel, Material, Operation, Role
from gateway.operations.completeness import Deficiency, check_completeness
from gateway.operations.fees import FEE_OWED
from gateway.operations.invalidation import invalidate_replaced_cards
from gateway.operations.rows import ApplicationRow
from gateway.people import lifecycle
from gateway.people.holders import hold_person
from gateway.people.identity import birth_date
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import (
    ApplicationEvent,
    CardEvent,
    CardState,
    IllegalTransition,
)
from gateway.runtime.business_day import BUSINESS_TZ, local_day
from gateway.runtime.http.auth import require_role
from gateway.upstream.outbox import EnableCard
from gateway.upstream.platform import CardRef
from production.errors import ProductionError
from production.model import JobStatus, Order, Priority
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping, Sequence
    from datetime import date, datetime

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.archive.store import ArchiveStore
    from gateway.batches.production import BatchProduction
    from gateway.batches.schemas import BatchPickupIn
    from gateway.operations.schemas import OperationRequest, OperationResult, PersonIn
    from gateway.operations.service import BusinessService
    from gateway.operations.workdays import WorkCalendar
    from gateway.people.vault import PersonalDataVault
    from gateway.runtime.http.auth import Terminal
    from gateway.upstream.outbox import Outbox
    from production.model import JobRecord

__all__ = [
    "AuditSink",
    "BatchService",
    "BatchSettings",
    "BatchSummary",
    "Progress",
]

log = structlog.get_logger(__name__)

#: Row statuses; the ones production is done with, and the ones still on their way.
FINISHED_ROWS: Final = frozenset({"produced", "failed", "issued", "picked-up", "enabled"})
OPEN_ROWS: Final = frozenset({"ready", "queued", "producing", "single", "produced", "picked-up"})
_PERSONAL: Final = "batch_rows.personal"
_FILE_TYPES: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
_WRITERS: Final = frozenset({Role.TELLER, Role.SUPERVISOR})
#: What a card list may ask for: new cards, or new cards for holders who have one.
BATCH_OPERATIONS: Final = frozenset({"batch-apply", "reissue", "replace", "renew"})
#: The event that moves a holder's card aside for its successor (001 §3.2).
_NEW_CARD_EVENT: Final = {
    "reissue": CardEvent.START_REISSUE,
    "replace": CardEvent.START_REPLACEMENT,
    "renew": CardEvent.START_REPLACEMENT,
}

ENABLE_BATCH_LIMIT: Final = 500


class AuditSink(Protocol):
    """Where audit entries go (``gateway.audit.log.AuditLog`` fits)."""

    async def append(
        self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
    ) -> object:
        """Add one entry."""
        ...


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How the batch tasks behave.

    Attributes:
        in_flight: Batch rows with production at a time (the rest wait in the
            database, where batch-to-single can still take them out).
        poll_seconds: Seconds between production rounds.
        enable_after: Delay from pickup to automatic enabling (96 h, seed 001 §1.2.3).
        enable_check_seconds: Seconds between looks for cards due to be enabled.
    """

    in_flight: int = 4
    poll_seconds: float = 2.0
    enable_after: timedelta = timedelta(hours=96)
    enable_check_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What an import found."""

    id: str
    receipt_number: str
    rows: int
    ready: int
    invalid: int
    problems: int
    deadline: date | None


@dataclass(frozen=True, slots=True)
class Progress:
    """A batch and the number of its rows in each status."""

    batch: BatchRow
    receipt_number: str
    deadline: date | None
    handler_masked: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Rows that were submitted (or are valid and ready to be)."""
        return sum(n for status, n in self.counts.items() if status != "invalid")

    @property
    def done(self) -> int:
        """Rows production is done with (made, failed, or taken out and made)."""
        return sum(n for status, n in self.counts.items() if status in FINISHED_ROWS)


def content_type_of(data: bytes) -> str | None:
    """JPEG, PNG or PDF by their signatures; ``None`` for anything else."""
    for magic, kind in _FILE_TYPES:
        if data.startswith(magic):
            return kind
    return None


class BatchService:
    """Imports, submits, produces, hands over and enables employer batches."""

    def __init__(  # noqa: PLR0913 - the service's collaborators, all injected
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        vault: PersonalDataVault,
        archive: ArchiveStore,
        audit: AuditSink,
        business: BusinessService,
        clock: Clock,
        rng: random.Random,
        calendar: WorkCalendar,
        region: str,
        production: BatchProduction | None = None,
        outbox: Outbox | None = None,
        on_enqueued: Callable[[], None] | None = None,
        settings: BatchSettings | None = None,
    ) -> None:
        """Keep the collaborators.

        Args:
            sessions: Database sessions.
            vault: Seals personal data and computes blind indexes.
            archive: Stores the photos, scans and letters.
            audit: The audit log.
            business: Performs catalogue operations (batch-to-single) and numbers receipts.
            clock: Injected clock.
            rng: Random source for batch ids.
            calendar: Working days (the batch's deadline).
            region: The branch's region code (AAB301).
            production: Card production (without it rows wait, queued).
            outbox: The upstream outbox (platform enable after pickup), if configured.
            on_enqueued: Called after a commit that enqueued messages (the relay's wake).
            settings: Task settings.
        """
        self._sessions = sessions
        self._vault = vault
        self._archive = archive
        self._audit = audit
        self._business = business
        self._clock = clock
        self._rng = rng
        self._calendar = calendar
        self._region = region
        self.production = production
        self._outbox = outbox
        self._on_enqueued = on_enqueued
        self.settings = settings or BatchSettings()

    # --------------------------------------------------------------- import
    async def import_batch(  # noqa: PLR0913 - one argument per part of the submission
        self,
        *,
        operation: str = Operation.BATCH_APPLY.value,
        employer: str,
        handler: PersonIn,
        materials: Sequence[Material],
        priority: str,
        list_name: str,
        list_data: bytes,
        files: Mapping[str, Callable[[], bytes]],
        terminal: Terminal,
    ) -> BatchSummary:
        """Check and store a card list with its files; nothing is produced yet.

        Raises:
            BatchRefusal: ``INCOMPLETE`` (handler's materials), ``FILE_INVALID``
                (not the template, unreadable).
        """
        spec = CATALOGUE[Operation(operation)]
        if operation not in BATCH_OPERATIONS:
            raise ValueError(f"not a batch operation: {operation}")
        require_role(terminal, _WRITERS, "import batches")
        missing = check_completeness(spec, Case.EMPLOYER_BATCH, Channel.WINDOW, set(materials))
        _raise_incomplete(missing)
        today = self._clock.now().astimezone(BUSINESS_TZ).date()
        rows = await asyncio.to_thread(_read_and_check, list_name, list_data, files, today)
        # the zip's files are decompressed off the event loop, as the list was read
        stored_files = await asyncio.to_thread(_files_of_valid_rows, rows, files)
        now = self._clock.now()
        batch_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        # 10 working days for a batch, new cards (001 §1.2) or reissued (001 §3.2).
        workdays = CATALOGUE[Operation.BATCH_APPLY].time_limit.workdays
        deadline = self._calendar.add_workdays(today, workdays)
        async with self._sessions.begin() as session:
            person = await self._person(session, handler)
            receipt = await self._business.next_receipt(session, today)
            application = ApplicationRow(
                receipt_number=receipt, operation=operation,
                case=Case.EMPLOYER_BATCH.value, channel=Channel.WINDOW.value, status="accepted",
                person_id=person.id, terminal_id=terminal.id, accepted_at=now, deadline=deadline,
            )  # fmt: skip
            session.add(application)
            await session.flush()
            batch = BatchRow(
                id=batch_id, application_id=application.id, employer=employer,
                handler_person_id=person.id, priority=priority, status="importing",
                operation=operation,
                file_name=Path(list_name).name[:255],
                file_sha256=hashlib.sha256(list_data).hexdigest(), rows_total=len(rows),
                rows_invalid=sum(not row.ok for row in rows), terminal_id=terminal.id,
                created_at=now,
            )  # fmt: skip
            session.add(batch)
        # The acceptance is committed; the files go to the archive against it, then the rows.
        digests: dict[str, str] = {}
        for name, (kind, data) in stored_files.items():
            archived = await self._archive.add(application, ArchiveKind.CREDENTIAL, kind, data)
            digests[name] = archived.sha256
        items = [self._item(batch_id, row, digests) for row in rows]
        async with self._sessions.begin() as session:
            session.add_all(items)
            await session.execute(
                update(BatchRow).where(BatchRow.id == batch_id).values(status="imported")
            )
        summary = BatchSummary(
            id=batch_id, receipt_number=receipt, rows=len(rows),
            ready=sum(row.ok for row in rows), invalid=sum(not row.ok for row in rows),
            problems=sum(len(row.problems) for row in rows), deadline=deadline,
        )  # fmt: skip
        await self._audit.append(
            terminal.id, "batch.import", f"batch:{batch_id}",
            {"receipt": receipt, "employer": employer, "handler": person.id_masked,
             "rows": summary.rows, "ready": summary.ready, "invalid": summary.invalid,
             "file_sha256": batch.file_sha256},
        )  # fmt: skip
        log.info("batch_imported", batch_id=batch_id, rows=summary.rows, ready=summary.ready)
        return summary

    def _item(self, batch_id: str, row: RowReport, digests: Mapping[str, str]) -> BatchItemRow:
        values = row.values
        id_number = values["id_number"].upper()
        valid_id = not any(column == "id_number" for column, _ in row.problems)
        personal = {k: values[k] for k in ("name", "id_number", "phone", "address", "ethnicity")}
        problems = [[c, p.code, p.title_zh, p.title_en] for c, p in row.problems]
        return BatchItemRow(
            batch_id=batch_id, line=row.line, number=values["no"][:32],
            status="ready" if row.ok else "invalid",
            id_index=self._vault.index(id_number) if valid_id else None,
            id_masked=mask_personal_numbers(id_number)[:32] if valid_id else "",
            personal_enc=self._vault.seal(_PERSONAL, json.dumps(personal, ensure_ascii=False)),
            photo_sha256=digests.get(values["photo"]) if row.ok else None,
            scan_sha256=digests.get(values["scan"]) if row.ok else None,
            problems=json.dumps(problems, ensure_ascii=False) if problems else None,
        )  # fmt: skip

    async def report(self, batch_id: str) -> bytes:
        """The xlsx listing every problem of every row (line, No., column, code, zh, en)."""
        async with self._sessions() as session:
            await self._batch(session, batch_id)
            found = (
                await session.execute(
                    select(BatchItemRow.line, BatchItemRow.number, BatchItemRow.problems)
                    .where(BatchItemRow.batch_id == batch_id, BatchItemRow.problems.is_not(None))
                    .order_by(BatchItemRow.line)
                )
            ).all()
        reports = []
        for line, number, problems in found:
            report = RowReport(line=line, values={"no": number})
            for column, code, zh, en in json.loads(problems or "[]"):
                report.problems.append((column, Deficiency(code, zh, en)))
            reports.append(report)
        return await asyncio.to_thread(_report_bytes, reports)

    # --------------------------------------------------------------- submit
    async def submit(self, batch_id: str, terminal: Terminal) -> Progress:
        """Queue every valid row for production (a card in state ``00`` each).

        Raises:
            BatchRefusal: ``NOT_FOUND``; ``STATE`` unless imported.
        """
        require_role(terminal, _WRITERS, "submit batches")
        now = self._clock.now()
        refused = 0
        async with self._sessions.begin() as session:
            batch = await self._batch(session, batch_id, for_update=True)
            if batch.status != "imported":
                raise BatchRefusal(
                    BatchReason.STATE,
                    f"The batch is {batch.status}; only an imported batch can be submitted.",
                    f"批次状态为{batch.status}，只有已导入的批次可以提交。",
                    status=batch.status,
                )
            items = (
                await session.scalars(
                    select(BatchItemRow)
                    .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "ready")
                    .order_by(BatchItemRow.line)
                )
            ).all()
            fees = []
            for item in items:
                queued = await self._queue_row(session, item, now, batch.operation)
                refused += not queued
                if queued and batch.operation in _NEW_CARD_EVENT:
                    fees.append(await self._fee_of(session, item, now))
            if fees:  # 001 §3: the fees are settled (at the window) before the cards are made
                application = await session.get(ApplicationRow, batch.application_id)
                assert application is not None  # noqa: S101 - foreign key
                application.fee_yuan = sum(fees)
                application.fee_status = "due" if application.fee_yuan else "waived"
                application.fee_method = None if application.fee_yuan else "policy"
            batch.status = "submitted"
            batch.submitted_at = now
            batch.rows_invalid += refused
        await self._audit.append(
            terminal.id, "batch.submit", f"batch:{batch_id}",
            {"queued": len(items) - refused, "refused": refused},
        )  # fmt: skip
        log.info("batch_submitted", batch_id=batch_id, queued=len(items) - refused)
        return await self.progress(batch_id)

    async def _queue_row(
        self, session: AsyncSession, item: BatchItemRow, now: datetime, operation: str
    ) -> bool:
        if operation in _NEW_CARD_EVENT:
            return await self._queue_successor(session, item, now, _NEW_CARD_EVENT[operation])
        personal = self._personal(item)
        person = await self._holder(session, personal, now)
        live = (
            await session.scalars(
                select(CardRow.id).where(
                    CardRow.person_id == person.id,
                    CardRow.card_state != CardState.CANCELLED.value,
                )
            )
        ).first()
        item.person_id = person.id
        if live is not None:
            item.status = "invalid"
            item.problems = json.dumps(
                [["id_number", "card-exists", "该人员已有社保卡，请办理补换卡",
                  "This person already has a card"]],
                ensure_ascii=False,
            )  # fmt: skip
            return False
        card = lifecycle.new_card(person.id, self._region, now)
        session.add(card)
        await session.flush()
        item.card_id = card.id
        item.status = "queued"
        return True

    async def _queue_successor(
        self, session: AsyncSession, item: BatchItemRow, now: datetime, event: CardEvent
    ) -> bool:
        """A reissue or replacement row: the holder's card moves aside, a new one is queued.

        The holder must be known here with a card the event applies to (a formally
        lost card for a reissue, a card in use for a replacement); otherwise the row
        is invalid with the reason. The old card waits in ``07`` / ``08`` until its
        successor is made, then it is cancelled (as at the window).
        """
        person = await self._person_by_index(session, item.id_index)
        cards = (
            await session.scalars(
                select(CardRow)
                .where(
                    CardRow.person_id == (person.id if person is not None else -1),
                    CardRow.card_state != CardState.CANCELLED.value,
                )
                .order_by(CardRow.id.desc())
                .with_for_update()
            )
        ).all()
        old = next((card for card in cards if lifecycle.allowed(card, event)), None)
        if person is None or old is None:
            item.status = "invalid"
            problem = (
                ["id_number", "no-card", "该人员在本网点无社保卡记录，请按申领办理",
                 "No card of this person is known here"]
                if not cards
                else ["id_number", "card-state", "该卡当前状态不能补换（补领需先正式挂失）",
                      "The card's state does not allow this (a reissue needs a formal loss)"]
            )  # fmt: skip
            item.problems = json.dumps([problem], ensure_ascii=False)
            if person is not None:
                item.person_id = person.id
            return False
        lifecycle.step(old, event)
        old.updated_at = now
        card = lifecycle.new_card(person.id, self._region, now)
        session.add(card)
        await session.flush()
        item.person_id, item.card_id, item.status = person.id, card.id, "queued"
        return True

    async def _fee_of(self, session: AsyncSession, item: BatchItemRow, now: datetime) -> int:
        """The fee of one queued row's new card (by the holder's region rules and age)."""
        person = await session.get(PersonRow, item.person_id)
        assert person is not None  # noqa: S101 - queued with its person
        today = now.astimezone(BUSINESS_TZ).date()
        return self._business.fee_for(person.birth_date, today).yuan

    # ------------------------------------------------------------- progress
    async def progress(self, batch_id: str) -> Progress:
        """The batch and its rows counted by status."""
        async with self._sessions() as session:
            batch = await self._batch(session, batch_id)
            application = await session.get(ApplicationRow, batch.application_id)
            handler = await session.get(PersonRow, batch.handler_person_id)
            found = await session.execute(
                select(BatchItemRow.status, func.count())
                .where(BatchItemRow.batch_id == batch_id)
                .group_by(BatchItemRow.status)
            )
            counts: dict[str, int] = {row[0]: row[1] for row in found}
        assert application is not None  # noqa: S101 - foreign key
        assert handler is not None  # noqa: S101 - foreign key
        return Progress(
            batch, application.receipt_number, application.deadline, handler.id_masked, counts
        )

    async def rows(self, batch_id: str) -> list[BatchItemRow]:
        """Every row of the batch, in line order."""
        async with self._sessions() as session:
            await self._batch(session, batch_id)
            return list(
                (
                    await session.scalars(
                        select(BatchItemRow)
                        .where(BatchItemRow.batch_id == batch_id)
                        .order_by(BatchItemRow.line)
                    )
                ).all()
            )

    # ----------------------------------------------------------- production
    async def run_production(self) -> None:
        """Production rounds until cancelled (a supervised task).

        The first round waits for production to be ready: after a restart the
        controller's journal is recovered first, so a row whose order was
        journaled before the stop is found again, not submitted twice.
        """
        if self.production is not None:
            await self.production.ready()
        while True:
            await self.production_round()
            await self._clock.sleep(self.settings.poll_seconds)

    async def production_round(self) -> None:
        """Follow the jobs, resubmit unsent orders, hand the next rows to production."""
        if self.production is None:
            return
        await self._follow_jobs()
        unsent = await self._select_rows(
            BatchItemRow.status.in_(("producing", "single")), BatchItemRow.job_id.is_(None)
        )
        for item in unsent:
            if not await self._send(item):
                return
        async with self._sessions() as session:
            busy = (
                await session.scalar(select(func.count()).where(BatchItemRow.status == "producing"))
            ) or 0
        room = self.settings.in_flight - busy
        if room > 0:
            await self._start_next(room)
        await self._finish_batches()

    async def _select_rows(self, *where: Any) -> list[BatchItemRow]:  # noqa: ANN401 - SQL clauses
        async with self._sessions() as session:
            return list(
                await session.scalars(select(BatchItemRow).where(*where).order_by(BatchItemRow.id))
            )

    async def _start_next(self, room: int) -> None:
        """Take the next queued rows: urgent batches first, then by submission, then by line."""
        urgent_first = case((BatchRow.priority == "urgent", 0), else_=1)
        async with self._sessions() as session:
            candidates = (
                await session.scalars(
                    select(BatchItemRow)
                    .join(BatchRow, BatchRow.id == BatchItemRow.batch_id)
                    .join(ApplicationRow, ApplicationRow.id == BatchRow.application_id)
                    .where(
                        BatchRow.status == "submitted",
                        BatchItemRow.status == "queued",
                        ApplicationRow.fee_status.not_in(FEE_OWED),  # 完成费用清缴 … 等待制卡
                    )
                    .order_by(urgent_first, BatchRow.submitted_at, BatchRow.id, BatchItemRow.line)
                    .limit(room)
                )
            ).all()
        for item in candidates:
            claimed = await self._claim(item)
            if claimed and not await self._send(item):
                return

    async def _claim(self, item: BatchItemRow) -> bool:
        """Journal that the row goes to production: row ``producing``, card ``00`` -> ``01``."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            card_moved = await session.execute(
                update(CardRow)
                .where(CardRow.id == item.card_id, CardRow.card_state == CardState.INITIAL.value)
                .values(card_state=CardState.IN_PRODUCTION.value, updated_at=now)
            )
            if getattr(card_moved, "rowcount", 0) != 1:
                return False  # taken out (batch-to-single) a moment ago
            row_moved = await session.execute(
                update(BatchItemRow)
                .where(BatchItemRow.id == item.id, BatchItemRow.status == "queued")
                .values(status="producing")
            )
            if getattr(row_moved, "rowcount", 0) != 1:
                await session.rollback()
                return False
        item.status = "producing"
        return True

    async def _send(self, item: BatchItemRow) -> bool:
        """Submit the row's order; ``False`` when production refuses for now."""
        assert self.production is not None  # noqa: S101 - checked by the caller
        await self.production.ready()  # batch-to-single may come before recovery ended
        async with self._sessions() as session:
            batch = await session.get(BatchRow, item.batch_id)
        assert batch is not None  # noqa: S101 - foreign key
        priority = Priority.WINDOW if item.status == "single" else Priority.BATCH
        order = await asyncio.to_thread(self._order, item)
        try:
            job_id = await self.production.submit(order, priority)
        except ProductionError as exc:
            log.warning(
                "batch_production_refused", batch_id=item.batch_id, line=item.line,
                error=type(exc).__name__,
            )  # fmt: skip
            return False
        async with self._sessions.begin() as session:
            await session.execute(
                update(BatchItemRow).where(BatchItemRow.id == item.id).values(job_id=job_id)
            )
        log.info(
            "batch_row_submitted", batch_id=item.batch_id, line=item.line, job_id=job_id,
            priority=priority.name.lower(),
        )  # fmt: skip
        return True

    def _order(self, item: BatchItemRow) -> Order:
        personal = self._personal(item)
        id_number = personal["id_number"].upper()
        photo = None
        if item.photo_sha256 is not None:
            photo = self._archive.path_of(item.photo_sha256).read_bytes()
        return Order(
            application_id=application_id_of(item),
            ssn=id_number,
            name=personal["name"],
            sex=sex_of(id_number),
            ethnicity=personal["ethnicity"].zfill(2),
            birth_date=birth_date(id_number),
            region=self._region,
            photo=photo,
            # A batch card is enabled 96 h after pickup (enable_due); a card taken
            # out of the batch is handed to the holder at once, enabled like a window card.
            enable_on_issue=item.status == "single",
        )

    async def _follow_jobs(self) -> None:
        assert self.production is not None  # noqa: S101 - checked by the caller
        sent = await self._select_rows(
            BatchItemRow.status.in_(("producing", "single")), BatchItemRow.job_id.is_not(None)
        )
        for item in sent:
            assert item.job_id is not None  # noqa: S101 - selected so
            job = await self.production.job(item.job_id)
            if job is None or not job.status.finished:
                continue
            await self._job_finished(item, job)

    async def _job_finished(self, item: BatchItemRow, job: JobRecord) -> None:
        now = self._clock.now()
        single = item.status == "single"
        async with self._sessions.begin() as session:
            card = await session.get(CardRow, item.card_id, with_for_update=True)
            row = await session.get(BatchItemRow, item.id, with_for_update=True)
            assert card is not None  # noqa: S101 - foreign key
            assert row is not None  # noqa: S101 - selected a moment ago
            if job.status is JobStatus.ISSUED:
                card.card_number = job.order.card_number
                card.card_code = job.chip.card_id_code if job.chip else None
                if single:  # made at once and handed to the holder, enabled by production
                    _move(card, CardEvent.ISSUED, CardEvent.ACTIVATE)
                    lifecycle.step(card, ApplicationEvent.ENABLE)
                    row.status = "issued"
                    await _settle_receipt(session, row.single_receipt, now, done=True)
                else:
                    _move(card, CardEvent.PRODUCED)
                    row.status = "produced"
                # a reissued or replaced card is cancelled once its successor is made
                await invalidate_replaced_cards(session, card, outbox=self._outbox, now=now)
                row.produced_at = now
            else:
                _move(card, CardEvent.PRODUCTION_FAILED)
                row.status = "failed"
                row.failure = (job.failure or "failed")[:128]
                if single:  # 001 §1.3: made within 24 h of a device or network fault
                    await _settle_receipt(session, row.single_receipt, now, done=False)
            card.updated_at = now
        await self._audit.append(
            "system", f"batch.row.{'issued' if job.status is JobStatus.ISSUED else 'failed'}",
            f"batch:{item.batch_id}:{item.line}",
            {"job_id": job.job_id, "failure": job.failure, "single": single},
        )  # fmt: skip

    async def _finish_batches(self) -> None:
        """A batch whose rows are all made (or failed) is finished, and so is its acceptance."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            open_batches = select(BatchItemRow.batch_id).where(
                BatchItemRow.status.in_(("queued", "producing", "single"))
            )
            finishing = list(
                await session.scalars(
                    select(BatchRow.application_id).where(
                        BatchRow.status == "submitted", BatchRow.id.not_in(open_batches)
                    )
                )
            )
            await session.execute(
                update(BatchRow)
                .where(BatchRow.status == "submitted", BatchRow.id.not_in(open_batches))
                .values(status="finished", finished_at=now)
            )
            if finishing:  # its cards are made: the batch application is done, not overdue
                await session.execute(
                    update(ApplicationRow)
                    .where(ApplicationRow.id.in_(finishing), ApplicationRow.status == "accepted")
                    .values(status="completed", completed_at=now)
                )

    # ------------------------------------------------------- batch-to-single
    async def to_single(  # noqa: PLR0913 - the operation's request and its approval
        self,
        batch_id: str,
        line: int,
        body: OperationRequest,
        terminal: Terminal,
        *,
        digest: str,
        approval_id: str | None,
    ) -> OperationResult:
        """Take a queued row out of its batch and produce the card at once (window priority).

        The catalogue's ``batch-to-single`` does the checks (holder in person,
        materials, supervisor approval of this exact request, card in ``00``)
        and moves the card to ``01``; then the order goes to production.

        Raises:
            BatchRefusal: ``NOT_FOUND``, ``ROW_STATE`` (not queued: production started
                or the row is not in the batch), ``HOLDER_MISMATCH``; or whatever the
                operation refuses.
        """
        async with self._sessions() as session:
            await self._batch(session, batch_id)
            item = (
                await session.scalars(
                    select(BatchItemRow).where(
                        BatchItemRow.batch_id == batch_id, BatchItemRow.line == line
                    )
                )
            ).first()
        if item is None or item.status != "queued":
            raise BatchRefusal(
                BatchReason.ROW_STATE,
                "Only a queued row (card data made, production not started) can be taken out.",
                "仅限已产生制卡数据且尚未制卡的批次明细办理批量转零星。",
                row_status=item.status if item else None,
            )
        if self._vault.index(body.applicant.id_number) != item.id_index:
            raise BatchRefusal(
                BatchReason.HOLDER_MISMATCH,
                "The applicant's identity number is not the one on this row.",
                "申办人身份证号码与该批次明细不符。",
            )
        result = await self._business.perform(
            Operation.BATCH_TO_SINGLE, body, terminal, digest=digest, approval_id=approval_id
        )
        async with self._sessions.begin() as session:
            await session.execute(
                update(BatchItemRow)
                .where(BatchItemRow.id == item.id)
                .values(status="single", single_receipt=result.receipt_number)
            )
        item.status = "single"
        await self._audit.append(
            terminal.id, "batch.to-single", f"batch:{batch_id}:{line}",
            {"receipt": result.receipt_number},
        )  # fmt: skip
        if self.production is not None:
            await self._send(item)  # refused for now: the next production round sends it
        return result

    # ---------------------------------------------------------------- pickup
    async def pickup(self, batch_id: str, body: BatchPickupIn, terminal: Terminal) -> PickedUp:
        """Hand the made cards to the employer's handler (card ``02`` -> ``03``).

        A handler other than the one who submitted the list brings the
        employer's stamped letter (material ``employer-letter`` and its scan,
        archived with the pickup).

        Raises:
            BatchRefusal: ``INCOMPLETE``, ``NOT_FOUND``, ``ROW_STATE`` (a named line
                has no made card waiting).
        """
        spec = CATALOGUE[Operation.PICKUP]
        require_role(terminal, _WRITERS, "hand over batch cards")
        letter = _letter(body)
        async with self._sessions() as session:
            batch = await self._batch(session, batch_id)
            submitter = await session.get(PersonRow, batch.handler_person_id)
            waiting = list(
                (
                    await session.scalars(
                        select(BatchItemRow)
                        .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "produced")
                        .order_by(BatchItemRow.line)
                    )
                ).all()
            )
        assert submitter is not None  # noqa: S101 - foreign key
        changed = self._vault.index(body.handler.id_number) != submitter.id_index
        missing = check_completeness(spec, Case.EMPLOYER_BATCH, Channel.WINDOW, set(body.materials))
        if changed and Material.EMPLOYER_LETTER not in body.materials:
            missing.append(
                Deficiency(
                    "missing:employer-letter",
                    "经办人变更：缺少加盖单位公章的介绍信",
                    "Changed handler: the employer's stamped letter is missing",
                )
            )
        if changed and letter is None:
            missing.append(
                Deficiency(
                    "missing:employer-letter-scan",
                    "经办人变更：须上传单位介绍信扫描件存档",
                    "Changed handler: the stamped letter's scan must be archived",
                )
            )
        _raise_incomplete(missing)
        chosen = self._chosen(waiting, body.lines)
        now = self._clock.now()
        today = now.astimezone(BUSINESS_TZ).date()
        due = now + self.settings.enable_after
        async with self._sessions.begin() as session:
            person = await self._person(session, body.handler)
            receipt = await self._business.next_receipt(session, today)
            application = ApplicationRow(
                receipt_number=receipt, operation=Operation.PICKUP.value,
                case=Case.EMPLOYER_BATCH.value, channel=Channel.WINDOW.value,
                status="completed", person_id=person.id, terminal_id=terminal.id,
                accepted_at=now, deadline=today, completed_at=now,
            )  # fmt: skip
            session.add(application)
            await session.flush()
            for item in chosen:
                row = await session.get(BatchItemRow, item.id, with_for_update=True)
                card = await session.get(CardRow, item.card_id, with_for_update=True)
                assert row is not None  # noqa: S101 - selected a moment ago
                assert card is not None  # noqa: S101 - foreign key
                if row.status != "produced":
                    raise _not_waiting([row.line])
                _move(card, CardEvent.PICK_UP)
                card.updated_at = now
                row.status = "picked-up"
                row.picked_up_at = now
                row.picked_up_by = person.id
                row.enable_due_at = due
        if letter is not None:
            await self._archive.add(application, ArchiveKind.CREDENTIAL, *letter)
        lines = [item.line for item in chosen]
        await self._audit.append(
            terminal.id, "batch.pickup", f"batch:{batch_id}",
            {"receipt": receipt, "handler": person.id_masked, "changed_handler": changed,
             "cards": len(lines), "enable_due_at": due.isoformat()},
        )  # fmt: skip
        return PickedUp(receipt, lines, due, changed)

    @staticmethod
    def _chosen(waiting: list[BatchItemRow], lines: list[int] | None) -> list[BatchItemRow]:
        if lines is None:
            if not waiting:
                raise _not_waiting([])
            return waiting
        by_line = {item.line: item for item in waiting}
        absent = sorted(set(lines) - set(by_line))
        if absent:
            raise _not_waiting(absent)
        return [by_line[line] for line in sorted(set(lines))]

    # -------------------------------------------------------------- enabling
    async def run_auto_enable(self) -> None:
        """Enable due cards until cancelled (a supervised task)."""
        while True:
            await self.enable_due()
            await self._clock.sleep(self.settings.enable_check_seconds)

    async def enable_due(self) -> int:
        """Enable every card whose 96 hours since pickup are over; return how many.

        Each card in its own transaction with its platform message (journal
        first: the state and the outbox row commit together). A card that
        changed meanwhile (reported lost, cancelled) is not enabled; the row
        keeps the reason.
        """
        now = self._clock.now()
        due = await self._select_rows(
            BatchItemRow.status == "picked-up",
            BatchItemRow.enabled_at.is_(None),
            BatchItemRow.enable_due_at <= now,
        )
        enabled = 0
        for item in due[:ENABLE_BATCH_LIMIT]:
            enabled += await self._enable(item, now)
        return enabled

    async def _enable(self, item: BatchItemRow, now: datetime) -> bool:
        queued = False
        async with self._sessions.begin() as session:
            row = await session.get(BatchItemRow, item.id, with_for_update=True)
            card = await session.get(CardRow, item.card_id, with_for_update=True)
            assert row is not None  # noqa: S101 - selected a moment ago
            assert card is not None  # noqa: S101 - foreign key
            if row.status != "picked-up" or row.enabled_at is not None:
                return False
            try:
                _move(card, CardEvent.ACTIVATE)
                lifecycle.step(card, ApplicationEvent.ENABLE)
            except IllegalTransition as exc:
                row.enable_due_at = None
                row.failure = f"not-enabled:{exc.machine}:{exc.state.value}"[:128]
                log.warning("batch_enable_skipped", batch_id=row.batch_id, line=row.line,
                            machine=exc.machine, state=exc.state.value)  # fmt: skip
                return False
            card.updated_at = now
            row.status = "enabled"
            row.enabled_at = now
            if self._outbox is not None and card.card_number is not None:
                ref = CardRef(card.card_number, card.card_code)
                await self._outbox.enqueue(
                    session, EnableCard(ref), message_id=f"batch-enable-{row.batch_id}-{row.line}"
                )
                queued = True
            elif card.card_number is None:
                log.info("upstream_not_addressable", operation="enable", card_id=card.id)
        if queued and self._on_enqueued is not None:
            self._on_enqueued()
        await self._audit.append(
            "system", "batch.enable", f"batch:{item.batch_id}:{item.line}",
            {"card_id": item.card_id, "queued": queued},
        )  # fmt: skip
        return True

    # --------------------------------------------------------------- helpers
    async def _batch(
        self, session: AsyncSession, batch_id: str, *, for_update: bool = False
    ) -> BatchRow:
        batch = await session.get(BatchRow, batch_id, with_for_update=for_update)
        if batch is None:
            raise BatchRefusal(BatchReason.NOT_FOUND, f"No batch {batch_id}.", "无此批次。")
        return batch

    def _personal(self, item: BatchItemRow) -> dict[str, str]:
        data: dict[str, str] = json.loads(self._vault.open(_PERSONAL, item.personal_enc))
        return data

    async def _person_by_index(self, session: AsyncSession, index: str | None) -> PersonRow | None:
        if index is None:
            return None
        return (await session.scalars(select(PersonRow).where(PersonRow.id_index == index))).first()

    async def _person(self, session: AsyncSession, data: PersonIn) -> PersonRow:
        """The person with this identity number, inserted if new (the handler), locked."""
        return await self._holder(
            session,
            {"id_number": data.id_number, "name": data.name, "phone": data.phone or "",
             "address": data.address or ""},
            self._clock.now(),
        )  # fmt: skip

    async def _holder(
        self, session: AsyncSession, personal: Mapping[str, str], now: datetime
    ) -> PersonRow:
        """The holder of a row's personal data: inserted if new (never overwritten), locked."""
        person = await hold_person(
            session, self._vault, personal["id_number"], now=now,
            new={"name": personal["name"], "phone": personal.get("phone"),
                 "address": personal.get("address")},
        )  # fmt: skip
        assert person is not None  # noqa: S101 - inserted or found just now
        return person


@dataclass(frozen=True, slots=True)
class PickedUp:
    """What a pickup handed over."""

    receipt_number: str
    lines: list[int]
    enable_due_at: datetime
    changed_handler: bool


def application_id_of(item: BatchItemRow) -> str:
    """The production application id of a batch row (stable: resubmitting finds the job)."""
    return f"batch-{item.batch_id.replace('-', '')[:20]}-{item.line}"


async def _settle_receipt(
    session: AsyncSession, receipt: str | None, now: datetime, *, done: bool
) -> None:
    """A batch-to-single receipt: completed with its card, or due within the fault limit."""
    if receipt is None:
        return
    application = await session.scalar(
        select(ApplicationRow).where(ApplicationRow.receipt_number == receipt).with_for_update()
    )
    if application is None or application.status != "accepted":
        return
    if done:
        application.status, application.completed_at = "completed", now
        return
    hours = CATALOGUE[Operation.BATCH_TO_SINGLE].fault_deadline(Channel.WINDOW) or 24
    application.deadline = local_day(now + timedelta(hours=hours))


def _move(card: CardRow, *events: CardEvent) -> None:
    for event in events:
        lifecycle.step(card, event)


def _raise_incomplete(missing: list[Deficiency]) -> None:
    if missing:
        raise BatchRefusal.one_time_notice(BatchReason.INCOMPLETE, missing)


def _not_waiting(lines: list[int]) -> BatchRefusal:
    return BatchRefusal(
        BatchReason.ROW_STATE,
        "No made card is waiting for pickup on these lines." if lines else
        "No card of this batch is waiting for pickup.",
        "这些明细没有待领取的卡片。" if lines else "该批次没有待领取的卡片。",
        lines=lines,
    )  # fmt: skip


def _letter(body: BatchPickupIn) -> tuple[str, bytes] | None:
    """The stamped letter's content type and bytes, checked before anything is written."""
    import base64  # noqa: PLC0415
    import binascii  # noqa: PLC0415

    if body.letter is None:
        return None
    try:
        data = base64.b64decode(body.letter, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    kind = content_type_of(data)
    if kind is None or (body.letter_content_type not in {None, kind}):
        raise BatchRefusal(
            BatchReason.INCOMPLETE,
            "The letter's scan is not a JPEG, PNG or PDF file.",
            "介绍信扫描件须为JPG、PNG或PDF文件。",
            missing=[
                Deficiency(
                    "invalid:employer-letter-scan",
                    "介绍信扫描件须为JPG、PNG或PDF文件",
                    "The letter's scan must be JPEG, PNG or PDF",
                ).as_dict()
            ],
        )
    return kind, data


def _read_and_check(
    name: str, data: bytes, files: Mapping[str, Callable[[], bytes]], today: date
) -> list[RowReport]:
    """Read and check the list (in a worker thread: big lists take seconds)."""
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"list{suffix}"
        path.write_bytes(data)
        try:
            rows = read_rows(path)
        except BatchFileError as exc:
            raise BatchRefusal(
                BatchReason.FILE_INVALID,
                str(exc).replace(path.name, Path(name).name),
                "制卡明细表无法读取，或表头不是模板的表头"
                "（请使用 branchd batch template 生成的模板）。",
            ) from None
    if not rows:
        raise BatchRefusal(
            BatchReason.FILE_INVALID, "The card list has no rows.", "制卡明细表没有明细行。"
        )
    return check_rows(rows, files, today, strict=True)


def _files_of_valid_rows(
    rows: list[RowReport], files: Mapping[str, Callable[[], bytes]]
) -> dict[str, tuple[str, bytes]]:
    """The photos and scans the valid rows name, with their content types."""
    found: dict[str, tuple[str, bytes]] = {}
    for row in rows:
        if not row.ok:
            continue
        for column in ("photo", "scan"):
            name = row.values[column]
            if name and name not in found:
                data = files[name]()
                kind = content_type_of(data)
                assert kind is not None  # noqa: S101 - strict check_rows refused other types
                found[name] = (kind, data)
    return found


def _report_bytes(rows: list[RowReport]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "problems.xlsx"
        write_report(path, rows)
        return path.read_bytes()
