"""``branchd sim printer``: a simulated printer on a pty until stopped.

Prints the pty path (and the stable ``--link`` symlink) on one line, serves
until SIGINT or SIGTERM, then closes the pty and returns 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from simulators.printer.model import Fault, PrinterSimConfig
from simulators.printer.server import run_printer_simulator

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["add_arguments", "config_from_args", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``branchd sim printer`` to ``parser``."""
    defaults = PrinterSimConfig()
    parser.add_argument(
        "--link", help="keep this symlink pointing at the current pty (a stable device path)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=defaults.time_scale,
        help="multiply the real mechanical timings (0 = instant; default: %(default)s)",
    )
    parser.add_argument("--feeder", type=int, default=defaults.feeder, help="cards in the feeder")
    parser.add_argument(
        "--reject-capacity", type=int, default=defaults.reject_capacity, help="reject box size"
    )
    parser.add_argument(
        "--ribbon", type=int, default=defaults.ribbon_remaining, help="prints left on the ribbon"
    )
    parser.add_argument(
        "--fault",
        action="append",
        choices=[f.value for f in Fault],
        default=[],
        help="a fault active from the start (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> PrinterSimConfig:
    """The simulator configuration the options describe."""
    return PrinterSimConfig(
        feeder=args.feeder,
        reject_capacity=args.reject_capacity,
        ribbon_remaining=args.ribbon,
        time_scale=args.time_scale,
        faults=frozenset(Fault(f) for f in args.fault),
        link=args.link,
    )


async def _serve(config: PrinterSimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_printer_simulator(config, stop=stop)


def run(args: argparse.Namespace) -> int:
    """Serve the printer until SIGINT or SIGTERM; return the exit status."""
    asyncio.run(_serve(config_from_args(args)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m simulators.printer.cli``."""
    parser = argparse.ArgumentParser(prog="branchd sim printer", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
