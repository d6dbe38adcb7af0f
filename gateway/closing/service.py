"""The day's close (日终): the day counted, compared with the platform and the bank, closed.

A supervisor closes a business day (an Asia/Shanghai calendar day) once its work
is done. The close:

1. takes the day's receipt sequence lock, the lock every acceptance of that day
   takes (``gateway.operations.receipts``), so nothing is accepted on the day
   while it is being closed, and nothing after: a closed day refuses new
   acceptances, fee settlements and withdrawals (``day-closed``) until a
   supervisor reopens it with a reason;
2. refuses while an application accepted that day still lacks its archive images
   (002 §6.4; waive them or archive them first), listing the receipts;
3. counts the day: applications by operation and status; fees settled by method,
   waived and reversed (count and yuan); blank cards issued and spoiled; the
   outbox messages not yet acknowledged (listed);
4. asks the platform and the bank for what they accepted from this branch that
   day (``day_summary``) and compares, operation by operation, with what the
   branch had acknowledged that day: the outbox messages delivered, the
   production steps done (pre-open, 回盘, account binding, enabling) and the fee
   debits; every difference is listed (counts, and the debited and reversed
   amounts in fen). Queries (status, card data) and the key service are not
   compared: they change nothing.

The close is recorded with its summary whether or not the sides agree (the
differences are for the branch's ops to settle); an unreachable platform or bank
refuses the close (retry later), since an unreconciled close would say nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import structlog
from sqlalchemy import func, select

from gateway.issuance.rows import ProductionStepRow, StockEntryRow
from gateway.operations.rows import ApplicationRow, BusinessDayRow, ReceiptSequenceRow
from gateway.runtime.business_day import BUSINESS_TZ, day_start
from gateway.runtime.db import insert_or_ignore
from gateway.upstream.errors import UpstreamError
from gateway.upstream.models import OutboxRow, OutboxState
from production.model import Phase, StepName, StockKind
from protocols.bank import BankOperation
from protocols.platform import PlatformOperation

if TYPE_CHECKING:
    from datetime import date, datetime

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditLog
    from gateway.upstream.assembly import Upstream
    from gateway.upstream.platform import DaySummary

__all__ = ["ClosingError", "DayClosing", "DayNotClosableError"]

log = structlog.get_logger(__name__)

_P, _B = PlatformOperation, BankOperation
#: The operations compared with the platform: those that change something there.
PLATFORM_COMPARED: Final = frozenset(
    {
        _P.APPLY, _P.RETURN_DATA, _P.ENABLE, _P.REPORT_LOSS, _P.CANCEL_LOSS, _P.CANCEL_CARD,
        _P.ROLLBACK_CANCEL, _P.CHANGE_INFO, _P.ELECTRONIC_CARD, _P.CARD_EVENT,
    }
)  # fmt: skip
#: The operations compared with the bank (all of its operations change something).
BANK_COMPARED: Final = frozenset(BankOperation) - {BankOperation.DAY_SUMMARY}
#: Production's upstream steps and the operation each sends.
_STEP_SENDS: Final = {
    StepName.PRE_OPEN.value: ("platform", _P.APPLY.value),
    StepName.RETURN_DATA.value: ("platform", _P.RETURN_DATA.value),
    StepName.ENABLE.value: ("platform", _P.ENABLE.value),
    StepName.BIND_ACCOUNT.value: ("bank", _B.OPEN_ACCOUNT.value),
}


class ClosingError(Exception):
    """The day cannot be closed or reopened now; ``code`` says why, ``members`` the facts."""

    def __init__(self, code: str, message: str, **members: Any) -> None:  # noqa: ANN401 - JSON
        """Keep the code, the text and the facts the answer lists."""
        super().__init__(message)
        self.code = code
        self.members = members


class DayNotClosableError(ClosingError):
    """Something of the day must be settled first (images, the day not over, ...)."""


@dataclass(frozen=True, slots=True)
class _DayWindow:
    day: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, day: date) -> _DayWindow:
        return cls(day, day_start(day), day_start(day, after=1))


class DayClosing:
    """Closes and reopens business days."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        upstream: Upstream | None,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        """The branch's database, its upstream (``None``: nothing to compare), audit, clock."""
        self._sessions = sessions
        self._upstream = upstream
        self._audit = audit
        self._clock = clock

    def today(self) -> date:
        """The business day now."""
        return self._clock.now().astimezone(BUSINESS_TZ).date()

    async def state(self, day: date) -> dict[str, Any]:
        """The day's close as recorded (``open`` when never closed)."""
        async with self._sessions() as session:
            held = await session.get(BusinessDayRow, day)
        return _view(day, held)

    async def close(self, day: date, operator: str) -> dict[str, Any]:
        """Count, compare and close ``day``; the summary with every difference.

        Raises:
            DayNotClosableError: in the future, closed already, or images missing.
            ClosingError: ``upstream-unavailable``: the platform or the bank did not answer.
        """
        if day > self.today():
            raise DayNotClosableError("day-in-future", f"{day} has not come yet.", day=str(day))
        window = _DayWindow.of(day)
        remote = await self._remote(day)  # asked first: no lock is held while waiting
        async with self._sessions.begin() as session:
            await insert_or_ignore(session, ReceiptSequenceRow, {"day": day, "last": 0}, key="day")
            await session.get(ReceiptSequenceRow, day, with_for_update=True)
            held = await session.get(BusinessDayRow, day, with_for_update=True)
            if held is not None and held.status == "closed":
                raise DayNotClosableError(
                    "day-already-closed", f"{day} is closed already.", day=str(day)
                )
            incomplete = await _incomplete(session, window)
            if incomplete:
                raise DayNotClosableError(
                    "day-archive-incomplete",
                    f"{len(incomplete)} application(s) of {day} lack their archive images.",
                    receipts=incomplete,
                )
            summary = await _count(session, window)
            local = await _acknowledged(session, window)
            summary["differences"] = _differences(local, remote)
            summary["compared"] = sorted(remote)
            summary["balanced"] = not summary["differences"] and not summary["unacknowledged"]
            now = self._clock.now()
            if held is None:
                held = BusinessDayRow(day=day, status="closed")
                session.add(held)
            held.status, held.closed_at, held.closed_by = "closed", now, operator
            held.summary = json.dumps(summary, ensure_ascii=False, sort_keys=True)
        await self._audit.append(
            operator, "day.close", f"day:{day}",
            {"balanced": summary["balanced"], "differences": len(summary["differences"])},
        )  # fmt: skip
        log.info("day_closed", day=str(day), balanced=summary["balanced"])
        return _view(day, held)

    async def reopen(self, day: date, reason: str, operator: str) -> dict[str, Any]:
        """A supervisor reopens a closed day (the reason is kept, the summary too).

        Raises:
            DayNotClosableError: ``day-not-closed``.
        """
        async with self._sessions.begin() as session:
            held = await session.get(BusinessDayRow, day, with_for_update=True)
            if held is None or held.status != "closed":
                raise DayNotClosableError("day-not-closed", f"{day} is not closed.", day=str(day))
            held.status = "open"
            held.reopened_at, held.reopened_by = self._clock.now(), operator
            held.reopen_reason = reason
        await self._audit.append(operator, "day.reopen", f"day:{day}", {"reason": reason})
        return _view(day, held)

    async def _remote(self, day: date) -> dict[str, DaySummary]:
        """What the platform and the bank say they accepted from this branch on ``day``."""
        if self._upstream is None:
            return {}
        clients: dict[str, Any] = {"platform": self._upstream.platform}
        if self._upstream.bank is not None:
            clients["bank"] = self._upstream.bank
        found: dict[str, DaySummary] = {}
        for target, client in clients.items():
            try:
                found[target] = await client.day_summary(day)
            except UpstreamError as exc:
                raise ClosingError(
                    "upstream-unavailable",
                    f"The {target} did not give its day summary ({type(exc).__name__}); "
                    "nothing was closed, try again.",
                    target=target,
                ) from None
        return found


