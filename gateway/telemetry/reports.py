"""The branch's business state as telemetry reports, and its own ops page.

:class:`BranchReports` counts, from the branch database and the running parts,
the five reports of ``protocols.mqtt.reports`` — queue depths, cards produced
and spoiled per hour (last 48 hours), stock per feeder with the last
reconciliation, the upstream outbox, open and overdue applications — keeps the
newest of each, and publishes them retained through the daemon's MQTT
publisher. A report is the whole current picture: while the broker is away
nothing piles up, and the first round after it returns says everything
(``device_state_unsent``-style backlogs cannot grow).

The same reports, with the devices' states, feed the branch's ``/ops`` page
(:func:`gateway.runtime.dashboard.add_branch_page`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Final

import structlog
from sqlalchemy import func, select

from devices.registry.errors import PublishError
from gateway.issuance.rows import StockEntryRow
from gateway.issuance.settings import LOW_STOCK
from gateway.operations.rows import ApplicationRow
from gateway.runtime.business_day import BUSINESS_TZ
from gateway.runtime.dashboard.views import branch_view
from gateway.upstream.models import OutboxRow, OutboxState
from production import StockKind
from protocols.mqtt.reports import (
    ApplicationsReport,
    FeederStock,
    HourCount,
    OutboxReport,
    ProductionReport,
    QueuesReport,
    StockReport,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.audit.log import AuditQueue
    from gateway.issuance.service import ProductionService
    from gateway.runtime.devices import BranchDevices
    from protocols.mqtt.reports import Report

__all__ = ["BranchReports"]

log = structlog.get_logger(__name__)

HOURS: Final = 48


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BranchReports:
    """Counts the reports, keeps the newest, publishes them.

    Args:
        branch: The branch id (for the ops page).
        sessions: The branch database.
        clock: The injected clock.
        devices: The devices (registry and publisher), when configured.
        production: Instant issuance, when configured.
        audit_reads: The read-audit queue (its depth is a queue).
        low_stock: A feeder at or below this many blanks is reported low.
    """

    def __init__(  # noqa: PLR0913 - the parts it reads, keyword-only
        self,
        *,
        branch: str,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        devices: BranchDevices | None,
        production: ProductionService | None,
        audit_reads: AuditQueue | None,
        low_stock: int = LOW_STOCK,
    ) -> None:
        """Nothing is counted before :meth:`refresh`."""
        self._branch = branch
        self._sessions = sessions
        self._clock = clock
        self._devices = devices
        self._production = production
        self._audit_reads = audit_reads
        self._low_stock = low_stock
        #: The newest report of each name.
        self.latest: dict[str, Report] = {}

    async def refresh(self) -> dict[str, Report]:
        """Count every report now."""
        now = self._clock.now()
        at = _iso(now)
        async with self._sessions() as session:
            reports: dict[str, Report] = {
                "queues": self._queues(at),
                "outbox": await self._outbox(session, at),
                "applications": await self._applications(session, at, now),
            }
            if self._production is not None:
                reports["production"] = await self._hours(session, at, now)
                reports["stock"] = await self._stock(at)
        self.latest = reports
        return reports

    async def publish(self) -> None:
        """Refresh and publish every report, retained (skipped while the broker is away)."""
        reports = await self.refresh()
        publisher = self._devices.publisher if self._devices is not None else None
        if publisher is None or self._devices is None:
            return
        topics = self._devices.topics
        for name, report in reports.items():
            try:
                await publisher.publish(topics.daemon_report(name), report.to_bytes(), True)  # noqa: FBT003
            except PublishError:
                log.info("branch_reports_unsent", report=name)
                return  # the next round sends the whole picture again

    def snapshot(self) -> dict[str, Any]:
        """The branch's ``/ops`` view: devices and the newest reports."""
        states = []
        if self._devices is not None:
            registry = self._devices.registry
            states = [registry.state(d) for d in registry.devices]
        return branch_view(
            self._branch,
            presence="online",
            presence_reason=None,
            presence_since=None,
            devices=states,
            reports=self.latest,
        )

    # ------------------------------------------------------------ the reports

    def _queues(self, at: str) -> QueuesReport:
        queues: dict[str, int] = {}
        if self._production is not None:
            jobs = self._production.controller.jobs()
            queues["production"] = sum(1 for j in jobs if not j.status.finished)
            queues["quality_check"] = len(self._production.quality_check.waiting())
        if self._audit_reads is not None:
            queues["audit_reads"] = self._audit_reads.depth
        return QueuesReport(at=at, queues=queues)

    async def _outbox(self, session: AsyncSession, at: str) -> OutboxReport:
        rows = (
            await session.execute(
                select(OutboxRow.state, func.count(), func.min(OutboxRow.created_at))
                .where(OutboxRow.state.in_([OutboxState.PENDING, OutboxState.DEAD]))
                .group_by(OutboxRow.state)
            )
        ).all()
        found = {state: (count, oldest) for state, count, oldest in rows}
        pending, oldest = found.get(OutboxState.PENDING, (0, None))
        dead, _ = found.get(OutboxState.DEAD, (0, None))
        return OutboxReport(
            at=at,
            pending=int(pending),
            dead_letters=int(dead),
            oldest_pending_at=_iso(oldest) if oldest is not None else None,
        )

    async def _applications(
        self, session: AsyncSession, at: str, now: dt.datetime
    ) -> ApplicationsReport:
        today = now.astimezone(BUSINESS_TZ).date()
        open_ = ApplicationRow.status == "accepted"
        total = await session.scalar(select(func.count()).select_from(ApplicationRow).where(open_))
        overdue, oldest = (
            await session.execute(
                select(func.count(), func.min(ApplicationRow.deadline)).where(
                    open_, ApplicationRow.deadline < today
                )
            )
        ).one()
        return ApplicationsReport(
            at=at,
            open=int(total or 0),
            overdue=int(overdue or 0),
            oldest_due=oldest.isoformat() if oldest is not None else None,
        )

    async def _hours(self, session: AsyncSession, at: str, now: dt.datetime) -> ProductionReport:
        first = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=HOURS - 1)
        rows = (
            await session.execute(
                select(StockEntryRow.at, StockEntryRow.kind, StockEntryRow.quantity).where(
                    StockEntryRow.at >= first,
                    StockEntryRow.kind.in_([StockKind.ISSUED.value, StockKind.SPOILED.value]),
                )
            )
        ).all()
        counts: dict[dt.datetime, list[int]] = {}
        for moment, kind, quantity in rows:
            hour = moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
            slot = counts.setdefault(hour, [0, 0])
            slot[0 if kind == StockKind.ISSUED.value else 1] += quantity
        hours = tuple(
            HourCount(hour=_iso(hour), issued=issued, spoiled=spoiled)
            for hour, (issued, spoiled) in sorted(counts.items())
        )
        return ProductionReport(at=at, hours=hours)

    async def _stock(self, at: str) -> StockReport:
        assert self._production is not None  # noqa: S101 - called only with production
        balances = await self._production.ledger.balances()
        feeders = tuple(
            FeederStock(
                feeder=b.feeder,
                remaining=b.remaining,
                in_process=b.in_process,
                low=b.remaining <= self._low_stock,
            )
            for b in balances.values()
        )
        last = self._production.last_reconciliation
        return StockReport(
            at=at,
            feeders=feeders,
            reconciled=last.ok if last is not None else None,
            problems=len(last.problems) if last is not None else 0,
            checked_at=_iso(last.at) if last is not None else None,
        )
