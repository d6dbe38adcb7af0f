"""The controller with fakes for each port, simulated cards in an in-process reader."""

from __future__ import annotations

import random
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from devices.encoder import InProcessEncoder
from devices.printer.errors import PrinterJamError
from production import (
    DeviceOfflineError,
    JobStatus,
    MemoryJournal,
    NoBlanksError,
    NoEncoderError,
    NoStationError,
    Phase,
    Priority,
    ProductionController,
    ProductionSettings,
    Station,
    StepName,
    StockLedger,
)
from protocols.printer.frames import ErrorCode
from simulators.card.blanks import FaultyCard, blank_card
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Sequence

    from production import JobRecord, StepEvent, StockEntry

from tests.production.conftest import (
    READER,
    AutoQc,
    Card,
    FakeBank,
    FakePlatform,
    FakePrinter,
    Mechanics,
    SimKeyService,
    holder_ssn,
    make_order,
)


@dataclass
class Rig:
    """A controller on one fake printer and a real in-process reader."""

    journal: MemoryJournal
    printer: FakePrinter
    mechanics: Mechanics
    platform: FakePlatform
    bank: FakeBank
    qc: AutoQc
    ledger: StockLedger
    clock: FakeClock
    encoder: InProcessEncoder
    paused: list[tuple[str, str]] = field(default_factory=list)
    keys: SimKeyService = field(default_factory=SimKeyService)

    def controller(self, **settings: object) -> ProductionController:
        """A controller over this rig."""
        return ProductionController(
            journal=self.journal,
            stations=[Station("s1", self.mechanics, self.encoder, READER)],
            platform=self.platform,
            bank=self.bank,
            key_service=self.keys,
            quality_check=self.qc,
            clock=self.clock,
            rng=random.Random(1),
            settings=ProductionSettings(**settings),  # type: ignore[arg-type]
            on_station_paused=lambda name, reason: self.paused.append((name, reason)),
        )


async def make_rig(
    blanks: list[Card], qc: AutoQc | None = None, journal: MemoryJournal | None = None
) -> Rig:
    """Build the rig and load the blanks into the ledger."""
    journal = journal or MemoryJournal()
    clock = FakeClock()
    printer = FakePrinter(feeder=len(blanks))
    encoder = InProcessEncoder()
    mechanics = Mechanics(printer, lambda: printer.card, encoder, blanks)
    ledger = StockLedger(journal, clock)
    await ledger.load("s1", len(blanks), box="BOX-1", operator="op-1")
    return Rig(
        journal,
        printer,
        mechanics,
        FakePlatform(),
        FakeBank(),
        qc or AutoQc(),
        ledger,
        clock,
        encoder,
    )


async def test_instant_issuance_end_to_end() -> None:
    """A window job goes through every step in order and yields one personalized card."""
    rig = await make_rig([blank_card(i) for i in range(1, 6)])
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert len(rig.mechanics.output) == 1
    assert holder_ssn(rig.mechanics.output[0]) == "33010619900101123X"
    steps = [e.step for e in await rig.journal.step_events(job.job_id) if e.phase.value == "begun"]
    assert steps == [
        StepName.PRE_OPEN,
        StepName.FEED,
        StepName.READ_CHIP,
        StepName.AUTHENTICATE,
        StepName.WRITE,
        StepName.VERIFY,
        StepName.PRINT,
        StepName.EJECT,
        StepName.QUALITY_CHECK,
        StepName.RETURN_DATA,
        StepName.BIND_ACCOUNT,
        StepName.ENABLE,
    ]
    assert rig.printer.commands.index("insert") < rig.printer.commands.index("print")
    assert len(rig.platform.returned) == 1
    returned = next(iter(rig.platform.returned.values()))
    assert returned.card_id_code.startswith("330100")
    assert returned.chip_serial == returned.card_id_code[-16:]
    report = await rig.ledger.reconcile(counted={"s1": 4}, held_by_jobs=controller.cards_held())
    assert report.ok, report.problems
    assert report.balances["s1"].issued == 1