async def _incomplete(session: AsyncSession, window: _DayWindow) -> list[str]:
    """Receipts accepted in the window that still lack their archive images."""
    return list(
        await session.scalars(
            select(ApplicationRow.receipt_number)
            .where(
                ApplicationRow.accepted_at >= window.start,
                ApplicationRow.accepted_at < window.end,
                ApplicationRow.archive_status == "incomplete",
            )
            .order_by(ApplicationRow.id)
        )
    )


async def _count(session: AsyncSession, window: _DayWindow) -> dict[str, Any]:
    """The day's applications, fees, cards and unacknowledged messages."""
    a = ApplicationRow
    accepted = (a.accepted_at >= window.start, a.accepted_at < window.end)
    operations = [
        {"operation": operation, "status": status, "count": count}
        for operation, status, count in await session.execute(
            select(a.operation, a.status, func.count())
            .where(*accepted)
            .group_by(a.operation, a.status)
            .order_by(a.operation, a.status)
        )
    ]
    settled = [
        {"method": method, "count": count, "yuan": int(yuan or 0)}
        for method, count, yuan in await session.execute(
            select(a.fee_method, func.count(), func.sum(a.fee_yuan))
            .where(
                a.fee_status.in_(("settled", "reversed")),
                a.fee_method.in_(("cash", "pos", "debit")),
                a.fee_at >= window.start,
                a.fee_at < window.end,
            )
            .group_by(a.fee_method)
            .order_by(a.fee_method)
        )
    ]
    waived_count, waived_yuan = (
        await session.execute(
            select(func.count(), func.sum(a.fee_yuan)).where(*accepted, a.fee_status == "waived")
        )
    ).one()
    reversed_count, reversed_yuan = (
        await session.execute(
            select(func.count(), func.sum(a.fee_yuan)).where(
                a.fee_status == "reversed",
                a.withdrawn_at >= window.start,
                a.withdrawn_at < window.end,
            )
        )
    ).one()
    stock = {
        kind: int(quantity or 0)
        for kind, quantity in await session.execute(
            select(StockEntryRow.kind, func.sum(StockEntryRow.quantity))
            .where(
                StockEntryRow.at >= window.start,
                StockEntryRow.at < window.end,
                StockEntryRow.kind.in_((StockKind.ISSUED.value, StockKind.SPOILED.value)),
            )
            .group_by(StockEntryRow.kind)
        )
    }
    pending = [
        {"id": row.id, "target": row.target, "operation": row.operation, "state": row.state,
         "created_at": row.created_at.isoformat(), "last_error": row.last_error}
        for row in await session.scalars(
            select(OutboxRow)
            .where(OutboxRow.created_at < window.end, OutboxRow.state != OutboxState.DELIVERED)
            .order_by(OutboxRow.id)
        )
    ]  # fmt: skip
    return {
        "day": window.day.isoformat(),
        "operations": operations,
        "fees": {
            "settled": settled,
            "waived": {"count": waived_count, "yuan": int(waived_yuan or 0)},
            "reversed": {"count": reversed_count, "yuan": int(reversed_yuan or 0)},
        },
        "cards": {
            "issued": abs(stock.get(StockKind.ISSUED.value, 0)),
            "spoiled": abs(stock.get(StockKind.SPOILED.value, 0)),
        },
        "unacknowledged": pending,
    }


