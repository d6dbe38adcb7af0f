"""An encrypting PIN pad on a pseudo-terminal, with scriptable key presses.

:class:`PinPadSimulator` opens a pty pair, keeps the slave open (raw) so the
device node stays valid while hosts come and go, and serves the master side:
bytes go into our own :class:`~protocols.pinpad.decoder.RequestDecoder`, each
request is answered in order. READ_PIN and READ_NEW_PIN run as an *entry*
that takes key presses from a queue: :meth:`PinPadSimulator.press` scripts
them (digits, ``E`` enter/确认, ``C`` cancel/取消, ``X`` clear/更正); nobody
pressing anything is a timeout. Presses scripted ahead wait for the next
entry. While an entry runs, only ABORT is served (anything else is BUSY). The
pad's own inactivity timeout waits on an injected ``sleep``.

Link faults: :attr:`Fault.NOISE` sends garbage before the next reply,
:attr:`Fault.SILENT` leaves the next request unanswered, :attr:`Fault.LINK_DROP`
closes the pty when the next request arrives; :meth:`drop_link` and
:meth:`restore_link` close the pty now and open a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import structlog

from protocols.pinpad.commands import (
    EncipheredPin,
    EntryParams,
    LoadKeyParams,
    PadInfo,
    parse_show,
)
from protocols.pinpad.decoder import BadRequest, Discarded, NeedData, RequestDecoder
from protocols.pinpad.errors import PinPadParameterError
from protocols.pinpad.frames import (
    Command,
    KeyEvent,
    Prompt,
    Reply,
    Request,
    Status,
    encode_frame,
)
from security.errors import SecurityError
from simulators.pinpad.model import Fault, KeyRefusedError, PadKeys, PinPadSimConfig
from simulators.pty_io import close_pty, open_pty, point_link, write_to_pty

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["KEYS", "NOISE", "PinPadSimulator", "run_pinpad_simulator"]

log = structlog.get_logger(__name__)

NOISE: Final = b"\x00\xff\x13\x11\x7f\x80"  # no STX among them
READ_SIZE: Final = 4096
MAX_QUEUED_REQUESTS: Final = 16
ENTER, CANCEL, CLEAR = "E", "C", "X"
KEYS: Final = frozenset("0123456789" + ENTER + CANCEL + CLEAR)
_LINK_FAULTS: Final = frozenset(Fault)


class _Cancelled(Exception):  # noqa: N818 (an entry outcome, not an error)
    """The customer pressed cancel."""


class _TimedOut(Exception):  # noqa: N818 (an entry outcome, not an error)
    """Nobody pressed a key within the entry's timeout."""


