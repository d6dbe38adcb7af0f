"""The commands an instant-issuance flow sends, and what their replies mean.

Builders return :class:`~protocols.printer.frames.Request` objects; parsers turn
reply texts into values and raise
:class:`~protocols.printer.errors.PrinterReplyError` on anything else. The
per-command timeouts live here too (as numbers: the driver turns them into
loop timers). ``docs/protocols/printer.md`` has the same table for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from protocols.printer.errors import PrinterReplyError
from protocols.printer.frames import Depth, Panel, Request

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "SENSOR_THRESHOLD_VOLTS",
    "CardPosition",
    "CommandKind",
    "EncodingStation",
    "ErrorMode",
    "PrinterStatus",
    "Sensor",
    "SerialMode",
    "Timeouts",
    "clear_error",
    "command_kind",
    "download_panel",
    "eject_card",
    "end_sequence",
    "format_voltage",
    "insert_card",
    "parse_card_position",
    "parse_count",
    "parse_reject_box_full",
    "parse_status",
    "parse_voltage",
    "read_card_position",
    "read_firmware_version",
    "read_reject_box",
    "read_ribbon_capacity",
    "read_ribbon_remaining",
    "read_ribbon_type",
    "read_sensor",
    "reject_card",
    "set_eject_after_print",
    "set_error_mode",
    "set_feeder_insertion",
    "set_reject_to_box",
    "set_serial_mode",
    "setup_requests",
    "start_sequence",
    "status_requests",
]

SENSOR_THRESHOLD_VOLTS = 1.0  # a sensor reading at or above this is "active"
_VOLTS_RE = re.compile(r"(\d{1,2})[,.](\d{2}) Volts")
_COUNT_RE = re.compile(r"\d{1,9}")


class Sensor(StrEnum):
    """Sensors read with ``Rse;<sensor>`` (reply: a voltage, ``5,00 Volts``)."""

    FEEDER = "f"  # active: cards in the feeder
    FEEDER_NEAR_EMPTY = "n"  # active: the stack is above the near-empty mark
    COVER = "o"  # active: the cover is closed
    BEZEL = "b"  # active: a card waits at the output


class EncodingStation(StrEnum):
    """Where ``Si<station>`` takes a card from the feeder to."""

    CONTACT = "s"  # smart-card contact station (Sis)
    CONTACTLESS = "c"  # contactless station (Sic)


class CardPosition(StrEnum):
    """Where the card inside the printer is (``Rlr;p`` replies)."""

    NONE = "OK"
    PRINT = "CARD"
    CONTACT = "SMART CARD"
    CONTACTLESS = "CONTACTLESS CARD"


class SerialMode(StrEnum):
    """Protocol option of ``Pcom`` that this project uses."""

    NONE = "NONE"  # text replies: OK / ERR ...
    ACK_NACK = "ACK/NACK"  # ACK / NACK code for commands that return no data


class ErrorMode(StrEnum):
    """``Pem`` error management."""

    PRINTER = "0"  # the printer recovers by itself after the operator acts
    SOFTWARE = "2"  # errors are reported and cleared by the host


class CommandKind(Enum):
    """Families of commands, which differ in how long they may take."""

    READ = "read"
    PARAMETER = "parameter"
    MOTION = "motion"
    PRINT = "print"
    DOWNLOAD = "download"


def command_kind(request: Request) -> CommandKind:
    """The family of ``request``: by its first letter, ``Db`` and ``Se`` apart."""
    if request.command == "Db":
        return CommandKind.DOWNLOAD
    if request.command == "Se":
        return CommandKind.PRINT
    first = request.command[0]
    if first == "R":
        return CommandKind.READ
    if first == "S":
        return CommandKind.MOTION
    return CommandKind.PARAMETER


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long each kind of command may take before its reply, in seconds.

    Attributes:
        read: ``R...`` reads.
        parameter: ``P...`` settings and anything else that moves nothing.
        motion: card moves (``Si*``, ``Seb``, ``Ser``, ``Srs``, ``Ss``).
        print: ``Se``, which prints every downloaded panel.
        download: ``Db`` on top of its transfer time.
        transfer_rate: Slowest link throughput assumed, bytes per second
            (115200 baud, 8N1 is 11,520 bytes/s).
    """

    read: float = 3.0
    parameter: float = 3.0
    motion: float = 20.0
    print: float = 90.0
    download: float = 10.0
    transfer_rate: float = 11_520.0

    def for_request(self, request: Request) -> float:
        """The timeout for ``request``: by kind, plus transfer time for a payload."""
        kind = command_kind(request)
        base = {
            CommandKind.READ: self.read,
            CommandKind.PARAMETER: self.parameter,
            CommandKind.MOTION: self.motion,
            CommandKind.PRINT: self.print,
            CommandKind.DOWNLOAD: self.download,
        }[kind]
        return base + len(request.data) / self.transfer_rate


