"""Instant issuance in the daemon: the production controller wired to the branch.

:class:`ProductionService` joins three things that do not know each other:

- the business records (applications, persons, cards in the branch database),
- the :class:`~production.ProductionController` and its stations, built from
  ``[production]`` and the devices of ``[devices]``,
- the upstream clients (platform pre-open, 回盘, enable, key service; bank
  account binding), through the adapters below that fit ``production.ports``.

A teller starts a job for an accepted application (``POST
/v1/production/jobs``). The card record moves to *in production* in the same
transaction that checks it may; the job is then journaled by the controller
(one job per application: submitting again answers the same job). When the
job ends, the card record is settled: issued (card number, chip code, the
application enabled, the bank account opened) or instant issuance failed
(``17``). Settling is idempotent and also runs at start for jobs that ended
while nobody was watching, so a crash between the two leaves nothing behind.

A window card whose job failed (devices, stock) is due within 24 hours (001
§1.1.3) and is queued again by :meth:`ProductionService.requeue_due`, behind
the window's jobs (``Priority.BATCH``), a configured number of times. A card
made by a job that was not at the window's priority waits for its holder
(``02``, not enabled), as a batch card does: the holder picks it up later.

The quality check is the teller's: :class:`TellerQualityCheck` holds each
ejected card's job until ``POST /v1/production/jobs/{id}/quality-check``
answers (or, when configured ``automatic`` for unattended runs, passes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import structlog
from sqlalchemy import select

from gateway.issuance.rows import ProductionJobRow
from gateway.operations.catalogue import CATALOGUE, Channel, Operation
from gateway.operations.fees import FEE_OWED
from gateway.operations.invalidation import REPLACED_STATES, invalidate_replaced_cards
from gateway.operations.rows import ApplicationRow
from gateway.people import lifecycle
from gateway.people.identity import sex_of
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import (
    ApplicationEvent,
    ApplicationState,
    BankEvent,
    BankState,
    CardEvent,
    CardState,
)
from gateway.runtime.business_day import local_day
from gateway.upstream.errors import UpstreamRejectedError
from gateway.upstream.platform import Applicant, CardRef, KeyServiceContext, ProductionData
from production import (
    JobRecord,
    JobStatus,
    Order,
    PreconditionError,
    PreOpened,
    Priority,
    QcVerdict,
    UnknownJobError,
    UpstreamRefusedError,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.people.vault import PersonalDataVault
    from gateway.upstream.bank import BankClient
    from gateway.upstream.outbox import Outbox
    from gateway.upstream.platform import PlatformClient
    from production import (
        Journal,
        KeyRequest,
        ProductionController,
        Reconciliation,
        ReturnData,
        StockLedger,
    )

__all__ = [
    "BankProduction",
    "IssueRefusedError",
    "PlatformKeyService",
    "PlatformProduction",
    "ProductionService",
    "TellerQualityCheck",
]

log = structlog.get_logger(__name__)

#: Operations whose application a card is produced for at the window.
PRODUCIBLE: Final = frozenset({"apply", "reissue", "replace", "renew"})
#: Card states from which a production job may start (a failed one may be retried).
_STARTABLE: Final = {
    CardState.INITIAL.value: CardEvent.START_PRODUCTION,
    CardState.INSTANT_ISSUANCE_FAILED.value: CardEvent.RETRY_PRODUCTION,
}


def _fault_deadline(application: ApplicationRow, now: datetime) -> None:
    """A card "made at once" that failed on a device or upstream is due within the fault limit.

    001 §1.1.3: 因设备或网络故障不能即时制卡的, 24 小时内完成; the deadline moves
    from the day of acceptance to the day the limit ends, so the overdue list
    tells the truth.
    """
    spec = CATALOGUE.get(Operation(application.operation))
    hours = spec.fault_deadline(Channel(application.channel)) if spec is not None else None
    if hours is None or application.status != "accepted":
        return
    due = local_day(now + timedelta(hours=hours))
    if application.deadline is None or application.deadline < due:
        application.deadline = due


# ------------------------------------------------------------------ upstream adapters


@dataclass(frozen=True, slots=True)
class PlatformProduction:
    """``production.PlatformPort`` over the platform client."""

    platform: PlatformClient

    async def pre_open(self, order: Order, *, message_id: str) -> PreOpened:
        """Apply / pre-open: the card number and the photo to print.

        Raises:
            UpstreamRefusedError: the platform refused (not an outage: not retried).
        """
        try:
            result = await self.platform.apply(
                Applicant(order.ssn, order.name, order.region, order.photo),
                message_id=message_id,
            )
        except UpstreamRejectedError as exc:
            raise UpstreamRefusedError("platform", str(exc.status)) from None
        return PreOpened(result.card_number, result.photo or None)

    async def return_data(self, data: ReturnData, *, message_id: str) -> None:
        """回盘: what the chip of the made card says."""
        await self.platform.return_data(
            ProductionData(
                card_number=data.card_number,
                atr=data.atr,
                card_id_code=data.card_id_code,
                chip_serial=data.chip_serial,
                version=data.version,
            ),
            message_id=message_id,
        )

    async def enable(self, card_number: str, card_id_code: str, *, message_id: str) -> None:
        """Enable the social-security application."""
        await self.platform.enable(CardRef(card_number, card_id_code), message_id=message_id)


@dataclass(frozen=True, slots=True)
class BankProduction:
    """``production.BankPort`` over the bank client."""

    bank: BankClient

    async def bind_account(self, order: Order, card_number: str, *, message_id: str) -> None:
        """Open the holder's account on the new card (idempotent by message id)."""
        await self.bank.open_account(card_number, order.ssn, message_id=message_id)


