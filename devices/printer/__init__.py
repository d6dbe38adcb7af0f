"""Async driver for Evolis-compatible card printers (serial port or TCP)."""

from devices.printer.driver import PrinterDriver
from devices.printer.errors import (
    PrinterBadReplyError,
    PrinterCommandRefusedError,
    PrinterConnectionError,
    PrinterCoverOpenError,
    PrinterDeviceError,
    PrinterError,
    PrinterFeederEmptyError,
    PrinterJamError,
    PrinterNoCardError,
    PrinterRejectBoxFullError,
    PrinterRibbonError,
    PrinterTimeoutError,
    device_error,
)

__all__ = [
    "PrinterBadReplyError",
    "PrinterCommandRefusedError",
    "PrinterConnectionError",
    "PrinterCoverOpenError",
    "PrinterDeviceError",
    "PrinterDriver",
    "PrinterError",
    "PrinterFeederEmptyError",
    "PrinterJamError",
    "PrinterNoCardError",
    "PrinterRejectBoxFullError",
    "PrinterRibbonError",
    "PrinterTimeoutError",
    "device_error",
]
