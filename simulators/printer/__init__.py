"""A simulated Evolis-compatible card printer on a pty, for the demo and the tests."""

from simulators.printer.model import TIMINGS, Fault, MoveEvent, PrinterModel, PrinterSimConfig
from simulators.printer.server import PrinterSimulator, run_printer_simulator

__all__ = [
    "TIMINGS",
    "Fault",
    "MoveEvent",
    "PrinterModel",
    "PrinterSimConfig",
    "PrinterSimulator",
    "run_printer_simulator",
]