class _DurabilityJournal(MemoryJournal):
    """Notes which records the controller asked to be durable."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[StepName, Phase, bool]] = []

    async def record(
        self,
        job: JobRecord,
        event: StepEvent,
        stock: Sequence[StockEntry] = (),
        *,
        durable: bool,
    ) -> None:
        self.asked.append((event.step, event.phase, durable))
        await super().record(job, event, stock, durable=durable)


async def test_only_steps_recovery_cannot_repeat_wait_for_their_begun() -> None:
    """Feed, print and eject wait for ``begun`` to be stored; the steps recovery repeats do not."""
    journal = _DurabilityJournal()
    rig = await make_rig([blank_card(1)], journal=journal)
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    await controller.wait(job.job_id)
    await controller.stop()
    waited = [(step, phase) for step, phase, durable in journal.asked if durable]
    assert waited == [
        (StepName.FEED, Phase.BEGUN),
        (StepName.PRINT, Phase.BEGUN),
        (StepName.EJECT, Phase.BEGUN),
        (StepName.ENABLE, Phase.DONE),  # the job is issued: reported next
    ]
    queued = [(step, phase) for step, phase, durable in journal.asked if not durable]
    assert (StepName.WRITE, Phase.BEGUN) in queued
    assert (StepName.RETURN_DATA, Phase.BEGUN) in queued


async def test_submitting_an_application_twice_gives_one_job() -> None:
    """One application, one job, one good card."""
    rig = await make_rig([blank_card(i) for i in range(1, 4)])
    controller = rig.controller()
    await controller.start()
    first = await controller.submit(make_order())
    again = await controller.submit(make_order())
    assert again.job_id == first.job_id
    await controller.wait(first.job_id)
    await controller.stop()
    assert len(rig.mechanics.output) == 1


async def test_preconditions_fail_up_front() -> None:
    """No station, no encoder, offline printer, no blanks: typed errors, nothing journaled."""
    rig = await make_rig([blank_card(1)])

    def build(stations: list[Station]) -> ProductionController:
        return ProductionController(
            journal=rig.journal,
            stations=stations,
            platform=rig.platform,
            bank=rig.bank,
            key_service=SimKeyService(),
            quality_check=rig.qc,
            clock=rig.clock,
            rng=random.Random(1),
        )

    with pytest.raises(NoStationError):
        await build([]).submit(make_order())
    with pytest.raises(NoEncoderError):
        await build([Station("s1", rig.mechanics)]).submit(make_order())
    rig.printer.connected = False
    with pytest.raises(DeviceOfflineError) as offline:
        await build([Station("s1", rig.mechanics, rig.encoder, READER)]).submit(make_order())
    assert offline.value.stations == {"s1": "printer_offline"}
    rig.printer.connected = True
    empty = build([Station("s2", rig.mechanics, rig.encoder, READER)])
    with pytest.raises(NoBlanksError):
        await empty.submit(make_order())
    assert rig.journal.jobs == {}


async def test_chip_write_failing_three_times_spoils_the_card() -> None:
    """Three refused writes: the card goes to the reject box and the ledger; the next is good."""
    rig = await make_rig([FaultyCard(blank_card(1)), blank_card(2), blank_card(3)])
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert done.card_seq == 2
    assert len(rig.mechanics.rejected) == 1
    assert isinstance(rig.mechanics.rejected[0], FaultyCard)
    assert len(rig.mechanics.output) == 1
    events = await rig.journal.step_events(job.job_id)
    failed_writes = [e for e in events if e.phase.value == "failed"]
    assert len(failed_writes) == 3
    spoiled = [e for e in rig.journal.stock.values() if e.kind.value == "spoiled"]
    assert [e.reason for e in spoiled] == ["chip_write_failed"]
    report = await rig.ledger.reconcile(counted={"s1": 1}, held_by_jobs=controller.cards_held())
    assert report.ok, report.problems


async def test_job_fails_when_its_blanks_run_out() -> None:
    """With one blank per job, a failed chip write fails the job with its reason."""
    rig = await make_rig([FaultyCard(blank_card(1)), blank_card(2)])
    controller = rig.controller(cards_per_job=1)
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.FAILED
    assert done.failure == "chip_write_failed"
    assert rig.platform.returned == {}


async def test_quality_check_failure_spoils_and_remakes() -> None:
    """A card the teller refuses is spoiled; the job makes another."""
    rig = await make_rig([blank_card(i) for i in range(1, 4)], qc=AutoQc(frozenset({1})))
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert len(rig.mechanics.output) == 2  # the refused one and the good one
    balance = await rig.ledger.balance("s1")
    assert (balance.issued, balance.spoiled, balance.remaining) == (1, 1, 1)


async def test_jam_pauses_the_station_and_the_job_waits() -> None:
    """A jam during print: card spoiled, station paused; after resume a new card is made."""
    rig = await make_rig([blank_card(i) for i in range(1, 4)])
    rig.printer.fail["print"] = PrinterJamError(ErrorCode.MECHANICAL, "Se")
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    while not rig.paused:
        await rig.clock.sleep(0.1)
    assert rig.paused == [("s1", "printer.jam")]
    assert controller.stations()[0].paused == "printer.jam"
    await controller.resume_station("s1")
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert len(rig.mechanics.rejected) == 1
    report = await rig.ledger.reconcile(counted={"s1": 1}, held_by_jobs=controller.cards_held())
    assert report.ok, report.problems
    assert report.balances["s1"].spoiled == 1


async def test_window_jobs_run_before_batch_jobs() -> None:
    """Queued window work is taken before earlier batch work."""
    rig = await make_rig([blank_card(i) for i in range(1, 6)])
    controller = rig.controller()
    await controller.start()
    await controller.pause_station("s1")
    batch = await controller.submit(make_order("BATCH-1", "33010619900101124X"), Priority.BATCH)
    window = await controller.submit(make_order("WIN-1"), Priority.WINDOW)
    for _ in range(20):
        await rig.clock.sleep(0)
    await controller.resume_station("s1")
    await controller.wait(batch.job_id)
    await controller.wait(window.job_id)
    await controller.stop()
    feeds = [e for e in rig.journal.events if e.step is StepName.FEED and e.phase.value == "begun"]
    assert [e.job_id for e in feeds] == [window.job_id, batch.job_id]


async def test_platform_outage_is_retried_with_backoff() -> None:
    """Pre-open retries on the injected clock until the platform answers."""
    rig = await make_rig([blank_card(1), blank_card(2)])
    rig.platform.fail_pre_open = 3
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert done.status is JobStatus.ISSUED
    assert len(rig.clock.sleeps) >= 3


async def test_a_platform_refusal_ends_the_job_at_once_and_takes_no_blank() -> None:
    """Pre-open refused: failed with the refusal, not retried, no blank fed or spoiled."""
    rig = await make_rig([blank_card(1), blank_card(2)])
    rig.platform.refuse_pre_open = "invalid_state"
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert (done.status, done.failure) == (JobStatus.FAILED, "refused:platform:invalid_state")
    assert rig.clock.sleeps == []  # no backoff: an answer is not an outage
    assert not [e for e in rig.journal.events if e.step is StepName.FEED]
    assert not [s for s in rig.journal.stock.values() if s.job_id == job.job_id]


async def test_a_key_service_refusal_spoils_one_blank_and_ends_the_job() -> None:
    """The key service says no: one card to the reject box, no second try, no second blank."""
    rig = await make_rig([blank_card(1), blank_card(2), blank_card(3)])
    rig.keys.refuse = "refused"
    controller = rig.controller()
    await controller.start()
    job = await controller.submit(make_order())
    done = await controller.wait(job.job_id)
    await controller.stop()
    assert (done.status, done.failure) == (JobStatus.FAILED, "refused:key-service:refused")
    assert rig.keys.calls == 1  # not the three chip-write attempts
    spoiled = [s for s in rig.journal.stock.values() if s.kind.value == "spoiled"]
    assert [(s.quantity, s.reason) for s in spoiled] == [(1, "refused:key-service:refused")]
    assert done.card_seq == 1  # no second blank


class _FailsOnce(ThreadPoolExecutor):
    """A renderer whose first face fails (as when the surface process dies)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.faces = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:  # noqa: ANN401
        self.faces += 1
        if self.faces == 1:
            failed: Future[Any] = Future()
            failed.set_exception(BrokenProcessPool("the surface process died"))
            return failed
        return super().submit(fn, *args, **kwargs)


async def test_a_face_that_failed_to_draw_is_drawn_again() -> None:
    """The face drawn ahead failed: it is drawn again at print and the card is issued."""
    rig = await make_rig([blank_card(i) for i in range(1, 3)])
    renderer = _FailsOnce()
    controller = rig.controller(renderer=renderer)
    await controller.start()
    try:
        job = await controller.submit(make_order())
        done = await controller.wait(job.job_id)
    finally:
        await controller.stop()
        renderer.shutdown()
    assert done.status is JobStatus.ISSUED
    assert renderer.faces == 2
    assert rig.printer.commands.count("print") == 1
