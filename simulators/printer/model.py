"""The simulated printer's mechanics: stock, ribbon, card position, errors.

:class:`PrinterModel` plays the device role of ``protocols.printer``: it takes
a decoded :class:`~protocols.printer.frames.Request` and returns the reply
bytes and how long the printer works on it (at real speed; the server scales
and sleeps). It does no I/O and reads no clock, so tests can drive it directly.

Whoever follows the card through the printer (a chip encoder at the contact
station) sets :attr:`PrinterModel.on_move`: it is called on every card
movement with the old and the new :class:`CardPosition` and a
:data:`MoveEvent`, before the command's reply is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from protocols.printer.commands import CardPosition, SerialMode, format_voltage
from protocols.printer.frames import (
    ERROR_TEXTS,
    Ack,
    ErrorCode,
    Nack,
    Panel,
    Request,
    TextReply,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TIMINGS", "Fault", "MoveEvent", "PrinterModel", "PrinterSimConfig"]

#: Why the card moved: ``feed`` (taken from the feeder), ``move`` (between
#: stations), ``print`` (printed under the head), ``eject`` (to the output
#: tray), ``reject`` (to the reject box), ``jam`` (stuck where it is now).
MoveEvent = Literal["feed", "move", "print", "eject", "reject", "jam"]

# Seconds each command takes at real speed (an Evolis-class printer issues a
# YMCKO card in about 25 s); the server multiplies them by its time scale.
TIMINGS: dict[str, float] = {
    "read": 0.02,
    "parameter": 0.02,
    "Ss": 0.05,
    "Db": 0.2,
    "Sis": 1.5,
    "Sic": 1.5,
    "Se": 20.0,
    "Seb": 1.0,
    "Ser": 1.2,
    "Srs": 2.0,
}

FIRMWARE_VERSION = "SSC-SIM 1.0.0"
HIGH_VOLTS, LOW_VOLTS = 5.0, 0.2


class Fault(StrEnum):
    """Faults to inject, in the configuration or at run time."""

    JAM = "jam"  # the next card move jams: mechanical error until Srs
    RIBBON_OUT = "ribbon_out"  # the ribbon is finished
    COVER_OPEN = "cover_open"  # the cover is open until cleared
    FEEDER_EMPTY = "feeder_empty"  # no card in the feeder
    NOISE = "noise"  # garbage bytes before the next reply (the host resyncs)
    GARBLED = "garbled"  # the next reply is garbled beyond recognition
    LINK_DROP = "link_drop"  # the link drops when the next command arrives


@dataclass(slots=True)
class PrinterSimConfig:
    """Initial state and behaviour of a simulated printer.

    Attributes:
        feeder: Cards in the feeder.
        feeder_near_empty_at: At or below this many cards the near-empty sensor drops.
        reject_box: Cards already in the reject box.
        reject_capacity: Cards the reject box holds.
        ribbon_type: Ribbon type reported by ``Rrt``; ``None`` means no ribbon.
        ribbon_capacity: Cards a new ribbon prints.
        ribbon_remaining: Cards the ribbon still prints.
        time_scale: Multiplies every duration in :data:`TIMINGS` (0 = instant).
        faults: Faults active from the start.
        link: A symlink kept pointing at the current pty (stable across restores).
    """

    feeder: int = 100
    feeder_near_empty_at: int = 10
    reject_box: int = 0
    reject_capacity: int = 20
    ribbon_type: str | None = "YMCKO"
    ribbon_capacity: int = 200
    ribbon_remaining: int = 200
    time_scale: float = 1.0
    faults: frozenset[Fault] = frozenset()
    link: str | None = None


@dataclass(slots=True)
class PrinterModel:
    """State of one simulated printer and its answer to each command."""

    config: PrinterSimConfig = field(default_factory=PrinterSimConfig)
    feeder: int = 0
    reject_box: int = 0
    ribbon_remaining: int = 0
    ribbon_type: str | None = None
    card: CardPosition = CardPosition.NONE
    cover_open: bool = False
    jam_armed: bool = False
    error: ErrorCode | None = None
    mode: SerialMode = SerialMode.NONE
    eject_after_print: bool = True
    settings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    panels: dict[Panel, int] = field(default_factory=dict)
    printed: int = 0
    ejected: int = 0
    on_move: Callable[[CardPosition, CardPosition, MoveEvent], None] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Load the configured stock and faults."""
        self.feeder = self.config.feeder
        self.reject_box = self.config.reject_box
        self.ribbon_remaining = self.config.ribbon_remaining
        self.ribbon_type = self.config.ribbon_type
        for fault in self.config.faults:
            self.inject(fault)

    # ------------------------------------------------------------ faults

    def inject(self, fault: Fault) -> None:
        """Apply a mechanical fault (link faults belong to the server)."""
        if fault is Fault.JAM:
            self.jam_armed = True
        elif fault is Fault.RIBBON_OUT:
            self.ribbon_remaining = 0
        elif fault is Fault.COVER_OPEN:
            self.cover_open = True
        elif fault is Fault.FEEDER_EMPTY:
            self.feeder = 0

    def clear(self, fault: Fault) -> None:
        """Remove a fault as an operator would (refill, close the cover, ...)."""
        if fault is Fault.JAM:
            self.jam_armed = False
        elif fault is Fault.RIBBON_OUT:
            self.ribbon_remaining = self.config.ribbon_capacity
        elif fault is Fault.COVER_OPEN:
            self.cover_open = False
        elif fault is Fault.FEEDER_EMPTY:
            self.feeder = self.config.feeder or 1

    # ------------------------------------------------------------ replies

    def ok(self) -> bytes:
        """Success for a command that returns no data, in the current mode."""
        return Ack().to_bytes() if self.mode is SerialMode.ACK_NACK else b"OK\r"

    def fail(self, code: ErrorCode) -> bytes:
        """An error reply in the current mode."""
        if self.mode is SerialMode.ACK_NACK:
            return Nack(code.value).to_bytes()
        return TextReply(ERROR_TEXTS[code]).to_bytes()

    def handle(self, request: Request) -> tuple[bytes, float]:
        """The reply to ``request`` and the seconds the printer works on it."""
        name = request.command
        if name[0] == "R":
            return self._read(request), TIMINGS["read"]
        if name[0] == "P":
            return self._parameter(request), TIMINGS["parameter"]
        handler = {
            "Ss": self._start_sequence,
            "Db": self._download,
            "Se": self._print,
            "Sis": lambda r: self._insert(CardPosition.CONTACT, r),
            "Sic": lambda r: self._insert(CardPosition.CONTACTLESS, r),
            "Seb": self._eject,
            "Ser": self._reject,
            "Srs": self._clear_error,
        }.get(name)
        if handler is None:
            return self.fail(ErrorCode.COMMAND), TIMINGS["read"]
        reply = handler(request)
        return reply, TIMINGS[name]

    def _text(self, text: str) -> bytes:
        return TextReply(text).to_bytes()

    def _read(self, request: Request) -> bytes:  # noqa: PLR0911 (one answer per read)
        key = request.label
        volts = {
            "Rse;f": self.feeder > 0,
            "Rse;n": self.feeder > self.config.feeder_near_empty_at,
            "Rse;o": not self.cover_open,
            "Rse;b": False,
        }
        if key in volts:
            return self._text(format_voltage(HIGH_VOLTS if volts[key] else LOW_VOLTS))
        if key == "Rlr;p":
            return self._text(self.card.value)
        if key == "Rlr;h":
            return self._text(
                "CARD" if self.reject_box >= self.config.reject_capacity else "NO CARD"
            )
        if key == "Rfv":
            return self._text(FIRMWARE_VERSION)
        if key in {"Rrt", "Rrt;count", "Rrt;qty"}:
            if self.ribbon_type is None:
                if self.mode is SerialMode.ACK_NACK:
                    return self.fail(ErrorCode.RIBBON)
                return self._text("ERR RIB DETECTION")
            values = {
                "Rrt": self.ribbon_type,
                "Rrt;count": str(self.ribbon_remaining),
                "Rrt;qty": str(self.config.ribbon_capacity),
            }
            return self._text(values[key])
        return self.fail(
            ErrorCode.COMMAND if request.command not in {"Rse", "Rlr"} else ErrorCode.PARAMETER
        )

    def _parameter(self, request: Request) -> bytes:
        name, params = request.command, request.params
        if name == "Pcom":
            return self._serial_settings(params)
        if name == "Pneab":
            if not params or params[0] not in {"A", "E"}:
                return self.fail(ErrorCode.PARAMETER)
            self.eject_after_print = params[0] == "A"
        elif name in {"Pem", "Pcim", "Pcem", "Pcrm"}:
            if not params:
                return self.fail(ErrorCode.PARAMETER)
        else:
            return self.fail(ErrorCode.COMMAND)
        self.settings[name] = params
        return self.ok()

    def _serial_settings(self, params: tuple[str, ...]) -> bytes:
        """``Pcom;port;speed;parity;data;stop[;protocol]``: only the protocol matters here."""
        if len(params) < 5:  # noqa: PLR2004 (port, speed, parity, data bits, stop bits)
            return self.fail(ErrorCode.PARAMETER)
        option = params[5] if len(params) > 5 else "NONE"  # noqa: PLR2004
        if option in {"0", "NONE"}:
            self.mode = SerialMode.NONE
        elif option == SerialMode.ACK_NACK.value:
            self.mode = SerialMode.ACK_NACK
        else:
            return self.fail(ErrorCode.PARAMETER)
        self.settings["Pcom"] = params
        return self.ok()

    def _blocked(self) -> ErrorCode | None:
        """Why no card may move now, if anything stops it."""
        if self.cover_open:
            return ErrorCode.COVER_OPEN
        return self.error

    def _move(self, new: CardPosition, event: MoveEvent) -> None:
        """Put the card at ``new`` and tell :attr:`on_move`."""
        old, self.card = self.card, new
        if self.on_move is not None:
            self.on_move(old, new, event)

    def _jam(self, where: CardPosition | None = None) -> bytes:
        """The card jams at ``where`` (default: where it is); held until ``Srs``."""
        self.jam_armed = False
        self.error = ErrorCode.MECHANICAL
        self._move(self.card if where is None else where, "jam")
        return self.fail(ErrorCode.MECHANICAL)

    def _start_sequence(self, _request: Request) -> bytes:
        self.panels.clear()
        return self.ok()

    def _download(self, request: Request) -> bytes:
        self.panels[Panel(request.params[0])] = len(request.data)
        return self.ok()

    def _insert(self, station: CardPosition, _request: Request) -> bytes:
        if (blocked := self._blocked()) is not None:
            return self.fail(blocked)
        if self.card is CardPosition.NONE:
            if self.feeder <= 0:
                return self.fail(ErrorCode.FEEDER_EMPTY)
            self.feeder -= 1
            if self.jam_armed:
                return self._jam(CardPosition.PRINT)
            self._move(station, "feed")
            return self.ok()
        if self.jam_armed:
            return self._jam()
        self._move(station, "move")
        return self.ok()

    def _print(self, _request: Request) -> bytes:
        if (blocked := self._blocked()) is not None:
            return self.fail(blocked)
        if not self.panels:
            return self.fail(ErrorCode.PARAMETER)
        if self.ribbon_type is None or self.ribbon_remaining <= 0:
            return self.fail(ErrorCode.RIBBON)
        if self.card is CardPosition.NONE:
            if self.feeder <= 0:
                return self.fail(ErrorCode.FEEDER_EMPTY)
            self.feeder -= 1
            self._move(CardPosition.PRINT, "feed")
        if self.jam_armed:
            return self._jam()
        self.ribbon_remaining -= 1
        self.printed += 1
        self.panels.clear()
        self._move(CardPosition.PRINT, "print")
        if self.eject_after_print:
            self.ejected += 1
            self._move(CardPosition.NONE, "eject")
        return self.ok()

    def _eject(self, _request: Request) -> bytes:
        if (blocked := self._blocked()) is not None:
            return self.fail(blocked)
        if self.card is CardPosition.NONE:
            return self.fail(ErrorCode.NO_CARD)
        if self.jam_armed:
            return self._jam()
        self.ejected += 1
        self._move(CardPosition.NONE, "eject")
        return self.ok()

    def _reject(self, _request: Request) -> bytes:
        if (blocked := self._blocked()) is not None:
            return self.fail(blocked)
        if self.card is CardPosition.NONE:
            return self.fail(ErrorCode.NO_CARD)
        if self.reject_box >= self.config.reject_capacity:
            return self.fail(ErrorCode.REJECT_BOX_FULL)
        self.reject_box += 1
        self._move(CardPosition.NONE, "reject")
        return self.ok()

    def _clear_error(self, _request: Request) -> bytes:
        if self.cover_open:
            return self.fail(ErrorCode.COVER_OPEN)
        self.error = None
        return self.ok()