def read_sensor(sensor: Sensor) -> Request:
    """``Rse;<sensor>``: one sensor's voltage."""
    return Request("Rse", (sensor.value,))


def read_card_position() -> Request:
    """``Rlr;p``: where the card is (see :class:`CardPosition`)."""
    return Request("Rlr", ("p",))


def read_reject_box() -> Request:
    """``Rlr;h``: ``CARD`` when the reject box is full, ``NO CARD`` otherwise."""
    return Request("Rlr", ("h",))


def read_ribbon_type() -> Request:
    """``Rrt``: the ribbon type, e.g. ``YMCKO``."""
    return Request("Rrt")


def read_ribbon_remaining() -> Request:
    """``Rrt;count``: cards the ribbon still prints."""
    return Request("Rrt", ("count",))


def read_ribbon_capacity() -> Request:
    """``Rrt;qty``: cards a new ribbon of this type prints."""
    return Request("Rrt", ("qty",))


def read_firmware_version() -> Request:
    """``Rfv``: the firmware version text."""
    return Request("Rfv")


def insert_card(station: EncodingStation = EncodingStation.CONTACT) -> Request:
    """``Sis`` / ``Sic``: take a card from the feeder to a station."""
    return Request("Si" + station.value)


def start_sequence() -> Request:
    """``Ss``: start a print sequence (forgets panels downloaded before)."""
    return Request("Ss")


def download_panel(panel: Panel, depth: Depth, data: bytes) -> Request:
    """``Db;<panel>;<depth>;<data>``: one whole 1016x648 panel bitmap."""
    return Request("Db", (panel.value, str(depth.value)), data)


def end_sequence() -> Request:
    """``Se``: print the downloaded panels (then eject or keep, as ``Pneab`` says)."""
    return Request("Se")


def eject_card() -> Request:
    """``Seb``: eject the card to the output."""
    return Request("Seb")


def reject_card() -> Request:
    """``Ser``: move the card to the reject box."""
    return Request("Ser")


def clear_error() -> Request:
    """``Srs``: clear a mechanical error once the cause is removed."""
    return Request("Srs")


def set_serial_mode(mode: SerialMode, baudrate: int = 115_200) -> Request:
    """``Pcom;1;<baud>;N;8;1;<mode>``: serial port 1 settings and reply mode."""
    return Request("Pcom", ("1", str(baudrate), "N", "8", "1", mode.value))


def set_error_mode(mode: ErrorMode) -> Request:
    """``Pem;<mode>``: who recovers from errors."""
    return Request("Pem", (mode.value,))


def set_eject_after_print(*, eject: bool) -> Request:
    """``Pneab;A`` (eject when printed) or ``Pneab;E`` (keep the card)."""
    return Request("Pneab", ("A" if eject else "E",))


def set_feeder_insertion() -> Request:
    """``Pcim;F``: cards are taken from the feeder."""
    return Request("Pcim", ("F",))


def set_reject_to_box() -> Request:
    """``Pcrm;D``: rejected cards go to the reject box."""
    return Request("Pcrm", ("D",))


def setup_requests(
    *,
    serial_mode: SerialMode = SerialMode.ACK_NACK,
    baudrate: int = 115_200,
    serial_link: bool = True,
) -> tuple[Request, ...]:
    """The setup list, sent after every (re)connect, in this order.

    Serial mode first (only on a serial link: a networked printer has no
    ``Pcom`` to set), then errors handled by software, cards from the feeder,
    no automatic eject after printing, rejected cards to the reject box.
    """
    serial = (set_serial_mode(serial_mode, baudrate),) if serial_link else ()
    return (
        *serial,
        set_error_mode(ErrorMode.SOFTWARE),
        set_feeder_insertion(),
        set_eject_after_print(eject=False),
        set_reject_to_box(),
    )


