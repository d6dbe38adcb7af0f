"""Business operations against the database: the catalogue's rules, applied.

One request is one database transaction: the checks (role, channel, one-time
notice, approval), the person and card, the state transitions, the receipt
number, the application row and the audit entry commit together or not at all.

Requests for one holder are taken one at a time. The transaction is a write
transaction (``BEGIN IMMEDIATE`` on SQLite) and, on PostgreSQL, locks the
holder's person row before it reads the cards, so a second request reads the
state the first one left, and is refused by the state machine. The person is
inserted or fetched (never overwritten), and the database's unique indexes
(migration ``0009``) refuse any second card or open application that slipped
past: that, too, is a 409 ``state-conflict``, never a 500.

Why one module of this size: it is the catalogue applied in one transaction;
the person, the card, the receipt, the outbox and the application are written
together, so they are read together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from stdnum.cn import ric

from gateway.approvals.service import Approvals, Required
from gateway.operations.catalogue import (
    CATALOGUE,
    DOCUMENT_MATERIAL,
    Case,
    Channel,
    Operation,
    Role,
)
from gateway.operations.completeness import Deficiency, check_completeness, decoded_photo
from gateway.operations.errors import OperationReason, OperationRefusal
from gateway.operations.fees import FeeDecision, FeeDesk, decide_fee
from gateway.operations.online import OnlineApplications
from gateway.operations.receipts import ensure_open, next_receipt
from gateway.operations.rows import ApplicationRow
from gateway.operations.schemas import ApprovalOut, OperationResult, WithdrawalOut
from gateway.operations.workdays import CalendarError
from gateway.people import lifecycle
from gateway.people.holders import DocumentTakenError, hold_document, hold_person
from gateway.people.identity import ADULT_AGE, age_on
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import (
    ApplicationEvent,
    ApplicationState,
    BankState,
    CardEvent,
    CardState,
    IllegalTransition,
    Interruption,
)
from gateway.runtime.business_day import BUSINESS_TZ
from gateway.runtime.http.auth import Terminal, require_role
from gateway.upstream.errors import KeyServiceUnavailableError
from gateway.upstream.notices import PlatformNotices
from gateway.upstream.outbox import (
    ActivateFinancial,
    CancelCard,
    CancelLoss,
    ChangeInfo,
    CloseAccount,
    EnableCard,
    FreezeAccount,
    QueueStatus,
    ReopenAccount,
    ReportLoss,
    RequestElectronicCard,
    ReverseFee,
    RollbackCancellation,
    UnfreezeAccount,
    UpdateContact,
)
from gateway.upstream.platform import CardRef, LossType
from protocols.documents import DocumentNumberError, check_document_number
from protocols.platform import PlatformOperation
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    import random

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.operations.catalogue import OperationSpec
    from gateway.operations.schemas import ApprovalIn, OperationRequest, PersonIn, Scope
    from gateway.operations.settings import BusinessConfig
    from gateway.operations.workdays import WorkCalendar
    from gateway.people.vault import PersonalDataVault
    from gateway.upstream.assembly import Upstream
    from gateway.upstream.outbox import QueueableCommand

__all__ = ["BusinessService", "hold_person"]

log = structlog.get_logger(__name__)

#: Applications that make a card, and so may be withdrawn before it is made.
_WITHDRAWABLE: Final = frozenset({"apply", "reissue", "replace", "renew"})
#: A card record not made yet, and a card waiting for its successor.
_NOT_MADE: Final = frozenset({CardState.INITIAL.value, CardState.INSTANT_ISSUANCE_FAILED.value})
_REPLACED: Final = frozenset(
    {CardState.REISSUE_UNDER_WAY.value, CardState.REPLACEMENT_UNDER_WAY.value}
)


@dataclass(frozen=True, slots=True)
class Parts:
    """What one request covers: the social-security side, the bank account, or both."""

    social: bool
    bank: bool

    @property
    def scope(self) -> Scope:
        """The parts as the API names them."""
        if self.social and self.bank:
            return "both"
        return "bank" if self.bank else "social-security"


def takes_scope(spec: OperationSpec) -> bool:
    """Whether a request of ``spec`` may name a scope (rollback follows the history)."""
    return spec.bank_event is not None and spec.operation is not Operation.ROLLBACK


#: How a refusal for want of an approval tells the teller to get one.
APPROVAL_REQUIRED: Final = Required(
    "This operation needs a supervisor's approval of this exact request "
    "(POST /v1/approvals, then send X-Approval-ID).",
    "此业务需主管对本次请求授权（POST /v1/approvals 后携带 X-Approval-ID）。",
)
#: Reason sent with a cancellation (the teller's own words stay at the branch).
CANCEL_REASON: Final = "holder-request"


@dataclass(frozen=True, slots=True)
class _States:
    application: str | None
    card: str | None
    bank: str | None


class BusinessService:
    """Performs catalogue operations and approvals in one transaction each."""

    def __init__(  # noqa: PLR0913 - the service's collaborators, all injected
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        vault: PersonalDataVault,
        audit: AuditLog,
        clock: Clock,
        rng: random.Random,
        calendar: WorkCalendar,
        rules: BusinessConfig,
        region: str,
        upstream: Upstream | None = None,
    ) -> None:
        """Keep the collaborators (``upstream`` when ``[upstream]`` is configured)."""
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self._clock = clock
        self._calendar = calendar
        self._rules = rules
        self._region = region
        self._upstream = upstream
        #: The supervisors' approvals the operations take (their ids drawn from ``rng``).
        self.approvals = Approvals(sessions=sessions, audit=audit, clock=clock, rng=rng)
        #: The fees applications owe, settled at the window.
        self.fees = FeeDesk(sessions=sessions, audit=audit, clock=clock, upstream=upstream)
        #: The online applications the platform sends to this branch, verified here.
        self.online = OnlineApplications(
            sessions=sessions, vault=vault, audit=audit, clock=clock, calendar=calendar,
            region=region, workdays=lambda: self._rules.online_apply_workdays,
        )  # fmt: skip
        #: The platform's pushed notices (12333 losses, online applications), with
        #: ``[upstream]``.
        self.notices = (
            PlatformNotices(sessions=sessions, upstream=upstream, audit=audit, clock=clock)
            if upstream is not None and upstream.opener is not None
            else None
        )
        if self.notices is not None:
            self.notices.handle(PlatformOperation.ONLINE_APPLICATION, self.online.receive)

    @property
    def rules(self) -> BusinessConfig:
        """``[business]``: fees, time limits, approvals as configured."""
        return self._rules

    def fee_for(self, birth: date, today: date) -> FeeDecision:
        """What one new card of a reissue, replacement or renewal costs its holder."""
        return decide_fee(
            self._rules, charged=True, region=self._region, birth=birth, today=today, waived=False
        )

    # ------------------------------------------------------------ approvals
    async def approve(self, body: ApprovalIn, digest: str, terminal: Terminal) -> ApprovalOut:
        """Record a supervisor's approval of one exact request."""
        require_role(terminal, {Role.SUPERVISOR}, "approve requests")
        granted = await self.approvals.grant(
            body.operation.value,
            digest,
            supervisor=terminal.id,
            reason=body.reason,
            lifetime=timedelta(minutes=self._rules.approval_minutes),
            details={"reason": mask_personal_numbers(body.reason)},
        )
        return ApprovalOut(id=granted.id, operation=body.operation, expires_at=granted.expires_at)

    # ----------------------------------------------------------- operations
    async def perform(
        self,
        operation: Operation,
        body: OperationRequest,
        terminal: Terminal,
        *,
        digest: str,
        approval_id: str | None,
    ) -> OperationResult:
        """Check and carry out one operation.

        Raises:
            OperationRefusal: the operation is refused (its reason says why); nothing
                was changed.
            ApprovalRefusal: it needs an approval of this exact request, and none or
                no valid one is named.
        """
        spec = CATALOGUE[operation]
        require_role(terminal, spec.roles, spec.title_en.lower())
        _check_channel(terminal, body.channel)
        today = self._clock.now().astimezone(BUSINESS_TZ).date()
        photo = decoded_photo(body.photo)
        on_record = spec.new_card and photo is None and await self._photo_on_record(body)
        deficiencies = self._deficiencies(spec, body, today, photo, on_record=on_record)
        deficiencies.extend(self._request_checks(spec, body))
        if deficiencies:
            raise OperationRefusal.one_time_notice(OperationReason.INCOMPLETE, deficiencies)
        if spec.live_only:
            self._require_live_platform()
            # PIN change, reset and unlock act on the chip through the PIN pad and the
            # encoder at this window; until those are wired, refuse rather than pretend.
            raise OperationRefusal(
                OperationReason.PIN_SERVICES_UNAVAILABLE,
                "PIN change, reset and unlock need the PIN pad and the card encoder of this "
                "window, which this build does not drive yet; nothing was changed.",
                "密码修改、重置和解锁需要本窗口的密码键盘和读写卡器，当前版本尚未接入；未做任何更改。",
            )
        deadline = self._deadline(spec, body.channel, today)
        queued: bool | None = None
        try:
            async with self._sessions.begin() as session:
                if spec.needs_approval or (body.fee_waived and spec.fee_yuan):
                    await self.approvals.use(
                        session, operation.value, digest, approval_id,
                        user=terminal.id, required=APPROVAL_REQUIRED,
                    )  # fmt: skip
                person = await self._person(session, body.applicant, create=spec.new_card)
                await self._document(session, person, body.applicant)
                if photo and not spec.completes_at_counter:
                    # The photo of a card to be made is the holder's from now on (a
                    # reissue's new photo replaces the old one).
                    person.photo_enc = self._vault.seal_bytes("photo", photo)
                card, before, after, parts = await self._card(session, spec, person, body)
                if operation is Operation.INFO_CHANGE:
                    self._change_info(person, body.applicant)
                receipt = await self.next_receipt(session, today)
                fee = decide_fee(
                    self._rules, charged=bool(spec.fee_yuan), region=self._region,
                    birth=person.birth_date, today=today, waived=body.fee_waived,
                )  # fmt: skip
                completed = spec.completes_at_counter
                queued = await self._enqueue(session, operation, card, parts, body.applicant)
                now = self._clock.now()
                session.add(
                    ApplicationRow(
                        receipt_number=receipt, operation=operation.value, case=body.case.value,
                        channel=body.channel.value, status="completed" if completed else "accepted",
                        person_id=person.id, card_id=card.id if card else None,
                        terminal_id=terminal.id, fee_yuan=fee.yuan,
                        fee_waived=fee.status == "waived", fee_status=fee.status,
                        fee_method=fee.method, accepted_at=now,
                        archive_status=spec.archive_status(body.channel),
                        deadline=deadline, completed_at=now if completed else None,
                    )
                )  # fmt: skip
                await session.flush()
        except IntegrityError as exc:
            # The database refused a second card or open application: another request
            # for this holder came first. Nothing of this one was committed.
            log.warning("operation_conflict", operation=operation.value, error=type(exc).__name__)
            raise OperationRefusal(
                OperationReason.STATE_CONFLICT,
                "Another request for this holder changed the same card or application "
                "first; nothing of this request was changed. Query the holder's cards "
                "and applications before trying again.",
                "该申办人的另一笔业务已先变更同一社保卡或申请，本次请求未做任何更改；请先查询后再办理。",
            ) from None
        if queued is not None and self._upstream is not None:
            self._upstream.relay.wake()  # committed: the relay can see the messages now
        await self._audit.append(
            terminal.id, f"operation.{operation.value}", f"receipt:{receipt}",
            {
                "terminal": terminal.id, "case": body.case.value, "channel": body.channel.value,
                "holder": person.id_masked, "before": asdict(before) if before else None,
                "after": asdict(after) if after else None,
            },
        )  # fmt: skip
        return OperationResult(
            receipt_number=receipt,
            operation=operation,
            status="queued" if queued else "completed" if completed else "accepted",
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            deadline=deadline,
            fee_yuan=fee.yuan,
            fee_waived=fee.status == "waived",
            fee_status=fee.status,
            archive_status=spec.archive_status(body.channel),
            application_state=after.application if after else None,
            card_state=after.card if after else None,
            bank_state=after.bank if after else None,
            scope=parts.scope if parts is not None and spec.bank_event is not None else None,
        )

    @property
    def _has_bank(self) -> bool:
        return self._upstream is not None and self._upstream.bank is not None

    def _change_info(self, person: PersonRow, data: PersonIn) -> None:
        """Store the new non-key information, encrypted (the name and numbers stay)."""
        if data.phone is not None:
            person.phone_enc = self._vault.seal("phone", data.phone)
        if data.address is not None:
            person.address_enc = self._vault.seal("address", data.address)

    # ----------------------------------------------------------- withdrawal
    async def withdraw(self, receipt: str, reason: str, terminal: Terminal) -> WithdrawalOut:
        """Withdraw an application whose card is not being made; reverse its fee.

        The old card of a reissue or replacement returns to the state under it; a
        new card record never made is retired; a settled fee is reversed (冲正),
        a debit given back by the bank through the outbox in this transaction.

        Raises:
            OperationRefusal: no such application, or not withdrawable (done,
                withdrawn, its card in production or made, a debit under way).
        """
        require_role(terminal, {Role.SUPERVISOR}, "withdraw applications")
        async with self._sessions.begin() as session:
            # a reversal posts on today (never on the day of the original, maybe closed)
            await ensure_open(session, self._clock.now().astimezone(BUSINESS_TZ).date())
            application = await session.scalar(
                select(ApplicationRow)
                .where(ApplicationRow.receipt_number == receipt)
                .with_for_update()
            )
            if application is None:
                raise OperationRefusal(
                    OperationReason.APPLICATION_NOT_FOUND,
                    "No application with this receipt number.",
                    "无此受理编号。",
                )
            # The holder's lock, as every operation on the holder takes it.
            await session.scalar(
                select(PersonRow).where(PersonRow.id == application.person_id).with_for_update()
            )
            card_state = await self._withdraw_cards(session, application)
            if application.fee_status == "settling":
                raise OperationRefusal(
                    OperationReason.FEE_SETTLING,
                    "A bank debit of this fee is under way; withdraw once it is answered.",
                    "该笔工本费正在银行扣款，请稍后再撤销。",
                )
            queued = await self._reverse_fee(session, application)
            application.status, application.withdrawn_at = "withdrawn", self._clock.now()
            application.withdrawal_reason = reason
        if queued and self._upstream is not None:
            self._upstream.relay.wake()
        await self._audit.append(
            terminal.id, "application.withdraw", f"receipt:{receipt}",
            {"reason": mask_personal_numbers(reason), "fee_status": application.fee_status},
        )  # fmt: skip
        return WithdrawalOut(
            receipt_number=receipt,
            status=application.status,
            fee_status=application.fee_status,
            card_state=card_state,
        )

    async def _withdraw_cards(
        self, session: AsyncSession, application: ApplicationRow
    ) -> str | None:
        """Put the holder's cards back as they were before the application; the old card's state."""
        if application.status != "accepted" or application.operation not in _WITHDRAWABLE:
            raise OperationRefusal(
                OperationReason.NOT_WITHDRAWABLE,
                f"A {application.status} {application.operation} application cannot be withdrawn.",
                "该业务已办结或已撤销，不能撤销。",
                status=application.status,
            )
        cards = list(
            await session.scalars(
                select(CardRow)
                .where(CardRow.person_id == application.person_id)
                .order_by(CardRow.id)
                .with_for_update()
            )
        )
        own = next((c for c in cards if c.id == application.card_id), None)
        if own is not None and own.card_state not in _NOT_MADE | _REPLACED:
            raise OperationRefusal(
                OperationReason.NOT_WITHDRAWABLE,
                "The card is being made or was made; the application cannot be withdrawn.",
                "卡片正在制作或已制成，不能撤销。",
                status=application.status,
                card_state=own.card_state,
            )
        try:
            if own is not None and own.card_state in _NOT_MADE:
                lifecycle.step(own, CardEvent.ABANDON)
                lifecycle.step(own, ApplicationEvent.SUPERSEDE)
            old = None
            if application.operation != Operation.APPLY.value:
                old = next((c for c in cards if c.card_state in _REPLACED), None)
                if old is not None:
                    lifecycle.step(old, CardEvent.WITHDRAW)
        except IllegalTransition as exc:
            raise _refused_transition(exc) from None
        now = self._clock.now()
        for card in (own, old):
            if card is not None:
                card.updated_at = now
        shown = old if old is not None else own
        return shown.card_state if shown is not None else None

    async def _reverse_fee(self, session: AsyncSession, application: ApplicationRow) -> bool:
        """冲正: a settled fee is given back; one never paid is void. Whether a message waits."""
        if application.fee_status == "due":
            application.fee_status = "void"
            return False
        if application.fee_status != "settled":
            return False
        application.fee_status = "reversed"
        debited = application.fee_method == "debit" and application.fee_account is not None
        if not debited or self._upstream is None or application.fee_reference is None:
            return False  # cash and POS are handed back at the counter (the receipt records it)
        assert application.fee_account is not None  # noqa: S101 - checked above
        await self._upstream.outbox.enqueue(
            session,
            ReverseFee(
                application.fee_account, application.fee_reference, application.fee_yuan * 100
            ),
        )
        return True

    def _deadline(self, spec: OperationSpec, channel: Channel, today: date) -> date:
        """The day the operation is due: today, or a number of working days later."""
        workdays = spec.limit_for(channel).workdays
        if spec.operation is Operation.APPLY and channel is Channel.ONLINE:
            workdays = self._rules.online_apply_workdays
        if not workdays:
            return today
        try:
            return self._calendar.add_workdays(today, workdays)
        except CalendarError as exc:
            raise OperationRefusal(
                OperationReason.CALENDAR_INCOMPLETE,
                f"{exc}; the deadline of this request cannot be computed, nothing was changed.",
                "工作日历未包含办结期限所在年度的节假日安排（请在日历文件中补充），未做任何更改。",
            ) from None

    def _require_live_platform(self) -> None:
        """Refuse a live-only operation at once while the platform's circuit is open."""
        if self._upstream is None:
            return
        breaker = self._upstream.breakers.get("platform")
        if breaker is None or breaker.closed:
            return
        raise OperationRefusal(
            OperationReason.UPSTREAM_UNAVAILABLE,
            KeyServiceUnavailableError.message_en,
            KeyServiceUnavailableError.message_zh,
            retry_after=round(breaker.retry_after(), 1),
        )

    async def _enqueue(
        self,
        session: AsyncSession,
        operation: Operation,
        card: CardRow | None,
        parts: Parts | None,
        person: PersonIn,
    ) -> bool | None:
        """Add the operation's upstream messages to this transaction.

        Returns:
            ``None`` when nothing was enqueued, else whether the platform is down
            (the messages wait for it).
        """
        if self._upstream is None or card is None or parts is None:
            return None
        if card.card_number is None:
            # No card number yet (not pre-opened on the platform): the platform has
            # nothing to change; production reports the card when it makes it.
            log.info("upstream_not_addressable", operation=operation.value, card_id=card.id)
            return None
        ref = CardRef(card.card_number, card.card_code)
        commands: list[QueueableCommand] = []
        if parts.social:
            commands.extend(_platform_commands(operation, ref, person))
        if parts.bank and self._has_bank:
            # Through the outbox, so a loss reported while the bank is down is not lost.
            commands.extend(_bank_commands(operation, card, person))
        if not commands:
            return None
        queued = False
        for command in commands:
            enqueued = await self._upstream.outbox.enqueue(session, command)
            queued = queued or enqueued.status is QueueStatus.QUEUED
        return queued

    def _request_checks(self, spec: OperationSpec, body: OperationRequest) -> list[Deficiency]:
        """The scope and the new information a request must (not) carry."""
        found: list[Deficiency] = []
        if body.scope is not None and not takes_scope(spec):
            found.append(
                Deficiency(
                    "scope-not-applicable",
                    "仅挂失、解挂、启用、注销业务可指定办理范围（社保 / 银行 / 两者）",
                    "Only loss reports, cancel loss, activation and cancellation take a scope",
                )
            )
        if spec.operation is Operation.INFO_CHANGE and (
            body.applicant.phone is None and body.applicant.address is None
        ):
            found.append(
                Deficiency(
                    "missing:new-information",
                    "请填写变更后的联系电话或常住地址（姓名、证件号码等关键信息不可在此变更）",
                    "Give the new phone or address (key information cannot change here)",
                )
            )
        if body.scope in {"bank", "both"} and self._upstream is not None and not self._has_bank:
            raise OperationRefusal(
                OperationReason.BANK_NOT_CONFIGURED,
                "This branch has no [upstream.bank]: the bank account cannot be "
                "changed from here; nothing was changed.",
                "本网点未配置合作银行核心（[upstream.bank]），不能办理银行账户业务，未做任何更改。",
            )
        return found

    async def _document(self, session: AsyncSession, person: PersonRow, data: PersonIn) -> None:
        """Keep the applicant's document with the person (one person may hold several)."""
        if data.document is None:
            return
        number = check_document_number(data.document.type, data.document.number)
        try:
            await hold_document(
                session, self._vault, person, data.document.type.value, number,
                now=self._clock.now(),
            )  # fmt: skip
        except DocumentTakenError:
            raise OperationRefusal(
                OperationReason.DOCUMENT_TAKEN,
                "This identity document is on record for another person; nothing was changed.",
                "该身份证件已登记在其他人员名下，未做任何更改。",
                document_type=data.document.type.value,
            ) from None

    async def _photo_on_record(self, body: OperationRequest) -> bool:
        """Whether the applicant's record already has a photo (read before the change)."""
        if not ric.is_valid(body.applicant.id_number):
            return False
        async with self._sessions() as session:
            stored = await session.scalar(
                select(PersonRow.photo_enc).where(
                    PersonRow.id_index == self._vault.index(body.applicant.id_number)
                )
            )
        return stored is not None

    def _deficiencies(
        self,
        spec: OperationSpec,
        body: OperationRequest,
        today: date,
        photo: bytes | None,
        *,
        on_record: bool,
    ) -> list[Deficiency]:
        found: list[Deficiency] = []
        # The applicant's identity document, shown and checked, is that material.
        shown = body.applicant.document
        materials = set(body.materials) | (
            {DOCUMENT_MATERIAL[shown.type]} if shown is not None else set()
        )
        found.extend(
            check_completeness(
                spec, body.case, body.channel, materials, photo, photo_on_record=on_record,
            )
        )  # fmt: skip
        found.extend(_document_deficiencies(body))
        for role, person in (("applicant", body.applicant), ("agent", body.agent)):
            if person is not None and not ric.is_valid(person.id_number):
                found.append(
                    Deficiency(
                        f"invalid:{role}-id-number",
                        f"{'申办人' if role == 'applicant' else '代办人'}身份证号码校验不通过",
                        f"The {role}'s identity number fails its check digit",
                    )
                )
        if body.case in {Case.ADULT_PROXY, Case.MINOR_PROXY} and body.agent is None:
            found.append(
                Deficiency("missing:agent-details", "缺少代办人信息", "Agent details missing")
            )
        if ric.is_valid(body.applicant.id_number):
            adult = age_on(ric.get_birth_date(body.applicant.id_number), today) >= ADULT_AGE
            if body.case is Case.MINOR_PROXY and adult:
                found.append(
                    Deficiency(
                        "case-mismatch", "申办人已成年，不能按未成年人代办", "Applicant is an adult"
                    )
                )
            if body.case is Case.ADULT_PROXY and not adult:
                found.append(
                    Deficiency(
                        "case-mismatch", "申办人未成年，请按未成年人代办", "Applicant is a minor"
                    )
                )
        return found

    async def _person(self, session: AsyncSession, data: PersonIn, *, create: bool) -> PersonRow:
        new = {"name": data.name, "phone": data.phone, "address": data.address}
        person = await hold_person(
            session, self._vault, data.id_number, now=self._clock.now(), new=new if create else None
        )
        if person is None:
            raise OperationRefusal(
                OperationReason.PERSON_NOT_FOUND,
                "No card holder with this identity number.",
                "无此持卡人。",
            )
        return person

    async def _card(
        self, session: AsyncSession, spec: OperationSpec, person: PersonRow, body: OperationRequest
    ) -> tuple[CardRow | None, _States | None, _States | None, Parts | None]:
        cards = list(
            (
                await session.scalars(
                    select(CardRow)
                    .where(CardRow.person_id == person.id)
                    .order_by(CardRow.id)
                    .with_for_update()
                )
            ).all()
        )
        live = [c for c in cards if c.card_state != CardState.CANCELLED.value]
        if spec.new_card:
            if live:
                raise OperationRefusal(
                    OperationReason.CARD_EXISTS,
                    "This person already has a card: use reissue, replace or renew.",
                    "申办人已有社保卡，请办理补领、换领或换发。",
                )
            now = self._clock.now()
            card = lifecycle.new_card(person.id, self._region, now)
            session.add(card)
            await session.flush()
            live = [card]
        chosen = _choose_card(spec, live, cards, body.card_number)
        if chosen is None:
            return None, None, None, None
        card = chosen
        before = _States(card.application_state, card.card_state, card.bank_state)
        parts = self._parts(spec, body, card)
        _check_preconditions(spec, card)
        try:
            if spec.application_event is not None and parts.social:
                lifecycle.step(card, spec.application_event)
            if spec.card_event is not None and parts.social:
                lifecycle.step(card, spec.card_event)
            if spec.bank_event is not None and parts.bank:
                lifecycle.step(card, spec.bank_event)
        except IllegalTransition as exc:
            raise _refused_transition(exc) from None
        card.updated_at = self._clock.now()
        if spec.operation is Operation.ELECTRONIC_CARD:
            card.electronic_card_at = card.updated_at
        after = _States(card.application_state, card.card_state, card.bank_state)
        return card, before, after, parts

    def _parts(self, spec: OperationSpec, body: OperationRequest, card: CardRow) -> Parts:
        """What this request covers on ``card``.

        A rollback restores what its cancellation undid: the social-security side
        if it was cancelled, the bank account if it was closed. A request naming a
        scope gets exactly that; one naming none gets the operation's default,
        whose bank part applies only where the branch has a bank and the account
        is in a state the bank event applies to.
        """
        bank_event = spec.bank_event
        if bank_event is None:
            # An information change reaches the bank too, where it holds the account.
            return Parts(social=True, bank=spec.operation is Operation.INFO_CHANGE)
        if spec.operation is Operation.ROLLBACK:
            closed = _newest(card, "bank-account") == Interruption.CLOSURE
            cancelled = _newest(card, "application") == Interruption.CANCELLATION
            return Parts(social=cancelled or not closed, bank=closed)
        scope = body.scope or spec.default_scope
        social, bank = scope != "bank", scope != "social-security"
        if body.scope is None and bank:
            bank = (self._upstream is None or self._has_bank) and lifecycle.allowed(
                card, bank_event
            )
        return Parts(social=social, bank=bank)

    @property
    def upstream(self) -> Upstream | None:
        """The upstream outbox and relay the operations use (``None`` without ``[upstream]``)."""
        return self._upstream

    async def next_receipt(self, session: AsyncSession, day: date) -> str:
        """The branch's next receipt number of ``day``, in ``session``'s transaction."""
        return await next_receipt(session, self._region, day)


