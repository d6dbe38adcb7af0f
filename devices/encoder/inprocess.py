"""An in-process encoder: card objects in named virtual readers, same interface as PC/SC.

For ``branchd demo`` and unit tests: :meth:`InProcessEncoder.insert` puts any
object with the :class:`VirtualCard` shape (the card simulator has it) in a
reader and reports :class:`~devices.encoder.channel.CardInserted`;
:meth:`InProcessEncoder.remove` takes it out. Channels run every command
through the same T=0 exchange as the PC/SC driver. A card answers at once,
so nothing here needs a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from devices.encoder.channel import (
    CardInserted,
    CardRemoved,
    EventListener,
    ReaderAdded,
    ReaderEvent,
    ReaderRemoved,
    TransmissionProtocol,
    exchange,
)
from devices.encoder.errors import CardAbsentError, EncoderConnectionError, ReaderUnavailableError

if TYPE_CHECKING:
    from protocols.apdu import CommandApdu, ResponseApdu

__all__ = ["InProcessChannel", "InProcessEncoder", "VirtualCard", "protocol_from_atr"]

#: Name of the first reader, as pcscd names the first vpcd reader.
DEFAULT_READER: Final = "Virtual PCD 00 00"
_TD_PRESENT: Final = 0x80
_INTERFACE_BITS: Final = (0x10, 0x20, 0x40)


class VirtualCard(Protocol):
    """What a card object offers to a virtual reader."""

    @property
    def atr(self) -> bytes:
        """The answer to reset."""
        ...

    def power_on(self) -> None:
        """Power the card."""
        ...

    def power_off(self) -> None:
        """Remove power."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU."""
        ...


def protocol_from_atr(atr: bytes) -> TransmissionProtocol:
    """The first protocol an ATR offers (TD1's low nibble; T=0 when there is no TD1)."""
    if len(atr) < 2 or not atr[1] & _TD_PRESENT:  # noqa: PLR2004 - TS T0
        return "T=0"
    index = 2 + sum(1 for bit in _INTERFACE_BITS if atr[1] & bit)
    if index >= len(atr):
        return "T=0"
    return "T=1" if atr[index] & 0x0F == 1 else "T=0"


@dataclass(slots=True)
class _Slot:
    card: VirtualCard | None = None
    insertions: int = 0


class InProcessChannel:
    """A connection to the card in one in-process reader (a :class:`CardChannel`)."""

    def __init__(self, encoder: InProcessEncoder, reader: str, card: VirtualCard) -> None:
        """Made by :meth:`InProcessEncoder.connect`."""
        self._encoder = encoder
        self._reader = reader
        self._card = card
        self._insertion = encoder.slot(reader).insertions
        self._atr = card.atr
        self._closed = False

    @property
    def reader(self) -> str:
        """The reader's name."""
        return self._reader

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return self._atr

    @property
    def protocol(self) -> TransmissionProtocol:
        """The protocol the ATR offers first."""
        return protocol_from_atr(self._atr)

    async def transmit_raw(self, apdu: bytes) -> bytes:
        """Hand bytes to the card object and return its answer.

        Raises:
            EncoderConnectionError: The channel is closed.
            CardAbsentError: The card was removed (or removed and put back) since connect.
        """
        if self._closed:
            msg = "channel is closed"
            raise EncoderConnectionError(msg, reader=self._reader)
        slot = self._encoder.slot(self._reader)
        if slot.card is not self._card or slot.insertions != self._insertion:
            msg = "the card was removed"
            raise CardAbsentError(msg, reader=self._reader)
        return self._card.transmit(apdu)

    async def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Send one command; ``61xx``/``6Cxx`` chaining is handled."""
        return await exchange(self.transmit_raw, command, self._reader)

    async def close(self) -> None:
        """Forget the connection."""
        self._closed = True


class InProcessEncoder:
    """Named virtual readers holding card objects (see the module docstring)."""

    def __init__(
        self,
        *,
        listener: EventListener | None = None,
        readers: tuple[str, ...] = (DEFAULT_READER,),
    ) -> None:
        """Create the readers, empty."""
        self._listener = listener
        self._slots: dict[str, _Slot] = {}
        for name in readers:
            self.add_reader(name)

    @property
    def readers(self) -> list[str]:
        """The readers' names."""
        return sorted(self._slots)

    def slot(self, reader: str) -> _Slot:
        """The slot of ``reader``.

        Raises:
            ReaderUnavailableError: No such reader.
        """
        slot = self._slots.get(reader)
        if slot is None:
            msg = "no such reader"
            raise ReaderUnavailableError(msg, reader=reader)
        return slot

    def card_present(self, reader: str) -> bool:
        """Whether a card is in ``reader``."""
        slot = self._slots.get(reader)
        return slot is not None and slot.card is not None

    def _emit(self, event: ReaderEvent) -> None:
        if self._listener is not None:
            self._listener(event)

    def add_reader(self, reader: str) -> None:
        """Plug a reader in."""
        if reader not in self._slots:
            self._slots[reader] = _Slot()
            self._emit(ReaderAdded(reader))

    def remove_reader(self, reader: str) -> None:
        """Unplug a reader (its card goes with it)."""
        if reader in self._slots:
            self.remove(reader)
            del self._slots[reader]
            self._emit(ReaderRemoved(reader))

    def insert(self, reader: str, card: VirtualCard) -> None:
        """Put ``card`` in ``reader`` (taking out any card there) and power it."""
        slot = self.slot(reader)
        if slot.card is not None:
            self.remove(reader)
        card.power_on()
        slot.card = card
        slot.insertions += 1
        self._emit(CardInserted(reader, card.atr))

    def remove(self, reader: str) -> None:
        """Take the card out of ``reader``, if there is one."""
        slot = self.slot(reader)
        if slot.card is None:
            return
        slot.card.power_off()
        slot.card = None
        self._emit(CardRemoved(reader))

    async def connect(
        self, reader: str, protocols: tuple[TransmissionProtocol, ...] = ("T=0", "T=1")
    ) -> InProcessChannel:
        """Connect to the card in ``reader``.

        Raises:
            ReaderUnavailableError: No such reader.
            CardAbsentError: No card in it, or its protocol is not among ``protocols``.
        """
        card = self.slot(reader).card
        if card is None:
            msg = "no card in the reader"
            raise CardAbsentError(msg, reader=reader)
        if protocol_from_atr(card.atr) not in protocols:
            msg = "the card speaks none of the protocols asked for"
            raise CardAbsentError(msg, reader=reader)
        return InProcessChannel(self, reader, card)

    async def close(self) -> None:
        """Nothing to release; present for interface parity."""