def parse_voltage(text: str) -> float:
    """A sensor reading: ``5,00 Volts`` (comma or dot) is 5.0."""
    match = _VOLTS_RE.fullmatch(text)
    if match is None:
        raise PrinterReplyError("Rse", "a voltage like '5,00 Volts'")
    return int(match[1]) + int(match[2]) / 100


def format_voltage(volts: float) -> str:
    """The printer's spelling of a sensor reading: ``4,85 Volts``."""
    hundredths = round(min(max(volts, 0.0), 99.99) * 100)
    return f"{hundredths // 100},{hundredths % 100:02d} Volts"


def parse_card_position(text: str) -> CardPosition:
    """The ``Rlr;p`` reply as a :class:`CardPosition`."""
    try:
        return CardPosition(text)
    except ValueError:
        raise PrinterReplyError("Rlr;p", "OK, CARD, SMART CARD or CONTACTLESS CARD") from None


def parse_reject_box_full(text: str) -> bool:
    """The ``Rlr;h`` reply: ``CARD`` means full."""
    if text not in {"CARD", "NO CARD"}:
        raise PrinterReplyError("Rlr;h", "CARD or NO CARD")
    return text == "CARD"


def parse_count(text: str, command: str = "Rrt;count") -> int:
    """A decimal count (ribbon remaining or capacity)."""
    if not _COUNT_RE.fullmatch(text):
        raise PrinterReplyError(command, "a decimal count")
    return int(text)


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the status reads say, together.

    Attributes:
        feeder_loaded: The feeder has cards.
        feeder_near_empty: The stack is below the near-empty mark.
        cover_open: The cover is open (nothing moves).
        card_at_output: A card waits at the output.
        reject_box_full: The reject box takes no more cards.
        card_position: Where the card inside is.
        ribbon_type: The ribbon type, ``None`` when no ribbon is detected.
        ribbon_remaining: Cards the ribbon still prints, ``None`` without ribbon.
    """

    feeder_loaded: bool
    feeder_near_empty: bool
    cover_open: bool
    card_at_output: bool
    reject_box_full: bool
    card_position: CardPosition
    ribbon_type: str | None
    ribbon_remaining: int | None

    @property
    def ready(self) -> bool:
        """Whether a new card can be issued now."""
        return (
            self.feeder_loaded
            and not self.cover_open
            and not self.reject_box_full
            and self.card_position is CardPosition.NONE
            and bool(self.ribbon_remaining)
        )


def status_requests() -> tuple[Request, ...]:
    """The reads :func:`parse_status` needs, keyed by their ``label``."""
    return (
        read_sensor(Sensor.FEEDER),
        read_sensor(Sensor.FEEDER_NEAR_EMPTY),
        read_sensor(Sensor.COVER),
        read_sensor(Sensor.BEZEL),
        read_reject_box(),
        read_card_position(),
        read_ribbon_type(),
        read_ribbon_remaining(),
    )


def parse_status(replies: Mapping[str, str | None]) -> PrinterStatus:
    """Build a :class:`PrinterStatus` from reply texts keyed by request label.

    The two ribbon reads may be ``None`` (the printer answered that it detects
    no ribbon); every other read must be present.
    """

    def text(request: Request) -> str:
        value = replies.get(request.label)
        if value is None:
            raise PrinterReplyError(request.label, "a reply")
        return value

    def active(sensor: Sensor) -> bool:
        return parse_voltage(text(read_sensor(sensor))) >= SENSOR_THRESHOLD_VOLTS

    ribbon_type = replies.get(read_ribbon_type().label)
    remaining = replies.get(read_ribbon_remaining().label)
    return PrinterStatus(
        feeder_loaded=active(Sensor.FEEDER),
        feeder_near_empty=not active(Sensor.FEEDER_NEAR_EMPTY),
        cover_open=not active(Sensor.COVER),
        card_at_output=active(Sensor.BEZEL),
        reject_box_full=parse_reject_box_full(text(read_reject_box())),
        card_position=parse_card_position(text(read_card_position())),
        ribbon_type=ribbon_type,
        ribbon_remaining=None if remaining is None else parse_count(remaining),
    )
