"""A small batch through the real production controller and an issuance station.

The station simulator serves its printer on a real pty and puts the chip at
the contact station into an in-process reader (the wiring of ``branchd demo``);
the controller journals into the SQL journal on SQLite and PostgreSQL; the
platform and bank are the production tests' de-duplicating fakes. The batch
goes: import, submit, one row taken out (batch-to-single), production rounds
until every card is made, pickup, and enabling 96 hours later on the fake
clock. Batch cards are not enabled by production (the ``enable`` step is
journaled ``deferred``); the card taken out is enabled at once, like a window
card.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from devices.encoder import InProcessEncoder
from devices.printer import PrinterDriver
from gateway.archive.store import ArchiveStore
from gateway.audit.log import AuditLog
from gateway.batches.production import ControllerProduction
from gateway.batches.schemas import BatchPickupIn
from gateway.batches.service import FINISHED_ROWS, BatchService, BatchSettings
from gateway.issuance.journal import SqlJournal
from gateway.operations.catalogue import Material
from gateway.operations.rows import ApplicationRow
from gateway.operations.schemas import ApprovalIn, FeeIn, OperationRequest, PersonIn
from gateway.operations.service import BusinessService
from gateway.operations.settings import BusinessConfig
from gateway.operations.workdays import WorkCalendar
from gateway.people import lifecycle
from gateway.people.rows import CardRow
from gateway.people.states import ApplicationEvent, CardEvent
from gateway.people.vault import PersonalDataVault
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.http.idempotency import request_digest
from gateway.runtime.migrate import upgrade
from gateway.upstream.models import OutboxRow
from gateway.upstream.outbox import KeyStorePayloadProtector, Outbox
from production import Phase, ProductionController, Station, StepName, StockLedger
from security.keystore import Algorithm, KeyUsage, MasterKey, SoftwareKeyStore
from security.suites import GM
from simulators.station import StationConfig, StationSimulator
from tests.devices.printer.conftest import TEST_TIMEOUTS, pty_available  # noqa: F401 - fixture
from tests.fakes import FakeClock
from tests.gateway.batches.conftest import (
    HANDLER,
    SCAN,
    SUPERVISOR,
    TELLER,
    card_list,
    id_number,
    photo,
)
from tests.production.conftest import AutoQc, FakeBank, FakePlatform, SimKeyService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

pytestmark = pytest.mark.integration

READER = "Virtual PCD 00 00"
REGION = "652300"
BLANKS = 8


@dataclass
class Line:
    """The batch service over a controller, a station and the SQL journal."""

    service: BatchService
    business: BusinessService
    controller: ProductionController
    journal: SqlJournal
    station: StationSimulator
    platform: FakePlatform
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock


@pytest.fixture
async def line(
    database_url: str,
    tmp_path: Path,
    pty_available: None,  # noqa: F811 - the fixture
) -> AsyncIterator[Line]:
    """Everything from the card list to the chip, on a migrated database."""
    del pty_available
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    store = SoftwareKeyStore.open(
        tmp_path / "keys.bin", MasterKey(os.urandom(32), source="test"), create=True
    )
    store.generate_key("outbox-payload", Algorithm.AES_256, KeyUsage.ENCRYPT)
    vault = PersonalDataVault(store, create=True)
    clock = FakeClock()
    audit = AuditLog(sessions, GM, clock)
    encoder = InProcessEncoder(readers=(READER,))
    station = StationSimulator(
        StationConfig(blanks=BLANKS, region=REGION, time_scale=0.0),
        on_card_in=lambda chip: encoder.insert(READER, chip),
        on_card_out=lambda: encoder.remove(READER),
    )
    await station.start()
    driver = PrinterDriver(
        lambda: station.device, clock=FakeClock(), rng=random.Random(7), timeouts=TEST_TIMEOUTS
    )
    await driver.connect()
    journal = SqlJournal(engine, vault)
    await StockLedger(journal, clock).load("station-1", BLANKS, box="BOX-1", operator="op-1")
    platform = FakePlatform()
    controller = ProductionController(
        journal=journal, stations=[Station("station-1", driver, encoder, READER)],
        platform=platform, bank=FakeBank(), key_service=SimKeyService(), quality_check=AutoQc(),
        clock=clock, rng=random.Random(3),
    )  # fmt: skip
    started = asyncio.Event()
    await controller.start()
    started.set()  # what ProductionService.start does after recovery
    business = BusinessService(
        sessions=sessions, vault=vault, audit=audit, clock=clock, rng=random.Random(1),
        calendar=WorkCalendar(), rules=BusinessConfig(), region=REGION,
    )  # fmt: skip
    service = BatchService(
        sessions=sessions, vault=vault, archive=ArchiveStore(tmp_path / "archive", sessions, clock),
        audit=audit, business=business, clock=clock, rng=random.Random(2),
        calendar=WorkCalendar(), region=REGION,
        production=ControllerProduction(controller, journal, started),
        outbox=Outbox(protector=KeyStorePayloadProtector(store, "outbox-payload"), now=clock.now),
        settings=BatchSettings(in_flight=2),
    )  # fmt: skip
    try:
        yield Line(service, business, controller, journal, station, platform, sessions, clock)
    finally:
        await controller.stop()
        await driver.close()
        await station.stop()
        await engine.dispose()


def row(n: int) -> list[str]:
    """A valid row numbered ``n``."""
    return [str(n), f"职工{n}", id_number(n), "13800000000", "昌吉", f"p{n}.jpg", f"s{n}.pdf", "01"]


async def produce_all(line: Line, batch_id: str) -> None:
    """Production rounds until every row is finished, waiting on the controller's jobs."""
    for _ in range(40):
        await line.service.production_round()
        rows = [r for r in await line.service.rows(batch_id) if r.status != "invalid"]
        open_jobs = [r.job_id for r in rows if r.status not in FINISHED_ROWS and r.job_id]
        if all(r.status in FINISHED_ROWS for r in rows):
            return
        assert open_jobs, [r.status for r in rows]
        await asyncio.wait_for(line.controller.wait(open_jobs[0]), 60)
    pytest.fail("the batch did not finish")


