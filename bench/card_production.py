"""Card production: the controller against the storage limit and against the devices.

Two measurements, each against a baseline measured in the same run.

(a) **Storage-bound.** ``--cards`` applications go through the real
:class:`~production.ProductionController` with the real
:class:`~gateway.issuance.journal.SqlJournal` on a file SQLite database made
by :func:`gateway.runtime.db.create_engine` with the daemon's pragmas (WAL),
once with ``synchronous=NORMAL`` (durable at checkpoints, not at each commit)
and once with ``synchronous=FULL`` (an fsync at every commit: the daemon's
default).
Devices and upstream systems answer at once: printers and the in-process
encoder with simulated blank cards, the local key service (real card
cryptography), a platform and a bank without latency, a teller who passes
every card. Personal data is sealed by the daemon's ``PersonalDataVault``; card
faces are drawn in the daemon's surface process (``gateway.issuance.render_pool``); the
daemon's JSON logging runs at ``info`` into ``/dev/null``. Three stations; all
applications are submitted at once (batch priority). Measured: cards per
second from the first submission until the last card is enabled, CPU time per
card (every thread, and the surface process), journal writes per card (step
rows) and journal commits per card (``SqlJournal.commits``: concurrent writes
share a transaction).
Baseline, same file system and pragmas: a loop of one small INSERT and a
COMMIT through bare ``sqlite3`` (what the journal's writer thread runs; the
strictest baseline), and for reference through aiosqlite and through
SQLAlchemy Core on an aiosqlite engine. The storage limit in cards/s is the
baseline's commits/s divided by the journal commits per card; the ratio is
cards/s over that limit (goal ≥ 0.5). "Ratio per write" divides by journal
writes per card instead: the limit of a journal committing every write alone.

(b) **Device-bound.** Three stations whose devices take a real station's
times divided by ``--scale`` (100): feed 2 s, chip read 0.5 s, authenticate
and write 3 s (key service included), verify 1 s, print 25 s, eject 1 s, each
platform or bank call 0.3 s (pre-open, return data, bind, enable); the journal
as in (a), with ``synchronous=NORMAL`` and with ``FULL``. The controller
releases a station at eject (quality check and the upstream calls run after
it), and pre-opens every queued application while the stations work, so a
station's time per card is feed + read + write + verify + print + eject, and
the best any controller can do with S stations and N cards is

    makespan = pre_open + ceil(N / S) × station time + (return data + bind + enable)

(the first card cannot start before its pre-open, the last is enabled three
upstream calls after its eject). Device-bound throughput = N / makespan; the
ratio is achieved cards/s over it (goal ≥ 0.98). Printed too: the same device
waits without a controller ("devices alone"), which shows what the machine's
timers make of the derived makespan. This part sleeps for real.

Device time runs on a thread of its own (``_production_fakes.DEVICES``), as a
real device's runs outside the daemon: a device finishes when its time is up and
wakes the event loop through a file descriptor, as a printer's status bytes on
the serial line or pcscd's answer on its socket do. ``--loop-timers`` takes the
times with ``asyncio.sleep`` on the daemon's loop instead, which ends up to a
millisecond late at every wait (epoll waits whole milliseconds) and later when
the loop is busy: a slower device than the one specified.

Usage: ``.venv/bin/python bench/card_production.py [--cards 300] [--line-cards 150]
[--scale 100] [--stations 3] [--only a|b] [--reference] [--loop-timers]``
(``--reference``: (b) also with :class:`~production.MemoryJournal`, the
controller without storage.)

The script is not called ``production.py``: run as a script its folder comes
first on ``sys.path``, and that name would hide the ``production`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import multiprocessing
import os
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import aiosqlite
from _production_fakes import (
    DEMO_MASTER_KEYS,
    DEVICES,
    BenchBank,
    BenchPlatform,
    BenchPrinter,
    BlankStack,
    DeviceTimes,
    PassingQc,
    TimedEncoder,
    holder_photo,
)
from sqlalchemy import text

from devices.clock import SystemClock
from devices.encoder import InProcessEncoder
from gateway.issuance.journal import SqlJournal
from gateway.issuance.render_pool import SurfacePool
from gateway.people.vault import PersonalDataVault
from gateway.runtime.db import create_engine
from gateway.runtime.logs import configure_logging
from gateway.runtime.migrate import upgrade
from production import (
    CardFace,
    CardLayout,
    JobStatus,
    LocalKeyService,
    MemoryJournal,
    Order,
    Priority,
    ProductionController,
    ProductionSettings,
    Station,
    StockLedger,
    render_panels,
)
from security.keystore import MasterKey, SoftwareKeyStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncEngine

Sync = Literal["NORMAL", "FULL"]
RAW_SECONDS = 1.5
_INSERT = "INSERT INTO t (job, at) VALUES (?, ?)"


# ----------------------------------------------------------------- baselines


def _raw_sqlite3(path: Path, sync: Sync, seconds: float) -> float:
    """Commits per second of INSERT + COMMIT with bare ``sqlite3``."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync}")
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, job TEXT, at TEXT)")
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            db.execute("BEGIN")
            db.execute(_INSERT, ("job-0123456789", str(count)))
            db.execute("COMMIT")
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        db.close()


