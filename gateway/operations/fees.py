"""Fees (工本费): owed when a reissue, replacement or renewal is accepted, settled at the window.

Seed 001 settles the fee before the card is made (完成费用清缴或抵扣 … 等待制卡):
an application that owes a fee is ``due`` and production refuses it until the
teller settles it, by cash, by a POS payment whose reference the teller
records, or by a debit in the bank core from an account the citizen names.
Waivers come from policy (``[[business.fee_rules]]`` with ``yuan = 0``; 000:
部分地区已减免) or from a supervisor's approval bound to the request.

A debit is an effect outside this database, so it is journaled first: the
application is claimed (``settling``, with the time) in one transaction, the
bank is asked with a message id derived from the receipt number (a repeat never
debits twice: the bank de-duplicates by it), and the outcome is written in a
second transaction. A claim older than :data:`CLAIM_SECONDS` (a crash between
the two) is taken over by the next request, which asks the bank again with the
same message id and so finds the first debit rather than making another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Final

import structlog
from sqlalchemy import func, select

from gateway.operations.errors import OperationReason, OperationRefusal
from gateway.operations.receipts import ensure_open
from gateway.operations.rows import ApplicationRow
from gateway.operations.schemas import FeeDayOut, FeeOut, FeeTotal
from gateway.people.identity import ADULT_AGE, age_on
from gateway.runtime.business_day import BUSINESS_TZ, local_day
from gateway.upstream.errors import UpstreamError, UpstreamRejectedError

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.operations.schemas import FeeIn
    from gateway.operations.settings import BusinessConfig
    from gateway.runtime.http.auth import Terminal
    from gateway.upstream.assembly import Upstream

__all__ = ["CLAIM_SECONDS", "FEE_OWED", "SENIOR_AGE", "FeeDecision", "FeeDesk", "decide_fee"]

log = structlog.get_logger(__name__)

#: Age from which the ``senior`` category of a fee rule applies.
SENIOR_AGE: Final = 60
#: Fee statuses that hold production back: settled or waived first (001 §3).
FEE_OWED: Final = frozenset({"due", "settling"})
#: Seconds after which a debit claim is taken to be abandoned (a crash) and taken over.
CLAIM_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True)
class FeeDecision:
    """What an accepted application owes: the amount and its status and method."""

    yuan: int
    status: str  # none | due | waived
    method: str | None = None  # policy | approval (waived)


def decide_fee(  # noqa: PLR0913 - the facts a fee depends on
    rules: BusinessConfig,
    *,
    charged: bool,
    region: str,
    birth: date,
    today: date,
    waived: bool,
) -> FeeDecision:
    """The fee of one application (``charged``: the operation has a fee at all).

    ``waived``: a supervisor's approval of this request waives it.
    """
    if not charged:
        return FeeDecision(0, "none")
    age = age_on(birth, today)
    category = "minor" if age < ADULT_AGE else "senior" if age >= SENIOR_AGE else "adult"
    yuan = rules.reissue_fee_yuan
    for rule in rules.fee_rules:
        if region.startswith(rule.region) and rule.category in {"any", category}:
            yuan = rule.yuan
            break
    if yuan == 0:
        return FeeDecision(0, "waived", "policy")
    if waived:
        return FeeDecision(yuan, "waived", "approval")
    return FeeDecision(yuan, "due")


def fee_receipt_of(receipt: str) -> str:
    """The branch's fee receipt number of an application."""
    return f"F{receipt}"