def _document_deficiencies(body: OperationRequest) -> list[Deficiency]:
    """Identity documents whose numbers do not have their type's format."""
    found: list[Deficiency] = []
    for role, who in (("applicant", body.applicant), ("agent", body.agent)):
        if who is None or who.document is None:
            continue
        try:
            check_document_number(who.document.type, who.document.number)
        except DocumentNumberError as exc:
            zh = "申办人" if role == "applicant" else "代办人"
            found.append(
                Deficiency(
                    f"invalid:{role}-document",
                    f"{zh}证件号码格式不符（{exc.document.value}）",
                    f"The {role}'s {exc.document.value} number: {exc.reason}",
                )
            )
    return found


def _refused_transition(exc: IllegalTransition) -> OperationRefusal:
    """The state machine's refusal, as the teller is told it."""
    return OperationRefusal(
        OperationReason.ILLEGAL_TRANSITION,
        str(exc),
        f"卡片当前状态（{exc.state.value}）不允许此业务（{exc.event.value}）。",
        machine=exc.machine,
        state=exc.state.value,
        event=exc.event.value,
    )


def _check_preconditions(spec: OperationSpec, card: CardRow) -> None:
    """What an operation needs of its card besides the state machines' tables."""
    if spec.operation is Operation.ELECTRONIC_CARD and card.electronic_card_at is not None:
        raise OperationRefusal(
            OperationReason.ELECTRONIC_CARD_EXISTS,
            "This card's electronic card was requested already; it is in the holder's app.",
            "该社保卡已申领电子社保卡，请在手机应用中查看。",
        )
    if (
        spec.operation is Operation.ELECTRONIC_CARD
        and card.application_state != ApplicationState.NORMAL.value
    ):
        raise OperationRefusal(
            OperationReason.ILLEGAL_TRANSITION,
            "The electronic card is issued for an enabled card that is not lost, "
            "locked or cancelled.",
            "电子社保卡仅限已启用且未挂失、未锁定、未注销的社保卡申领。",
            machine="application",
            state=card.application_state,
            event=spec.operation.value,
        )
    if spec.operation is Operation.BATCH_TO_SINGLE and card.card_state != CardState.INITIAL.value:
        raise OperationRefusal(
            OperationReason.ILLEGAL_TRANSITION,
            "Batch-to-single is possible only while production has not started.",
            "批量转零星仅限已产生制卡数据且尚未制卡的情况。",
            card_state=card.card_state,
        )


