"""A :class:`~production.ports.Journal` in memory: for unit tests, benchmarks and demos.

It keeps what :class:`~gateway.issuance.journal.SqlJournal` keeps, with the
same rules (one job per application, stock keys counted once), but nothing
survives the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from production.model import JobRecord, StepEvent, StockEntry, StockKind

__all__ = ["MemoryJournal"]


class MemoryJournal:
    """Jobs, step events and stock entries in dictionaries and lists."""

    def __init__(self) -> None:
        """Start empty."""
        self.jobs: dict[str, JobRecord] = {}
        self.events: list[StepEvent] = []
        self.stock: dict[str, StockEntry] = {}
        self.commits = 0

    async def add_job(self, job: JobRecord, event: StepEvent) -> JobRecord:
        """Store a new job unless its application has one; return the stored one."""
        for existing in self.jobs.values():
            if existing.order.application_id == job.order.application_id:
                return existing
        self.jobs[job.job_id] = job
        self.events.append(event)
        self.commits += 1
        return job

    async def record(
        self,
        job: JobRecord,
        event: StepEvent,
        stock: Sequence[StockEntry] = (),
        *,
        durable: bool,  # noqa: ARG002 - everything here is stored at once
    ) -> None:
        """Store the job, the event and new stock entries."""
        self.jobs[job.job_id] = job
        self.events.append(event)
        for entry in stock:
            self.stock.setdefault(entry.key, entry)
        self.commits += 1

    async def load_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        return self.jobs.get(job_id)

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs neither issued nor failed, oldest first."""
        found = [job for job in self.jobs.values() if not job.status.finished]
        return sorted(found, key=lambda job: (job.created_at, job.job_id))

    async def step_events(self, job_id: str) -> list[StepEvent]:
        """The job's events in order."""
        return [event for event in self.events if event.job_id == job_id]

    async def add_stock(self, entries: Sequence[StockEntry]) -> None:
        """Store new stock entries."""
        for entry in entries:
            self.stock.setdefault(entry.key, entry)
        self.commits += 1

    async def stock_entries(self, feeder: str | None = None) -> list[StockEntry]:
        """Stock entries (of one feeder) in insertion order."""
        return [e for e in self.stock.values() if feeder is None or e.feeder == feeder]

    async def flush(self) -> None:
        """Everything is stored at once."""

    async def stock_totals(self) -> dict[str, dict[StockKind, int]]:
        """Per feeder, the sums by kind."""
        totals: dict[str, dict[StockKind, int]] = {}
        for entry in self.stock.values():
            kinds = totals.setdefault(entry.feeder, {})
            kinds[entry.kind] = kinds.get(entry.kind, 0) + entry.quantity
        return totals