async def test_a_batch_through_the_station_then_pickup_and_enabling(line: Line) -> None:
    """Three rows made on the station's chips; the taken-out card enabled at once, others later."""
    rows = [row(1), row(2), row(3)]
    files = {}
    for r in rows:
        files[r[5]] = photo
        files[r[6]] = lambda: SCAN
    summary = await line.service.import_batch(
        employer="昌吉市某某有限公司", handler=PersonIn(**HANDLER),
        materials=[Material.HANDLER_ID_CARD, Material.BATCH_FILE], priority="normal",
        list_name="list.csv", list_data=card_list(rows), files=files, terminal=TELLER,
    )  # fmt: skip
    batch_id = summary.id
    await line.service.submit(batch_id, TELLER)

    # The holder of line 4 (row 3) comes in person before production started: batch-to-single.
    body = OperationRequest(
        case="self", channel="window",  # type: ignore[arg-type]
        applicant=PersonIn(id_number=id_number(3), name="职工3"),
        materials=[Material.APPLICANT_ID_CARD],
    )  # fmt: skip
    digest = request_digest("APPROVE", "batch-to-single", body.model_dump_json().encode())
    approval = await line.business.approve(
        ApprovalIn(operation="batch-to-single", request=body, reason="持卡人急需"),  # type: ignore[arg-type]
        digest, SUPERVISOR,
    )  # fmt: skip
    single = await line.service.to_single(
        batch_id, 4, body, TELLER, digest=digest, approval_id=approval.id
    )

    await produce_all(line, batch_id)
    made = {r.line: r for r in await line.service.rows(batch_id)}
    assert {n: r.status for n, r in made.items()} == {2: "produced", 3: "produced", 4: "issued"}
    async with line.sessions() as session:  # the single's receipt is done with its card
        status = await session.scalar(
            select(ApplicationRow.status).where(
                ApplicationRow.receipt_number == single.receipt_number
            )
        )
    assert status == "completed"

    # The chips carry the holders; the output tray has the three cards.
    tray = line.station.snapshot()["output_tray"]
    assert sorted(card["ssn"] for card in tray) == sorted(id_number(n) for n in (1, 2, 3))
    assert all(card["printed"] for card in tray)

    # Production enabled only the card taken out; the batch jobs journaled the step deferred.
    assert len(line.platform.enabled) == 1
    for n in (2, 3, 4):
        job_id = made[n].job_id
        assert job_id is not None
        events = await line.journal.step_events(job_id)
        enable = [e for e in events if e.step is StepName.ENABLE and e.phase is Phase.DONE]
        assert [e.detail for e in enable] == (["deferred"] if n != 4 else [""])
        stored = await line.journal.load_job(job_id)
        assert stored is not None
        assert stored.order.enable_on_issue is (n == 4)  # kept through the sealed journal
        assert f"{job_id}:enable:1" in line.platform.enabled or n != 4

    async with line.sessions() as session:
        cards = {c.id: c for c in (await session.scalars(select(CardRow))).all()}
    states = {n: (cards[r.card_id].card_state, cards[r.card_id].application_state)
              for n, r in made.items() if r.card_id is not None}  # fmt: skip
    assert states == {2: ("02", "0"), 3: ("02", "0"), 4: ("04", "1")}

    done = await line.service.pickup(
        batch_id,
        BatchPickupIn(handler=PersonIn(**HANDLER), materials=[Material.HANDLER_ID_CARD]),
        TELLER,
    )
    assert done.lines == [2, 3]
    await line.clock.advance(96 * 3600 - 1)
    assert await line.service.enable_due() == 0
    await line.clock.advance(1)
    assert await line.service.enable_due() == 2
    async with line.sessions() as session:
        enabled = (await session.scalars(select(CardRow).where(CardRow.card_state == "04"))).all()
        messages = (await session.scalars(select(OutboxRow))).all()
    assert len(enabled) == 3
    assert all(c.application_state == "1" and c.card_number for c in enabled)
    assert sorted(m.operation for m in messages) == ["enable", "enable"]
    progress = await line.service.progress(batch_id)
    assert progress.counts == {"enabled": 2, "issued": 1}
    assert progress.batch.status == "finished"