def _newest(card: CardRow, machine: str) -> Interruption | None:
    held = lifecycle.history(card, machine)
    return held[-1].interruption if held else None


def _platform_commands(
    operation: Operation, ref: CardRef, person: PersonIn
) -> list[QueueableCommand]:
    """What the platform is told of ``operation`` on the card ``ref``."""
    single: dict[Operation, QueueableCommand] = {
        Operation.ACTIVATE: EnableCard(ref),
        Operation.REPORT_TEMPORARY_LOSS: ReportLoss(ref, LossType.TEMPORARY),
        Operation.REPORT_FORMAL_LOSS: ReportLoss(ref, LossType.FORMAL),
        Operation.CANCEL_LOSS: CancelLoss(ref),
        Operation.CANCEL: CancelCard(ref, CANCEL_REASON),
        Operation.ROLLBACK: RollbackCancellation(ref),
        Operation.INFO_CHANGE: ChangeInfo(ref, address=person.address, phone=person.phone),
        Operation.ELECTRONIC_CARD: RequestElectronicCard(ref),
    }
    command = single.get(operation)
    return [] if command is None else [command]


def _bank_commands(operation: Operation, card: CardRow, person: PersonIn) -> list[QueueableCommand]:
    """What the bank core is told of ``operation`` on ``card``'s account."""
    number = card.card_number
    assert number is not None  # noqa: S101 - checked by the caller
    if operation is Operation.INFO_CHANGE:
        if card.bank_state in {BankState.NOT_OPENED.value, BankState.CLOSED.value}:
            return []
        return [UpdateContact(number, address=person.address, phone=person.phone)]
    single: dict[Operation, QueueableCommand] = {
        Operation.ACTIVATE: ActivateFinancial(number),
        Operation.REPORT_TEMPORARY_LOSS: FreezeAccount(number),
        Operation.REPORT_FORMAL_LOSS: FreezeAccount(number),
        Operation.CANCEL_LOSS: UnfreezeAccount(number),
        Operation.CANCEL: CloseAccount(number),
        Operation.ROLLBACK: ReopenAccount(number),
    }
    command = single.get(operation)
    return [] if command is None else [command]