class FeeDesk:
    """Settles the fees applications owe, and adds up a day's fees."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        audit: AuditLog,
        clock: Clock,
        upstream: Upstream | None,
    ) -> None:
        """Keep the collaborators (``upstream`` for debits in the bank core)."""
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._upstream = upstream

    async def settle(self, receipt: str, body: FeeIn, terminal: Terminal) -> FeeOut:
        """Settle the fee ``receipt`` owes by ``body.method``.

        Raises:
            OperationRefusal: no such application, nothing due, a debit under way,
                the bank refused the debit or cannot be reached, or no bank here.
        """
        bank = self._upstream.bank if self._upstream is not None else None
        if body.method == "debit" and bank is None:
            raise OperationRefusal(
                OperationReason.BANK_NOT_CONFIGURED,
                "This branch has no [upstream.bank]: settle the fee in cash or by POS.",
                "本网点未接入合作银行核心系统，请以现金或刷卡方式缴纳工本费。",
            )
        async with self._sessions.begin() as session:
            await ensure_open(session, self.today())  # posted on today
            row = await self._due(session, receipt)
            if body.method != "debit":
                self._settled(row, body.method, body.reference, terminal)
                out = _out(row)
            else:
                row.fee_status, row.fee_method = "settling", "debit"
                row.fee_at, row.fee_terminal = self._clock.now(), terminal.id
                out = None
        if out is None:
            assert bank is not None  # noqa: S101 - checked above
            assert body.account is not None  # noqa: S101 - the schema requires it for a debit
            out = await self._debit(receipt, body.account, terminal)
        await self._audit.append(
            terminal.id, "fee.settle", f"receipt:{receipt}",
            {"method": out.method, "yuan": out.yuan, "fee_receipt": out.fee_receipt},
        )  # fmt: skip
        return out

    async def _due(self, session: AsyncSession, receipt: str) -> ApplicationRow:
        """The application, held, if it owes its fee now (or its debit claim is abandoned)."""
        row = await _held(session, receipt)
        if row is None:
            raise OperationRefusal(
                OperationReason.APPLICATION_NOT_FOUND,
                "No application with this receipt number.",
                "无此受理编号。",
            )
        if row.fee_status == "settling" and row.fee_at is not None:
            waited = (self._clock.now() - row.fee_at).total_seconds()
            if waited < CLAIM_SECONDS:
                raise OperationRefusal(
                    OperationReason.FEE_SETTLING,
                    "A bank debit of this fee is under way; ask again in a moment.",
                    "该笔工本费正在银行扣款，请稍后查询。",
                    retry_after=round(CLAIM_SECONDS - waited, 1),
                )
            return row  # abandoned by a crash: the bank is asked again, same message id
        if row.fee_status != "due":
            raise OperationRefusal(
                OperationReason.FEE_NOT_DUE,
                f"This application owes no fee now (fee status {row.fee_status}).",
                f"该业务当前无待缴工本费（状态：{row.fee_status}）。",
                fee_status=row.fee_status,
            )
        return row

    def _settled(
        self, row: ApplicationRow, method: str, reference: str | None, terminal: Terminal
    ) -> None:
        row.fee_status, row.fee_method, row.fee_reference = "settled", method, reference
        row.fee_receipt = fee_receipt_of(row.receipt_number)
        row.fee_at, row.fee_terminal = self._clock.now(), terminal.id

    async def _debit(self, receipt: str, account: str, terminal: Terminal) -> FeeOut:
        """Ask the bank for the claimed debit; write its outcome."""
        assert self._upstream is not None  # noqa: S101 - a debit needs the bank
        assert self._upstream.bank is not None  # noqa: S101
        async with self._sessions() as session:
            yuan = await session.scalar(
                select(ApplicationRow.fee_yuan).where(ApplicationRow.receipt_number == receipt)
            )
        try:
            paid = await self._upstream.bank.debit_fee(
                account, int(yuan or 0) * 100, message_id=f"fee-{receipt}"
            )
        except UpstreamRejectedError as exc:
            await self._release(receipt)
            raise OperationRefusal(
                OperationReason.FEE_DEBIT_REFUSED,
                "The bank refused the debit (account frozen, closed or unknown); "
                "settle in cash, by POS or from another account.",
                f"银行拒绝扣款（{exc.remote_message}），请改用现金、刷卡或其他账户缴纳。",
                bank_status=exc.status,
            ) from None
        except UpstreamError:
            # Not known whether the bank debited: the claim stays, and a request after
            # CLAIM_SECONDS asks again with the same message id (never a second debit).
            log.warning("fee_debit_unanswered", receipt=receipt)
            raise OperationRefusal(
                OperationReason.UPSTREAM_UNAVAILABLE,
                "The bank core did not answer; the debit is asked again with the same "
                "reference on the next try, so it is never taken twice.",
                "银行核心系统暂未应答；稍后重试将以同一流水号查询，不会重复扣款。",
                retry_after=CLAIM_SECONDS,
            ) from None
        async with self._sessions.begin() as session:
            row = await _held(session, receipt)
            assert row is not None  # noqa: S101 - claimed a moment ago
            self._settled(row, "debit", paid.receipt_no, terminal)
            row.fee_account = account
            return _out(row)

    async def _release(self, receipt: str) -> None:
        """The bank refused: the fee is due again."""
        async with self._sessions.begin() as session:
            row = await _held(session, receipt)
            if row is not None and row.fee_status == "settling":
                row.fee_status, row.fee_method, row.fee_at = "due", None, None

    async def day(self, day: date) -> FeeDayOut:
        """The fees of ``day`` (business time zone): settled by method, waived, still due."""
        start, end = _day_bounds(day)
        async with self._sessions() as session:
            settled = (
                await session.execute(
                    select(
                        ApplicationRow.fee_method, func.count(), func.sum(ApplicationRow.fee_yuan)
                    )
                    .where(
                        ApplicationRow.fee_status == "settled",
                        ApplicationRow.fee_at >= start,
                        ApplicationRow.fee_at < end,
                    )
                    .group_by(ApplicationRow.fee_method)
                )
            ).all()
            others = (
                await session.execute(
                    select(
                        ApplicationRow.fee_status, func.count(), func.sum(ApplicationRow.fee_yuan)
                    )
                    .where(
                        ApplicationRow.fee_status.in_(("due", "settling", "waived")),
                        ApplicationRow.accepted_at >= start,
                        ApplicationRow.accepted_at < end,
                    )
                    .group_by(ApplicationRow.fee_status)
                )
            ).all()
        by_method = [
            FeeTotal(key=str(method), count=int(count), yuan=int(total or 0))
            for method, count, total in sorted(settled, key=lambda r: str(r[0]))
        ]
        by_status = {str(status): (int(count), int(total or 0)) for status, count, total in others}
        due = [by_status.get(s, (0, 0)) for s in ("due", "settling")]
        return FeeDayOut(
            day=day,
            settled=by_method,
            settled_yuan=sum(t.yuan for t in by_method),
            waived_count=by_status.get("waived", (0, 0))[0],
            due_count=sum(c for c, _ in due),
            due_yuan=sum(y for _, y in due),
        )

    def today(self) -> date:
        """The business day now."""
        return local_day(self._clock.now())


async def _held(session: AsyncSession, receipt: str) -> ApplicationRow | None:
    """The application of ``receipt``, its row held until the transaction ends."""
    return await session.scalar(
        select(ApplicationRow).where(ApplicationRow.receipt_number == receipt).with_for_update()
    )


_YUAN: Final = func.sum(ApplicationRow.fee_yuan)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=BUSINESS_TZ)
    return start, start + timedelta(days=1)


def _out(row: ApplicationRow) -> FeeOut:
    return FeeOut(
        receipt_number=row.receipt_number,
        yuan=row.fee_yuan,
        status=row.fee_status,
        method=row.fee_method,
        reference=row.fee_reference,
        fee_receipt=row.fee_receipt,
        settled_at=row.fee_at,
    )
