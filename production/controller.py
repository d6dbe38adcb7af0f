"""The card production controller: instant-issuance jobs over printer+encoder stations.

Theory of operation
-------------------

A job goes through :data:`~production.model.STEP_ORDER`. Every step is
journaled ``begun`` before it acts and ``done`` after, in one transaction with
the stock movement it causes (a blank *taken* at feed, *spoiled* at reject,
*issued* at the quality check). Three kinds of task move jobs:

- a **prepare** task per new job pre-opens the card on the platform, then
  queues the job (window jobs before batch jobs, first come first served);
- a **worker** per station takes one job at a time, feeds a blank, reads the
  chip, authenticates and writes it (up to ``chip_write_attempts`` times),
  reads it back, prints and ejects; then the station is free for the next
  card while
- a **finishing** task per ejected job waits for the teller's quality check,
  returns the data (回盘), binds the bank account and enables the card.

A card that cannot be made (chip write failed on every attempt, read-back
mismatch, jam, print interrupted, quality check failed) is rejected and
recorded as spoiled, and the job takes another blank, up to
``cards_per_job`` blanks. A printer error pauses the station (reported
through ``on_station_paused``) until :meth:`ProductionController.resume_station`;
a job whose card is still inside waits for that station, any other job goes
back to the queue for another station.

At :meth:`ProductionController.start` every unfinished job is picked up where
its journal left it: a step found ``begun`` (or ``failed``) is settled by
looking at the station (is a card inside? which chip?) before going on, so a
card is resumed, or rejected and recorded as spoiled; never is a second good
card made for one application.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import heapq
import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, TypeVar

import structlog

from devices.backoff import BackoffPolicy, backoff_delays
from devices.encoder.errors import EncoderConnectionError
from devices.printer.errors import (
    PrinterCoverOpenError,
    PrinterError,
    PrinterFeederEmptyError,
    PrinterJamError,
    PrinterRibbonError,
)
from production import chip
from production.errors import (
    ChipWriteError,
    DeviceOfflineError,
    NoBlanksError,
    NoEncoderError,
    NoStationError,
    UnknownJobError,
    UpstreamRefusedError,
    VerifyMismatchError,
)
from production.model import (
    CARD_STEPS,
    JobRecord,
    JobStatus,
    Order,
    Phase,
    Priority,
    StepEvent,
    StepName,
    StockEntry,
    StockKind,
    next_step,
)
from production.ports import ReturnData
from production.stock import BEIJING, StockBalance
from production.surface import CardFace, CardLayout, render_panels
from protocols.printer.commands import CardPosition
from protocols.sscard import SscardError

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Coroutine, Sequence
    from concurrent.futures import Executor

    from devices.clock import Clock
    from production.model import ChipFacts
    from production.ports import (
        BankPort,
        EncoderPort,
        Journal,
        KeyService,
        PlatformPort,
        PrinterPort,
        QualityCheck,
    )
    from protocols.printer.frames import Depth, Panel

__all__ = ["ProductionController", "ProductionSettings", "Station", "StationView"]

log = structlog.get_logger(__name__)

_S = StepName
#: Printer errors after which nothing moved: the same step is tried again.
_NOTHING_MOVED: Final = frozenset(
    {PrinterRibbonError.code, PrinterCoverOpenError.code, PrinterFeederEmptyError.code}
)
#: Steps that hold a card (for reconciliation), in any phase but as noted.
_HOLDING: Final = CARD_STEPS | {_S.QUALITY_CHECK, _S.REJECT}
#: Steps whose ``begun`` is stored before they act: recovery settles each of them
#: differently from the step before (it looks for the blank taken, spoils a card
#: whose print was interrupted, looks for the card ejected or rejected). Recovery
#: repeats every other step whether or not its ``begun`` was stored (the chip is
#: read and written again, the teller asked again, an upstream call made again
#: with the same message id), so that ``begun`` is journaled in order and the
#: job goes on without waiting for its commit.
_STORED_BEFORE_ACTING: Final = frozenset({_S.FEED, _S.PRINT, _S.EJECT, _S.REJECT})
Outcome = Literal["ejected", "requeue", "pinned", "failed"]
T = TypeVar("T")
Panels = list[tuple["Panel", "Depth", bytes]]


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a drawing's error as seen (the print step that awaits it raises it again)."""
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True, slots=True)
class Station:
    """A printer with its contact encoder.

    Attributes:
        name: Station name (unique).
        printer: The printer.
        encoder: The chip encoder in its contact station (``None``: not configured).
        reader: The encoder's reader name.
        feeder: The stock ledger's name for the printer's feeder (default: ``name``).
    """

    name: str
    printer: PrinterPort
    encoder: EncoderPort | None = None
    reader: str | None = None
    feeder: str | None = None

    @property
    def feeder_id(self) -> str:
        """The feeder's ledger name."""
        return self.feeder or self.name


