"""``branchd sim station``: a simulated printer whose cards carry chips, until stopped.

Prints the pty path (and the stable ``--link`` symlink) on one line, puts the
chip of the card at the contact station into the vpcd reader of the local
pcscd (``--vpcd-port``; ``--no-vpcd`` keeps it to itself), writes the
station's state to ``--status`` after every change, and serves until SIGINT
or SIGTERM, then takes the chip out of the reader, closes the pty and
returns 0.

Faults (``--fault``, repeatable): ``jam:N`` (the N-th blank jams as it is
fed), ``jam-print:N`` (the N-th blank jams on its first move after the contact
station, encoded but not printed), ``faulty-chip:N`` (the N-th blank's chip
refuses every write), or a printer fault from the start (``cover_open``,
``ribbon_out``, ``feeder_empty``, ``noise``, ``garbled``, ``link_drop``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from simulators.card.vpcd import VPCD_PORT
from simulators.printer import Fault
from simulators.station.server import StationConfig, StationSimulator

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["add_arguments", "config_from_args", "main", "parse_fault", "run"]

_NUMBERED = ("jam", "jam-print", "faulty-chip")


@dataclass(slots=True)
class _Faults:
    printer: set[Fault] = field(default_factory=set)
    jam_on_feed: set[int] = field(default_factory=set)
    jam_after_contact: set[int] = field(default_factory=set)
    faulty_chips: set[int] = field(default_factory=set)


def parse_fault(text: str) -> tuple[str, int | None]:
    """Check one ``--fault`` value: ``kind:N`` for a blank's fault, or a printer fault.

    Raises:
        argparse.ArgumentTypeError: Not a known fault, or N is not a positive number.
    """
    kind, _, number = text.partition(":")
    if kind in _NUMBERED:
        if not number.isdigit() or int(number) < 1:
            msg = f"{kind} needs the blank's number from 1: {kind}:N"
            raise argparse.ArgumentTypeError(msg)
        return kind, int(number)
    if number or kind not in {f.value for f in Fault}:
        known = ", ".join([f"{k}:N" for k in _NUMBERED] + [f.value for f in Fault])
        msg = f"unknown fault {text!r} (known: {known})"
        raise argparse.ArgumentTypeError(msg)
    return kind, None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``branchd sim station`` to ``parser``."""
    defaults = StationConfig()
    parser.add_argument(
        "--link", help="keep this symlink pointing at the printer's pty (a stable device path)"
    )
    parser.add_argument(
        "--blanks", type=int, default=defaults.blanks, help="blank cards in the feeder"
    )
    parser.add_argument(
        "--first-serial",
        type=int,
        default=defaults.first_serial,
        help="serial number of the first blank (default: %(default)s)",
    )
    parser.add_argument(
        "--generation", type=int, choices=(2, 3), default=defaults.generation, help="of the blanks"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=defaults.time_scale,
        help="multiply the real mechanical timings (0 = instant; default: %(default)s)",
    )
    parser.add_argument(
        "--reject-capacity", type=int, default=defaults.reject_capacity, help="reject box size"
    )
    parser.add_argument("--ribbon", type=int, default=defaults.ribbon, help="prints left")
    parser.add_argument("--vpcd-host", default="127.0.0.1", help="vpcd host (default: %(default)s)")
    parser.add_argument(
        "--vpcd-port",
        type=int,
        default=VPCD_PORT,
        help="vpcd reader port the chips go to (default: %(default)s)",
    )
    parser.add_argument("--vpcd-reader", help="PC/SC name of that reader (default: from the port)")
    parser.add_argument(
        "--no-vpcd", action="store_true", help="keep the chips away from pcscd (printer only)"
    )
    parser.add_argument("--status", type=Path, help="write the station's state here (JSON)")
    parser.add_argument(
        "--card-dir", type=Path, help="keep each chip's state in card-<serial>.json here"
    )
    parser.add_argument(
        "--fault",
        type=parse_fault,
        action="append",
        default=[],
        metavar="FAULT",
        help="jam:N, jam-print:N, faulty-chip:N or a printer fault (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> StationConfig:
    """The station configuration the options describe."""
    faults = _Faults()
    numbered = {
        "jam": faults.jam_on_feed,
        "jam-print": faults.jam_after_contact,
        "faulty-chip": faults.faulty_chips,
    }
    for kind, number in args.fault:
        if number is None:
            faults.printer.add(Fault(kind))
        else:
            numbered[kind].add(number)
    return StationConfig(
        blanks=args.blanks,
        first_serial=args.first_serial,
        generation=args.generation,
        time_scale=args.time_scale,
        link=args.link,
        reject_capacity=args.reject_capacity,
        ribbon=args.ribbon,
        printer_faults=frozenset(faults.printer),
        jam_on_feed=frozenset(faults.jam_on_feed),
        jam_after_contact=frozenset(faults.jam_after_contact),
        faulty_chips=frozenset(faults.faulty_chips),
        vpcd_port=None if args.no_vpcd else args.vpcd_port,
        vpcd_host=args.vpcd_host,
        vpcd_reader=args.vpcd_reader,
        status=args.status,
        card_dir=args.card_dir,
    )


async def _serve(config: StationConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    station = StationSimulator(config)
    path = await station.start()
    try:
        sys.stdout.write((f"{path} -> {config.link}" if config.link else path) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await station.stop()


def run(args: argparse.Namespace) -> int:
    """Serve the station until SIGINT or SIGTERM; return the exit status."""
    asyncio.run(_serve(config_from_args(args)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m simulators.station.cli``."""
    parser = argparse.ArgumentParser(prog="branchd sim station", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
