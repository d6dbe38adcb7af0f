r"""The PC/SC encoder driver: pyscard through pcscd, off the event loop.

Threads. pyscard blocks, so every call for one reader runs on that reader's
own thread (a ``ThreadPoolExecutor(max_workers=1)``), with its own PC/SC
context; the reader monitor runs on a thread of its own with another context.
Nothing of pyscard runs on the event loop, and the loop waits on futures with
a timeout.

Monitor. pyscard's ``CardMonitor``/``ReaderMonitor`` thread dies silently
when pcscd goes away, so :meth:`PcscEncoder.run` polls by itself: list the
readers, then ``SCardGetStatusChange`` on them (and on pcsc-lite's
``\\?PnP?\Notification`` pseudo-reader) with a short timeout, and turn the
differences into :mod:`devices.encoder.channel` events. When pcscd stops or
restarts, the calls answer "no service": the driver reports
:class:`~devices.encoder.channel.ServiceLost`, drops its contexts, waits
a backoff delay on the injected clock, establishes a new context, re-lists
the readers and reports :class:`~devices.encoder.channel.ServiceRestored`.
An unexpected error leaves :meth:`PcscEncoder.run` so a supervisor restarts it.

Errors from pyscard are translated at this boundary
(:mod:`devices.encoder.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import structlog

from devices.backoff import BackoffPolicy, backoff_delays
from devices.encoder.channel import (
    CardInserted,
    CardRemoved,
    EventListener,
    ReaderAdded,
    ReaderEvent,
    ReaderRemoved,
    ServiceLost,
    ServiceRestored,
    TransmissionProtocol,
    exchange,
)
from devices.encoder.errors import (
    SCARD_E_CANCELLED,
    SCARD_E_NO_READERS_AVAILABLE,
    SCARD_E_TIMEOUT,
    SCARD_E_UNKNOWN_READER,
    EncoderConnectionError,
    EncoderError,
    EncoderTimeoutError,
    ServiceUnavailableError,
    map_pcsc_errors,
    pcsc_error,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from devices.clock import Clock
    from protocols.apdu import CommandApdu, ResponseApdu

__all__ = ["PcscChannel", "PcscEncoder"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: pcsc-lite's pseudo-reader whose state changes when a reader is added or removed.
PNP_NOTIFICATION: Final = "\\\\?PnP?\\Notification"
_PROTOCOLS: Final[dict[TransmissionProtocol, int]] = {"T=0": 0x0001, "T=1": 0x0002}
_ERROR_BITS: Final = 0xFFFFFFFF


def _scard() -> Any:  # noqa: ANN401 - pyscard has no type information
    """Import pyscard's low-level module (only where it is needed)."""
    try:
        from smartcard import scard  # noqa: PLC0415 - optional native module
    except ImportError as exc:
        msg = "pyscard is not installed"
        raise ServiceUnavailableError(msg) from exc
    return scard


def _check(result: int, operation: str, reader: str | None = None) -> None:
    if result & _ERROR_BITS:
        raise pcsc_error(result, operation, reader)


