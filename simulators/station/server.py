"""An issuance station: the simulated printer on a pty and the chips that move with its cards.

:class:`StationSimulator` runs a :class:`~simulators.printer.PrinterSimulator`
whose model a :class:`~simulators.station.path.CardPath` follows. Whenever a
card reaches the contact station its chip goes into the reader, whenever it
leaves the chip comes out, in one or both ways:

* in process: ``on_card_in(card)`` / ``on_card_out()`` callbacks (the demo
  hands the card to the daemon's in-process encoder) and :attr:`contact_card`;
* through vsmartcard's vpcd: the chip connects to the vpcd reader of a
  running pcscd while the card is at the contact station, and disconnects
  when it leaves (pcscd reports the removal).

Both happen *before* the printer replies to the command that moved the card:
the reply is held until the chip is in the reader or out of it. In process
that is immediate. Through vpcd the station asks pcscd itself (as a PC/SC
client) and replies once pcscd reports the card present (powered, ATR
published) or the reader empty, which takes up to pcscd's poll interval
(~0.4 s), at most ``vpcd_timeout`` seconds (then it replies anyway and logs a
warning). So a host that got the ACK of "insert to the contact station" can
connect to the card at once, and after the ACK of a move away the reader is
empty.

After every change the station writes :meth:`StationSimulator.snapshot` to
the status file atomically (JSON), for test oracles.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import structlog

from simulators.card.blanks import blank_card
from simulators.printer import Fault, PrinterSimConfig, PrinterSimulator
from simulators.station.path import CardPath, ChipIn, StationCard
from simulators.station.vpcd import VpcdSlot

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from simulators.card import SimulatedCard
    from simulators.card.blanks import FaultyCard

__all__ = ["ReaderCard", "StationConfig", "StationSimulator"]

log = structlog.get_logger(__name__)

_INS_UPDATE_RECORD = 0xDC
_SW_OK = b"\x90\x00"


@dataclass(frozen=True, slots=True)
class StationConfig:
    """What a station holds and how it behaves.

    Attributes:
        blanks: Blank cards in the feeder.
        first_serial: Serial number of the first blank (card identification codes follow it).
        generation: Card generation of the blanks (3: SM4, 2: 3DES).
        region: Issuing region in the blanks' card identification codes.
        time_scale: Multiplies the printer's real mechanical timings (0 = instant).
        link: A symlink kept pointing at the printer's pty.
        reject_capacity: Cards the reject box holds.
        ribbon: Prints left on the ribbon.
        printer_faults: Printer faults active from the start.
        jam_on_feed: Blanks (1 = the first taken from the feeder) that jam as they are fed.
        jam_after_contact: Blanks that jam on their first move after the
            contact station (encoded, not printed); they stay at the contact station.
        faulty_chips: Blanks whose chip refuses every write (``6581``).
        vpcd_port: Serve the chip at the contact station to the vpcd reader on
            this port (``None``: in process only).
        vpcd_host: Host of the vpcd reader.
        vpcd_reader: The PC/SC name of that reader (default: from the port,
            ``Virtual PCD 00 00`` for 35963).
        vpcd_timeout: Longest wait for pcscd to report the chip in or out
            before the printer replies anyway.
        status: Write the JSON snapshot here (atomically) after every change.
        card_dir: Keep each card's chip state in ``card-<serial>.json`` here.
    """

    blanks: int = 100
    first_serial: int = 1
    generation: int = 3
    region: str = "330100"
    time_scale: float = 1.0
    link: str | None = None
    reject_capacity: int = 20
    ribbon: int = 200
    printer_faults: frozenset[Fault] = frozenset()
    jam_on_feed: frozenset[int] = frozenset()
    jam_after_contact: frozenset[int] = frozenset()
    faulty_chips: frozenset[int] = frozenset()
    vpcd_port: int | None = None
    vpcd_host: str = "127.0.0.1"
    vpcd_reader: str | None = None
    vpcd_timeout: float = 2.0
    status: Path | None = None
    card_dir: Path | None = None

    def printer_config(self) -> PrinterSimConfig:
        """The printer part of this configuration."""
        return PrinterSimConfig(
            feeder=self.blanks,
            reject_capacity=self.reject_capacity,
            ribbon_remaining=self.ribbon,
            time_scale=self.time_scale,
            faults=self.printer_faults,
            link=self.link,
        )


class ReaderCard:
    """The chip at the contact station as a reader sees it (a virtual card).

    It reports each successful UPDATE RECORD (the station rewrites its status
    file then).
    """

    def __init__(
        self,
        card: StationCard,
        on_write: Callable[[], None],
        lock: threading.RLock | None = None,
    ) -> None:
        """Wrap the chip of ``card``; ``lock`` is held while the chip works.

        The reader's thread (vpcd) changes the chip while the station's loop
        reads it for the status file: both hold the station's lock.
        """
        self.card = card
        self._chip: SimulatedCard | FaultyCard = card.chip
        self._on_write = on_write
        self._lock = lock if lock is not None else threading.RLock()

    @property
    def atr(self) -> bytes:
        """The chip's ATR."""
        return self._chip.atr

    def power_on(self) -> None:
        """Power the chip."""
        with self._lock:
            self._chip.power_on()

    def power_off(self) -> None:
        """Remove power."""
        with self._lock:
            self._chip.power_off()

    def reset(self) -> None:
        """Warm reset."""
        with self._lock:
            self._chip.reset()

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU."""
        with self._lock:
            answer = self._chip.transmit(apdu)
        if len(apdu) > 1 and apdu[1] == _INS_UPDATE_RECORD and answer[-2:] == _SW_OK:
            self._on_write()
        return answer


class StationSimulator:
    """A simulated printer with a chip encoder at its contact station (see the module)."""

    def __init__(
        self,
        config: StationConfig | None = None,
        *,
        on_card_in: Callable[[ReaderCard], None] | None = None,
        on_card_out: Callable[[], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Build the station; :meth:`start` opens the printer's pty.

        Args:
            config: Stock, faults, timing, vpcd and status file.
            on_card_in: Called with the chip when a card reaches the contact station.
            on_card_out: Called when it leaves.
            sleep: How the printer waits for a command's duration (tests pass a fake).
        """
        self.config = config or StationConfig()
        self.printer = PrinterSimulator(
            self.config.printer_config(), sleep=sleep, before_reply=self._settle
        )
        self.path = CardPath(
            factory=self._make_blank,
            first_serial=self.config.first_serial,
            faulty_chips=self.config.faulty_chips,
            jam_on_feed=self.config.jam_on_feed,
            jam_after_contact=self.config.jam_after_contact,
        )
        self.path.attach(self.printer.model)
        self.on_card_in = on_card_in
        self.on_card_out = on_card_out
        self.vpcd = (
            VpcdSlot(
                self.config.vpcd_host,
                self.config.vpcd_port,
                reader=self.config.vpcd_reader,
                timeout=self.config.vpcd_timeout,
            )
            if self.config.vpcd_port is not None
            else None
        )
        self._contact: ReaderCard | None = None
        #: Held by the reader's thread while a chip works, and by the loop while it reads chips.
        self._chip_lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._written = -1
        self._writes = 0

    @property
    def device(self) -> str:
        """The printer's current pty path (what a host opens).

        Raises:
            LookupError: The pty is closed.
        """
        return self.printer.path

    @property
    def contact_card(self) -> ReaderCard | None:
        """The chip in the reader now (the card at the contact station), if any."""
        return self._contact

    async def __aenter__(self) -> Self:
        """Start."""
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop."""
        await self.stop()

    async def start(self) -> str:
        """Open the printer's pty and write the first status; return the pty path."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        path = await self.printer.start()
        self.write_status()
        log.info("station_started", path=path, vpcd_port=self.config.vpcd_port)
        return path

    async def stop(self) -> None:
        """Close the pty and take the chip out of the vpcd reader (the card stays put)."""
        await self.printer.stop()
        if self.vpcd is not None:
            await asyncio.to_thread(self.vpcd.remove)
        self.write_status()

    def snapshot(self) -> dict[str, Any]:
        """The station's state for test oracles (JSON-ready; shape in docs/simulators.md)."""
        with self._chip_lock:
            state = self.path.snapshot()
        state["device"] = self.printer.path if self.printer.link_up else None
        state["link"] = self.config.link
        state["vpcd_port"] = self.config.vpcd_port
        return state

    def write_status(self) -> None:
        """Write :meth:`snapshot` to the status file atomically (if one is configured)."""
        self._written = self.path.version
        target = self.config.status
        if target is None:
            return
        self._writes += 1
        payload = json.dumps(self.snapshot(), ensure_ascii=False, indent=2, sort_keys=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload + "\n")
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _make_blank(self, serial: int) -> SimulatedCard:
        directory = self.config.card_dir
        path = directory / f"card-{serial}.json" if directory is not None else None
        return blank_card(
            serial, generation=self.config.generation, path=path, region=self.config.region
        )

    def _chip_written(self) -> None:
        """A chip at the contact station was written (called on any thread)."""
        if threading.get_ident() == self._loop_thread:
            self.write_status()
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.write_status)

    async def _settle(self) -> None:
        """Before the printer replies: put chips where the cards are, write the status."""
        for event in self.path.drain():
            if isinstance(event, ChipIn):
                await self._chip_in(event.card)
            else:
                await self._chip_out()
        if self.path.version != self._written:
            self.write_status()

    async def _chip_in(self, card: StationCard) -> None:
        chip = self._contact = ReaderCard(card, self._chip_written, self._chip_lock)
        log.info("station_chip_in", ordinal=card.ordinal, serial=card.serial)
        if self.on_card_in is not None:
            self.on_card_in(chip)
        if self.vpcd is not None:
            await asyncio.to_thread(self.vpcd.insert, chip)

    async def _chip_out(self) -> None:
        chip, self._contact = self._contact, None
        if chip is None:
            return
        log.info("station_chip_out", ordinal=chip.card.ordinal, serial=chip.card.serial)
        if self.on_card_out is not None:
            self.on_card_out()
        if self.vpcd is not None:
            await asyncio.to_thread(self.vpcd.remove)