@dataclass(frozen=True, slots=True)
class ProductionSettings:
    """Tunables of the controller.

    Attributes:
        chip_write_attempts: Authenticate-and-write attempts per card.
        cards_per_job: Blanks a job may use before it fails.
        upstream_backoff: Spacing of retried platform and bank calls.
        layout: The card surface layout.
        renderer: Where surfaces are drawn: ``None`` for the event loop's default
            thread pool; the daemon gives a process (``gateway.issuance.render_pool``), as
            Pillow holds the GIL while it draws text.
    """

    chip_write_attempts: int = 3
    cards_per_job: int = 3
    upstream_backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(initial=1.0, maximum=60.0)
    )
    layout: CardLayout = field(default_factory=CardLayout)
    renderer: Executor | None = None


@dataclass(frozen=True, slots=True)
class StationView:
    """A station's state for the API and telemetry.

    Attributes:
        name: Station name.
        paused: Why it is paused (an error code), or ``None``.
        job_id: The job on it now, if any.
        waiting_jobs: Jobs whose card is inside, waiting for it.
    """

    name: str
    paused: str | None
    job_id: str | None
    waiting_jobs: int


@dataclass(slots=True)
class _StationState:
    station: Station
    paused: str | None = None
    job_id: str | None = None
    pinned: deque[str] = field(default_factory=deque)


