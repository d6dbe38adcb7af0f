"""Devices and upstream systems for the production benchmark, with set latencies.

Everything here implements a protocol of :mod:`production.ports` and takes the
time :class:`DeviceTimes` says on the :data:`DEVICES` clock (a thread, as a real
device's time runs outside the daemon's event loop), or no time at all when the
time is zero (then nothing is awaited: an instant device).

- :class:`BenchPrinter`: a printer whose card path is coupled to one reader of an
  :class:`~devices.encoder.InProcessEncoder`: a feed puts the next blank from the
  shared :class:`BlankStack` into the reader, printing takes it out of the reader,
  eject and reject take it out of the printer.
- :class:`TimedEncoder`: the in-process encoder, each chip phase (one connection
  each: read the blank; authenticate and write; read back) taking its time from
  the connection to the close of its channel: the close waits for whatever of
  the phase's time the exchange itself (the simulated card's work and the
  host's) has not used, as a real card's 0.5, 3 or 1 s include both.
- :class:`BenchPlatform`, :class:`BenchBank`: upstream calls taking ``upstream``.
- :class:`PassingQc`: a teller who passes every card at once.

Blank cards are :class:`~simulators.card.SimulatedCard` objects made like the
card maker's: card identification code and spec version in EF05, keys derived
from the demo master keys, so :class:`production.keys.LocalKeyService` computes
their EXTERNAL AUTHENTICATE cryptograms.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import io
import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from PIL import Image

from production import PreOpened, QcVerdict
from protocols.printer.commands import CardPosition, PrinterStatus
from protocols.sscard import DEFAULT_PIN, algorithm_for
from security.cardcrypto import CardKeyPurpose, derive_card_keys
from simulators.card import ChipState, SimulatedCard
from simulators.card.cli import DEMO_MASTER_KEYS, demo_issuer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devices.encoder import InProcessEncoder
    from devices.encoder.channel import CardChannel, TransmissionProtocol
    from production import JobRecord, Order, ReturnData
    from protocols.apdu import CommandApdu, ResponseApdu
    from protocols.printer.frames import Depth, Panel

__all__ = [
    "DEMO_MASTER_KEYS",
    "DEVICES",
    "BenchBank",
    "BenchPlatform",
    "BenchPrinter",
    "BlankStack",
    "DeviceClock",
    "DeviceTimes",
    "PassingQc",
    "TimedEncoder",
    "blank_card",
    "holder_photo",
]

_UPDATE_RECORD = 0xDC
_READ_RECORD = 0xB2
_BLANK_READ_RECORDS = 2  # read_blank reads EF05 records 1 and 3


@dataclass(frozen=True, slots=True)
class DeviceTimes:
    """Seconds each device operation takes (the defaults: a real station, unscaled).

    Attributes:
        feed: Feeder to the contact station.
        chip_read: Connect, select, read the card identification code and version.
        auth_write: Challenge, key service, EXTERNAL AUTHENTICATE, every UPDATE RECORD.
        verify: Read both files back.
        print: Print both panels.
        eject: To the output.
        reject: To the reject box.
        upstream: One platform or bank call (pre-open, return data, bind, enable).
    """

    feed: float = 2.0
    chip_read: float = 0.5
    auth_write: float = 3.0
    verify: float = 1.0
    print: float = 25.0
    eject: float = 1.0
    reject: float = 1.0
    upstream: float = 0.3

    def scaled(self, divisor: float) -> DeviceTimes:
        """Every time divided by ``divisor``."""
        return DeviceTimes(*(getattr(self, f.name) / divisor for f in fields(self)))

    @classmethod
    def zero(cls) -> DeviceTimes:
        """Instant devices."""
        return cls(*(0.0 for _ in fields(cls)))

    @property
    def station(self) -> float:
        """One card's time on its station: feed to eject (what the station is busy for)."""
        return self.feed + self.chip_read + self.auth_write + self.verify + self.print + self.eject