def _check_channel(terminal: Terminal, channel: Channel) -> None:
    kiosk = terminal.role is Role.KIOSK
    if kiosk != (channel is Channel.KIOSK):
        raise OperationRefusal(
            OperationReason.CHANNEL_MISMATCH,
            f"A {terminal.role.value} terminal cannot submit {channel.value} requests.",
            f"{terminal.role.value}终端不能提交{channel.value}渠道的业务。",
        )


def is_overdue(deadline: date | None, status: str, today: date) -> bool:
    """An accepted application whose deadline has passed (not done, not withdrawn)."""
    return deadline is not None and status == "accepted" and deadline < today


def _choose_card(
    spec: OperationSpec, live: list[CardRow], cards: list[CardRow], card_number: str | None
) -> CardRow | None:
    """The card the operation acts on: the newest match, preferring cards not cancelled.

    ``None`` when the operation changes no card state and the person has none.
    """
    candidates = [c for c in (live or cards) if card_number in {None, c.card_number}]
    if spec.needs_card and candidates and not live:
        raise OperationRefusal(
            OperationReason.CARD_CANCELLED,
            "This operation is for the holder of a card that is not cancelled.",
            "此业务仅限持有未注销社保卡的人员办理。",
        )
    if candidates:
        return candidates[-1]
    if spec.application_event is None and spec.card_event is None and not spec.needs_card:
        return None
    raise OperationRefusal(
        OperationReason.CARD_NOT_FOUND, "No such card for this person.", "该人员无此社保卡。"
    )
