"""A batch service over a real migrated database (SQLite and PostgreSQL), key store and archive."""

from __future__ import annotations

import asyncio
import io
import os
import random
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from gateway.archive.store import ArchiveStore
from gateway.audit.log import AuditLog
from gateway.batches.cardlist import COLUMNS
from gateway.batches.errors import BatchRefusal
from gateway.batches.routes import PROBLEMS
from gateway.batches.service import BatchService, BatchSettings
from gateway.operations.catalogue import Role
from gateway.operations.service import BusinessService
from gateway.operations.settings import BusinessConfig
from gateway.operations.workdays import WorkCalendar
from gateway.people.vault import PersonalDataVault
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.http.auth import Terminal
from gateway.runtime.migrate import upgrade
from gateway.runtime.problems import ProblemError
from gateway.upstream.outbox import KeyStorePayloadProtector, Outbox
from production.errors import NoBlanksError
from production.model import ChipFacts, JobRecord, JobStatus, Order, Priority
from security.keystore import Algorithm, KeyUsage, MasterKey, SoftwareKeyStore
from security.suites import GM
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ADULT = "11010519491231002X"
TELLER = Terminal("teller-01", Role.TELLER)
SUPERVISOR = Terminal("supervisor-01", Role.SUPERVISOR)
HANDLER: dict[str, Any] = {"id_number": "110105198001010020", "name": "王经办"}


def id_number(serial: int) -> str:
    """A valid adult identity number, unique per ``serial``."""
    body = f"65230119850101{serial:03d}"
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def photo() -> bytes:
    """A conforming photo."""
    image = Image.new("RGB", (358, 441), (255, 255, 255))
    image.paste((80, 80, 80), (90, 110, 270, 441))
    out = io.BytesIO()
    image.save(out, format="JPEG", dpi=(300, 300))
    return out.getvalue()


SCAN = b"%PDF-1.4 scan"


@contextmanager
def as_problem() -> Iterator[None]:
    """A refusal of the batch service, raised as the problem the API answers it with.

    The problem is the batch section's (:data:`gateway.batches.routes.PROBLEMS`), with
    the refusal's texts and members, as the problem middleware renders it.
    """
    try:
        yield
    except BatchRefusal as refusal:
        problem = PROBLEMS[refusal.reason]
        raise ProblemError(
            problem, refusal.detail, refusal.detail_zh, **refusal.members
        ) from refusal


def card_list(rows: list[list[str]]) -> bytes:
    """A csv card list with the template's header."""
    lines = [",".join(COLUMNS)] + [",".join(row) for row in rows]
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def files_zip(names: dict[str, bytes]) -> bytes:
    """A zip of photos and scans."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in names.items():
            archive.writestr(f"photos/{name}", data)
    return out.getvalue()


@dataclass
class FakeProduction:
    """Production for unit tests of the batch layer: jobs finish when the test says so."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    submitted: list[tuple[str, Priority]] = field(default_factory=list)
    refuse: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        """Ready at once unless a test clears :attr:`started`."""
        self.started.set()

    async def ready(self) -> None:
        """Wait for :attr:`started` (the production service's recovery)."""
        await self.started.wait()

    async def submit(self, order: Order, priority: Priority) -> str:
        """Journal a queued job (or find the application's)."""
        if self.refuse:
            raise NoBlanksError(["feeder-1"])
        for job in self.jobs.values():
            if job.order.application_id == order.application_id:
                return job.job_id
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = JobRecord(
            job_id, order, priority, JobStatus.QUEUED, created_at=FakeClock().now()
        )
        self.submitted.append((order.application_id, priority))
        return job_id

    async def job(self, job_id: str) -> JobRecord | None:
        """The job, if known."""
        return self.jobs.get(job_id)

    def finish(self, job_id: str, *, ok: bool = True) -> None:
        """End the job: issued with a card number and chip facts, or failed."""
        from dataclasses import replace  # noqa: PLC0415

        job = self.jobs[job_id]
        self.jobs[job_id] = replace(
            job,
            status=JobStatus.ISSUED if ok else JobStatus.FAILED,
            order=replace(job.order, card_number=f"N{job_id[-3:]:0>8}"),
            chip=ChipFacts("3B00", "86" * 16, "86" * 8, "3.00"),
            failure=None if ok else "chip_write_failed",
        )


@dataclass
class Kit:
    """The batch service and what the tests look at."""

    service: BatchService
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    production: FakeProduction
    vault: PersonalDataVault
    outbox: Outbox
    business: BusinessService


@pytest.fixture
async def kit(database_url: str, tmp_path: Path) -> AsyncIterator[Kit]:
    """A batch service on a migrated database with a fake production port."""
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
    business = BusinessService(
        sessions=sessions, vault=vault, audit=audit, clock=clock, rng=random.Random(1),
        calendar=WorkCalendar(), rules=BusinessConfig(), region="652300",
    )  # fmt: skip
    outbox = Outbox(protector=KeyStorePayloadProtector(store, "outbox-payload"), now=clock.now)
    production = FakeProduction()
    service = BatchService(
        sessions=sessions, vault=vault, archive=ArchiveStore(tmp_path / "archive", sessions, clock),
        audit=audit, business=business, clock=clock, rng=random.Random(2),
        calendar=WorkCalendar(), region="652300", production=production, outbox=outbox,
        settings=BatchSettings(in_flight=2),
    )  # fmt: skip
    yield Kit(service, sessions, clock, production, vault, outbox, business)
    await engine.dispose()