class DeviceClock:
    """Device time that runs outside the event loop, as a real device's does.

    A real printer or card reader finishes on its own time and says so with bytes
    on a file descriptor, which wakes the event loop at once. A timer on the loop
    ends only when the loop next polls: ``epoll`` waits whole milliseconds, so an
    ``asyncio.sleep`` ends up to a millisecond late on an idle loop, and later when
    the loop is busy. Measured on the benchmark machine: 0.4 ms late idle, 0.7-1.0 ms
    with the controller running; at six device waits per card that is 5 ms of a
    station's 325 ms, a time the devices never take.

    Here one thread keeps every device's deadline and wakes the waiting task through
    :meth:`asyncio.AbstractEventLoop.call_soon_threadsafe` (the loop's self-pipe, a
    file descriptor). With ``on_loop`` the waits are ``asyncio.sleep`` instead, as
    the benchmark measured before (``--loop-timers``).
    """

    def __init__(self) -> None:
        """A clock whose thread starts at the first wait."""
        self.on_loop = False
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    async def take(self, seconds: float) -> None:
        """Take ``seconds`` of device time (none at all when not positive)."""
        if seconds <= 0:
            return
        if self.on_loop:
            await asyncio.sleep(seconds)
            return
        done = asyncio.get_running_loop().create_future()
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bench-devices", daemon=True)
                self._thread.start()
            self._changed.notify()
        await done

    def _run(self) -> None:
        with self._changed:
            while True:
                if not self._due:
                    self._changed.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                _, _, done = heapq.heappop(self._due)
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    done.get_loop().call_soon_threadsafe(_finish, done)


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():  # not cancelled meanwhile
        done.set_result(None)


DEVICES = DeviceClock()
"""The clock every device of this module takes its time from."""


def blank_card(serial: int, *, generation: int = 3) -> SimulatedCard:
    """A blank as it comes from the card maker: card id code, spec version, keys."""
    issuer = demo_issuer(generation, serial)
    algorithm = algorithm_for(issuer.generation)
    keys = derive_card_keys(DEMO_MASTER_KEYS, issuer.card_id_code, algorithm)
    records = issuer.to_records()
    state = ChipState(
        algorithm=algorithm,
        protocol="T=0",
        records={"ef05": {"1": records[1].hex(), "3": records[3].hex()}, "ef06": {}},
        keys={p.value: keys.for_purpose(p).hex() for p in CardKeyPurpose},
        pin=DEFAULT_PIN,
        pin_is_default=True,
        retries_max=3,
        retries_left=3,
    )
    return SimulatedCard(state)


class BlankStack:
    """Blanks made before the run, shared by every printer's feeder."""

    def __init__(self, count: int, *, first_serial: int = 1) -> None:
        """Make ``count`` blanks."""
        self._cards = deque(blank_card(first_serial + n) for n in range(count))

    def take(self) -> SimulatedCard:
        """The next blank."""
        return self._cards.popleft()

    def __len__(self) -> int:
        """Blanks left."""
        return len(self._cards)


def holder_photo(seed: int = 1) -> bytes:
    """A 358×441 JPEG (the size of an ID photo), about 20-30 KB of noise and gradient."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((358, 441))
    noise = Image.frombytes("L", (358, 441), rng.randbytes(358 * 441))
    photo = Image.blend(image, noise, 0.15).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class BenchPrinter:
    """A :class:`~production.ports.PrinterPort` moving blanks through one reader."""

    def __init__(
        self, encoder: InProcessEncoder, reader: str, blanks: BlankStack, times: DeviceTimes
    ) -> None:
        """Couple to ``reader`` of ``encoder``; feed from ``blanks``."""
        self.connected = True
        self._encoder = encoder
        self._reader = reader
        self._blanks = blanks
        self._times = times
        self.card = CardPosition.NONE
        self.ejected = 0
        self.rejected = 0
        self.printed = 0

    async def status(self) -> PrinterStatus:
        """Sensors and the card position (instant)."""
        return PrinterStatus(
            feeder_loaded=len(self._blanks) > 0,
            feeder_near_empty=False,
            cover_open=False,
            card_at_output=False,
            reject_box_full=False,
            card_position=self.card,
            ribbon_type="YMCKO",
            ribbon_remaining=100,
        )

    async def insert_card(self) -> None:
        """A blank (or the card inside) to the contact station, into the reader."""
        await DEVICES.take(self._times.feed)
        if self.card is CardPosition.NONE:
            self._encoder.insert(self._reader, self._blanks.take())
        elif not self._encoder.card_present(self._reader):
            msg = "a card moved back to contact is not modelled by the benchmark"
            raise RuntimeError(msg)
        self.card = CardPosition.CONTACT

    def _leave_reader(self) -> None:
        if self._encoder.card_present(self._reader):
            self._encoder.remove(self._reader)

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print: the card leaves the contact station for the head."""
        if not panels:
            msg = "nothing to print"
            raise ValueError(msg)
        self._leave_reader()
        self.card = CardPosition.PRINT
        await DEVICES.take(self._times.print)
        self.printed += 1

    async def eject_card(self) -> None:
        """To the output."""
        self._leave_reader()
        await DEVICES.take(self._times.eject)
        self.card = CardPosition.NONE
        self.ejected += 1

    async def reject_card(self) -> None:
        """To the reject box."""
        self._leave_reader()
        await DEVICES.take(self._times.reject)
        self.card = CardPosition.NONE
        self.rejected += 1

    async def clear_error(self) -> None:
        """Nothing is ever held."""