async def _on(executor: ThreadPoolExecutor, limit: float, fn: Callable[[], T], reader: str) -> T:
    """Run ``fn`` on ``executor``; wait at most ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(executor, fn)
    try:
        async with asyncio.timeout(limit):  # not wait_for: on 3.11 it can drop a cancellation
            return await future
    except TimeoutError:
        msg = f"PC/SC call did not finish within {limit} s"
        raise EncoderTimeoutError(msg, reader=reader) from None


@dataclass(slots=True)
class _ReaderState:
    """What the monitor last saw of one reader."""

    event_state: int
    present: bool
    atr: bytes


class _ReaderWorker:
    """One reader's thread and PC/SC context; every method but ``run`` runs on that thread."""

    _numbers = itertools.count(1)

    def __init__(self, reader: str, scard: Any) -> None:  # noqa: ANN401 - pyscard module
        self.reader = reader
        self.scard = scard
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"pcsc-reader-{next(self._numbers)}"
        )
        self._context: int | None = None

    def context(self) -> int:
        if self._context is None:
            with map_pcsc_errors("SCardEstablishContext", self.reader):
                result, context = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
            _check(result, "SCardEstablishContext", self.reader)
            self._context = context
        return self._context

    def drop_context(self) -> None:
        if self._context is not None:
            with contextlib.suppress(Exception):
                self.scard.SCardReleaseContext(self._context)
            self._context = None

    def _guard(self, error: EncoderError) -> EncoderError:
        if isinstance(error, ServiceUnavailableError):
            self.drop_context()
        return error

    def connect(self, protocols: int) -> tuple[int, int, bytes]:
        try:
            context = self.context()
            with map_pcsc_errors("SCardConnect", self.reader):
                result, card, active = self.scard.SCardConnect(
                    context, self.reader, self.scard.SCARD_SHARE_SHARED, protocols
                )
            _check(result, "SCardConnect", self.reader)
            with map_pcsc_errors("SCardStatus", self.reader):
                result, _name, _state, _protocol, atr = self.scard.SCardStatus(card)
            _check(result, "SCardStatus", self.reader)
        except EncoderError as exc:
            raise self._guard(exc) from exc.__cause__
        return card, active, bytes(atr)

    def transmit(self, card: int, protocol: int, apdu: bytes) -> bytes:
        try:
            with map_pcsc_errors("SCardTransmit", self.reader):
                result, answer = self.scard.SCardTransmit(card, protocol, list(apdu))
            _check(result, "SCardTransmit", self.reader)
        except EncoderError as exc:
            raise self._guard(exc) from exc.__cause__
        return bytes(answer)

    def disconnect(self, card: int) -> None:
        with contextlib.suppress(Exception):
            self.scard.SCardDisconnect(card, self.scard.SCARD_LEAVE_CARD)

    def shutdown(self) -> None:
        self.executor.submit(self.drop_context)
        self.executor.shutdown(wait=True, cancel_futures=False)


