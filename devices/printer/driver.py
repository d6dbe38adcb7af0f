"""Async driver for an Evolis-compatible card printer over serial or TCP.

Thin by design: bytes received go into :class:`~protocols.printer.PrinterClient`,
the bytes it returns are written, its deadlines become loop timers. One command
is in flight at a time (a lock), every command has a timeout, a printer error
becomes a typed :class:`~devices.printer.errors.PrinterDeviceError` carrying the
printer's code.

Link life: :meth:`PrinterDriver.run` keeps the printer connected until
:meth:`PrinterDriver.close`: it opens the link the URL provider names now (a
simulator may come back on a new pty), re-sends the setup list, polls the
status if asked, and after a loss reports it through ``on_connection_lost`` and
reconnects with capped, jittered backoff. A command that times out drops the
link (a late reply would otherwise answer the next command), so a silent
printer is reported as lost, never left hanging.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from devices.backoff import BackoffPolicy, backoff_delays
from devices.printer.errors import (
    PrinterBadReplyError,
    PrinterConnectionError,
    PrinterError,
    PrinterRibbonError,
    PrinterTimeoutError,
    device_error,
)
from devices.serial import LinkError, LinkProtocol, close_link, is_serial_url, open_link
from protocols.printer import commands
from protocols.printer.decoder import Discarded, NeedData
from protocols.printer.errors import PrinterProtocolError
from protocols.printer.frames import Depth, Panel, Reply, Request, TextReply
from protocols.printer.state import ClientState, Completed, PrinterClient

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Sequence

    from devices.clock import Clock
    from protocols.printer.commands import EncodingStation, PrinterStatus, Timeouts

__all__ = ["PrinterDriver"]

log = structlog.get_logger(__name__)


class PrinterDriver:
    """One printer, reached through a URL (``/dev/ttyUSB0``, ``socket://host:9100``)."""

    def __init__(  # noqa: PLR0913 (all keyword settings of one device)
        self,
        url: str | Callable[[], str],
        *,
        clock: Clock,
        rng: random.Random,
        backoff: BackoffPolicy | None = None,
        timeouts: Timeouts | None = None,
        setup: Sequence[Request] | None = None,
        baudrate: int = 115_200,
        status_interval: float | None = None,
        on_connection_lost: Callable[[PrinterConnectionError], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        on_status: Callable[[PrinterStatus], None] | None = None,
    ) -> None:
        """Configure; nothing is opened until :meth:`connect` or :meth:`run`.

        Args:
            url: The link URL, or a callable giving the current one (asked at
                every connect; it raises ``LookupError`` when there is none now).
            clock: Sleeps for backoff and polling.
            rng: Jitter for the backoff.
            backoff: Reconnect spacing (default 0.5 s doubling to 30 s).
            timeouts: Per-command timeouts.
            setup: The setup list; default :func:`~protocols.printer.setup_requests`
                (without ``Pcom`` on a TCP link).
            baudrate: Serial speed.
            status_interval: Poll the status this often while connected (seconds).
            on_connection_lost: Called once per lost link (not on :meth:`close`).
            on_connected: Called after each successful connect and setup.
            on_status: Called with each polled status.
        """
        self._url = url if callable(url) else (lambda: url)
        self._clock = clock
        self._rng = rng
        self._backoff = backoff or BackoffPolicy(initial=0.5, maximum=30.0)
        self._client = PrinterClient(timeouts)
        self._setup = tuple(setup) if setup is not None else None
        self._baudrate = baudrate
        self._status_interval = status_interval
        self._on_connection_lost = on_connection_lost
        self._on_connected = on_connected
        self._on_status = on_status
        self._lock = asyncio.Lock()
        self._transport: asyncio.Transport | None = None
        self._current_url = ""
        self._up = False
        self._closing = False
        self._lost = asyncio.Event()
        self._lost.set()
        self._waiter: asyncio.Future[Reply] | None = None

    @property
    def connected(self) -> bool:
        """Whether the link is open and the setup list was accepted."""
        return self._up

    # ------------------------------------------------------------ link life

    async def connect(self) -> None:
        """Open the link once and send the setup list.

        Raises:
            PrinterConnectionError: the link cannot be opened or was lost.
            PrinterError: the printer refused or did not answer the setup.
        """
        if self._transport is not None:
            return
        try:
            url = self._current_url = self._url()
        except LookupError as exc:
            raise PrinterConnectionError("", "no link URL available now") from exc
        self._client.reset()
        self._lost = asyncio.Event()
        try:
            transport, _ = await open_link(
                url, lambda: LinkProtocol(self._on_data, self._on_lost), baudrate=self._baudrate
            )
        except LinkError as exc:
            self._lost.set()
            raise PrinterConnectionError(url, exc.reason) from exc
        self._transport = transport
        setup = self._setup
        if setup is None:
            setup = commands.setup_requests(baudrate=self._baudrate, serial_link=is_serial_url(url))
        try:
            async with self._lock:
                for request in setup:
                    await self._exchange(request)
        except (Exception, asyncio.CancelledError):
            await self._drop_link()
            raise
        self._up = True
        log.info("printer_connected", url=url)
        if self._on_connected is not None:
            self._on_connected()

    async def run(self) -> None:
        """Keep the printer connected until :meth:`close` or cancellation (closing the link)."""
        delays = backoff_delays(self._backoff, self._rng)
        try:
            while not self._closing:
                try:
                    await self.connect()
                except PrinterError as exc:
                    delay = next(delays)
                    log.warning("printer_connect_failed", error=exc.code, retry_in=round(delay, 3))
                    await self._clock.sleep(delay)
                    continue
                delays = backoff_delays(self._backoff, self._rng)
                await self._watch()
        except asyncio.CancelledError:
            # Stopped with its owner: close the port quietly (run may be started again).
            closing, self._closing = self._closing, True
            try:
                await self._drop_link()
            finally:
                self._closing = closing
            raise

    async def close(self) -> None:
        """Close the link for good; :meth:`run` returns, nothing is reported."""
        self._closing = True
        await self._drop_link()

    async def _watch(self) -> None:
        """While connected: poll the status if asked, else wait for the loss."""
        lost = self._lost
        while not lost.is_set():
            if self._status_interval is None:
                await lost.wait()
                return
            sleeper = asyncio.ensure_future(self._clock.sleep(self._status_interval))
            waiter = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waiter.cancel()
            if lost.is_set():
                return
            try:
                status = await self.status()
            except PrinterError as exc:
                log.warning("printer_status_failed", error=exc.code)
                continue
            if self._on_status is not None:
                self._on_status(status)

    async def _drop_link(self) -> None:
        transport = self._transport
        if transport is None:
            return
        await close_link(transport)
        await self._lost.wait()

    def _on_data(self, data: bytes) -> None:
        log.debug("printer_rx", data=data.hex())
        self._client.receive_data(data)
        while not isinstance(event := self._client.next_event(), NeedData):
            if isinstance(event, Completed):
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(event.reply)
            elif isinstance(event, Discarded):
                log.debug("printer_bytes_discarded", count=event.count, reason=event.reason)
            else:
                log.debug("printer_unsolicited_reply")

    def _on_lost(self, exc: Exception | None) -> None:
        was_up = self._up
        self._transport, self._up = None, False
        error = PrinterConnectionError(
            self._current_url, type(exc).__name__ if exc else "link closed"
        )
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._lost.set()
        if was_up and not self._closing:
            log.warning("printer_link_lost", url=self._current_url, reason=error.reason)
            if self._on_connection_lost is not None:
                self._on_connection_lost(error)

    # ------------------------------------------------------------ commands

    async def command(self, request: Request) -> Reply:
        """Send one command and return its reply.

        Raises:
            PrinterDeviceError: the printer reported an error (typed by code).
            PrinterTimeoutError: no reply in time (the link is dropped).
            PrinterConnectionError: no link.
        """
        async with self._lock:
            return await self._exchange(request)

    async def _exchange(self, request: Request) -> Reply:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise PrinterConnectionError(self._current_url, "not connected")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Reply] = loop.create_future()
        self._waiter = waiter
        data = self._client.send(request, loop.time())
        deadline = self._client.deadline
        assert deadline is not None  # noqa: S101 (set by send)
        log.debug("printer_tx", command=request.label, size=len(data))
        transport.write(data)
        try:
            async with asyncio.timeout_at(deadline):
                reply = await waiter
        except TimeoutError:
            if self._client.state is ClientState.AWAITING_REPLY:
                self._client.abandon()
            log.warning("printer_command_timeout", command=request.label)
            await self._drop_link()
            raise PrinterTimeoutError(request.label, deadline - loop.time()) from None
        finally:
            self._waiter = None
        if reply.error is not None:
            raise device_error(reply.error, request.label)
        return reply

    async def _text(self, request: Request) -> str:
        reply = await self._exchange(request)
        if not isinstance(reply, TextReply):
            raise PrinterBadReplyError(request.label)
        return reply.text

    async def status(self) -> PrinterStatus:
        """Read every sensor, the card position and the ribbon."""
        replies: dict[str, str | None] = {}
        async with self._lock:
            for request in commands.status_requests():
                try:
                    replies[request.label] = await self._text(request)
                except PrinterRibbonError:
                    if request.command != "Rrt":
                        raise
                    replies[request.label] = None
        try:
            return commands.parse_status(replies)
        except PrinterProtocolError as exc:
            raise PrinterBadReplyError(getattr(exc, "command", "status")) from exc

    async def firmware_version(self) -> str:
        """The printer's firmware version text."""
        async with self._lock:
            return await self._text(commands.read_firmware_version())

    async def insert_card(
        self, station: EncodingStation = commands.EncodingStation.CONTACT
    ) -> None:
        """Take a card from the feeder to the contact (or contactless) station."""
        await self.command(commands.insert_card(station))

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print one card: ``Ss``, one ``Db`` per panel, ``Se``, as one transaction."""
        async with self._lock:
            await self._exchange(commands.start_sequence())
            for panel, depth, bitmap in panels:
                await self._exchange(commands.download_panel(panel, depth, bitmap))
            await self._exchange(commands.end_sequence())

    async def eject_card(self) -> None:
        """Eject the card to the output."""
        await self.command(commands.eject_card())

    async def reject_card(self) -> None:
        """Move the card to the reject box."""
        await self.command(commands.reject_card())

    async def clear_error(self) -> None:
        """Clear a mechanical error (after the cause, e.g. a jam, is removed)."""
        await self.command(commands.clear_error())
