"""The card path of an issuance station: blanks, the contact station, the tray, the reject box.

In a card printer with a chip encoder the encoder's contacts sit at the
printer's contact station: the blank the printer takes from the feeder to the
contact station is the card in the reader; when it moves on (to the print
head, out to the output tray, into the reject box) its chip leaves the reader.

:class:`CardPath` follows a :class:`~simulators.printer.model.PrinterModel`
through its :attr:`~simulators.printer.model.PrinterModel.on_move` hook and
moves :class:`StationCard` objects along: it makes a blank when the printer
takes one from the feeder, and queues a :class:`ChipIn` or :class:`ChipOut`
whenever the card reaches or leaves the contact station. It does no I/O: the
station drains those events (:meth:`CardPath.drain`) and puts the chip into a
reader. It also arms the printer's jam for the blanks configured to jam.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocols.printer.commands import CardPosition
from protocols.sscard import FIELDS, SscardError, decode_field, decode_tlvs
from simulators.card.blanks import FaultyCard

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.card import SimulatedCard
    from simulators.printer.model import MoveEvent, PrinterModel

__all__ = ["CardPath", "ChipEvent", "ChipIn", "ChipOut", "StationCard", "card_summary"]

_POSITION_NAMES = {
    CardPosition.NONE: "none",
    CardPosition.PRINT: "print",
    CardPosition.CONTACT: "contact",
    CardPosition.CONTACTLESS: "contactless",
}
_TAG_CARD_ID, _TAG_CARD_NUMBER, _TAG_SSN, _TAG_NAME = 0x01, 0x07, 0x08, 0x09


@dataclass(slots=True, eq=False)
class StationCard:
    """One card on its way through the station.

    Attributes:
        ordinal: Its place in the feeder stack (1 = the first blank taken).
        serial: The serial number it was made from (its card identification code).
        chip: The chip (a :class:`FaultyCard` wrapper when its EEPROM fails).
        printed: It went under the print head and was printed.
        jammed: It jammed somewhere.
    """

    ordinal: int
    serial: int
    chip: SimulatedCard | FaultyCard = field(repr=False)
    printed: bool = False
    jammed: bool = False

    @property
    def faulty(self) -> bool:
        """Whether its chip refuses writes."""
        return isinstance(self.chip, FaultyCard)


@dataclass(frozen=True, slots=True)
class ChipIn:
    """The card reached the contact station: its chip is now in the reader."""

    card: StationCard


@dataclass(frozen=True, slots=True)
class ChipOut:
    """The card left the contact station: its chip is no longer in the reader."""

    card: StationCard


ChipEvent = ChipIn | ChipOut


def _field(card: StationCard, file: str, tag: int) -> str | None:
    """One EF05/EF06 field as text, or ``None`` when absent or unreadable."""
    record = card.chip.state.records.get(file, {}).get(str(tag))
    if not record:
        return None
    try:
        items = decode_tlvs(bytes.fromhex(record))
        if len(items) != 1:
            return None
        return str(decode_field(FIELDS[tag], items[0][1]))
    except (SscardError, ValueError):
        return None


def card_summary(card: StationCard) -> dict[str, Any]:
    """What a test oracle wants to know of a card (EF05/EF06 summary and its history)."""
    return {
        "ordinal": card.ordinal,
        "serial": card.serial,
        "card_id_code": _field(card, "ef05", _TAG_CARD_ID),
        "card_number": _field(card, "ef05", _TAG_CARD_NUMBER),
        "ssn": _field(card, "ef06", _TAG_SSN),
        "name": _field(card, "ef06", _TAG_NAME),
        "printed": card.printed,
        "jammed": card.jammed,
        "faulty_chip": card.faulty,
    }


class CardPath:
    """Cards following one printer model's card (see the module)."""

    def __init__(
        self,
        *,
        factory: Callable[[int], SimulatedCard],
        first_serial: int = 1,
        faulty_chips: frozenset[int] = frozenset(),
        jam_on_feed: frozenset[int] = frozenset(),
        jam_after_contact: frozenset[int] = frozenset(),
    ) -> None:
        """Describe the blank stack; :meth:`attach` connects it to a printer model.

        Args:
            factory: Makes the blank with a serial number (e.g.
                :func:`~simulators.card.blanks.blank_card`).
            first_serial: Serial number of the first blank in the feeder.
            faulty_chips: Ordinals (1 = first blank fed) whose chip refuses writes.
            jam_on_feed: Ordinals that jam as the printer takes them from the feeder.
            jam_after_contact: Ordinals that jam on their first move after
                reaching the contact station (after encoding, before printing).
        """
        self.factory = factory
        self.first_serial = first_serial
        self.faulty_chips = set(faulty_chips)
        self.jam_on_feed = set(jam_on_feed)
        self.jam_after_contact = set(jam_after_contact)
        self.fed = 0
        self.card: StationCard | None = None
        self.position = CardPosition.NONE
        self.output_tray: list[StationCard] = []
        self.reject_box: list[StationCard] = []
        self.version = 0
        self._events: list[ChipEvent] = []
        self._model: PrinterModel | None = None
        self._armed_for: int | None = None

    @property
    def in_reader(self) -> StationCard | None:
        """The card whose chip is in the reader (the one at the contact station)."""
        return self.card if self.position is CardPosition.CONTACT else None

    def attach(self, model: PrinterModel) -> None:
        """Follow ``model``'s card from now on (sets its ``on_move`` hook)."""
        self._model = model
        model.on_move = self.follow
        self._arm_jam()

    def drain(self) -> list[ChipEvent]:
        """The chip movements since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def follow(self, old: CardPosition, new: CardPosition, event: MoveEvent) -> None:
        """The printer moved its card from ``old`` to ``new`` (the model's hook)."""
        self.version += 1
        if old is CardPosition.NONE and new is not CardPosition.NONE:
            self.card = self._take_blank()
        card = self.card
        if card is None:  # the model moved a card the path never saw: follow the position
            self.position = new
            return
        if old is CardPosition.CONTACT and new is not CardPosition.CONTACT:
            self._events.append(ChipOut(card))
        if new is CardPosition.CONTACT and (
            old is not CardPosition.CONTACT or self.position is not CardPosition.CONTACT
        ):
            self._events.append(ChipIn(card))
        if event == "print":
            card.printed = True
        elif event == "jam":
            card.jammed = True
            self._armed_for = None
        self.position = new
        if new is CardPosition.NONE:
            (self.reject_box if event == "reject" else self.output_tray).append(card)
            self.card = None
            if self._armed_for == card.ordinal and self._model is not None:
                # It left without a move that jams (a reject): the jam was its own.
                self._model.jam_armed = False
            self._armed_for = None
        self._arm_jam()

    def _take_blank(self) -> StationCard:
        self.fed += 1
        serial = self.first_serial + self.fed - 1
        blank = self.factory(serial)
        chip = FaultyCard(blank) if self.fed in self.faulty_chips else blank
        return StationCard(self.fed, serial, chip)

    def _arm_jam(self) -> None:
        """Arm the printer's jam when the next move is one of a card configured to jam."""
        model = self._model
        if model is None:
            return
        card = self.card
        if card is None and self.fed + 1 in self.jam_on_feed:
            self.jam_on_feed.discard(self.fed + 1)
            model.jam_armed = True
            self._armed_for = None
        elif (
            card is not None
            and self.position is CardPosition.CONTACT
            and card.ordinal in self.jam_after_contact
        ):
            self.jam_after_contact.discard(card.ordinal)
            model.jam_armed = True
            self._armed_for = card.ordinal

    def snapshot(self) -> dict[str, Any]:
        """The station's state for test oracles (JSON-ready; see docs/simulators.md)."""
        model = self._model
        card = self.card
        return {
            "version": self.version,
            "feeder": model.feeder if model is not None else None,
            "fed": self.fed,
            "card_position": _POSITION_NAMES[self.position],
            "card": card_summary(card) if card is not None else None,
            "chip_in_reader": self.in_reader is not None,
            "output_tray": [card_summary(c) for c in self.output_tray],
            "reject_box": [card_summary(c) for c in self.reject_box],
            "reject_box_count": model.reject_box if model is not None else len(self.reject_box),
            "printed": model.printed if model is not None else None,
            "ejected": model.ejected if model is not None else len(self.output_tray),
            "printer_error": model.error.name.lower() if model and model.error else None,
        }
