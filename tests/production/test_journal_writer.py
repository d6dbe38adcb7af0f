"""The SQL journal's writer: shared transactions, deferred ``done`` writes, isolated errors.

Runs on SQLite (the journal's own writer connection) and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import column, insert, table

from gateway.issuance.journal import JournalWriteError, SqlJournal
from gateway.runtime.db import create_engine
from gateway.runtime.migrate import upgrade
from production import JobRecord, JobStatus, Phase, Priority, StepEvent, StepName
from production.model import StockEntry, StockKind
from tests.production.conftest import SealerForTests, make_order

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database on the backend under test."""
    engine = create_engine(database_url)
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def _job(n: int) -> tuple[JobRecord, StepEvent]:
    job = JobRecord(
        job_id=f"job-{n}",
        order=make_order(f"APP-{n}"),
        priority=Priority.WINDOW,
        status=JobStatus.QUEUED,
        created_at=NOW,
        step=StepName.PRE_OPEN,
        phase=Phase.BEGUN,
    )
    return job, StepEvent(job.job_id, StepName.PRE_OPEN, Phase.BEGUN, 1, NOW)


def _feed(job: JobRecord, phase: Phase) -> tuple[JobRecord, StepEvent]:
    moved = replace(job, step=StepName.FEED, phase=phase, station="s1", status=JobStatus.RUNNING)
    return moved, StepEvent(job.job_id, StepName.FEED, phase, 1, NOW, "s1")


async def test_concurrent_writes_share_transactions(engine: AsyncEngine) -> None:
    """Forty jobs written at once: every state and event stored, in fewer commits."""
    journal = SqlJournal(engine, SealerForTests())
    jobs = [_job(n) for n in range(40)]
    await asyncio.gather(*(journal.add_job(job, first) for job, first in jobs))
    before = journal.commits
    await asyncio.gather(
        *(journal.record(*_feed(job, Phase.BEGUN), durable=True) for job, _ in jobs)
    )
    assert 0 < journal.commits - before < len(jobs)
    for job, _ in jobs:
        stored = await journal.load_job(job.job_id)
        assert stored is not None
        assert (stored.step, stored.phase, stored.station) == (StepName.FEED, Phase.BEGUN, "s1")
        assert stored.order == job.order
        events = await journal.step_events(job.job_id)
        assert [(e.step, e.phase) for e in events] == [
            (StepName.PRE_OPEN, Phase.BEGUN),
            (StepName.FEED, Phase.BEGUN),
        ]


async def test_a_done_write_is_seen_by_the_next_read_and_a_new_journal(
    engine: AsyncEngine,
) -> None:
    """``done`` returns before its commit, yet every read after it sees it."""
    sealer = SealerForTests()
    journal = SqlJournal(engine, sealer)
    job, first = _job(1)
    await journal.add_job(job, first)
    begun, event = _feed(job, Phase.BEGUN)
    await journal.record(begun, event, durable=True)
    done, event = _feed(begun, Phase.DONE)
    taken = StockEntry("job-1:1:taken", "s1", StockKind.TAKEN, 1, NOW, job_id="job-1")
    await journal.record(done, event, [taken], durable=False)
    assert [e.key for e in await journal.stock_entries("s1")] == ["job-1:1:taken"]
    assert (await journal.step_events("job-1"))[-1].phase is Phase.DONE
    stored = await SqlJournal(engine, sealer).unfinished_jobs()
    assert [(j.job_id, j.phase) for j in stored] == [("job-1", Phase.DONE)]


async def test_the_state_finishing_a_job_is_committed_on_return(engine: AsyncEngine) -> None:
    """A job's final state is durable when ``record`` returns (the API reports it next)."""
    sealer = SealerForTests()
    journal = SqlJournal(engine, sealer)
    job, first = _job(1)
    await journal.add_job(job, first)
    issued = replace(job, step=StepName.ENABLE, phase=Phase.DONE, status=JobStatus.ISSUED)
    await journal.record(
        issued, StepEvent("job-1", StepName.ENABLE, Phase.DONE, 1, NOW), durable=True
    )
    assert journal._queue == []
    assert not await SqlJournal(engine, sealer).unfinished_jobs()


async def test_a_duplicate_application_in_a_batch_fails_alone(engine: AsyncEngine) -> None:
    """Two jobs for one application written at once: one stored, both callers get it."""
    journal = SqlJournal(engine, SealerForTests())
    (one, first), (other, second) = _job(1), _job(2)
    other = replace(other, order=one.order)
    third, third_event = _job(3)
    results = await asyncio.gather(
        journal.add_job(one, first),
        journal.add_job(other, replace(second, job_id=other.job_id)),
        journal.add_job(third, third_event),
    )
    assert results[0].job_id == results[1].job_id
    assert results[2].job_id == "job-3"
    assert {j.job_id for j in await journal.unfinished_jobs()} == {results[0].job_id, "job-3"}