class _Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A printer or encoder problem stopped the station run."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class ProductionController:
    """Runs instant-issuance jobs on stations (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - every port is injected
        self,
        *,
        journal: Journal,
        stations: Sequence[Station],
        platform: PlatformPort,
        bank: BankPort,
        key_service: KeyService,
        quality_check: QualityCheck,
        clock: Clock,
        rng: random.Random,
        settings: ProductionSettings | None = None,
        on_station_paused: Callable[[str, str], None] | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        """Wire the ports; nothing runs until :meth:`start`."""
        names = [s.name for s in stations]
        if len(set(names)) != len(names):
            raise ValueError("station names must be unique")
        self._journal = journal
        self._stations = {s.name: _StationState(s) for s in stations}
        self._platform = platform
        self._bank = bank
        self._keys = key_service
        self._qc = quality_check
        self._clock = clock
        self._rng = rng
        self._settings = settings or ProductionSettings()
        self._on_paused = on_station_paused
        self._new_id = new_id
        self._jobs: dict[str, JobRecord] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._seq = itertools.count()
        self._work = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        #: Surfaces drawn ahead for the jobs on the stations.
        self._renders: dict[str, tuple[CardFace, asyncio.Future[Panels]]] = {}

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Recover every unfinished job from the journal, then start the workers."""
        if self._started:
            return
        self._started = True
        for job in await self._journal.unfinished_jobs():
            self._track(job)
            self._dispatch(job, recovering=True)
        for state in self._stations.values():
            self._spawn(self._worker(state), f"production-station-{state.station.name}")
        log.info("production_started", stations=len(self._stations), recovered=len(self._jobs))

    async def stop(self) -> None:
        """Cancel every task (in-flight steps stay ``begun`` in the journal) and wait.

        Then the journal commits what it still holds queued.
        """
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._started = False
        try:
            await self._journal.flush()
        except Exception:  # lost like the queued writes of a crash: recovery settles them
            log.exception("production_journal_flush_failed")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("production_task_crashed", task=task.get_name(), exc_info=error)

    def _track(self, job: JobRecord) -> None:
        self._jobs[job.job_id] = job
        event = self._finished.setdefault(job.job_id, asyncio.Event())
        if job.status.finished:
            event.set()

    # ------------------------------------------------------------------- API

    async def submit(self, order: Order, priority: Priority = Priority.WINDOW) -> JobRecord:
        """Check the preconditions, journal the job and start it.

        One application has one job: submitting it again returns the job it has.

        Raises:
            NoStationError: No station is configured.
            NoEncoderError: No station has an encoder configured.
            DeviceOfflineError: No station with an encoder is online and running.
            NoBlanksError: The usable stations' feeders hold no blank (by the ledger).
        """
        await self._check_preconditions()
        now = self._clock.now()
        job = JobRecord(
            job_id=self._new_id(),
            order=order,
            priority=priority,
            status=JobStatus.QUEUED,
            created_at=now,
            step=_S.PRE_OPEN,
            phase=Phase.BEGUN,
        )
        event = StepEvent(job.job_id, _S.PRE_OPEN, Phase.BEGUN, job.card_seq, now)
        stored = await self._journal.add_job(job, event)
        if stored.job_id in self._jobs:
            return self._jobs[stored.job_id]
        self._track(stored)
        if stored.job_id == job.job_id:
            log.info("job_submitted", job_id=job.job_id, priority=priority.name.lower())
            self._dispatch(stored, recovering=False)
        return stored

    async def _check_preconditions(self) -> None:
        if not self._stations:
            raise NoStationError("no station is configured")
        equipped = [s for s in self._stations.values() if s.station.encoder and s.station.reader]
        if not equipped:
            raise NoEncoderError("no station has a chip encoder configured")
        reasons: dict[str, str] = {}
        usable: list[_StationState] = []
        for state in equipped:  # a paused station is usable: the job waits for it
            if not state.station.printer.connected:
                reasons[state.station.name] = "printer_offline"
            else:
                usable.append(state)
        if not usable:
            raise DeviceOfflineError(reasons)
        feeders = sorted({s.station.feeder_id for s in usable})
        totals = await self._journal.stock_totals()
        remaining = sum(StockBalance.from_totals(f, totals.get(f, {})).remaining for f in feeders)
        waiting = sum(
            1
            for job in self._jobs.values()
            if not job.status.finished and (job.step is None or job.step is _S.PRE_OPEN)
        )
        if remaining - waiting <= 0:
            raise NoBlanksError(feeders)

    async def wait(self, job_id: str) -> JobRecord:
        """Wait until the job is issued or failed; return its record.

        Raises:
            UnknownJobError: No such job here.
        """
        event = self._finished.get(job_id)
        if event is None:
            raise UnknownJobError(job_id)
        await event.wait()
        return self._jobs[job_id]

    def job(self, job_id: str) -> JobRecord:
        """The job's current record.

        Raises:
            UnknownJobError: No such job here.
        """
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UnknownJobError(job_id) from None

    def jobs(self) -> list[JobRecord]:
        """The jobs this controller runs or ran since it started, oldest first."""
        return list(self._jobs.values())

    def stations(self) -> list[StationView]:
        """Every station's state."""
        return [
            StationView(s.station.name, s.paused, s.job_id, len(s.pinned))
            for s in self._stations.values()
        ]

    async def pause_station(self, name: str, reason: str = "operator") -> None:
        """Stop giving ``name`` new cards (the card inside is finished first)."""
        self._pause(self._stations[name], reason)

    async def resume_station(self, name: str) -> None:
        """Resume a paused station (after the operator cleared its cause)."""
        state = self._stations[name]
        if state.paused is not None:
            log.info("station_resumed", station=name)
        state.paused = None
        async with self._work:
            self._work.notify_all()

    def cards_held(self) -> dict[str, int]:
        """Cards the unfinished jobs hold (inside a printer or at QC), per feeder."""
        held: dict[str, int] = {}
        for job in self._jobs.values():
            if self._holds_card(job) and job.feeder is not None:
                held[job.feeder] = held.get(job.feeder, 0) + 1
        return held

    @staticmethod
    def _holds_card(job: JobRecord) -> bool:
        """Whether the ledger should count the job's card as taken and not yet settled."""
        if job.status.finished or job.step not in _HOLDING:
            return False
        if job.step is _S.FEED:
            return job.phase is Phase.DONE
        if job.step in {_S.QUALITY_CHECK, _S.REJECT}:
            return job.phase is not Phase.DONE
        return True

    # -------------------------------------------------------------- dispatch

    def _dispatch(self, job: JobRecord, *, recovering: bool) -> None:
        """Start the task a job needs now, from its journaled position."""
        step, phase = job.step, job.phase
        if step is None or (step is _S.PRE_OPEN and phase is not Phase.DONE):
            self._spawn(self._prepare(job.job_id), f"production-prepare-{job.job_id}")
        elif step in {_S.QUALITY_CHECK, _S.RETURN_DATA, _S.BIND_ACCOUNT, _S.ENABLE} or (
            step is _S.EJECT and phase is Phase.DONE
        ):
            self._spawn(self._finish(job.job_id), f"production-finish-{job.job_id}")
        elif recovering and job.station in self._stations and step is not _S.PRE_OPEN:
            self._stations[job.station].pinned.append(job.job_id)
        else:
            self._enqueue(job)

    def _enqueue(self, job: JobRecord) -> None:
        heapq.heappush(self._heap, (int(job.priority), next(self._seq), job.job_id))
        self._spawn(self._notify(), "production-notify")

    async def _notify(self) -> None:
        async with self._work:
            self._work.notify_all()

    async def _take(self, state: _StationState) -> str:
        async with self._work:
            while True:
                if state.paused is None:
                    if state.pinned:
                        return state.pinned.popleft()
                    if self._heap and state.station.encoder is not None:
                        return heapq.heappop(self._heap)[2]
                await self._work.wait()

    def _pause(self, state: _StationState, reason: str) -> None:
        if state.paused is None:
            log.warning("station_paused", station=state.station.name, reason=reason)
            if self._on_paused is not None:
                self._on_paused(state.station.name, reason)
        state.paused = reason

    # ------------------------------------------------------------- journal

    async def _begin(self, job: JobRecord, step: StepName, station: str | None) -> JobRecord:
        job = replace(job, step=step, phase=Phase.BEGUN, station=station, status=JobStatus.RUNNING)
        event = StepEvent(job.job_id, step, Phase.BEGUN, job.card_seq, self._clock.now(), station)
        await self._journal.record(job, event, durable=step in _STORED_BEFORE_ACTING)
        self._jobs[job.job_id] = job
        return job

    async def _end(
        self,
        job: JobRecord,
        step: StepName,
        phase: Phase,
        *,
        detail: str = "",
        stock: Sequence[StockEntry] = (),
        **changes: object,
    ) -> JobRecord:
        event_seq = job.card_seq
        job = replace(job, step=step, phase=phase, **changes)  # type: ignore[arg-type]
        event = StepEvent(
            job.job_id, step, phase, event_seq, self._clock.now(), job.station, detail
        )
        await self._journal.record(job, event, stock, durable=job.status.finished)
        self._jobs[job.job_id] = job
        if job.status.finished:
            self._finished[job.job_id].set()
        return job

    def _stock(self, job: JobRecord, kind: StockKind, feeder: str, reason: str = "") -> StockEntry:
        return StockEntry(
            key=f"{job.job_id}:{job.card_seq}:{kind.value}",
            feeder=feeder,
            kind=kind,
            quantity=1,
            at=self._clock.now(),
            reason=reason,
            job_id=job.job_id,
        )

    # --------------------------------------------------------------- prepare

    async def _prepare(self, job_id: str) -> None:
        """Pre-open on the platform (retried while down), then queue the job.

        A refusal (the platform answered no) ends the job at once, ``failed`` with
        ``refused:<target>:<status>``: no blank was taken, nothing is retried.
        """
        job = self._jobs[job_id]
        try:
            opened = await self._upstream(
                job,
                lambda: self._platform.pre_open(job.order, message_id=f"{job_id}:pre_open"),
                refusal_ends=True,
            )
        except UpstreamRefusedError as exc:
            failure = f"refused:{exc.target}:{exc.status}"[:128]
            log.warning("production_refused", job_id=job_id, step="pre_open", failure=failure)
            await self._end(
                job, _S.PRE_OPEN, Phase.FAILED, detail=failure, failure=failure,
                status=JobStatus.FAILED,
            )  # fmt: skip
            return
        # The branch's own photo of the holder is printed; the platform's only without one.
        photo = job.order.photo or opened.photo
        order = replace(job.order, card_number=opened.card_number, photo=photo)
        issue_date = self._clock.now().astimezone(BEIJING).date()
        job = await self._end(
            job, _S.PRE_OPEN, Phase.DONE, order=order, issue_date=issue_date, station=None
        )
        self._enqueue(job)

    async def _upstream(
        self, job: JobRecord, call: Callable[[], Awaitable[T]], *, refusal_ends: bool = False
    ) -> T:
        """``call`` until it answers, backing off while the other side is down.

        ``refusal_ends``: a refusal is raised to the caller (before anything is made).
        Once the card is made its upstream steps keep trying: the card exists, and a
        refusal there is for people to settle with the platform; the job waits.
        """
        delays = backoff_delays(self._settings.upstream_backoff, self._rng)
        while True:
            try:
                result = await call()
            except UpstreamRefusedError:
                if refusal_ends:
                    raise  # an answer, not an outage: the caller ends the job
                delay = next(delays)
                log.warning(  # a refusal after the card is made: people settle it upstream
                    "production_upstream_refused", job_id=job.job_id, step=job.step,
                    retry_in=round(delay, 3),
                )  # fmt: skip
                await self._clock.sleep(delay)
            except Exception as exc:  # noqa: BLE001 - any other upstream failure is retried
                delay = next(delays)
                log.warning(
                    "production_upstream_retry",
                    job_id=job.job_id,
                    step=job.step,
                    error=type(exc).__name__,
                    retry_in=round(delay, 3),
                )
                await self._clock.sleep(delay)
            else:
                return result

    # ---------------------------------------------------------------- worker

    async def _worker(self, state: _StationState) -> None:
        """Take one job at a time and run its card steps on this station."""
        while True:
            job_id = await self._take(state)
            state.job_id = job_id
            try:
                outcome = await self._run_on_station(self._jobs[job_id], state)
            finally:
                state.job_id = None
                self._renders.pop(job_id, None)
            job = self._jobs[job_id]
            if outcome == "ejected":
                self._spawn(self._finish(job_id), f"production-finish-{job_id}")
            elif outcome == "requeue":
                self._enqueue(job)
            elif outcome == "pinned":
                state.pinned.appendleft(job_id)

    async def _run_on_station(self, job: JobRecord, state: _StationState) -> Outcome:
        station = state.station
        try:
            job = await self._settle(job, state)
            step = next_step(job.step)
            if step is not _S.FEED:
                self._prerender(job)  # resumed after the feed
            while job.status is not JobStatus.FAILED and step in CARD_STEPS:
                job = await self._card_step(job, step, state)
                step = next_step(job.step)
        except _Interrupted as stop:
            return stop.outcome
        finally:
            log.debug("station_run_ended", station=station.name, job_id=job.job_id)
        return "failed" if job.status is JobStatus.FAILED else "ejected"

    async def _card_step(  # noqa: PLR0911 - one branch per step
        self, job: JobRecord, step: StepName, state: _StationState
    ) -> JobRecord:
        station = state.station
        if step is _S.FEED:
            await self._reject_orphan(state)
            job = replace(job, feeder=station.feeder_id)
            job = await self._begin(job, _S.FEED, station.name)
            self._prerender(job)  # drawn while the blank is fed and encoded
            await self._printer(job, state, station.printer.insert_card())
            taken = self._stock(job, StockKind.TAKEN, station.feeder_id)
            return await self._end(job, _S.FEED, Phase.DONE, stock=[taken])
        if step is _S.READ_CHIP:
            return await self._read_chip(job, state)
        if step in {_S.AUTHENTICATE, _S.WRITE}:
            return await self._write_chip(job, state)
        if step is _S.VERIFY:
            job = await self._begin(job, _S.VERIFY, station.name)
            try:
                await self._encoder(
                    job, state, chip.verify(*self._chip_args(station), self._target(job))
                )
            except VerifyMismatchError as exc:
                return await self._spoil(job, state, exc.reason)
            return await self._end(job, _S.VERIFY, Phase.DONE)
        if step is _S.PRINT:
            panels = await self._panels(job)
            job = await self._begin(job, _S.PRINT, station.name)
            await self._printer(job, state, station.printer.print_card(panels))
            return await self._end(job, _S.PRINT, Phase.DONE)
        job = await self._begin(job, _S.EJECT, station.name)
        await self._printer(job, state, station.printer.eject_card())
        return await self._end(job, _S.EJECT, Phase.DONE, station=None)

    def _face(self, job: JobRecord) -> CardFace:
        return CardFace(
            name=job.order.name,
            ssn=job.order.ssn,
            card_number=job.order.card_number or "",
            issue_date=job.issue_date or self._clock.now().astimezone(BEIJING).date(),
            photo=job.order.photo,
        )

    def _prerender(self, job: JobRecord) -> None:
        """Start drawing the surface while the station feeds and encodes.

        Not before the feed's ``begun`` is stored: drawing takes a core for a few
        milliseconds, which that commit would share.
        """
        if job.order.card_number is None or job.status.finished or job.job_id in self._renders:
            return
        face = self._face(job)
        drawing = self._render(face)
        drawing.add_done_callback(_retrieve)
        self._renders[job.job_id] = (face, drawing)

    async def _panels(self, job: JobRecord) -> Panels:
        """The job's panels: drawn ahead by :meth:`_prerender`, or now."""
        face = self._face(job)
        drawn = self._renders.pop(job.job_id, None)
        if drawn is not None and drawn[0] == face:
            try:
                return await drawn[1]
            except Exception:
                log.warning("surface_drawn_again", job_id=job.job_id, exc_info=True)
        return await self._render(face)

    def _render(self, face: CardFace) -> asyncio.Future[Panels]:
        loop = asyncio.get_running_loop()
        settings = self._settings
        return loop.run_in_executor(settings.renderer, render_panels, face, settings.layout)

    @staticmethod
    def _chip_args(station: Station) -> tuple[EncoderPort, str]:
        assert station.encoder is not None  # noqa: S101 - only equipped stations take jobs
        assert station.reader is not None  # noqa: S101
        return station.encoder, station.reader

    def _target(self, job: JobRecord) -> chip.Personalization:
        assert job.chip is not None  # noqa: S101 - read before written
        return chip.Personalization.of(
            job.order,
            job.chip,
            job.order.card_number or "",
            job.issue_date or job.created_at.date(),
        )

    async def _read_chip(self, job: JobRecord, state: _StationState) -> JobRecord:
        station = state.station
        known = job.chip
        job = await self._begin(job, _S.READ_CHIP, station.name)
        try:
            facts = await self._encoder(job, state, chip.read_blank(*self._chip_args(station)))
        except SscardError:
            return await self._spoil(job, state, "chip_unreadable")
        if known is not None and known.card_id_code != facts.card_id_code:
            return await self._spoil(job, state, "unexpected_card")
        log.info(
            "chip_read", job_id=job.job_id, station=station.name, generation=facts.spec_version
        )
        return await self._end(job, _S.READ_CHIP, Phase.DONE, chip=facts)

    async def _write_chip(self, job: JobRecord, state: _StationState) -> JobRecord:
        station = state.station
        encoder, reader = self._chip_args(station)
        target = self._target(job)
        assert job.chip is not None  # noqa: S101 - read before written
        facts: ChipFacts = job.chip
        last = ""
        attempts = self._settings.chip_write_attempts
        for attempt in range(1, attempts + 1):
            job = await self._begin(job, _S.AUTHENTICATE, station.name)
            try:
                session = await self._encoder(job, state, chip.ChipSession.open(encoder, reader))
                try:
                    await self._encoder(
                        job,
                        state,
                        session.authenticate(self._keys, target, facts, job.order.region),
                    )
                    job = await self._end(job, _S.AUTHENTICATE, Phase.DONE, detail=str(attempt))
                    job = await self._begin(job, _S.WRITE, station.name)
                    await self._encoder(job, state, session.write(target))
                finally:
                    await session.close()
            except _Interrupted:
                raise
            except UpstreamRefusedError as exc:
                # The key service said no: not the chip's fault, and another blank would
                # be refused alike. The card goes to the reject box; the job ends.
                failure = f"refused:{exc.target}:{exc.status}"[:128]
                log.warning(
                    "production_refused", job_id=job.job_id, step="authenticate", failure=failure
                )
                job = await self._end(
                    job, job.step or _S.AUTHENTICATE, Phase.FAILED, detail=failure
                )
                return await self._spoil(job, state, failure, final=True)
            except Exception as exc:  # noqa: BLE001 - card refusals and key-service errors count
                last = getattr(exc, "code", type(exc).__name__)
                log.warning(
                    "chip_write_failed",
                    job_id=job.job_id,
                    station=station.name,
                    attempt=attempt,
                    error=last,
                )
                job = await self._end(job, job.step or _S.WRITE, Phase.FAILED, detail=last)
                continue
            return await self._end(job, _S.WRITE, Phase.DONE, detail=str(attempt))
        return await self._spoil(job, state, ChipWriteError(attempts, last).reason)

    async def _printer(self, job: JobRecord, state: _StationState, action: Awaitable[T]) -> T:
        """Run a printer command; on error journal it, pause the station, stop the run."""
        try:
            return await action
        except PrinterError as exc:
            await self._printer_failed(job, state, exc)

    async def _printer_failed(
        self, job: JobRecord, state: _StationState, exc: PrinterError
    ) -> NoReturn:
        step = job.step or _S.FEED
        log.warning("printer_error", job_id=job.job_id, station=state.station.name, error=exc.code)
        job = await self._end(job, step, Phase.FAILED, detail=exc.code)
        self._pause(state, exc.code)
        if isinstance(exc, PrinterJamError):
            with contextlib.suppress(PrinterError):
                await state.station.printer.clear_error()
            job = await self._settle(job, state, force_reject=True)
            raise _Interrupted("failed" if job.status is JobStatus.FAILED else "requeue")
        inside = await self._card_inside(state)
        if inside is False and exc.code in _NOTHING_MOVED:
            job = await self._settle(job, state)
            raise _Interrupted("failed" if job.status is JobStatus.FAILED else "requeue")
        raise _Interrupted("pinned")

    async def _encoder(self, job: JobRecord, state: _StationState, action: Awaitable[T]) -> T:
        """Run an encoder call; a lost reader or card pauses the station."""
        try:
            return await action
        except EncoderConnectionError as exc:
            log.warning(
                "encoder_error", job_id=job.job_id, station=state.station.name, error=exc.code
            )
            await self._end(
                self._jobs[job.job_id], job.step or _S.READ_CHIP, Phase.FAILED, detail=exc.code
            )
            self._pause(state, exc.code)
            raise _Interrupted("pinned") from None

    async def _card_inside(self, state: _StationState) -> bool | None:
        """Whether a card is inside the printer (``None``: cannot tell)."""
        try:
            status = await state.station.printer.status()
        except PrinterError:
            return None
        return status.card_position is not CardPosition.NONE

    # ---------------------------------------------------------------- settle

    async def _settle(  # noqa: C901, PLR0911 - one answer per journaled position
        self, job: JobRecord, state: _StationState, *, force_reject: bool = False
    ) -> JobRecord:
        """Turn an interrupted step into a definite position by looking at the station."""
        step, phase = job.step, job.phase
        if step is None or (phase is Phase.DONE and not force_reject):
            return job
        if step is _S.REJECT and job.station != state.station.name:
            return await self._spoil(job, None, job.failure or "rejected")  # card not here
        inside = await self._card_inside(state)
        if inside is None:
            self._pause(state, "printer_unreachable")
            raise _Interrupted("pinned")
        log.info(
            "job_settle", job_id=job.job_id, station=state.station.name, step=step, phase=phase
        )
        if step is _S.FEED:
            return await self._settle_feed(job, state, inside=inside, force_reject=force_reject)
        if step is _S.REJECT:
            return await self._spoil(job, state, job.failure or "rejected")
        if step is _S.EJECT and not force_reject:
            if inside:
                return replace(job, step=_S.PRINT, phase=Phase.DONE)
            return await self._end(job, _S.EJECT, Phase.DONE, detail="found_ejected", station=None)
        if not inside:
            return await self._spoil(job, state, "card_missing")
        if force_reject:
            return await self._spoil(job, state, "printer_jam")
        if step is _S.PRINT:
            events = await self._journal.step_events(job.job_id)
            last = events[-1] if events else None
            if phase is Phase.FAILED and last is not None and last.detail in _NOTHING_MOVED:
                return replace(job, step=_S.VERIFY, phase=Phase.DONE)
            return await self._spoil(job, state, "print_interrupted")
        # read, authenticate, write, verify: the chip can be read and written again
        with contextlib.suppress(PrinterError):
            await state.station.printer.insert_card()  # back to the contact station
        return replace(job, step=_S.FEED, phase=Phase.DONE)

    async def _settle_feed(
        self, job: JobRecord, state: _StationState, *, inside: bool, force_reject: bool
    ) -> JobRecord:
        """A blank was taken only if a card is inside; after a jam it is spoiled."""
        if not inside:
            return replace(job, step=_S.PRE_OPEN, phase=Phase.DONE, station=None)
        station = state.station
        taken = self._stock(job, StockKind.TAKEN, station.feeder_id)
        job = await self._end(
            job,
            _S.FEED,
            Phase.DONE,
            stock=[taken],
            station=station.name,
            feeder=station.feeder_id,
        )
        if force_reject:
            return await self._spoil(job, state, "printer_jam")
        return job

    async def _spoil(
        self, job: JobRecord, state: _StationState | None, reason: str, *, final: bool = False
    ) -> JobRecord:
        """Reject the job's card and record it spoiled; the job takes another blank or fails.

        ``final``: the job fails with this card whatever blanks it has left (a refusal).
        """
        feeder = job.feeder or "unknown"
        if job.step is not _S.REJECT or job.phase is not Phase.BEGUN:
            job = replace(job, failure=reason)
            job = await self._begin(job, _S.REJECT, job.station)
        if state is not None and job.station == state.station.name:
            try:
                if await self._card_inside(state):
                    await state.station.printer.reject_card()
            except PrinterError as exc:
                self._pause(state, exc.code)  # the operator takes the card out
        spoiled = self._stock(job, StockKind.SPOILED, feeder, reason)
        log.warning("card_spoiled", job_id=job.job_id, card_seq=job.card_seq, reason=reason)
        out_of_cards = final or job.card_seq >= self._settings.cards_per_job
        return await self._end(
            job,
            _S.REJECT,
            Phase.DONE,
            detail=reason,
            stock=[spoiled],
            card_seq=job.card_seq + (0 if out_of_cards else 1),
            chip=None,
            station=None,
            failure=reason,
            status=JobStatus.FAILED if out_of_cards else JobStatus.QUEUED,
        )

    async def _reject_orphan(self, state: _StationState) -> None:
        """A card inside that no job claims is rejected and recorded spoiled."""
        if not await self._card_inside(state):
            return
        station = state.station
        key = f"orphan:{self._new_id()}"
        now = self._clock.now()
        log.warning("orphan_card_rejected", station=station.name)
        try:
            await station.printer.reject_card()
        except PrinterError as exc:
            self._pause(state, exc.code)
            raise _Interrupted("requeue") from None
        await self._journal.add_stock(
            [
                StockEntry(f"{key}:taken", station.feeder_id, StockKind.TAKEN, 1, now),
                StockEntry(
                    f"{key}:spoiled",
                    station.feeder_id,
                    StockKind.SPOILED,
                    1,
                    now,
                    reason="orphan_card",
                ),
            ]
        )

    # ---------------------------------------------------------------- finish

    async def _finish(self, job_id: str) -> None:
        """QC, return data, bind the account, enable: the steps after the card left."""
        job = self._jobs[job_id]
        while not job.status.finished:
            step = job.step if job.phase is not Phase.DONE else next_step(job.step)
            if step is _S.QUALITY_CHECK:
                job = await self._quality_check(job)
                if job.step is _S.REJECT:
                    if not job.status.finished:
                        self._enqueue(job)
                    return
                continue
            if step is None:
                return
            job = await self._upstream_step(job, step)

    async def _upstream_step(self, job: JobRecord, step: StepName) -> JobRecord:
        """Return data, bind the account or enable: journaled, retried until done."""
        job = await self._begin(job, step, job.station)
        if step is _S.ENABLE and not job.order.enable_on_issue:  # enabled when handed over
            job = await self._end(job, step, Phase.DONE, detail="deferred", status=JobStatus.ISSUED)
            log.info("card_issued", job_id=job.job_id, cards_used=job.card_seq, enable="deferred")
            return job
        message_id = f"{job.job_id}:{step.value}:{job.card_seq}"
        facts = job.chip
        assert facts is not None  # noqa: S101 - read before the card was made
        card_number = job.order.card_number or ""
        call: Callable[[], Awaitable[None]]
        if step is _S.RETURN_DATA:
            data = ReturnData(
                application_id=job.order.application_id,
                card_number=card_number,
                atr=facts.atr,
                card_id_code=facts.card_id_code,
                chip_serial=facts.chip_serial,
                version=facts.spec_version,
            )
            call = functools.partial(self._platform.return_data, data, message_id=message_id)
        elif step is _S.BIND_ACCOUNT:
            call = functools.partial(
                self._bank.bind_account, job.order, card_number, message_id=message_id
            )
        else:
            call = functools.partial(
                self._platform.enable, card_number, facts.card_id_code, message_id=message_id
            )
        await self._upstream(job, call)
        if step is not _S.ENABLE:
            return await self._end(job, step, Phase.DONE)
        job = await self._end(job, step, Phase.DONE, status=JobStatus.ISSUED)
        log.info("card_issued", job_id=job.job_id, cards_used=job.card_seq)
        return job

    async def _quality_check(self, job: JobRecord) -> JobRecord:
        if job.step is not _S.QUALITY_CHECK or job.phase is not Phase.BEGUN:
            job = await self._begin(job, _S.QUALITY_CHECK, job.station)
        verdict = await self._qc.inspect(job)
        if not verdict.passed:
            log.info("quality_check_failed", job_id=job.job_id, operator=verdict.operator)
            return await self._spoil(job, None, f"qc_failed:{verdict.reason or 'rejected'}")
        issued = self._stock(job, StockKind.ISSUED, job.feeder or "unknown")
        issued = dataclasses.replace(issued, operator=verdict.operator)
        return await self._end(
            job, _S.QUALITY_CHECK, Phase.DONE, detail=verdict.operator, stock=[issued]
        )