@dataclass(frozen=True, slots=True)
class PlatformKeyService:
    """``production.KeyService`` through the platform's key service (加密机).

    Attributes:
        platform: The platform client.
        terminal_id: This branch's terminal identity at the key service.
    """

    platform: PlatformClient
    terminal_id: str

    async def external_authenticate(self, request: KeyRequest, challenge: bytes) -> bytes:
        """The key service's EXTERNAL AUTHENTICATE cryptogram for this card."""
        context = KeyServiceContext(
            terminal_id=self.terminal_id,
            region=request.region,
            social_security_number=request.ssn,
            card_number=request.card_number,
            card_id_code=request.card_id_code,
            atr=request.atr,
            algorithm=request.algorithm.upper(),
            key_version=request.key_version,
        )
        try:
            return await self.platform.external_authenticate(context, challenge)
        except UpstreamRejectedError as exc:  # an answer: another blank would get it too
            raise UpstreamRefusedError("key-service", str(exc.status)) from None


# ------------------------------------------------------------------ quality check


class TellerQualityCheck:
    """The teller's verdict on each ejected card (``production.QualityCheck``).

    Args:
        automatic: Pass every card at once (unattended runs: demo, tests);
            in production the teller looks at the card.
    """

    def __init__(self, *, automatic: bool = False) -> None:
        """No card is waiting yet."""
        self.automatic = automatic
        self._waiting: dict[str, asyncio.Future[QcVerdict]] = {}

    async def inspect(self, job: JobRecord) -> QcVerdict:
        """Wait for the verdict on ``job``'s card."""
        if self.automatic:
            return QcVerdict(passed=True, operator="automatic")
        future: asyncio.Future[QcVerdict] = asyncio.get_running_loop().create_future()
        self._waiting[job.job_id] = future
        try:
            return await future
        finally:
            self._waiting.pop(job.job_id, None)

    def waiting(self) -> list[str]:
        """Jobs whose card waits for the teller, oldest first."""
        return list(self._waiting)

    def decide(self, job_id: str, verdict: QcVerdict) -> bool:
        """Give the verdict; ``False`` when that job's card is not waiting for one."""
        future = self._waiting.get(job_id)
        if future is None or future.done():
            return False
        future.set_result(verdict)
        return True