async def test_stock_keys_count_once_within_and_across_batches(engine: AsyncEngine) -> None:
    """The same stock key written twice in one batch and again later is stored once."""
    journal = SqlJournal(engine, SealerForTests())
    entry = StockEntry("load-1", "s1", StockKind.LOADED, 10, NOW, box="BOX-1")
    await asyncio.gather(journal.add_stock([entry, entry]), journal.add_stock([entry]))
    await journal.add_stock([replace(entry, quantity=99)])
    assert [(e.key, e.quantity) for e in await journal.stock_entries()] == [("load-1", 10)]


class BrokenSealer(SealerForTests):
    """Seals the first ``works`` texts, then fails (a key store gone away)."""

    def __init__(self, works: int) -> None:
        """Count down from ``works``."""
        super().__init__()
        self.works = works

    def seal(self, field: str, text: str) -> bytes:
        """Seal, or fail once the count is used up."""
        if self.works <= 0:
            raise OSError("key store unavailable")
        self.works -= 1
        return super().seal(field, text)


async def test_a_failed_done_write_stops_its_own_job_only(engine: AsyncEngine) -> None:
    """A ``done`` write that cannot be stored fails that job's next write, no other."""
    journal = SqlJournal(engine, BrokenSealer(works=2))
    (job, first), (other, other_first) = _job(1), _job(2)
    await journal.add_job(job, first)
    await journal.add_job(other, other_first)
    opened = replace(job, order=replace(job.order, card_number="B00000001"), phase=Phase.DONE)
    await journal.record(
        opened, StepEvent("job-1", StepName.PRE_OPEN, Phase.DONE, 1, NOW), durable=False
    )
    assert [e.phase for e in await journal.step_events("job-1")] == [Phase.BEGUN]
    await journal.record(*_feed(other, Phase.BEGUN), durable=True)  # another job goes on
    with pytest.raises(JournalWriteError) as caught:
        await journal.record(*_feed(opened, Phase.BEGUN), durable=True)
    assert isinstance(caught.value.__cause__, OSError)
    stored = await journal.load_job("job-2")
    assert stored is not None
    assert stored.step is StepName.FEED


async def test_stock_totals_are_the_sums_of_the_entries(engine: AsyncEngine) -> None:
    """The grouped totals the controller and the ledger read agree with the entries."""
    journal = SqlJournal(engine, SealerForTests())
    moves = [
        ("s1", StockKind.LOADED, 100),
        ("s1", StockKind.TAKEN, 1),
        ("s1", StockKind.TAKEN, 1),
        ("s1", StockKind.ISSUED, 1),
        ("s1", StockKind.ADJUSTED, -2),
        ("s2", StockKind.LOADED, 50),
        ("s2", StockKind.SPOILED, 1),
    ]
    await journal.add_stock(
        [
            StockEntry(f"k{n}", feeder, kind, quantity, NOW, "op-1")
            for n, (feeder, kind, quantity) in enumerate(moves)
        ]
    )
    totals = await journal.stock_totals()
    assert totals == {
        "s1": {
            StockKind.LOADED: 100,
            StockKind.TAKEN: 2,
            StockKind.ISSUED: 1,
            StockKind.ADJUSTED: -2,
        },
        "s2": {StockKind.LOADED: 50, StockKind.SPOILED: 1},
    }


async def test_personal_data_is_written_only_when_the_order_changes(engine: AsyncEngine) -> None:
    """Steps rewrite the job's row, not its sealed personal data (its own table)."""
    sealer = SealerForTests()
    journal = SqlJournal(engine, sealer)
    job, first = _job(1)
    await journal.add_job(job, first)
    before = sealer.sealed
    begun, event = _feed(job, Phase.BEGUN)
    await journal.record(begun, event, durable=True)
    await journal.record(*_feed(begun, Phase.DONE), durable=True)
    assert sealer.sealed == before
    opened = replace(begun, order=replace(job.order, card_number="B00000001"))
    await journal.record(
        opened, StepEvent("job-1", StepName.FEED, Phase.DONE, 1, NOW), durable=True
    )
    assert sealer.sealed == before + 1
    stored = await SqlJournal(engine, sealer).load_job("job-1")
    assert stored is not None
    assert stored.order == opened.order


async def test_jobs_stored_before_0008_keep_their_personal_data(database_url: str) -> None:
    """Migration 0008 moves each job's sealed blob, as it is, to its own table."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0007")
        sealer = SealerForTests()
        job, _ = _job(1)
        values = SqlJournal._job_values(job, NOW)
        values["personal_enc"] = SqlJournal(engine, sealer)._personal_values(job)["personal_enc"]
        at_0007 = table("production_jobs", *(column(name) for name in values))
        async with engine.begin() as conn:
            await conn.execute(insert(at_0007).values(values))
        await upgrade(engine)
        stored = await SqlJournal(engine, sealer).load_job("job-1")
        assert stored is not None
        assert stored.order == job.order
    finally:
        await engine.dispose()