async def _raw_aiosqlite(path: Path, sync: Sync, seconds: float) -> float:
    """Commits per second of INSERT + COMMIT through aiosqlite."""
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={sync}")
        await db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, job TEXT, at TEXT)")
        await db.commit()
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            await db.execute(
                "INSERT INTO t (job, at) VALUES (?, ?)", ("job-0123456789", str(count))
            )
            await db.commit()
            count += 1
        return count / (time.perf_counter() - start)


async def _raw_sqlalchemy(path: Path, sync: Sync, seconds: float) -> float:
    """Commits per second of INSERT + COMMIT through SQLAlchemy Core on the daemon's engine."""
    engine = _engine(path, sync)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, job TEXT, at TEXT)")
            )
        insert = text("INSERT INTO t (job, at) VALUES (:job, :at)")
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            async with engine.begin() as conn:
                await conn.execute(insert, {"job": "job-0123456789", "at": str(count)})
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        await engine.dispose()


def _engine(path: Path, sync: Sync) -> AsyncEngine:
    """The daemon's engine with ``synchronous`` set to ``sync``."""
    return create_engine(f"sqlite+aiosqlite:///{path}", sqlite_synchronous=sync)


# ---------------------------------------------------------------- the line


@dataclass
class LineResult:
    """One production run."""

    cards: int
    seconds: float
    commits: int
    step_rows: int
    cpu: float

    @property
    def rate(self) -> float:
        """Cards per second."""
        return self.cards / self.seconds


def _order(n: int) -> Order:
    return Order(
        application_id=f"APP-{n:06d}",
        ssn=f"3301061990{n % 10000:04d}123X"[:18],
        name="张三丰",
        sex="1",
        ethnicity="01",
        birth_date=dt.date(1990, 1, 1),
        region="330100",
        name_extension="张三丰",
    )


