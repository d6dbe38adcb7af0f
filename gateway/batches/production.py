"""How batch rows reach card production: a small port, and its adapter over the controller.

The batch service hands one order at a time to production and later asks
how the job stands; it needs nothing else of the controller, so it codes
against :class:`BatchProduction` and the daemon passes
:class:`ControllerProduction` (or any other implementation) in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from production.errors import UnknownJobError

if TYPE_CHECKING:
    import asyncio

    from production.controller import ProductionController
    from production.model import JobRecord, Order, Priority
    from production.ports import Journal

__all__ = ["BatchProduction", "ControllerProduction"]


class BatchProduction(Protocol):
    """What the batch service needs of production."""

    async def ready(self) -> None:
        """Return once production may take orders (its journal recovered after a restart)."""
        ...

    async def submit(self, order: Order, priority: Priority) -> str:
        """Journal and start a job for ``order``; return its id.

        Submitting the same application again returns the job it already has.
        Raises whatever refuses the job now (no station, no blanks...): the
        batch service tries again on its next round.
        """
        ...

    async def job(self, job_id: str) -> JobRecord | None:
        """The job as it stands (``None`` if production does not know it)."""
        ...


class ControllerProduction:
    """:class:`BatchProduction` over a running :class:`ProductionController`."""

    def __init__(
        self,
        controller: ProductionController,
        journal: Journal | None = None,
        started: asyncio.Event | None = None,
    ) -> None:
        """Use ``controller``.

        Args:
            controller: The running controller.
            journal: Answers for jobs finished before a restart.
            started: Set once the daemon's production service has recovered
                the journal (``ProductionService.started``); ``None``: ready now.
        """
        self._controller = controller
        self._journal = journal
        self._started = started

    async def ready(self) -> None:
        """Wait for the production service's recovery (nothing is submitted before it)."""
        if self._started is not None:
            await self._started.wait()

    async def submit(self, order: Order, priority: Priority) -> str:
        """Submit through the controller (window before batch is its rule)."""
        return (await self._controller.submit(order, priority)).job_id

    async def job(self, job_id: str) -> JobRecord | None:
        """The controller's record, else the journal's (finished before a restart)."""
        try:
            return self._controller.job(job_id)
        except UnknownJobError:
            if self._journal is None:
                return None
            return await self._journal.load_job(job_id)