class PcscChannel:
    """A connection to the card in one PC/SC reader (a :class:`CardChannel`)."""

    def __init__(
        self,
        worker: _ReaderWorker,
        card: int,
        protocol_value: int,
        atr: bytes,
        timeout: float,
    ) -> None:
        """Wrap a connected card handle; made by :meth:`PcscEncoder.connect`."""
        self._worker = worker
        self._card = card
        self._protocol_value = protocol_value
        self._atr = atr
        self._timeout = timeout
        self._closed = False

    @property
    def reader(self) -> str:
        """The reader's name."""
        return self._worker.reader

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return self._atr

    @property
    def protocol(self) -> TransmissionProtocol:
        """The active transmission protocol."""
        return "T=1" if self._protocol_value == _PROTOCOLS["T=1"] else "T=0"

    async def transmit_raw(self, apdu: bytes) -> bytes:
        """Send bytes as they are on the reader's thread; return the answer bytes.

        Raises:
            EncoderError: Closed channel, PC/SC failure, or timeout.
        """
        if self._closed:
            msg = "channel is closed"
            raise EncoderConnectionError(msg, reader=self.reader)
        worker, card, protocol = self._worker, self._card, self._protocol_value
        return await _on(
            worker.executor,
            self._timeout,
            lambda: worker.transmit(card, protocol, apdu),
            self.reader,
        )

    async def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Send one command; ``61xx``/``6Cxx`` chaining is handled.

        Raises:
            EncoderError: PC/SC failure, timeout, or a malformed answer.
        """
        return await exchange(self.transmit_raw, command, self.reader)

    async def close(self) -> None:
        """Disconnect, leaving the card powered."""
        if self._closed:
            return
        self._closed = True
        worker, card = self._worker, self._card
        await _on(worker.executor, self._timeout, lambda: worker.disconnect(card), self.reader)


class PcscEncoder:
    """PC/SC readers and their cards, with events and recovery (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - injected parts and tunables, keyword-only
        self,
        *,
        clock: Clock,
        rng: random.Random,
        listener: EventListener | None = None,
        backoff: BackoffPolicy | None = None,
        poll_timeout: float = 0.5,
        call_timeout: float = 10.0,
    ) -> None:
        """Set up; nothing touches pcscd until :meth:`run` or :meth:`connect`.

        Args:
            clock: Waits between reconnection attempts.
            rng: Jitter of the reconnection backoff.
            listener: Receives every :data:`ReaderEvent` on the event loop.
            backoff: Spacing of attempts to reach pcscd again.
            poll_timeout: Longest single ``SCardGetStatusChange`` wait, seconds.
            call_timeout: Longest connect, transmit or disconnect, seconds.
        """
        self._clock = clock
        self._rng = rng
        self._listener = listener
        self._backoff = backoff or BackoffPolicy(initial=0.5, maximum=10.0)
        self._poll_timeout = poll_timeout
        self._call_timeout = call_timeout
        self._scard: Any = None
        self._monitor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pcsc-monitor")
        self._monitor_context: int | None = None
        self._workers: dict[str, _ReaderWorker] = {}
        self._states: dict[str, _ReaderState] = {}
        self._pnp_state = 0
        self._service_up: bool | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    # ----------------------------------------------------------------- public

    @property
    def readers(self) -> list[str]:
        """The readers seen by the last poll."""
        return sorted(self._states)

    def card_present(self, reader: str) -> bool:
        """Whether the last poll saw a card in ``reader``."""
        state = self._states.get(reader)
        return state is not None and state.present

    async def __aenter__(self) -> Self:
        """Start the monitor as a background task."""
        self._task = asyncio.create_task(self.run(), name="pcsc-monitor")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop the monitor and release every context."""
        await self.close()

    async def run(self) -> None:
        """Poll readers and cards until :meth:`close`; recover when pcscd comes back.

        Raises:
            EncoderError: An unexpected PC/SC failure (a supervisor restarts the task).
        """
        delays = backoff_delays(self._backoff, self._rng)
        while not self._stopping:
            try:
                snapshot = await asyncio.wrap_future(self._monitor.submit(self._poll))
            except EncoderConnectionError as exc:
                await self._lost(exc)
                await self._clock.sleep(next(delays))
                continue
            if snapshot is None:
                continue
            if self._service_up is not True:
                if self._service_up is False:
                    log.info("pcsc_service_restored")
                    self._emit(ServiceRestored())
                self._service_up = True
                delays = backoff_delays(self._backoff, self._rng)
            self._apply(snapshot)
            self.ready.set()

    async def connect(
        self, reader: str, protocols: tuple[TransmissionProtocol, ...] = ("T=0", "T=1")
    ) -> PcscChannel:
        """Connect to the card in ``reader`` on the reader's own thread.

        Raises:
            EncoderConnectionError: No service, no such reader, or no card.
            EncoderTimeoutError: The reader did not answer in time.
        """
        worker = self._worker(reader)
        wanted = 0
        for name in protocols:
            wanted |= _PROTOCOLS[name]
        card, active, atr = await _on(
            worker.executor, self._call_timeout, lambda: worker.connect(wanted), reader
        )
        log.info("pcsc_connected", reader=reader, atr=atr.hex(), protocol=active)
        return PcscChannel(worker, card, active, atr, self._call_timeout)

    async def close(self) -> None:
        """Stop the monitor, release every context and stop every thread."""
        self._stopping = True
        context = self._monitor_context
        if context is not None and self._scard is not None:
            scard = self._scard
            await asyncio.to_thread(lambda: scard.SCardCancel(context))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.wrap_future(self._monitor.submit(self._drop_monitor_context))
        self._monitor.shutdown(wait=False)
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            await asyncio.to_thread(worker.shutdown)

    # --------------------------------------------------------------- internal

    def _emit(self, event: ReaderEvent) -> None:
        log.info("pcsc_event", kind=type(event).__name__, reader=getattr(event, "reader", None))
        if self._listener is not None:
            self._listener(event)

    def _worker(self, reader: str) -> _ReaderWorker:
        if self._scard is None:
            self._scard = _scard()
        worker = self._workers.get(reader)
        if worker is None:
            worker = self._workers[reader] = _ReaderWorker(reader, self._scard)
        return worker

    def _drop_monitor_context(self) -> None:
        if self._monitor_context is not None and self._scard is not None:
            with contextlib.suppress(Exception):
                self._scard.SCardReleaseContext(self._monitor_context)
        self._monitor_context = None

    def _poll(self) -> dict[str, tuple[int, bytes]] | None:
        """On the monitor thread: one status poll; ``None`` when cancelled."""
        if self._scard is None:
            self._scard = _scard()
        scard = self._scard
        try:
            if self._monitor_context is None:
                with map_pcsc_errors("SCardEstablishContext"):
                    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                _check(result, "SCardEstablishContext")
                self._monitor_context = context
            context = self._monitor_context
            with map_pcsc_errors("SCardListReaders"):
                result, readers = scard.SCardListReaders(context, [])
            if result & _ERROR_BITS == SCARD_E_NO_READERS_AVAILABLE:
                readers = []
            else:
                _check(result, "SCardListReaders")
            states = [
                (name, self._states[name].event_state if name in self._states else 0)
                for name in readers
            ]
            states.append((PNP_NOTIFICATION, self._pnp_state))
            timeout_ms = int(self._poll_timeout * 1000)
            with map_pcsc_errors("SCardGetStatusChange"):
                result, changed = scard.SCardGetStatusChange(context, timeout_ms, states)
        except ServiceUnavailableError:
            self._drop_monitor_context()
            raise
        code = result & _ERROR_BITS
        if code == SCARD_E_CANCELLED:
            return None
        if code in {SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER}:
            return {name: (state, b"") for name, state in states if name != PNP_NOTIFICATION}
        _check(result, "SCardGetStatusChange")
        snapshot: dict[str, tuple[int, bytes]] = {}
        for name, event_state, atr in changed:
            if name == PNP_NOTIFICATION:
                self._pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
            else:
                snapshot[name] = (event_state & ~scard.SCARD_STATE_CHANGED, bytes(atr))
        return snapshot

    async def _lost(self, exc: EncoderConnectionError) -> None:
        if self._service_up is not False:
            log.warning("pcsc_service_lost", error=exc.code, pcsc_code=exc.pcsc_code)
            self._service_up = False
            self._emit(ServiceLost())
        self._apply({})
        self._pnp_state = 0
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            await asyncio.to_thread(worker.shutdown)

    def _present(self, event_state: int) -> bool:
        scard = self._scard
        if scard is None:
            return False
        return bool(event_state & scard.SCARD_STATE_PRESENT) and not (
            event_state & scard.SCARD_STATE_MUTE
        )

    def _apply(self, snapshot: dict[str, tuple[int, bytes]]) -> None:
        for name in sorted(set(self._states) - set(snapshot)):
            if self._states.pop(name).present:
                self._emit(CardRemoved(name))
            self._emit(ReaderRemoved(name))
        for name, (event_state, atr) in sorted(snapshot.items()):
            before = self._states.get(name)
            present = self._present(event_state)
            if before is None:
                self._emit(ReaderAdded(name))
            elif before.present and (
                not present or (event_state >> 16 != before.event_state >> 16 and atr)
            ):
                self._emit(CardRemoved(name))
                before = _ReaderState(before.event_state, present=False, atr=b"")
            if present and (before is None or not before.present):
                self._emit(CardInserted(name, atr))
            known_atr = atr or (before.atr if before is not None else b"")
            self._states[name] = _ReaderState(event_state, present, known_atr)