async def _acknowledged(session: AsyncSession, window: _DayWindow) -> dict[str, DaySide]:
    """What the branch had the platform and the bank acknowledge in the window."""
    sides = {"platform": DaySide(), "bank": DaySide()}
    for target, operation in await session.execute(
        select(OutboxRow.target, OutboxRow.operation).where(
            OutboxRow.state == OutboxState.DELIVERED,
            OutboxRow.delivered_at >= window.start,
            OutboxRow.delivered_at < window.end,
        )
    ):
        if target in sides:
            sides[target].counts[operation] += 1
    for step, detail in await session.execute(
        select(ProductionStepRow.step, ProductionStepRow.detail).where(
            ProductionStepRow.phase == Phase.DONE.value,
            ProductionStepRow.step.in_(list(_STEP_SENDS)),
            ProductionStepRow.at >= window.start,
            ProductionStepRow.at < window.end,
        )
    ):
        if detail == "deferred":  # a batch card's enabling, done at its pickup
            continue
        target, operation = _STEP_SENDS[step]
        sides[target].counts[operation] += 1
    a = ApplicationRow
    for (yuan,) in await session.execute(
        select(a.fee_yuan).where(
            a.fee_method == "debit",
            a.fee_status.in_(("settled", "reversed")),
            a.fee_at >= window.start,
            a.fee_at < window.end,
        )
    ):
        sides["bank"].counts[BankOperation.DEBIT_FEE.value] += 1
        sides["bank"].amounts[BankOperation.DEBIT_FEE.value] += yuan * 100
    for (yuan,) in await session.execute(
        select(a.fee_yuan).where(  # the day's 冲正 of debits (delivered or listed pending)
            a.fee_method == "debit",
            a.fee_status == "reversed",
            a.withdrawn_at >= window.start,
            a.withdrawn_at < window.end,
        )
    ):
        sides["bank"].amounts[BankOperation.REVERSE_FEE.value] += yuan * 100
    return sides


@dataclass(slots=True)
class DaySide:
    """One side's tally of a day: items by operation and amounts (fen) by operation."""

    counts: Counter[str] = field(default_factory=Counter)
    amounts: Counter[str] = field(default_factory=Counter)


def _differences(local: dict[str, DaySide], remote: dict[str, DaySummary]) -> list[dict[str, Any]]:
    """Every operation (and amount) where the branch and the other side disagree."""
    found: list[dict[str, Any]] = []
    for target, summary in sorted(remote.items()):
        compared = PLATFORM_COMPARED if target == "platform" else BANK_COMPARED
        ours = local[target]
        for operation in sorted(str(o) for o in compared):
            branch, theirs = ours.counts.get(operation, 0), summary.counts.get(operation, 0)
            if branch != theirs:
                found.append(
                    {"target": target, "operation": operation, "what": "count",
                     "branch": branch, "remote": theirs}
                )  # fmt: skip
            if target == "bank" and operation in ours.amounts | Counter(summary.amounts):
                branch_fen = ours.amounts.get(operation, 0)
                their_fen = summary.amounts.get(operation, 0)
                if branch_fen != their_fen:
                    found.append(
                        {"target": target, "operation": operation, "what": "amount_fen",
                         "branch": branch_fen, "remote": their_fen}
                    )  # fmt: skip
    return found


def _view(day: date, held: BusinessDayRow | None) -> dict[str, Any]:
    """The day's close as answered."""
    if held is None:
        return {"day": day.isoformat(), "status": "open", "summary": None}
    return {
        "day": day.isoformat(),
        "status": held.status,
        "closed_at": held.closed_at.isoformat() if held.closed_at else None,
        "closed_by": held.closed_by,
        "reopened_at": held.reopened_at.isoformat() if held.reopened_at else None,
        "reopened_by": held.reopened_by,
        "reopen_reason": held.reopen_reason,
        "summary": json.loads(held.summary) if held.summary else None,
    }