# ------------------------------------------------------------------ the service


class IssueRefusedError(Exception):
    """A production job cannot start for this application.

    Attributes:
        code: Stable reason: ``not-found``, ``not-producible``, ``card-state``.
        detail: A sentence for the teller (no personal data).
    """

    def __init__(self, code: str, detail: str, *, state: str | None = None) -> None:
        """Keep the reason."""
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.state = state


class ProductionService:
    """Starts jobs for applications and settles the card records when they end."""

    def __init__(  # noqa: PLR0913 - the composition root's parts
        self,
        *,
        controller: ProductionController,
        journal: Journal,
        ledger: StockLedger,
        quality_check: TellerQualityCheck,
        sessions: async_sessionmaker[AsyncSession],
        vault: PersonalDataVault,
        audit: AuditLog,
        clock: Clock,
        region: str,
        approval_minutes: float = 15.0,
        on_settled: Callable[[JobRecord], None] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        """Keep the parts; :meth:`start` recovers and starts the controller."""
        self.controller = controller
        self.journal = journal
        self.ledger = ledger
        self.quality_check = quality_check
        self._sessions = sessions
        self._vault = vault
        self.audit = audit
        self._clock = clock
        self._region = region
        #: Minutes a supervisor's approval of a stock adjustment stays usable.
        self.approval_minutes = approval_minutes
        self._on_settled = on_settled
        #: Where an old card's cancellation goes when its successor is issued.
        self.outbox = outbox
        self._watchers: set[asyncio.Task[None]] = set()
        #: One lock per application being issued or settled (dropped when unused).
        self._receipts: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        #: Set once :meth:`start` has recovered the journal (submit only after it).
        self.started = asyncio.Event()
        #: The newest stock reconciliation.
        self.last_reconciliation: Reconciliation | None = None
        self.issued = 0
        self.failed = 0

    async def start(self) -> None:
        """Recover the controller's jobs, then settle every card left *in production*.

        A card in production whose last job is unfinished is watched; one whose
        job ended is settled now; one with no job at all (the daemon stopped
        between the card's move and the job's journal entry) goes back.
        """
        await self.controller.start()
        async with self._sessions() as session:
            receipts = (
                await session.scalars(
                    select(ApplicationRow.receipt_number)
                    .join(CardRow, CardRow.id == ApplicationRow.card_id)
                    .where(
                        CardRow.card_state == CardState.IN_PRODUCTION.value,
                        ApplicationRow.operation.in_(PRODUCIBLE),
                    )
                )
            ).all()
        for receipt in receipts:
            async with self._sessions() as session:
                jobs = await _jobs_of(session, receipt)
            if not jobs:
                await self._undo_begin(receipt, 1)
                continue
            job_id, status, _ = jobs[-1]
            if not JobStatus(status).finished:
                self._watch(job_id)
                continue
            record = await self.journal.load_job(job_id)
            if record is not None:
                await self._settle(record)
        self.started.set()

    async def reconcile(self, counted: dict[str, int] | None = None) -> Reconciliation:
        """Reconcile the stock with the jobs' cards (and the operator's count, if given)."""
        result = await self.ledger.reconcile(
            counted=counted, held_by_jobs=self.controller.cards_held()
        )
        self.last_reconciliation = result
        return result

    async def stop(self) -> None:
        """Stop watching, stop the controller (jobs stay journaled)."""
        for task in list(self._watchers):
            task.cancel()
        for task in list(self._watchers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.controller.stop()

    async def _load(self, job_id: str) -> JobRecord | None:
        try:
            return self.controller.job(job_id)
        except UnknownJobError:
            return None

    def _watch(self, job_id: str) -> None:
        task = asyncio.create_task(self._await_end(job_id), name=f"production-watch-{job_id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _await_end(self, job_id: str) -> None:
        try:
            job = await self.controller.wait(job_id)
        except UnknownJobError:
            return
        await self._settle(job)

    async def issue(
        self, receipt: str, terminal: str, *, ethnicity: str, priority: Priority
    ) -> JobRecord:
        """Start (or find) the production job of the application ``receipt``.

        Calls for one application are taken one at a time, and only once
        :meth:`start` has recovered the journal: a call that fails puts the card
        back only if no job was journaled for it, and a concurrent call's job
        must not be in flight while it counts.

        Raises:
            IssueRefusedError: No such application, not one a card is made for, or
                its card is in a state production cannot start from.
            PreconditionError: From the controller (no station, no blanks, ...);
                nothing was changed then.
        """
        await self.started.wait()
        async with self._lock(receipt):
            return await self._issue(receipt, terminal, ethnicity=ethnicity, priority=priority)

    def _lock(self, receipt: str) -> asyncio.Lock:
        lock = self._receipts.get(receipt)
        if lock is None:
            lock = self._receipts[receipt] = asyncio.Lock()
        return lock

    async def _issue(
        self, receipt: str, terminal: str, *, ethnicity: str, priority: Priority
    ) -> JobRecord:
        try:
            attempt, order = await self._begin(receipt, ethnicity, priority)
        except IssueRefusedError as exc:
            made = await self._issued_job(receipt) if exc.code == "card-state" else None
            if made is None:
                raise
            return made  # asked again after the card was made: the same job
        try:
            job = await self.controller.submit(order, priority)
        except Exception:
            await self._undo_begin(receipt, attempt)
            raise
        if not job.status.finished:
            self._watch(job.job_id)
        await self.audit.append(
            terminal, "production.submit", f"receipt:{receipt}",
            {"job": job.job_id, "priority": priority.name.lower(), "attempt": attempt},
        )  # fmt: skip
        return job

    async def _issued_job(self, receipt: str) -> JobRecord | None:
        """The application's last job when it issued the card."""
        async with self._sessions() as session:
            jobs = await _jobs_of(session, receipt)
        if not jobs or jobs[-1][1] != JobStatus.ISSUED.value:
            return None
        return await self.journal.load_job(jobs[-1][0])

    async def requeue_due(self, *, attempts: int, minutes: float) -> list[str]:
        """Queue again the window cards whose job failed; the receipts submitted.

        A card in ``17`` whose application is still accepted (not withdrawn, its
        fee settled or waived) gets a new job at ``Priority.BATCH`` once
        ``minutes`` have passed since its last one ended, until it has had
        ``attempts`` jobs away from the window. When production refuses up front
        (no station online, no blanks) the round stops and the next one tries again.
        """
        since = self._clock.now() - timedelta(minutes=minutes)
        async with self._sessions() as session:
            failed = (
                await session.scalars(
                    select(ApplicationRow.receipt_number)
                    .join(CardRow, CardRow.id == ApplicationRow.card_id)
                    .where(
                        CardRow.card_state == CardState.INSTANT_ISSUANCE_FAILED.value,
                        CardRow.updated_at <= since,
                        ApplicationRow.operation.in_(PRODUCIBLE),
                        ApplicationRow.status == "accepted",
                        ApplicationRow.fee_status.not_in(FEE_OWED),
                    )
                    .order_by(ApplicationRow.accepted_at)
                )
            ).all()
        submitted: list[str] = []
        for receipt in failed:
            async with self._sessions() as session:
                jobs = await _jobs_of(session, receipt)
            away = sum(1 for _, _, priority in jobs if priority != Priority.WINDOW)
            last = await self.journal.load_job(jobs[-1][0]) if jobs else None
            if away >= attempts or last is None:
                continue
            if (last.failure or "").startswith("refused:"):
                continue  # the platform said no: people settle that, not another job
            try:
                await self.issue(
                    receipt, "production", ethnicity=last.order.ethnicity, priority=Priority.BATCH
                )
            except PreconditionError as exc:
                log.info("production_requeue_waits", receipt=receipt, reason=exc.code)
                break
            except IssueRefusedError as exc:  # changed meanwhile (withdrawn, retried)
                log.info("production_requeue_skipped", receipt=receipt, reason=exc.code)
                continue
            submitted.append(receipt)
        return submitted

    async def _begin(self, receipt: str, ethnicity: str, priority: Priority) -> tuple[int, Order]:
        """Check the application, move its card to *in production*, build the order."""
        async with self._sessions.begin() as session:
            found = (
                await session.execute(
                    select(ApplicationRow, PersonRow, CardRow)
                    .join(PersonRow, PersonRow.id == ApplicationRow.person_id)
                    .join(CardRow, CardRow.id == ApplicationRow.card_id, isouter=True)
                    .where(ApplicationRow.receipt_number == receipt)
                    # The holder's lock, which the business service takes too: a
                    # cancellation at the window waits for this, or this for it.
                    .with_for_update(of=PersonRow)
                )
            ).one_or_none()
            if found is None:
                raise IssueRefusedError("not-found", "No application with this receipt number.")
            application, person, card = found
            if application.operation not in PRODUCIBLE or card is None:
                raise IssueRefusedError(
                    "not-producible",
                    f"A {application.operation!r} application does not make a card.",
                )
            if application.online_ref is not None and application.verified_at is None:
                # 000 线上申请 → 线下核验 → 领卡: the citizen is verified at the window first.
                raise IssueRefusedError(
                    "not-verified",
                    "An online application is verified at the window before its card is made "
                    "(POST /v1/applications/{receipt}/verification).",
                )
            if application.fee_status in FEE_OWED:
                # 001 §3: 完成费用清缴或抵扣 … 等待制卡: settled (or waived) first.
                raise IssueRefusedError(
                    "fee-due",
                    "The application owes its fee: settle it at the window "
                    "(POST /v1/applications/{receipt}/fee) before the card is made.",
                    state=application.fee_status,
                )
            if card.card_state in REPLACED_STATES:
                # A reissue or replacement: the new card gets a record of its own; the
                # old one waits in 07/08 until the new one is issued (then cancelled).
                card = self._successor(card)
                session.add(card)
                await session.flush()
                application.card_id = card.id
            if card.card_state == CardState.IN_PRODUCTION.value:
                attempt = await _attempts(session, receipt)
            else:
                event = _STARTABLE.get(card.card_state)
                if event is None:
                    raise IssueRefusedError(
                        "card-state",
                        f"The card is in state {card.card_state}; production cannot start.",
                        state=card.card_state,
                    )
                lifecycle.step(card, event)
                card.updated_at = self._clock.now()
                attempt = await _attempts(session, receipt) + 1
            id_number = self._vault.open("id_number", person.id_number_enc)
            name = self._vault.open("name", person.name_enc)
            # Printed from the holder's record, and sent to the platform in pre-open.
            photo = (
                self._vault.open_bytes("photo", person.photo_enc)
                if person.photo_enc is not None
                else None
            )
        order = Order(
            application_id=_application_id(receipt, attempt),
            ssn=id_number,
            name=name,
            sex=sex_of(id_number),
            ethnicity=ethnicity,
            birth_date=person.birth_date,
            region=self._region,
            photo=photo,
            # At the window the holder takes the card enabled; otherwise it waits for them.
            enable_on_issue=priority is Priority.WINDOW,
        )
        return attempt, order

    def _successor(self, old: CardRow) -> CardRow:
        """A new card record for the holder of ``old``, about to be made."""
        return lifecycle.new_card(old.person_id, self._region, self._clock.now())

    async def _undo_begin(self, receipt: str, attempt: int) -> None:
        """No job was journaled for this attempt: put the card back where it was."""
        async with self._sessions.begin() as session:
            jobs = await _attempts(session, receipt)
            if jobs >= attempt:
                return  # the job exists after all: it goes on
            card = await session.scalar(
                select(CardRow)
                .join(ApplicationRow, ApplicationRow.card_id == CardRow.id)
                .where(ApplicationRow.receipt_number == receipt)
            )
            if card is not None and card.card_state == CardState.IN_PRODUCTION.value:
                card.card_state = (
                    CardState.INITIAL.value
                    if jobs == 0
                    else CardState.INSTANT_ISSUANCE_FAILED.value
                )

    async def _settle(self, job: JobRecord) -> None:
        """Bring the card record in line with the ended job (idempotent)."""
        receipt = receipt_of(job.order.application_id)
        async with self._lock(receipt):
            await self._settle_card(job, receipt)

    async def _settle_card(self, job: JobRecord, receipt: str) -> None:
        async with self._sessions.begin() as session:
            found = (
                await session.execute(
                    select(ApplicationRow, CardRow)
                    .join(CardRow, CardRow.id == ApplicationRow.card_id)
                    .where(ApplicationRow.receipt_number == receipt)
                )
            ).one_or_none()
            if found is None or found[1].card_state != CardState.IN_PRODUCTION.value:
                return
            application, card = found
            before = (card.application_state, card.card_state, card.bank_state)
            now = self._clock.now()
            if job.status is JobStatus.ISSUED:
                card.card_number = job.order.card_number
                card.card_code = job.chip.card_id_code if job.chip else None
                if job.order.enable_on_issue:  # handed over at the window, enabled
                    lifecycle.step(card, CardEvent.ISSUED)
                    if card.application_state == ApplicationState.SEALED.value:
                        lifecycle.step(card, ApplicationEvent.ENABLE)
                else:  # made while the holder was away: it waits at the branch
                    lifecycle.step(card, CardEvent.PRODUCED)
                if card.bank_state == BankState.NOT_OPENED.value:
                    lifecycle.step(card, BankEvent.OPEN)
                application.status = "completed"
                application.completed_at = now
                # -- a reissue or replacement invalidates the card it replaces --
                replaced = await invalidate_replaced_cards(
                    session, card, outbox=self.outbox, now=now
                )
                if replaced:
                    log.info("replaced_cards_cancelled", cards=[c.card_number for c in replaced])
            else:
                lifecycle.step(card, CardEvent.PRODUCTION_FAILED)
                _fault_deadline(application, now)
            card.updated_at = now
            after = (card.application_state, card.card_state, card.bank_state)
        if job.status is JobStatus.ISSUED:
            self.issued += 1
        else:
            self.failed += 1
        log.info("production_settled", receipt=receipt, job_id=job.job_id, status=job.status.value)
        await self.audit.append(
            "production", f"production.{job.status.value}", f"receipt:{receipt}",
            {"job": job.job_id, "failure": job.failure, "cards_used": job.card_seq,
             "before": before, "after": after},
        )  # fmt: skip
        if self._on_settled is not None:
            self._on_settled(job)


def _application_id(receipt: str, attempt: int) -> str:
    """The controller's application key: one job per key, a new key per retry."""
    return receipt if attempt <= 1 else f"{receipt}#{attempt}"


def receipt_of(application_id: str) -> str:
    """The receipt number of a job's application key."""
    return application_id.partition("#")[0]


async def _jobs_of(session: AsyncSession, receipt: str) -> list[tuple[str, str, int]]:
    """The application's jobs (id, status, priority), oldest first."""
    rows = await session.execute(
        select(
            ProductionJobRow.job_id,
            ProductionJobRow.status,
            ProductionJobRow.priority,
            ProductionJobRow.application_id,
        )
        .where(ProductionJobRow.application_id.like(f"{receipt}%"))
        .order_by(ProductionJobRow.created_at)
    )
    return [
        (job, status, priority) for job, status, priority, key in rows if receipt_of(key) == receipt
    ]


async def _attempts(session: AsyncSession, receipt: str) -> int:
    """How many jobs the application has had."""
    return len(await _jobs_of(session, receipt))
