"""The controller over real parts: the printer simulator on a pty, the SQL journal.

Runs on SQLite and PostgreSQL. Chip cards are simulated cards in an in-process
reader, moved by :class:`~tests.production.conftest.Mechanics` as the printer
moves the card.
"""

from __future__ import annotations

import asyncio
import os
import pty
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from devices.encoder import InProcessEncoder
from devices.printer import PrinterDriver
from gateway.issuance.journal import SqlJournal
from gateway.runtime.db import create_engine
from gateway.runtime.migrate import upgrade
from production import (
    JobStatus,
    ProductionController,
    Station,
    StepName,
    StockLedger,
)
from protocols.printer.commands import Timeouts
from protocols.printer.state import ClientState
from simulators.card.blanks import blank_card
from simulators.printer import PrinterSimConfig, PrinterSimulator
from simulators.printer.model import Fault
from tests.conftest import missing_part
from tests.fakes import FakeClock
from tests.production.conftest import (
    READER,
    AutoQc,
    FakeBank,
    FakePlatform,
    Mechanics,
    SealerForTests,
    SimKeyService,
    holder_ssn,
    make_order,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Sequence

    from sqlalchemy.ext.asyncio import AsyncEngine

    from production import JobRecord, StepEvent, StockEntry, StockKind
    from protocols.printer.commands import CardPosition

pytestmark = pytest.mark.integration

TIMEOUTS = Timeouts(read=2.0, parameter=2.0, motion=3.0, print=5.0, download=10.0)
BLANKS = 60


class Crash(BaseException):
    """The daemon died (raised past every ``except Exception``)."""


class CrashingJournal:
    """A journal that dies at its n-th write, before or after making it.

    A write that is not durable is held back and passed on, in order, before
    the next durable write or read; a crash loses what is held, as a power cut
    loses the writes the journal had queued but not committed.
    """

    def __init__(self, inner: SqlJournal, crash_at: int, *, after: bool) -> None:
        """Count writes to ``inner``; die at ``crash_at``."""
        self.inner = inner
        self.crash_at = crash_at
        self.after = after
        self.writes = 0
        self.crashed = asyncio.Event()
        self.held: list[Coroutine[Any, Any, None]] = []

    def _die(self, action: Coroutine[Any, Any, Any] | None = None) -> NoReturn:
        for lost in (*self.held, *([action] if action else [])):
            lost.close()
        self.held.clear()
        self.crashed.set()
        raise Crash

    async def _flush(self) -> None:
        while self.held:
            await self.held.pop(0)

    async def _write(self, action: Coroutine[Any, Any, Any], *, durable: bool = True) -> None:
        if self.crashed.is_set():
            self._die(action)
        self.writes += 1
        if self.writes == self.crash_at and not self.after:
            self._die(action)
        if durable:
            await self._flush()
            await action
        else:
            self.held.append(action)
        if self.writes == self.crash_at:
            self._die()

    async def add_job(self, job: JobRecord, event: StepEvent) -> JobRecord:
        """Add, or die."""
        await self._write(self.inner.add_job(job, event))
        return job

    async def record(
        self,
        job: JobRecord,
        event: StepEvent,
        stock: Sequence[StockEntry] = (),
        *,
        durable: bool,
    ) -> None:
        """Record (held back unless durable), or die."""
        await self._write(self.inner.record(job, event, stock, durable=durable), durable=durable)

    async def add_stock(self, entries: Sequence[StockEntry]) -> None:
        """Add stock, or die."""
        await self._write(self.inner.add_stock(entries))

    async def load_job(self, job_id: str) -> JobRecord | None:
        """Read through, after what is held."""
        await self._flush()
        return await self.inner.load_job(job_id)

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Read through, after what is held."""
        await self._flush()
        return await self.inner.unfinished_jobs()

    async def step_events(self, job_id: str) -> list[StepEvent]:
        """Read through, after what is held."""
        await self._flush()
        return await self.inner.step_events(job_id)

    async def stock_entries(self, feeder: str | None = None) -> list[StockEntry]:
        """Read through, after what is held."""
        await self._flush()
        return await self.inner.stock_entries(feeder)

    async def flush(self) -> None:
        """Pass on what is held and flush, unless dead."""
        if not self.crashed.is_set():
            await self._flush()
            await self.inner.flush()

    async def stock_totals(self) -> dict[str, dict[StockKind, int]]:
        """Read through, after what is held."""
        await self._flush()
        return await self.inner.stock_totals()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database on the backend under test."""
    engine = create_engine(database_url, busy_timeout_ms=5000)
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@dataclass
class Bench:
    """Printers on ptys, their card paths, the journal and the upstream fakes."""

    journal: SqlJournal
    encoder: InProcessEncoder
    sims: list[PrinterSimulator] = field(default_factory=list)
    drivers: list[PrinterDriver] = field(default_factory=list)
    mechanics: list[Mechanics] = field(default_factory=list)
    platform: FakePlatform = field(default_factory=FakePlatform)
    bank: FakeBank = field(default_factory=FakeBank)
    clock: FakeClock = field(default_factory=FakeClock)

    def stations(self) -> list[Station]:
        """One station per printer."""
        readers = self.encoder.readers
        return [
            Station(f"s{i + 1}", m, self.encoder, readers[i]) for i, m in enumerate(self.mechanics)
        ]

    def controller(self, journal: Any = None) -> ProductionController:  # noqa: ANN401 - any journal
        """A controller over the bench (a new daemon after a crash)."""
        return ProductionController(
            journal=journal or self.journal,
            stations=self.stations(),
            platform=self.platform,
            bank=self.bank,
            key_service=SimKeyService(),
            quality_check=AutoQc(),
            clock=self.clock,
            rng=random.Random(3),
        )

    @property
    def ledger(self) -> StockLedger:
        """The stock ledger."""
        return StockLedger(self.journal, self.clock)

    async def reconcile(self, controller: ProductionController) -> None:
        """Assert the ledger agrees with every printer's feeder and the jobs."""
        counted = {f"s{i + 1}": sim.model.feeder for i, sim in enumerate(self.sims)}
        report = await self.ledger.reconcile(counted=counted, held_by_jobs=controller.cards_held())
        assert report.ok, report.problems
        for i, sim in enumerate(self.sims):
            balance = report.balances[f"s{i + 1}"]
            assert balance.spoiled == sim.model.reject_box
            assert balance.issued == len(self.mechanics[i].output)


def _path_of(sim: PrinterSimulator) -> Callable[[], str]:
    return lambda: sim.path


def _position_of(sim: PrinterSimulator) -> Callable[[], CardPosition]:
    return lambda: sim.model.card


@pytest.fixture
async def bench(engine: AsyncEngine) -> AsyncIterator[Bench]:
    """Two printer simulators on ptys with drivers, each coupled to a reader."""
    try:
        master, slave = pty.openpty()
    except OSError:
        missing_part("a pseudo-terminal (/dev/ptmx, devpts mounted)")
    os.close(master)
    os.close(slave)
    encoder = InProcessEncoder(readers=(READER, "Virtual PCD 00 01"))
    made = Bench(SqlJournal(engine, SealerForTests()), encoder)
    for index in range(2):
        sim = PrinterSimulator(PrinterSimConfig(feeder=BLANKS, time_scale=0.0))
        await sim.start()
        driver = PrinterDriver(
            _path_of(sim), clock=FakeClock(), rng=random.Random(7), timeouts=TIMEOUTS
        )
        await driver.connect()
        blanks = [blank_card(index * 1000 + n) for n in range(1, BLANKS + 1)]
        made.sims.append(sim)
        made.drivers.append(driver)
        made.mechanics.append(
            Mechanics(
                driver,
                _position_of(sim),
                encoder,
                list(blanks),
                encoder.readers[index],
            )
        )
        await made.ledger.load(f"s{index + 1}", BLANKS, box=f"BOX-{index}", operator="op-1")
    try:
        yield made
    finally:
        for driver in made.drivers:
            await driver.close()
        for sim in made.sims:
            await sim.stop()


def one_station(bench: Bench) -> None:
    """Use the first printer only."""
    bench.mechanics = bench.mechanics[:1]
    bench.sims = bench.sims[:1]


async def test_instant_issuance_over_the_pty_printer(bench: Bench) -> None:
    """A full instant issuance: chip written and verified, surface printed, data returned."""
    one_station(bench)
    controller = bench.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert [holder_ssn(card) for card in bench.mechanics[0].output] == ["33010619900101123X"]
    assert bench.sims[0].model.printed == 1
    assert "Db;k;2" in bench.sims[0].received
    stored = await bench.journal.load_job(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.ISSUED
    assert stored.order.name == "张三"
    await bench.reconcile(controller)


async def _wait_idle(driver: PrinterDriver) -> None:
    """Let a reply still on its way reach the driver (real I/O, bounded)."""
    for _ in range(500):
        if driver._client.state is ClientState.IDLE:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the printer never answered")


async def _crash_and_recover(bench: Bench, crash_at: int, *, after: bool) -> bool:
    """Run one application, die at the n-th journal write, restart, finish; True if it died."""
    order = make_order(f"APP-{crash_at}-{after}")
    crashing = CrashingJournal(bench.journal, crash_at, after=after)
    first = bench.controller(crashing)
    await first.start()
    try:
        job = await first.submit(order)
    except Crash:
        pass
    else:
        finished = asyncio.ensure_future(first.wait(job.job_id))
        died = asyncio.ensure_future(crashing.crashed.wait())
        await asyncio.wait((finished, died), return_when=asyncio.FIRST_COMPLETED)
        finished.cancel()
        died.cancel()
    await first.stop()
    await _wait_idle(bench.drivers[0])
    second = bench.controller()
    await second.start()
    job = await second.submit(order)
    done = await second.wait(job.job_id)
    await second.stop()
    assert done.status is JobStatus.ISSUED
    return crashing.crashed.is_set()


@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
async def test_crash_at_every_journaled_step(bench: Bench, *, after: bool) -> None:
    """Killed at each journal write: every application yields exactly one good card."""
    one_station(bench)
    mechanics = bench.mechanics[0]
    crash_at = 1
    while await _crash_and_recover(bench, crash_at, after=after):
        crash_at += 1
        good = [holder_ssn(card) for card in mechanics.output]
        assert len(good) == crash_at - 1, f"crash at write {crash_at - 1}"
        assert all(good)
        await bench.reconcile(bench.controller())
    assert crash_at > 20  # every write of a full job was a crash point
    assert len(bench.platform.returned) == crash_at
    assert {d.application_id for d in bench.platform.returned.values()} == {
        f"APP-{n}-{after}" for n in range(1, crash_at + 1)
    }


async def test_jam_mid_print_spoils_the_card_and_stock_reconciles(bench: Bench) -> None:
    """A jam while printing: rejected, spoiled, station paused; after resume one good card."""
    one_station(bench)
    sim = bench.sims[0]
    paused: list[str] = []
    controller = bench.controller()
    controller._on_paused = lambda _name, reason: paused.append(reason)
    await controller.start()
    mechanics = bench.mechanics[0]
    mechanics.print_gate = asyncio.Event()
    job = await controller.submit(make_order())
    await mechanics.printing.wait()
    sim.inject(Fault.JAM)
    mechanics.print_gate.set()
    await mechanics.rejected_one.wait()
    assert paused == ["printer.jam"]
    assert sim.model.reject_box == 1
    await controller.resume_station("s1")
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert done.card_seq == 2
    assert len(mechanics.output) == 1
    events = await bench.journal.step_events(job.job_id)
    assert any(e.step is StepName.REJECT and e.detail == "printer_jam" for e in events)
    await bench.reconcile(controller)


async def test_two_stations_encode_while_the_other_prints(bench: Bench) -> None:
    """With two stations, one card's chip is written while another card is printing."""
    controller = bench.controller()
    first, second = bench.mechanics
    first.print_gate = asyncio.Event()
    second.print_gate = asyncio.Event()
    await controller.start()
    jobs = [await controller.submit(make_order(f"APP-{n}")) for n in range(4)]
    await first.printing.wait()
    await second.printing.wait()  # the second station encoded while the first holds its print
    first.print_gate.set()
    second.print_gate.set()
    done = [await controller.wait(job.job_id) for job in jobs]
    await controller.stop()
    assert all(job.status is JobStatus.ISSUED for job in done)
    assert len(first.output) + len(second.output) == 4
    assert first.output
    assert second.output
    assert {job.station for job in done} == {None}
    await bench.reconcile(controller)
