"""Errors of the printer driver.

:class:`PrinterError` is the root. Its families tell the caller what to do:

- :class:`PrinterTimeoutError`: no reply in time; the link was dropped and will
  be reconnected.
- :class:`PrinterConnectionError`: no link (never opened, or lost).
- :class:`PrinterBadReplyError`: the printer answered something that does not
  parse.
- :class:`PrinterDeviceError`: the printer reported an error; ``printer_code``
  is its code (:class:`~protocols.printer.frames.ErrorCode`) and the subclass
  says which (jam, cover open, feeder empty, ribbon, reject box full, no card,
  refused command).
"""

from __future__ import annotations

from typing import ClassVar

from protocols.printer.frames import ErrorCode

__all__ = [
    "PrinterBadReplyError",
    "PrinterCommandRefusedError",
    "PrinterConnectionError",
    "PrinterCoverOpenError",
    "PrinterDeviceError",
    "PrinterError",
    "PrinterFeederEmptyError",
    "PrinterJamError",
    "PrinterNoCardError",
    "PrinterRejectBoxFullError",
    "PrinterRibbonError",
    "PrinterTimeoutError",
    "device_error",
]


class PrinterError(Exception):
    """Root of the printer driver errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"printer.jam"``.
    """

    code: ClassVar[str] = "printer.error"


class PrinterTimeoutError(PrinterError):
    """A command got no reply within its timeout.

    Attributes:
        command: The command label, e.g. ``"Sis"``.
        timeout: The timeout that passed, in seconds.
    """

    code: ClassVar[str] = "printer.timeout"

    def __init__(self, command: str, timeout: float) -> None:
        """Record the command and the timeout."""
        super().__init__(f"no reply to {command} within {timeout:.1f} s")
        self.command = command
        self.timeout = timeout


class PrinterConnectionError(PrinterError):
    """There is no link to the printer, or it was lost.

    Attributes:
        url: The link's URL.
        reason: Why.
    """

    code: ClassVar[str] = "printer.connection"

    def __init__(self, url: str, reason: str) -> None:
        """Record the URL and the reason."""
        super().__init__(f"printer link {url}: {reason}")
        self.url = url
        self.reason = reason


class PrinterBadReplyError(PrinterError):
    """A reply did not parse as the command's answer.

    Attributes:
        command: The command label.
    """

    code: ClassVar[str] = "printer.bad_reply"

    def __init__(self, command: str) -> None:
        """Record the command."""
        super().__init__(f"unexpected reply to {command}")
        self.command = command


class PrinterDeviceError(PrinterError):
    """The printer reported an error.

    Attributes:
        printer_code: The printer's error code.
        command: The command it refused, e.g. ``"Sis"``.
    """

    code: ClassVar[str] = "printer.device"

    def __init__(self, printer_code: ErrorCode, command: str) -> None:
        """Record the printer's code and the command."""
        super().__init__(f"printer error {printer_code.value} ({printer_code.name}) on {command}")
        self.printer_code = printer_code
        self.command = command


class PrinterCommandRefusedError(PrinterDeviceError):
    """The printer refused the command or a parameter (codes ``1``, ``2``, unknown)."""

    code: ClassVar[str] = "printer.refused"


class PrinterJamError(PrinterDeviceError):
    """Mechanical error or time-out inside the printer, e.g. a card jam (``T``)."""

    code: ClassVar[str] = "printer.jam"


class PrinterCoverOpenError(PrinterDeviceError):
    """The cover is open (``C``)."""

    code: ClassVar[str] = "printer.cover_open"


class PrinterFeederEmptyError(PrinterDeviceError):
    """No card in the feeder (``F``)."""

    code: ClassVar[str] = "printer.feeder_empty"


class PrinterRibbonError(PrinterDeviceError):
    """Ribbon finished, missing or not detected (``R``)."""

    code: ClassVar[str] = "printer.ribbon"


class PrinterRejectBoxFullError(PrinterDeviceError):
    """The reject box is full (``B``)."""

    code: ClassVar[str] = "printer.reject_box_full"


class PrinterNoCardError(PrinterDeviceError):
    """The command needs a card in the printer and there is none (``N``)."""

    code: ClassVar[str] = "printer.no_card"


_BY_CODE: dict[ErrorCode, type[PrinterDeviceError]] = {
    ErrorCode.COMMAND: PrinterCommandRefusedError,
    ErrorCode.PARAMETER: PrinterCommandRefusedError,
    ErrorCode.UNKNOWN: PrinterCommandRefusedError,
    ErrorCode.MECHANICAL: PrinterJamError,
    ErrorCode.COVER_OPEN: PrinterCoverOpenError,
    ErrorCode.FEEDER_EMPTY: PrinterFeederEmptyError,
    ErrorCode.RIBBON: PrinterRibbonError,
    ErrorCode.REJECT_BOX_FULL: PrinterRejectBoxFullError,
    ErrorCode.NO_CARD: PrinterNoCardError,
}


def device_error(printer_code: ErrorCode, command: str) -> PrinterDeviceError:
    """The typed exception for a printer error code."""
    return _BY_CODE[printer_code](printer_code, command)
