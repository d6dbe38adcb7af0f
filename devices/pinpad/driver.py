"""Async driver for an encrypting PIN pad (密码键盘) over serial or TCP.

Thin by design: bytes received go into :class:`~protocols.pinpad.PinPadClient`,
the requests it numbers are written, replies are matched to their waiters by
SEQ. One operation at a time (a lock); every wait runs on the injected clock:
the reply to a plain command (``Timeouts.command``) and the customer's entry
(the caller's ``timeout``). When the entry's time runs out, or the caller is
cancelled, the driver sends ABORT so the pad stops waiting, and the late
answer is recognised by its SEQ and dropped; a pad that does not answer a
plain command is taken for gone: the link is dropped and reported.

Link life: :meth:`PinPadDriver.open` starts a keeper task that connects (open
the link, ask INFO), and after a loss reports it through ``on_connection_lost``
and reconnects with capped, jittered backoff, until :meth:`PinPadDriver.close`.

Nothing here logs a PIN block, an account number or received bytes: only
commands, statuses and byte counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING, Any

import structlog

from devices.backoff import BackoffPolicy, backoff_delays
from devices.pinpad.block import PadPinBlock
from devices.pinpad.errors import (
    PinPadCancelledError,
    PinPadError,
    PinPadKeyRefusedError,
    PinPadMismatchError,
    PinPadNoKeyError,
    PinPadOfflineError,
    PinPadProtocolError,
    PinPadRequestError,
    PinPadTimeoutError,
)
from devices.serial import LinkError, LinkProtocol, close_link, open_link
from protocols.pinpad import commands
from protocols.pinpad.commands import EntryParams, LoadKeyParams, PadInfo, Timeouts
from protocols.pinpad.decoder import Discarded, NeedData
from protocols.pinpad.errors import PinPadCodecError, PinPadEncodeError
from protocols.pinpad.frames import KeyEvent, Prompt, Reply, Request, Status
from protocols.pinpad.state import Completed, PinPadClient

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from devices.clock import Clock
    from devices.registry.settings import PinPadSettings
    from protocols.pinpad.commands import Call

__all__ = ["PinPadDriver"]

log = structlog.get_logger(__name__)

DEFAULT_BAUDRATE = 9600  # PIN pads commonly ship at 9600 8N1


class PinPadDriver:
    """One PIN pad, reached through a URL (``/dev/ttyS0``, ``socket://host:port``)."""

    def __init__(  # noqa: PLR0913 (all keyword settings of one device)
        self,
        url: str | Callable[[], str],
        *,
        clock: Clock,
        rng: random.Random,
        key_label: str,
        pin_block_format: int = 0,
        min_pin_length: int = 6,
        max_pin_length: int = 6,
        new_pin_attempts: int = 2,
        timeouts: Timeouts | None = None,
        backoff: BackoffPolicy | None = None,
        baudrate: int = DEFAULT_BAUDRATE,
        on_key: Callable[[int], None] | None = None,
        on_connected: Callable[[PadInfo], None] | None = None,
        on_connection_lost: Callable[[PinPadOfflineError], None] | None = None,
    ) -> None:
        """Configure; nothing is opened until :meth:`open` (or :meth:`connect`).

        Args:
            url: The link URL, or a callable giving the current one (asked at
                every connect; it raises ``LookupError`` when there is none now).
            clock: Every timeout and backoff sleep runs on it.
            rng: Jitter for the reconnect backoff.
            key_label: Key store id of the pad's PIN key (TPK), put on every block.
            pin_block_format: ISO 9564-1 format the pad builds (0 or 3 under a
                3DES or SM4 key, 4 under an AES key).
            min_pin_length: Fewest digits the pad accepts (social security
                cards and bank cards use 6).
            max_pin_length: Most digits the pad takes.
            new_pin_attempts: READ_NEW_PIN rounds the pad gives before mismatch.
            timeouts: Plain command reply timeout and the pad's grace.
            backoff: Reconnect spacing (default 0.5 s doubling to 30 s).
            baudrate: Serial speed.
            on_key: Called with the number of digits entered after each key
                press (for a ``******`` on the teller's screen; never the digit).
            on_connected: Called with the pad's INFO after each connect.
            on_connection_lost: Called once per lost link (not on :meth:`close`).
        """
        self._url = url if callable(url) else (lambda: url)
        self._clock = clock
        self._rng = rng
        self.key_label = key_label
        self.pin_block_format = pin_block_format
        self._lengths = (min_pin_length, max_pin_length)
        self._attempts = new_pin_attempts
        self.timeouts = timeouts or Timeouts()
        self._backoff = backoff or BackoffPolicy(initial=0.5, maximum=30.0)
        self._baudrate = baudrate
        self._on_key = on_key
        self._on_connected = on_connected
        self._on_connection_lost = on_connection_lost
        self._client = PinPadClient()
        self._lock = asyncio.Lock()
        self._transport: asyncio.Transport | None = None
        self._current_url = ""
        self._up = False
        self._closing = False
        self._lost = asyncio.Event()
        self._lost.set()
        self._waiters: dict[int, asyncio.Future[Reply]] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()
        self._info: PadInfo | None = None

    @classmethod
    def from_settings(
        cls,
        settings: PinPadSettings,
        *,
        clock: Clock,
        rng: random.Random,
        **kwargs: Any,  # noqa: ANN401 (the remaining keyword settings of __init__)
    ) -> PinPadDriver:
        """A driver for one ``[[devices.pinpads]]`` entry."""
        return cls(
            settings.url,
            clock=clock,
            rng=rng,
            key_label=settings.key_label,
            pin_block_format=settings.pin_block_format,
            baudrate=settings.baudrate,
            **kwargs,
        )

    @property
    def connected(self) -> bool:
        """Whether the link is open and the pad answered INFO."""
        return self._up

    @property
    def info(self) -> PadInfo | None:
        """What the pad said about itself and its keys at the last connect (or key load)."""
        return self._info

    # ------------------------------------------------------------ link life

    async def open(self) -> None:
        """Start keeping the pad connected; return after the first connect attempt.

        A pad that cannot be reached now is not an error here: :attr:`connected`
        stays false, operations raise :class:`PinPadOfflineError`, and the
        keeper retries with backoff.
        """
        if self._keeper is not None:
            return
        self._closing = False
        self._attempted.clear()
        self._keeper = asyncio.create_task(self.run(), name=f"pinpad-keeper-{self.key_label}")
        await self._attempted.wait()

    async def close(self) -> None:
        """Close the link for good; the keeper stops, nothing is reported."""
        self._closing = True
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._drop_link()

    async def run(self) -> None:
        """Keep the pad connected until :meth:`close` (or cancellation)."""
        delays = backoff_delays(self._backoff, self._rng)
        while not self._closing:
            try:
                await self.connect()
            except PinPadError as exc:
                self._attempted.set()
                delay = next(delays)
                log.warning("pinpad_connect_failed", error=exc.code, retry_in=round(delay, 3))
                await self._clock.sleep(delay)
                continue
            self._attempted.set()
            delays = backoff_delays(self._backoff, self._rng)
            await self._lost.wait()

    async def connect(self) -> None:
        """Open the link once and ask the pad for INFO.

        Raises:
            PinPadOfflineError: The link cannot be opened, was lost, or the pad is silent.
            PinPadProtocolError: The pad answered INFO with nonsense.
        """
        if self._transport is not None:
            return
        try:
            url = self._current_url = self._url()
        except LookupError as exc:
            raise PinPadOfflineError("", "no link URL available now") from exc
        self._client.reset()
        self._lost = asyncio.Event()
        try:
            transport, _ = await open_link(
                url, lambda: LinkProtocol(self._on_data, self._on_lost), baudrate=self._baudrate
            )
        except LinkError as exc:
            self._lost.set()
            raise PinPadOfflineError(url, exc.reason) from exc
        self._transport = transport
        try:
            async with self._lock:
                info = await self._info_locked()
        except (Exception, asyncio.CancelledError):
            await self._drop_link()
            raise
        self._up = True
        log.info("pinpad_connected", url=url, model=info.text, key_loaded=bool(info.key_algorithm))
        if self._on_connected is not None:
            self._on_connected(info)

    async def _drop_link(self) -> None:
        transport = self._transport
        if transport is None:
            return
        await close_link(transport)
        await self._lost.wait()

    def _on_data(self, data: bytes) -> None:
        log.debug("pinpad_rx", size=len(data))
        self._client.receive_data(data)
        while not isinstance(event := self._client.next_event(), NeedData):
            if isinstance(event, Completed):
                waiter = self._waiters.get(event.request.seq)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event.reply)
            elif isinstance(event, KeyEvent):
                if self._on_key is not None:
                    self._on_key(event.digits)
            elif isinstance(event, Discarded):
                log.debug("pinpad_bytes_discarded", count=event.count, reason=event.reason)
            else:
                log.debug(
                    "pinpad_unsolicited_reply",
                    seq=event.reply.seq,
                    command=event.reply.command.label,
                    status=event.reply.status.name.lower(),
                )

    def _on_lost(self, exc: Exception | None) -> None:
        was_up = self._up
        self._transport, self._up = None, False
        error = PinPadOfflineError(self._current_url, type(exc).__name__ if exc else "link closed")
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._lost.set()
        if was_up and not self._closing:
            log.warning("pinpad_link_lost", url=self._current_url, reason=error.reason)
            if self._on_connection_lost is not None:
                self._on_connection_lost(error)

    # ------------------------------------------------------------ exchanges

    def _start(self, call: Call) -> tuple[Request, asyncio.Future[Reply]]:
        """Send ``call``; return the numbered request and the future of its reply."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise PinPadOfflineError(self._current_url, "not connected")
        request = self._client.send(call)
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiters[request.seq] = waiter
        log.debug("pinpad_tx", seq=request.seq, command=call.command.label)
        transport.write(request.to_bytes())
        return request, waiter

    def _finish(self, request: Request) -> None:
        """Forget ``request``'s waiter; a reply still due will be dropped as unsolicited."""
        waiter = self._waiters.pop(request.seq, None)
        if waiter is None:
            return
        if not waiter.done():
            self._client.abandon(request.seq)
            waiter.cancel()
        elif not waiter.cancelled():
            waiter.exception()  # a lost link's error, seen: no "never retrieved" report

    async def _wait(self, waiter: asyncio.Future[Reply], seconds: float) -> Reply:
        """The reply, or ``TimeoutError`` when ``seconds`` pass on the clock first."""
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not waiter.done():
            raise TimeoutError
        return waiter.result()

    async def _command(self, call: Call) -> Reply:
        """A plain command under the lock: its reply, a silent pad drops the link."""
        request, waiter = self._start(call)
        try:
            reply = await self._wait(waiter, self.timeouts.command)
        except TimeoutError:
            log.warning("pinpad_command_timeout", command=call.command.label)
            self._finish(request)
            await self._drop_link()
            raise PinPadOfflineError(self._current_url, "no reply") from None
        finally:
            self._finish(request)
        return reply

    async def _entry(self, call: Call, limit: float, attempts: int) -> PadPinBlock:
        """An entry command: wait for the customer, abort it on timeout or cancellation."""
        async with self._lock:
            request, waiter = self._start(call)
            try:
                reply = await self._wait(waiter, limit)
            except TimeoutError:
                log.info("pinpad_entry_timeout", command=call.command.label)
                await self._abort(request)
                raise PinPadTimeoutError(limit, by="host") from None
            except asyncio.CancelledError:
                with contextlib.suppress(PinPadError):
                    await self._abort(request)
                raise
            finally:
                self._finish(request)
        if reply.status is Status.TIMEOUT:
            raise PinPadTimeoutError(limit, by="pad")
        if reply.status is Status.MISMATCH:
            raise PinPadMismatchError(attempts)
        self._check(reply)
        try:
            pin = commands.parse_pin(call.command, reply.data)
            return PadPinBlock(
                pin.block, self.pin_block_format, self.key_label, pin.key_check_value
            )
        except (PinPadCodecError, ValueError) as exc:
            raise PinPadProtocolError(call.command.label, "bad PIN block reply") from exc

    async def _abort(self, entry: Request) -> None:
        """Send ABORT for ``entry``; the pad answers the entry (ABORTED) and then the ABORT."""
        try:
            await self._command(commands.abort())
        except PinPadOfflineError:
            return
        finally:
            self._finish(entry)

    def _check(self, reply: Reply) -> None:
        """Turn a non-OK status into its typed error."""
        status, label = reply.status, reply.command.label
        if status is Status.OK:
            return
        if status is Status.CANCELLED:
            raise PinPadCancelledError
        if status is Status.NO_KEY:
            raise PinPadNoKeyError
        raise PinPadProtocolError(label, "refused", status=status.name.lower())

    def _entry_params(self, prompt: Prompt, account: str, timeout: float) -> EntryParams:
        if not isinstance(timeout, int | float) or not timeout > 0 or math.isinf(timeout):
            raise PinPadRequestError("timeout", "a positive number of seconds")
        pad_timeout = min(commands.MAX_ENTRY_TIMEOUT, math.ceil(timeout + self.timeouts.pad_grace))
        try:
            return EntryParams(
                prompt,
                self.pin_block_format,
                self._lengths[0],
                self._lengths[1],
                pad_timeout,
                account,
                self._attempts,
            )
        except PinPadEncodeError as exc:
            raise PinPadRequestError(exc.field, exc.reason) from exc

    async def _info_locked(self) -> PadInfo:
        reply = await self._command(commands.info())
        self._check(reply)
        try:
            info = commands.parse_info(reply.data)
        except PinPadCodecError as exc:
            raise PinPadProtocolError("info", "bad INFO reply") from exc
        self._info = info
        return info

    # ------------------------------------------------------------ operations

    async def read_pin(
        self,
        *,
        account: str,
        prompt: Prompt = Prompt.ENTER,
        timeout: float,  # noqa: ASYNC109 (the pad is told the limit too; it runs on the injected clock)
    ) -> PadPinBlock:
        """Let the customer key a PIN; return it enciphered under the pad's PIN key.

        Args:
            account: The account (PAN) the block is bound to (13-19 digits for
                formats 0 and 3, 1-19 for format 4).
            prompt: What the pad shows: ENTER, ENTER_OLD or ENTER_NEW.
            timeout: Seconds the customer has (on the injected clock).

        Raises:
            PinPadTimeoutError: Nobody finished in time (the entry was aborted).
            PinPadCancelledError: The customer pressed cancel.
            PinPadNoKeyError: The pad holds no PIN key.
            PinPadOfflineError: No link, or it was lost meanwhile.
            PinPadRequestError: Bad account, timeout or driver settings.
            PinPadProtocolError: The pad answered nonsense.
        """
        params = self._entry_params(prompt, account, timeout)
        return await self._entry(commands.read_pin(params), timeout, 1)

    async def read_new_pin(
        self,
        *,
        account: str,
        timeout: float,  # noqa: ASYNC109 (the pad is told the limit too; it runs on the injected clock)
    ) -> PadPinBlock:
        """Let the customer key a new PIN twice; the pad compares the entries itself.

        On a mismatch the pad shows 两次输入不一致 and asks again, up to
        ``new_pin_attempts`` rounds.

        Raises:
            PinPadMismatchError: The entries differed in every round.
            PinPadTimeoutError: Nobody finished in time (``timeout`` covers all rounds).
            PinPadCancelledError: The customer pressed cancel.
            PinPadNoKeyError: The pad holds no PIN key.
            PinPadOfflineError: No link, or it was lost meanwhile.
            PinPadRequestError: Bad account, timeout or driver settings.
            PinPadProtocolError: The pad answered nonsense.
        """
        params = self._entry_params(Prompt.ENTER_NEW, account, timeout)
        return await self._entry(commands.read_new_pin(params), timeout, self._attempts)

    async def show(self, message: Prompt) -> None:
        """Put a prompt on the pad's display, e.g. SUCCESS or FAILED after the operation.

        Raises:
            PinPadOfflineError: No link, or the pad is silent.
            PinPadProtocolError: The pad refused it.
        """
        async with self._lock:
            self._check(await self._command(commands.show(message)))

    async def pad_info(self) -> PadInfo:
        """Ask the pad for its model, firmware and key state."""
        async with self._lock:
            return await self._info_locked()

    async def load_key(self, params: LoadKeyParams) -> str:
        """Load a PIN key enciphered under the pad's TMK; return its check value.

        Args:
            params: The algorithm, the key enciphered under the TMK and the key's
                check value (the pad verifies it before keeping the key).

        Raises:
            PinPadKeyRefusedError: The check value does not match (or no TMK).
            PinPadOfflineError: No link, or the pad is silent.
            PinPadProtocolError: The pad refused the parameters.
        """
        async with self._lock:
            reply = await self._command(commands.load_key(params))
            if reply.status is Status.KEY_REFUSED:
                raise PinPadKeyRefusedError(params.key_check_value)
            self._check(reply)
            try:
                kcv = commands.parse_kcv(reply.data)
            except PinPadCodecError as exc:
                raise PinPadProtocolError("load_key", "bad LOAD_KEY reply") from exc
            if kcv != params.key_check_value:
                raise PinPadProtocolError("load_key", "the pad reports another check value")
            log.info("pinpad_key_loaded", key_label=self.key_label, key_check_value=kcv)
            await self._info_locked()
            return kcv