async def test_a_batch_reissue_through_the_station(line: Line) -> None:
    """补换卡明细表: the lost card's holder gets a new chip card from the station once paid.

    Two cards are made, picked up and enabled; the first is formally lost. A
    reissue list names both holders: the second (card in use) is refused on its
    row; the fee holds production back until it is settled; the new card is made
    on the station, the lost one cancelled (its cancellation in the outbox), the new
    one picked up and enabled 96 hours later like any batch card.
    """
    applied = await _import(line, [row(1), row(2)], "batch-apply")
    await line.service.submit(applied, TELLER)
    await produce_all(line, applied)
    handler = BatchPickupIn(handler=PersonIn(**HANDLER), materials=[Material.HANDLER_ID_CARD])
    await line.service.pickup(applied, handler, TELLER)
    await line.clock.advance(96 * 3600)
    assert await line.service.enable_due() == 2
    async with line.sessions.begin() as session:
        lost = (await session.scalars(select(CardRow).where(CardRow.card_state == "04"))).all()[0]
        lifecycle.step(lost, ApplicationEvent.REPORT_FORMAL_LOSS)
        lifecycle.step(lost, CardEvent.REPORT_FORMAL_LOSS)
    reissue = await _import(line, [row(1), row(2)], "reissue")
    progress = await line.service.submit(reissue, TELLER)
    assert progress.counts == {"queued": 1, "invalid": 1}
    tray_before = len(line.station.snapshot()["output_tray"])
    await line.service.production_round()
    assert len(line.station.snapshot()["output_tray"]) == tray_before  # the fee first
    await line.business.fees.settle(progress.receipt_number, FeeIn(method="cash"), TELLER)
    await produce_all(line, reissue)
    tray = line.station.snapshot()["output_tray"]
    assert len(tray) == tray_before + 1
    async with line.sessions() as session:
        states = {c.id: c.card_state for c in (await session.scalars(select(CardRow))).all()}
        cancellations = (
            await session.scalars(select(OutboxRow).where(OutboxRow.operation == "cancel_card"))
        ).all()
    assert states[lost.id] == "09"
    assert sorted(states.values()) == ["02", "04", "09"]
    assert len(cancellations) == 1
    await line.service.pickup(reissue, handler, TELLER)
    await line.clock.advance(96 * 3600)
    assert await line.service.enable_due() == 1


async def _import(line: Line, rows: list[list[str]], operation: str) -> str:
    files = {}
    for r in rows:
        files[r[5]] = photo
        files[r[6]] = lambda: SCAN
    summary = await line.service.import_batch(
        operation=operation, employer="昌吉市某某有限公司", handler=PersonIn(**HANDLER),
        materials=[Material.HANDLER_ID_CARD, Material.BATCH_FILE], priority="normal",
        list_name="list.csv", list_data=card_list(rows), files=files, terminal=TELLER,
    )  # fmt: skip
    return summary.id