def _children_cpu() -> float:
    """CPU seconds of this process's live children (the surface process), from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for child in multiprocessing.active_children():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(") ", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def run_line(  # noqa: PLR0913 - one run's whole configuration
    workdir: Path,
    *,
    cards: int,
    stations: int,
    times: DeviceTimes,
    sync: Sync,
    label: str,
    memory: bool = False,
) -> LineResult:
    """Make ``cards`` cards on ``stations`` stations; time first submission to last enable.

    With ``memory`` the journal is :class:`~production.MemoryJournal` (a reference:
    the controller without storage).
    """
    clock = SystemClock()
    engine = _engine(workdir / f"{label}.db", sync)
    await upgrade(engine)
    store = SoftwareKeyStore.open(
        workdir / f"{label}-keys.bin", MasterKey(os.urandom(32), source="bench"), create=True
    )
    journal: SqlJournal | MemoryJournal
    if memory:
        journal = MemoryJournal()
    else:
        journal = SqlJournal(engine, PersonalDataVault(store, create=True))
    readers = tuple(f"Bench PCD 00 {i:02d}" for i in range(stations))
    inner = InProcessEncoder(readers=readers)
    encoder = TimedEncoder(inner, times)
    blanks = BlankStack(cards + stations)
    ledger = StockLedger(journal, clock)
    line = []
    for i, reader in enumerate(readers):
        name = f"s{i + 1}"
        line.append(Station(name, BenchPrinter(inner, reader, blanks, times), encoder, reader))
        await ledger.load(name, cards, box=f"BOX-{i}", operator="op-bench")
    renderer = SurfacePool()  # the daemon's: card faces are drawn in a process
    warm = CardFace("-", "-", "-", dt.date(2026, 1, 1))
    await asyncio.get_running_loop().run_in_executor(renderer, render_panels, warm, CardLayout())
    controller = ProductionController(
        journal=journal,
        stations=line,
        platform=BenchPlatform(times, holder_photo()),
        bank=BenchBank(times),
        key_service=LocalKeyService(DEMO_MASTER_KEYS),
        quality_check=PassingQc(),
        clock=clock,
        rng=random.Random(1),
        settings=ProductionSettings(renderer=renderer),
    )
    await controller.start()
    commits = journal.commits
    cpu = time.process_time() + _children_cpu()
    start = time.perf_counter()
    jobs = [await controller.submit(_order(n), Priority.BATCH) for n in range(cards)]
    done = await asyncio.gather(*(controller.wait(job.job_id) for job in jobs))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() + _children_cpu() - cpu
    commits = journal.commits - commits
    await controller.stop()
    renderer.shutdown()
    issued = sum(1 for job in done if job.status is JobStatus.ISSUED)
    if isinstance(journal, MemoryJournal):
        step_rows = len(journal.events)
    else:
        async with engine.connect() as conn:
            counted = await conn.execute(text("SELECT count(*) FROM production_steps"))
            step_rows = int(counted.scalar_one())
    await engine.dispose()
    store.close()
    if issued != cards:
        raise SystemExit(f"{label}: {issued} of {cards} cards issued")
    return LineResult(cards, elapsed, commits, step_rows, cpu)


async def devices_alone(cards: int, stations: int, times: DeviceTimes) -> float:
    """Seconds the same device waits take without a controller.

    Each station sleeps feed, chip read, authenticate-and-write, verify, print and
    eject for its share of the cards, after one pre-open and before three
    upstream calls, on the devices' clock: the derived makespan as this machine's
    timers and thread wakeups realize it.
    """
    phases = (times.feed, times.chip_read, times.auth_write, times.verify, times.print, times.eject)

    async def station(share: int) -> None:
        for _ in range(share):
            for seconds in phases:
                await DEVICES.take(seconds)

    start = time.perf_counter()
    await DEVICES.take(times.upstream)
    shares = [cards // stations + (1 if i < cards % stations else 0) for i in range(stations)]
    await asyncio.gather(*(station(share) for share in shares))
    for _ in range(3):
        await DEVICES.take(times.upstream)
    return time.perf_counter() - start


# ------------------------------------------------------------------ reports


async def storage_bound(workdir: Path, cards: int, stations: int) -> None:
    """(a): zero-latency devices against the raw durable commit rate."""
    print(f"(a) storage-bound: {cards} cards, {stations} stations, zero-latency devices\n")
    print(
        "| synchronous | sqlite3 commits/s (baseline) | aiosqlite commits/s "
        "| SQLAlchemy+aiosqlite commits/s | cards/s | CPU ms/card | journal writes/card "
        "| commits/card | storage limit cards/s | ratio | ratio per write |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sync: Sync
    for sync in ("NORMAL", "FULL"):
        raw = await asyncio.to_thread(_raw_sqlite3, workdir / f"raw3-{sync}.db", sync, RAW_SECONDS)
        aio = await _raw_aiosqlite(workdir / f"rawaio-{sync}.db", sync, RAW_SECONDS)
        core = await _raw_sqlalchemy(workdir / f"rawsa-{sync}.db", sync, RAW_SECONDS)
        result = await run_line(
            workdir,
            cards=cards,
            stations=stations,
            times=DeviceTimes.zero(),
            sync=sync,
            label=f"a-{sync}",
        )
        per_card = result.commits / cards
        writes = result.step_rows / cards
        limit = raw / per_card
        print(
            f"| {sync} | {raw:,.0f} | {aio:,.0f} | {core:,.0f} | {result.rate:,.1f} "
            f"| {result.cpu / cards * 1000:.0f} | {writes:.1f} | {per_card:.2f} | {limit:,.1f} "
            f"| {result.rate / limit:.2f} | {result.rate / (raw / writes):.2f} |"
        )


async def device_bound(  # noqa: PLR0913 - the run's configuration
    workdir: Path, cards: int, stations: int, scale: float, *, syncs: Sequence[Sync], memory: bool
) -> None:
    """(b): real device times scaled down, against what the stations can do."""
    times = DeviceTimes().scaled(scale)
    makespan = times.upstream + math.ceil(cards / stations) * times.station + 3 * times.upstream
    bound = cards / makespan
    print(
        f"\n(b) device-bound: {cards} cards, {stations} stations, device times ÷{scale:g}: "
        f"station {times.station * 1000:.1f} ms/card, upstream {times.upstream * 1000:.1f} ms/call"
    )
    print(
        f"    steady state {stations / times.station:.3f} cards/s; "
        f"ideal makespan {makespan:.3f} s; device-bound {bound:.3f} cards/s\n"
    )
    alone = cards / await devices_alone(cards, stations, times)
    print(
        "| journal | seconds | cards/s | CPU ms/card | device-bound cards/s | ratio "
        "| devices alone cards/s | ratio to devices alone |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    runs: list[tuple[str, Sync, bool]] = [(f"SQLite, synchronous={s}", s, False) for s in syncs]
    if memory:
        runs.append(("in memory (reference)", "NORMAL", True))
    for name, sync, in_memory in runs:
        result = await run_line(
            workdir,
            cards=cards,
            stations=stations,
            times=times,
            sync=sync,
            label=f"b-{sync}-{in_memory}",
            memory=in_memory,
        )
        print(
            f"| {name} | {result.seconds:.3f} | {result.rate:.3f} "
            f"| {result.cpu / cards * 1000:.0f} | {bound:.3f} | {result.rate / bound:.3f} "
            f"| {alone:.3f} | {result.rate / alone:.3f} |"
        )


def main() -> None:
    """Run (a) and (b) and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=300, help="cards in (a)")
    parser.add_argument("--line-cards", type=int, default=150, help="cards in (b)")
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument("--scale", type=float, default=100.0, help="device times divided by")
    parser.add_argument("--only", choices=("a", "b"), default=None)
    parser.add_argument(
        "--reference", action="store_true", help="(b) also with the journal in memory"
    )
    parser.add_argument(
        "--loop-timers",
        action="store_true",
        help="(b) device times as asyncio.sleep on the daemon's loop, as earlier runs took them",
    )
    args = parser.parse_args()
    DEVICES.on_loop = args.loop_timers
    with open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: PTH123 - a stream
        configure_logging("info", "json", sink)
        with tempfile.TemporaryDirectory(prefix="bench-production-") as tmp:
            workdir = Path(tmp)
            if args.only in {None, "a"}:
                asyncio.run(storage_bound(workdir, args.cards, args.stations))
            if args.only in {None, "b"}:
                syncs: list[Sync] = ["NORMAL", "FULL"]
                asyncio.run(
                    device_bound(
                        workdir,
                        args.line_cards,
                        args.stations,
                        args.scale,
                        syncs=syncs,
                        memory=args.reference,
                    )
                )


if __name__ == "__main__":
    main()
