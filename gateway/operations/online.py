"""Online applications sent to this branch: received, listed, verified at the window.

Seed 000 (线上申请 → 线下核验 → 领卡): a citizen applies online and chooses the
branch where they will be verified and take the card. The provincial platform
tells the branch by pushing an ``online_application`` item (``pushOnlineApply``
/ ``notifyOnlineApplication``) through the notice endpoint the loss notices use
(:mod:`gateway.upstream.notices`: the sealed envelope, the platform's identity,
each message id applied once). Pushed rather than pulled: the platform knows
the moment the citizen picks the branch, the branch already trusts that channel,
and each item is answered (with the receipt number given), so the platform
knows it arrived and sends again what was not answered.

Each application is kept once (``applications.online_ref`` is unique) as an
``apply`` of the ``online`` channel, accepted, with its card record (``00``) and
its own deadline: the online time limit (002 §6.3.1, 30 working days,
``[business] online_apply_workdays``) from the day it was made. It is listed
with the others (``GET /v1/applications?channel=online``) and is overdue only
when that day has passed. At the window the teller verifies the citizen
(``POST /v1/applications/{receipt}/verification``: the identity document, the
photo unless one is on record), once; only then may its card be made
(production refuses it ``not-verified`` before), and the application completes
when the card is made.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import structlog
from sqlalchemy import select
from stdnum.cn import ric

from gateway.operations.catalogue import CATALOGUE, Case, Channel, Operation, Role
from gateway.operations.completeness import check_completeness
from gateway.operations.errors import OperationReason, OperationRefusal
from gateway.operations.receipts import next_receipt
from gateway.operations.rows import ApplicationRow
from gateway.operations.schemas import VerificationOut
from gateway.operations.workdays import CalendarError
from gateway.people import lifecycle
from gateway.people.holders import hold_person
from gateway.people.rows import CardRow, PersonRow
from gateway.people.states import CardState
from gateway.runtime.business_day import BUSINESS_TZ, parse_day
from gateway.runtime.http.auth import require_role
from gateway.upstream.notices import Applied, NoticeRefusal
from protocols.platform import Request, Result, Status
from security.redaction import mask_personal_numbers

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.operations.schemas import VerificationIn
    from gateway.operations.workdays import WorkCalendar
    from gateway.people.vault import PersonalDataVault
    from gateway.runtime.http.auth import Terminal

__all__ = ["OnlineApplications"]

log = structlog.get_logger(__name__)

#: The platform's application number: letters, digits and dashes.
_ONLINE_REF: Final = re.compile(r"[A-Za-z0-9-]{1,32}")
_MAX_NAME: Final = 30
#: Who verifies at the window.
_VERIFIERS: Final = frozenset({Role.TELLER, Role.SUPERVISOR})


class OnlineApplications:
    """Receives the platform's online applications and verifies them at the window."""

    def __init__(  # noqa: PLR0913 - the collaborators, all injected
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        vault: PersonalDataVault,
        audit: AuditLog,
        clock: Clock,
        calendar: WorkCalendar,
        region: str,
        workdays: Callable[[], int],
    ) -> None:
        """Keep the collaborators; ``workdays`` is the online time limit in working days."""
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self._clock = clock
        self._calendar = calendar
        self._region = region
        self._workdays = workdays

    # ------------------------------------------------------- from the platform
    async def receive(self, session: AsyncSession, item: Request) -> Applied:
        """Keep one online application (the notice's savepoint); its receipt number.

        A refusal leaves nothing: the notice rolls its savepoint back. A closed
        business day refuses it too (the receipt number is today's).
        """
        fields = item.fields
        ref = fields.get("onlineId", "")
        id_number = fields.get("AAC002", "").upper()
        name = fields.get("AAC003", "").strip()
        if _ONLINE_REF.fullmatch(ref) is None:
            raise NoticeRefusal(Status.INVALID_REQUEST, "onlineId 有误 bad online application id")
        if not ric.is_valid(id_number):
            raise NoticeRefusal(Status.INVALID_REQUEST, "AAC002 有误 bad social security number")
        if not name or len(name) > _MAX_NAME:
            raise NoticeRefusal(Status.INVALID_REQUEST, "AAC003 有误 bad name")
        applied_on = parse_day(fields.get("appliedOn", ""))
        if applied_on is None or applied_on > self._clock.now().astimezone(BUSINESS_TZ).date():
            raise NoticeRefusal(Status.INVALID_REQUEST, "appliedOn 有误 bad date")
        try:
            deadline = self._calendar.add_workdays(applied_on, self._workdays())
        except CalendarError:
            raise NoticeRefusal(
                Status.ERROR, "工作日历不含办结期限所在年度 calendar does not cover the deadline"
            ) from None
        now = self._clock.now()
        new = {"name": name, "phone": fields.get("AAE005"), "address": fields.get("AAE006")}
        # The holder's lock: a copy with another message id waits here for this one.
        person = await hold_person(session, self._vault, id_number, now=now, new=new)
        assert person is not None  # noqa: S101 - created when missing
        known = await session.scalar(select(ApplicationRow).where(ApplicationRow.online_ref == ref))
        if known is not None:
            if known.person_id != person.id:
                raise NoticeRefusal(
                    Status.INVALID_STATE, "onlineId 已用于他人 id of another person"
                )
            answer = {"receiptNumber": known.receipt_number}
            return Result(item.message_id, Status.ALREADY_APPLIED, "已受理", answer), None
        live = await session.scalar(
            select(CardRow.id).where(
                CardRow.person_id == person.id, CardRow.card_state != CardState.CANCELLED.value
            )
        )
        if live is not None:
            raise NoticeRefusal(Status.INVALID_STATE, "申请人已有社保卡 the applicant has a card")
        card = lifecycle.new_card(person.id, self._region, now)
        session.add(card)
        await session.flush()
        receipt = await next_receipt(session, self._region, now.astimezone(BUSINESS_TZ).date())
        session.add(
            ApplicationRow(
                receipt_number=receipt, operation=Operation.APPLY.value, case=Case.SELF.value,
                channel=Channel.ONLINE.value, status="accepted", person_id=person.id,
                card_id=card.id, terminal_id="platform", accepted_at=now, deadline=deadline,
                online_ref=ref,
            )
        )  # fmt: skip
        log.info("online_application_received", receipt=receipt, online_ref=ref)
        answer = {"receiptNumber": receipt, "deadline": deadline.isoformat()}
        details: dict[str, object] = {
            "online_ref": ref, "holder": mask_personal_numbers(id_number),
            "applied_on": applied_on.isoformat(), "deadline": deadline.isoformat(),
            "message_id": item.message_id,
        }  # fmt: skip
        return (
            Result(item.message_id, Status.OK, "成功", answer),
            ("online.application", f"receipt:{receipt}", details),
        )

    # ----------------------------------------------------------- at the window
    async def verify(
        self, receipt: str, body: VerificationIn, photo: bytes | None, terminal: Terminal
    ) -> VerificationOut:
        """The citizen of an online application verified at the window, once.

        Raises:
            OperationRefusal: no such application; not an online one, or verified,
                done or withdrawn already; materials missing (all listed).
        """
        require_role(terminal, _VERIFIERS, "verify online applications")
        spec = CATALOGUE[Operation.APPLY]
        now = self._clock.now()
        async with self._sessions.begin() as session:
            found = (
                await session.execute(
                    select(ApplicationRow, PersonRow)
                    .join(PersonRow, PersonRow.id == ApplicationRow.person_id)
                    .where(ApplicationRow.receipt_number == receipt)
                    .with_for_update(of=ApplicationRow)
                )
            ).one_or_none()
            if found is None:
                raise OperationRefusal(
                    OperationReason.APPLICATION_NOT_FOUND,
                    "No application with this receipt number.",
                    "无此受理编号。",
                )
            application, person = found
            if (
                application.online_ref is None
                or application.verified_at is not None
                or application.status != "accepted"
            ):
                raise OperationRefusal(
                    OperationReason.NOT_VERIFIABLE,
                    "Only an online application not yet verified, done or withdrawn is "
                    "verified at the window.",
                    "仅未核验、未办结、未撤销的线上申请可在窗口核验。",
                    status=application.status,
                    verified=application.verified_at is not None,
                )
            missing = check_completeness(
                spec, Case.SELF, Channel.WINDOW, body.materials, photo,
                photo_on_record=person.photo_enc is not None,
            )  # fmt: skip
            if missing:
                raise OperationRefusal.one_time_notice(OperationReason.INCOMPLETE, missing)
            if photo:
                person.photo_enc = self._vault.seal_bytes("photo", photo)
            application.verified_at, application.verified_by = now, terminal.id
            # The window keeps its images of the verification, as of any window request.
            application.archive_status = spec.archive_status(Channel.WINDOW)
            out = VerificationOut(
                receipt_number=receipt, online_ref=application.online_ref,
                verified_at=now, verified_by=terminal.id, deadline=application.deadline,
                archive_status=application.archive_status,
            )  # fmt: skip
        await self._audit.append(
            terminal.id, "online.verify", f"receipt:{receipt}", {"online_ref": out.online_ref}
        )
        return out