class _TimedChannel:
    """A channel whose phase takes its time when it is closed."""

    def __init__(self, inner: CardChannel, times: DeviceTimes, opened: float) -> None:
        self._inner = inner
        self._times = times
        self._opened = opened
        self._writes = 0
        self._reads = 0

    @property
    def reader(self) -> str:
        return self._inner.reader

    @property
    def atr(self) -> bytes:
        return self._inner.atr

    @property
    def protocol(self) -> TransmissionProtocol:
        return self._inner.protocol

    def _count(self, ins: int) -> None:
        if ins == _UPDATE_RECORD:
            self._writes += 1
        elif ins == _READ_RECORD:
            self._reads += 1

    async def transmit(self, command: CommandApdu) -> ResponseApdu:
        self._count(command.ins)
        return await self._inner.transmit(command)

    async def transmit_raw(self, apdu: bytes) -> bytes:
        if len(apdu) > 1:
            self._count(apdu[1])
        return await self._inner.transmit_raw(apdu)

    async def close(self) -> None:
        if self._writes:
            seconds = self._times.auth_write
        elif self._reads <= _BLANK_READ_RECORDS:
            seconds = self._times.chip_read
        else:
            seconds = self._times.verify
        try:
            await DEVICES.take(self._opened + seconds - time.monotonic())
        finally:
            await self._inner.close()


class TimedEncoder:
    """An :class:`~production.ports.EncoderPort`: the in-process encoder with phase times."""

    def __init__(self, inner: InProcessEncoder, times: DeviceTimes) -> None:
        """Wrap ``inner``."""
        self._inner = inner
        self._times = times

    async def connect(self, reader: str) -> CardChannel:
        """Connect to the card in ``reader``; the phase's time runs from now."""
        opened = time.monotonic()
        return _TimedChannel(await self._inner.connect(reader), self._times, opened)


@dataclass
class BenchPlatform:
    """The platform: card numbers, the photo, return data, enablement."""

    times: DeviceTimes
    photo: bytes
    calls: int = 0
    numbers: dict[str, str] | None = None

    async def pre_open(self, order: Order, *, message_id: str) -> PreOpened:
        """A card number per application (stable) and the holder's photo."""
        del message_id
        await DEVICES.take(self.times.upstream)
        self.calls += 1
        if self.numbers is None:
            self.numbers = {}
        number = self.numbers.setdefault(order.application_id, f"B{len(self.numbers) + 1:08d}")
        return PreOpened(number, self.photo)

    async def return_data(self, data: ReturnData, *, message_id: str) -> None:
        """Accept the return data."""
        del data, message_id
        await DEVICES.take(self.times.upstream)
        self.calls += 1

    async def enable(self, card_number: str, card_id_code: str, *, message_id: str) -> None:
        """Enable the card."""
        del card_number, card_id_code, message_id
        await DEVICES.take(self.times.upstream)
        self.calls += 1


@dataclass
class BenchBank:
    """The bank core."""

    times: DeviceTimes
    calls: int = 0

    async def bind_account(self, order: Order, card_number: str, *, message_id: str) -> None:
        """Bind the account."""
        del order, card_number, message_id
        await DEVICES.take(self.times.upstream)
        self.calls += 1


class PassingQc:
    """A teller who passes every card at once."""

    async def inspect(self, job: JobRecord) -> QcVerdict:
        """Pass."""
        del job
        return QcVerdict(passed=True, operator="teller-bench")


def with_upstream(times: DeviceTimes, seconds: float) -> DeviceTimes:
    """``times`` with another upstream call time."""
    return replace(times, upstream=seconds)
