"""An Evolis-compatible printer on a pseudo-terminal.

:class:`PrinterSimulator` opens a pty pair, keeps the slave open (raw) so that
the device node stays valid while hosts come and go, and serves the master
side: bytes go into our own :class:`~protocols.printer.decoder.RequestDecoder`,
each request is answered by the :class:`~simulators.printer.model.PrinterModel`
after the time it takes (scaled, through an injected ``sleep``). The simulator
itself never reads the slave, so it steals no bytes from the host.

Link faults live here: :attr:`Fault.NOISE` sends garbage before the next reply,
:attr:`Fault.GARBLED` garbles it, :attr:`Fault.LINK_DROP` closes the pty when
the next command arrives; :meth:`PrinterSimulator.drop_link` and
:meth:`PrinterSimulator.restore_link` close the pty now and open a new one
(a new device path, and the optional stable symlink updated to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Self

import structlog

from protocols.printer.decoder import Discarded, NeedData, RequestDecoder
from protocols.printer.frames import ErrorCode, Request
from simulators.printer.model import Fault, PrinterModel, PrinterSimConfig
from simulators.pty_io import close_pty, open_pty, point_link, write_to_pty

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["NOISE", "PrinterSimulator", "run_printer_simulator"]

log = structlog.get_logger(__name__)

NOISE = b"\x00\xff\x13\x11\x7f\x80"  # no CR, ACK, NACK or printable byte among them
READ_SIZE = 65_536
MAX_QUEUED_REQUESTS = 64
_LINK_FAULTS = frozenset({Fault.NOISE, Fault.GARBLED, Fault.LINK_DROP})


class PrinterSimulator:
    """A simulated printer serving one pty at a time."""

    def __init__(
        self,
        config: PrinterSimConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        before_reply: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Build the printer; :meth:`start` opens its pty.

        Args:
            config: Stock, ribbon, timing scale and initial faults.
            sleep: How to wait for a command's duration (tests pass a fake).
            before_reply: Awaited after each command's work, before its reply
                is written (a station puts the chip into its reader there).
        """
        self.config = config or PrinterSimConfig()
        self.model = PrinterModel(self.config)
        self._sleep = sleep
        self._before_reply = before_reply
        self._link_faults = {f for f in self.config.faults if f in _LINK_FAULTS}
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._decoder = RequestDecoder()
        self._queue: asyncio.Queue[Request | ErrorCode] = asyncio.Queue(MAX_QUEUED_REQUESTS)
        self._worker: asyncio.Task[None] | None = None
        self._writable: asyncio.Event | None = None
        self._dropping: asyncio.Future[None] | None = None
        self.received: list[str] = []

    @property
    def path(self) -> str:
        """The current slave device path (what a host opens).

        Raises:
            LookupError: the pty is closed (its old number may belong to
                someone else's pty by now).
        """
        if self._path is None or self._master is None:
            msg = "the simulated printer has no pty open"
            raise LookupError(msg)
        return self._path

    @property
    def link_up(self) -> bool:
        """Whether a pty is open."""
        return self._master is not None

    async def __aenter__(self) -> Self:
        """Start serving."""
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop serving."""
        await self.stop()

    async def start(self) -> str:
        """Open a pty and serve it; return the slave device path."""
        master, slave, self._path = open_pty()
        self._master, self._slave = master, slave
        self._decoder = RequestDecoder()
        self._queue = asyncio.Queue(MAX_QUEUED_REQUESTS)
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._on_readable)
        self._worker = asyncio.create_task(self._serve(), name="printer-sim-serve")
        if self.config.link:
            point_link(Path(self.config.link), self._path)
        log.info("printer_sim_started", path=self._path)
        return self._path

    async def stop(self) -> None:
        """Close the pty and stop serving."""
        await self.drop_link()

    async def drop_link(self) -> None:
        """Close the pty now (hosts see their link die); the printer keeps its state."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if close_pty(master, slave, self.config.link):
            log.info("printer_sim_link_dropped", path=self._path)

    async def restore_link(self) -> str:
        """Open a new pty after a drop; return its path (it usually differs)."""
        await self.drop_link()
        return await self.start()

    def inject(self, fault: Fault) -> None:
        """Make a fault happen (now, or at the next command for link faults)."""
        if fault in _LINK_FAULTS:
            self._link_faults.add(fault)
        else:
            self.model.inject(fault)

    def clear(self, fault: Fault) -> None:
        """Remove a fault."""
        self._link_faults.discard(fault)
        self.model.clear(fault)

    def _on_readable(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            return
        self._decoder.receive_data(data)
        while not isinstance(event := self._decoder.next_event(), NeedData):
            item: Request | ErrorCode
            if isinstance(event, Discarded):
                log.debug("printer_sim_discarded", count=event.count, reason=event.reason)
                if event.reason not in {"bad_request", "bad_download_header"}:
                    continue
                item = ErrorCode.COMMAND if event.reason == "bad_request" else ErrorCode.PARAMETER
            else:
                item = event
            try:
                self._queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("printer_sim_queue_full")

    async def _serve(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if not await self._answer(item):
                    return
            except Exception:
                # A simulator fault must not silence the printer: log it, answer the next.
                log.exception("printer_sim_request_failed")

    async def _answer(self, item: Request | ErrorCode) -> bool:
        """Answer one request; ``False`` when the link is being dropped."""
        if isinstance(item, ErrorCode):
            await self._write(self.model.fail(item))
            return True
        self.received.append(item.label)
        if Fault.LINK_DROP in self._link_faults:
            self._link_faults.discard(Fault.LINK_DROP)
            asyncio.get_running_loop().call_soon(self._drop_soon)
            return False
        reply, seconds = self.model.handle(item)
        if seconds and self.config.time_scale:
            await self._sleep(seconds * self.config.time_scale)
        if self._before_reply is not None:
            await self._before_reply()
        if Fault.GARBLED in self._link_faults:
            self._link_faults.discard(Fault.GARBLED)
            reply = NOISE[:2] + bytes(b | 0x80 for b in reply)
        elif Fault.NOISE in self._link_faults:
            self._link_faults.discard(Fault.NOISE)
            reply = NOISE + reply
        await self._write(reply)
        return True

    def _drop_soon(self) -> None:
        self._dropping = asyncio.ensure_future(self.drop_link())

    async def _write(self, data: bytes) -> None:
        await write_to_pty(lambda: self._master, data)


async def run_printer_simulator(
    config: PrinterSimConfig | None = None,
    *,
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve a simulated printer until ``stop`` is set (or the task is cancelled).

    The pty path (and the stable symlink, if configured) is announced on
    standard output, one line, as soon as it exists.
    """
    simulator = PrinterSimulator(config)
    path = await simulator.start()
    shown = f"{path} -> {simulator.config.link}" if simulator.config.link else path
    if announce is None:
        sys.stdout.write(shown + "\n")
        sys.stdout.flush()
    else:
        announce(shown)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await simulator.stop()
