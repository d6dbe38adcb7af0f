"""The blank-card stock and spoiled-card ledger.

Every movement is a :class:`~production.model.StockEntry` in the journal:
blanks *loaded* into a feeder (by box or batch number), *taken* by a job,
*issued* (a good card handed over) or *spoiled* (reason, operator, time),
spoiled cards *destroyed*, and counted corrections *adjusted* with a
supervisor's approval. Per feeder::

    remaining  = loaded + adjusted - taken
    in process = taken - issued - spoiled        (cards inside a printer or at QC)
    loaded + adjusted = issued + spoiled + in process + remaining

Reconciliation (daily, or on demand) compares the ledger with what is known
from outside it: the operator's count of each feeder, and the cards the
unfinished jobs hold. Any difference is a problem, and a reconciliation with a
problem is passed to the alert callback.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import structlog

from production.errors import ApprovalRequiredError, StockError
from production.model import StockEntry, StockKind

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from devices.clock import Clock
    from production.ports import Journal

__all__ = ["BEIJING", "Reconciliation", "StockBalance", "StockLedger"]

log = structlog.get_logger(__name__)

#: China Standard Time (no daylight saving): business days are Beijing days.
BEIJING: Final = dt.timezone(dt.timedelta(hours=8), "CST")


@dataclass(frozen=True, slots=True)
class StockBalance:
    """One feeder's totals.

    Attributes:
        feeder: The feeder.
        loaded: Blanks loaded.
        adjusted: Sum of approved corrections (signed).
        taken: Blanks taken by jobs.
        issued: Good cards handed over.
        spoiled: Cards spoiled.
        destroyed: Spoiled cards destroyed.
    """

    feeder: str
    loaded: int = 0
    adjusted: int = 0
    taken: int = 0
    issued: int = 0
    spoiled: int = 0
    destroyed: int = 0

    @property
    def remaining(self) -> int:
        """Blanks the ledger says are in the feeder."""
        return self.loaded + self.adjusted - self.taken

    @property
    def in_process(self) -> int:
        """Cards taken but neither issued nor spoiled yet."""
        return self.taken - self.issued - self.spoiled

    @classmethod
    def of(cls, feeder: str, entries: list[StockEntry]) -> StockBalance:
        """Sum ``entries`` of ``feeder``."""
        sums: Counter[StockKind] = Counter()
        for entry in entries:
            if entry.feeder == feeder:
                sums[entry.kind] += entry.quantity
        return cls.from_totals(feeder, sums)

    @classmethod
    def from_totals(cls, feeder: str, sums: Mapping[StockKind, int]) -> StockBalance:
        """The balance of ``feeder`` from its sums by kind (missing kinds are 0)."""
        counts = Counter(sums)
        return cls(
            feeder=feeder,
            loaded=counts[StockKind.LOADED],
            adjusted=counts[StockKind.ADJUSTED],
            taken=counts[StockKind.TAKEN],
            issued=counts[StockKind.ISSUED],
            spoiled=counts[StockKind.SPOILED],
            destroyed=counts[StockKind.DESTROYED],
        )


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The result of a reconciliation.

    Attributes:
        day: The business day (Beijing) it was made for.
        at: When (UTC).
        balances: Per feeder.
        day_movements: Per feeder, the day's movements by kind.
        problems: Every difference found (empty when the stock reconciles).
    """

    day: dt.date
    at: dt.datetime
    balances: dict[str, StockBalance]
    day_movements: dict[str, dict[StockKind, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether ``loaded = issued + spoiled + in process + remaining`` held everywhere."""
        return not self.problems


class StockLedger:
    """Stock operations over a journal.

    Args:
        journal: Where entries are stored.
        clock: Timestamps.
        on_alert: Called with a reconciliation that found a problem.
        new_id: Makes unique keys for manual entries.
    """

    def __init__(
        self,
        journal: Journal,
        clock: Clock,
        *,
        on_alert: Callable[[Reconciliation], None] | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        """Bind to the journal."""
        self._journal = journal
        self._clock = clock
        self._on_alert = on_alert
        self._new_id = new_id

    def _entry(
        self, feeder: str, kind: StockKind, quantity: int, **extra: str | None
    ) -> StockEntry:
        return StockEntry(
            key=f"{kind.value}:{self._new_id()}",
            feeder=feeder,
            kind=kind,
            quantity=quantity,
            at=self._clock.now(),
            **extra,  # type: ignore[arg-type]
        )

    async def load(self, feeder: str, quantity: int, *, box: str, operator: str) -> StockEntry:
        """Record ``quantity`` blanks of box (or batch) ``box`` loaded into ``feeder``.

        Raises:
            StockError: ``quantity`` is not positive or ``box`` is empty.
        """
        if quantity <= 0 or not box:
            raise StockError("a load needs a positive quantity and a box or batch number")
        entry = self._entry(feeder, StockKind.LOADED, quantity, box=box, operator=operator)
        await self._journal.add_stock([entry])
        log.info("stock_loaded", feeder=feeder, quantity=quantity, box=box, operator=operator)
        return entry

    async def spoil_blank(self, feeder: str, *, operator: str, reason: str) -> StockEntry:
        """Record a blank taken out of ``feeder`` by hand as spoiled (e.g. found damaged).

        Raises:
            StockError: No reason given.
        """
        if not reason:
            raise StockError("a spoiled card needs a reason")
        key = self._new_id()
        taken = StockEntry(
            key=f"taken:{key}",
            feeder=feeder,
            kind=StockKind.TAKEN,
            quantity=1,
            at=self._clock.now(),
            operator=operator,
            reason=reason,
        )
        spoiled = StockEntry(
            key=f"spoiled:{key}",
            feeder=feeder,
            kind=StockKind.SPOILED,
            quantity=1,
            at=taken.at,
            operator=operator,
            reason=reason,
        )
        await self._journal.add_stock([taken, spoiled])
        log.info("stock_spoiled", feeder=feeder, reason=reason, operator=operator)
        return spoiled

    async def destroy(
        self, feeder: str, quantity: int, *, operator: str, reason: str
    ) -> StockEntry:
        """Record ``quantity`` spoiled cards of ``feeder`` destroyed.

        Raises:
            StockError: More than the spoiled cards not yet destroyed.
        """
        balance = await self.balance(feeder)
        if quantity <= 0 or quantity > balance.spoiled - balance.destroyed:
            raise StockError("only spoiled cards not yet destroyed can be destroyed")
        entry = self._entry(feeder, StockKind.DESTROYED, quantity, operator=operator, reason=reason)
        await self._journal.add_stock([entry])
        log.info("stock_destroyed", feeder=feeder, quantity=quantity, operator=operator)
        return entry

    async def adjust(
        self, feeder: str, delta: int, *, operator: str, approver: str | None, reason: str
    ) -> StockEntry:
        """Correct ``feeder``'s remaining count by ``delta``, approved by a supervisor.

        Raises:
            ApprovalRequiredError: No approver, or the approver is the operator.
            StockError: ``delta`` is zero or there is no reason.
        """
        if not approver or approver == operator:
            raise ApprovalRequiredError("a stock adjustment needs a supervisor's approval")
        if delta == 0 or not reason:
            raise StockError("an adjustment needs a non-zero delta and a reason")
        entry = self._entry(
            feeder,
            StockKind.ADJUSTED,
            delta,
            operator=operator,
            approver=approver,
            reason=reason,
        )
        await self._journal.add_stock([entry])
        log.info("stock_adjusted", feeder=feeder, delta=delta, operator=operator, approver=approver)
        return entry

    async def balance(self, feeder: str) -> StockBalance:
        """One feeder's totals."""
        totals = await self._journal.stock_totals()
        return StockBalance.from_totals(feeder, totals.get(feeder, {}))

    async def balances(self) -> dict[str, StockBalance]:
        """Every feeder's totals."""
        totals = await self._journal.stock_totals()
        ordered = sorted(totals.items())
        return {feeder: StockBalance.from_totals(feeder, sums) for feeder, sums in ordered}

    async def reconcile(
        self,
        *,
        day: dt.date | None = None,
        counted: Mapping[str, int] | None = None,
        held_by_jobs: Mapping[str, int] | None = None,
    ) -> Reconciliation:
        """Check the ledger against counts from outside it; alert on any difference.

        Args:
            day: The business day (default: today in Beijing).
            counted: Blanks the operator counted in each feeder.
            held_by_jobs: Cards the unfinished jobs hold, per feeder (the
                controller's :meth:`~production.controller.ProductionController.cards_held`).
        """
        now = self._clock.now()
        day = day or now.astimezone(BEIJING).date()
        entries = await self._journal.stock_entries()
        feeders = sorted({e.feeder for e in entries} | set(counted or {}) | set(held_by_jobs or {}))
        balances = {feeder: StockBalance.of(feeder, entries) for feeder in feeders}
        movements: dict[str, dict[StockKind, int]] = {feeder: {} for feeder in feeders}
        for entry in entries:
            if entry.at.astimezone(BEIJING).date() == day:
                kinds = movements[entry.feeder]
                kinds[entry.kind] = kinds.get(entry.kind, 0) + entry.quantity
        problems: list[str] = []
        for feeder, balance in balances.items():
            if balance.remaining < 0:
                problems.append(f"{feeder}: more cards taken than loaded ({balance.remaining})")
            if balance.destroyed > balance.spoiled:
                problems.append(f"{feeder}: more cards destroyed than spoiled")
            if counted is not None and feeder in counted and counted[feeder] != balance.remaining:
                problems.append(
                    f"{feeder}: counted {counted[feeder]} blanks, "
                    f"the ledger says {balance.remaining}"
                )
            if held_by_jobs is not None and held_by_jobs.get(feeder, 0) != balance.in_process:
                problems.append(
                    f"{feeder}: jobs hold {held_by_jobs.get(feeder, 0)} cards, "
                    f"the ledger says {balance.in_process} in process"
                )
        result = Reconciliation(day, now, balances, movements, problems)
        if problems:
            log.warning("stock_mismatch", day=day.isoformat(), problems=len(problems))
            if self._on_alert is not None:
                self._on_alert(result)
        else:
            log.info("stock_reconciled", day=day.isoformat())
        return result
