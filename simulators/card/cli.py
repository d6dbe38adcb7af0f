"""``branchd sim card``: insert one simulated card into the vpcd reader until stopped.

The card lives in a JSON file (``--state``): it is personalized with the demo
data and the demo master keys the first time and keeps its PIN, retry counter
and records between runs. SIGINT or SIGTERM removes the card and returns 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from protocols.sscard import HolderData, IssuerData
from security.cardcrypto import CardMasterKeys
from simulators.card.card import SimulatedCard
from simulators.card.vpcd import VPCD_PORT, serve_vpcd

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = [
    "DEMO_MASTER_KEYS",
    "add_arguments",
    "demo_holder",
    "demo_issuer",
    "main",
    "open_card",
    "run",
]

#: Development master keys of the demo issuer: for simulated cards only.
DEMO_MASTER_KEYS: Final = CardMasterKeys(
    external_auth=bytes.fromhex("11111111111111112222222222222222"),
    pin_reset=bytes.fromhex("33333333333333334444444444444444"),
    pin_unlock=bytes.fromhex("55555555555555556666666666666666"),
    app_maintenance=bytes.fromhex("77777777777777778888888888888888"),
)


def demo_issuer(generation: int = 3, serial: int = 1, region: str = "330100") -> IssuerData:
    """EF05 of a demo card issued in ``region`` (numbers are made up)."""
    return IssuerData(
        card_id_code=f"{region}D1560000050000{serial:012X}",
        spec_version=f"{generation}.00",
        issue_date=dt.date(2026, 1, 5),
        expiry_date=dt.date(2036, 1, 5),
        card_number=f"A{serial:08d}",
    )


def demo_holder(generation: int = 3) -> HolderData:
    """EF06 of a demo holder (a made-up person)."""
    return HolderData(
        ssn="33010619900101123X",
        name="张三",
        sex="1",
        ethnicity="01",
        birth_date=dt.date(1990, 1, 1),
        name_extension="张三" if generation == 3 else None,  # noqa: PLR2004 - 3rd generation
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``branchd sim card`` to ``parser``."""
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("sim-card.json"),
        help="card file (JSON); created with demo data when missing (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="vpcd host (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=VPCD_PORT, help="vpcd reader port (default: %(default)s)"
    )
    parser.add_argument(
        "--generation", type=int, choices=(2, 3), default=3, help="for a new card: 2 or 3"
    )
    parser.add_argument(
        "--retries", type=int, choices=(3, 6), default=3, help="for a new card: PIN tries"
    )
    parser.add_argument(
        "--protocol", choices=("T=0", "T=1"), default="T=0", help="for a new card: T=0 or T=1"
    )


def open_card(args: argparse.Namespace) -> SimulatedCard:
    """Load the card file, or personalize a demo card into it."""
    path: Path = args.state
    if path.exists():
        return SimulatedCard.load(path)
    return SimulatedCard.issue(
        issuer=demo_issuer(args.generation),
        holder=demo_holder(args.generation),
        masters=DEMO_MASTER_KEYS,
        retries=args.retries,
        protocol=args.protocol,
        path=path,
    )


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve the card in the vpcd reader until ``stop`` is set or a signal arrives.

    Without ``stop`` (the command line), SIGINT and SIGTERM stop it.
    """
    card = open_card(args)
    if stop is None:
        event = threading.Event()

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            event.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        stop = event
    serve_vpcd(card, stop, host=args.host, port=args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run (the function behind ``branchd sim card``)."""
    parser = argparse.ArgumentParser(prog="branchd sim card", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