class PinPadSimulator:
    """A simulated PIN pad serving one pty at a time."""

    def __init__(
        self,
        config: PinPadSimConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Build the pad; :meth:`start` opens its pty.

        Args:
            config: Keys, auto-PIN and initial faults.
            sleep: How the pad waits for its own entry timeout (tests pass a fake).
        """
        self.config = config or PinPadSimConfig()
        self.keys = PadKeys(self.config.tmk, self.config.algorithm)
        self._sleep = sleep
        self._faults = set(self.config.faults)
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._decoder = RequestDecoder()
        self._queue: asyncio.Queue[Request | BadRequest] = asyncio.Queue(MAX_QUEUED_REQUESTS)
        self._presses: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._entry: asyncio.Task[None] | None = None
        self._entry_request: Request | None = None
        self._write_lock = asyncio.Lock()
        self._dropping: asyncio.Future[None] | None = None
        self.shown: list[Prompt] = []
        self._display = Prompt.IDLE
        self.received: list[str] = []
        self.entries_started = 0

    @property
    def path(self) -> str:
        """The current slave device path (what a host opens).

        Raises:
            LookupError: The pty is closed.
        """
        if self._path is None or self._master is None:
            msg = "the simulated PIN pad has no pty open"
            raise LookupError(msg)
        return self._path

    @property
    def link_up(self) -> bool:
        """Whether a pty is open."""
        return self._master is not None

    @property
    def display(self) -> Prompt:
        """What the pad shows now."""
        return self._display

    @display.setter
    def display(self, prompt: Prompt) -> None:
        self._display = prompt
        self.shown.append(prompt)

    @property
    def entry_running(self) -> bool:
        """Whether an entry waits for the customer."""
        return self._entry is not None and not self._entry.done()

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
        asyncio.get_running_loop().add_reader(master, self._on_readable)
        self._worker = asyncio.create_task(self._serve(), name="pinpad-sim-serve")
        if self.config.link:
            point_link(Path(self.config.link), self._path)
        log.info("pinpad_sim_started", path=self._path)
        return self._path

    async def stop(self) -> None:
        """Close the pty, stop serving and forget the keys."""
        await self.drop_link()
        self.keys.close()

    async def drop_link(self) -> None:
        """Close the pty now (hosts see their link die); the pad keeps its keys."""
        for task in (self._entry, self._worker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._entry = self._worker = None
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if close_pty(master, slave, self.config.link):
            log.info("pinpad_sim_link_dropped", path=self._path)

    async def restore_link(self) -> str:
        """Open a new pty after a drop; return its path (it usually differs)."""
        await self.drop_link()
        return await self.start()

    def inject(self, fault: Fault) -> None:
        """Make a fault happen at the next request."""
        self._faults.add(fault)

    def press(self, keys: str) -> None:
        """Script key presses: digits, ``E`` enter, ``C`` cancel, ``X`` clear.

        Raises:
            ValueError: A character is not a key of the pad.
        """
        if any(k not in KEYS for k in keys):
            msg = "keys are digits, E (enter), C (cancel) and X (clear)"
            raise ValueError(msg)
        for key in keys:
            self._presses.put_nowait(key)

    # ------------------------------------------------------------ serving

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
            if isinstance(event, Discarded):
                log.debug("pinpad_sim_discarded", count=event.count, reason=event.reason)
                continue
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("pinpad_sim_queue_full")

    async def _serve(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, BadRequest):
                await self._write(bytes((item.seq, item.code, Status.UNKNOWN_COMMAND)))
                continue
            self.received.append(item.command.label)
            if Fault.LINK_DROP in self._faults:
                self._faults.discard(Fault.LINK_DROP)
                asyncio.get_running_loop().call_soon(self._drop_soon)
                return
            if Fault.SILENT in self._faults:
                self._faults.discard(Fault.SILENT)
                continue
            await self._handle(item)

    def _drop_soon(self) -> None:
        self._dropping = asyncio.ensure_future(self.drop_link())

    async def _handle(self, request: Request) -> None:
        command = request.command
        if command is Command.ABORT:
            await self._abort_entry()
            await self._reply(request, Status.OK)
        elif self.entry_running:
            await self._reply(request, Status.BUSY)
        elif command is Command.INFO:
            await self._reply(request, Status.OK, self._info().to_data())
        elif command is Command.SHOW:
            try:
                self.display = parse_show(request.data)
            except PinPadParameterError:
                await self._reply(request, Status.BAD_PARAMETER)
            else:
                await self._reply(request, Status.OK)
        elif command is Command.LOAD_KEY:
            await self._load_key(request)
        else:
            try:
                params = EntryParams.from_data(command, request.data)
            except PinPadParameterError:
                await self._reply(request, Status.BAD_PARAMETER)
                return
            self.entries_started += 1
            self._entry_request = request
            self._entry = asyncio.create_task(
                self._run_entry(request, params), name="pinpad-sim-entry"
            )

    def _info(self) -> PadInfo:
        loaded = self.keys.key_check_value is not None
        return PadInfo(
            tmk_loaded=self.keys.tmk_loaded,
            key_algorithm=self.keys.algorithm if loaded else None,
            key_check_value=self.keys.key_check_value,
            text=self.config.text,
        )

    async def _load_key(self, request: Request) -> None:
        try:
            params = LoadKeyParams.from_data(request.data)
        except PinPadParameterError:
            await self._reply(request, Status.BAD_PARAMETER)
            return
        try:
            kcv = self.keys.load(params)
        except KeyRefusedError:
            log.info("pinpad_sim_key_refused")
            await self._reply(request, Status.KEY_REFUSED)
            return
        log.info("pinpad_sim_key_loaded", key_check_value=kcv)
        await self._reply(request, Status.OK, bytes.fromhex(kcv))

    async def _abort_entry(self) -> None:
        entry, request = self._entry, self._entry_request
        if entry is None or entry.done() or request is None:
            return
        entry.cancel()  # it may not even have started: the answer is written here
        with contextlib.suppress(asyncio.CancelledError):
            await entry
        self.display = Prompt.IDLE
        await self._reply(request, Status.ABORTED)

    async def _run_entry(self, request: Request, params: EntryParams) -> None:
        """Take one entry to its end and answer it."""
        if self.keys.key_check_value is None:
            await self._reply(request, Status.NO_KEY)
            return
        if params.pin_block_format not in self.keys.algorithm.pin_block_formats:
            await self._reply(request, Status.BAD_PARAMETER)
            return
        try:
            pin = await self._take_pin(request.command, params)
            if pin is None:
                self.display = Prompt.IDLE
                await self._reply(request, Status.MISMATCH)
                return
            block = self.keys.pin_block(pin, params.account, params.pin_block_format)
        except _Cancelled:
            await self._reply(request, Status.CANCELLED)
        except _TimedOut:
            await self._reply(request, Status.TIMEOUT)
        except (SecurityError, KeyRefusedError):
            await self._reply(request, Status.BAD_PARAMETER)
        else:
            kcv = self.keys.key_check_value or ""
            await self._reply(request, Status.OK, EncipheredPin(kcv, block).to_data())
        finally:
            self.display = Prompt.IDLE

    async def _take_pin(self, command: Command, params: EntryParams) -> str | None:
        """READ_PIN: one PIN; READ_NEW_PIN: a PIN entered the same twice, or None."""
        if command is Command.READ_PIN:
            return await self._collect(params.prompt, params)
        for _ in range(params.attempts):
            first = await self._collect(params.prompt, params)
            second = await self._collect(Prompt.REENTER, params)
            if first == second:
                return first
            self.display = Prompt.MISMATCH
            log.info("pinpad_sim_entries_differ")
        return None

    async def _collect(self, prompt: Prompt, params: EntryParams) -> str:
        """One entry on the keypad, up to ENTER with enough digits."""
        self.display = prompt
        if self._presses.empty() and self.config.auto_pin is not None:
            self.press(self.config.auto_pin + ENTER)
        digits: list[str] = []
        while True:
            key = await self._next_key(params.timeout)
            if key.isdigit():
                if len(digits) < params.max_length:
                    digits.append(key)
                    await self._write(KeyEvent(len(digits)).body)
            elif key == CLEAR:
                digits.clear()
                await self._write(KeyEvent(0).body)
            elif key == CANCEL:
                raise _Cancelled
            elif len(digits) >= params.min_length:
                return "".join(digits)

    async def _next_key(self, timeout: float) -> str:  # noqa: ASYNC109 (the pad's own timer, on the injected sleep)
        getter = asyncio.ensure_future(self._presses.get())
        timer = asyncio.ensure_future(self._sleep(timeout))
        try:
            await asyncio.wait((getter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        raise _TimedOut

    async def _reply(self, request: Request, status: Status, data: bytes = b"") -> None:
        await self._write(Reply(request.seq, request.command, status, data).body)

    async def _write(self, body: bytes) -> None:
        """Frame ``body`` and write it (after noise, if that fault is set)."""
        data = encode_frame(body)
        if Fault.NOISE in self._faults:
            self._faults.discard(Fault.NOISE)
            data = NOISE + data
        async with self._write_lock:
            await write_to_pty(lambda: self._master, data)


async def run_pinpad_simulator(
    config: PinPadSimConfig | None = None,
    *,
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    keys: asyncio.Queue[str] | None = None,
) -> None:
    """Serve a simulated PIN pad until ``stop`` is set (or the task is cancelled).

    The pty path (and the stable symlink, if configured) is announced on
    standard output, one line, as soon as it exists. Lines put on ``keys`` are
    pressed on the pad (digits, E, C, X).
    """
    simulator = PinPadSimulator(config)
    path = await simulator.start()
    shown = f"{path} -> {simulator.config.link}" if simulator.config.link else path
    if announce is None:
        sys.stdout.write(shown + "\n")
        sys.stdout.flush()
    else:
        announce(shown)
    stopper = asyncio.ensure_future((stop or asyncio.Event()).wait())
    try:
        while keys is not None and not stopper.done():
            getter = asyncio.ensure_future(keys.get())
            await asyncio.wait((getter, stopper), return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            try:
                simulator.press(getter.result())
            except ValueError as exc:
                log.warning("pinpad_sim_bad_keys", error=str(exc))
        await stopper
    finally:
        stopper.cancel()
        await simulator.stop()
