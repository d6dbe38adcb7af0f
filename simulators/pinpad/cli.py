"""``branchd sim pinpad``: a simulated PIN pad on a pty until stopped.

Prints the pty path (and the stable ``--link`` symlink) on one line, then
serves until SIGINT or SIGTERM. Key presses come from ``--auto-pin`` (every
entry answered with that PIN) or from standard input, one line at a time:
digits, ``E`` enter, ``C`` cancel, ``X`` clear (a line of digits alone is
typed and entered).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from protocols.pinpad.frames import KeyAlgorithm
from simulators.pinpad.model import DEMO_TMK, Fault, PinPadSimConfig
from simulators.pinpad.server import run_pinpad_simulator

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["add_arguments", "config_from_args", "keys_of_line", "main", "run"]

_ALGORITHMS = {"3des": KeyAlgorithm.TDES_2KEY, "sm4": KeyAlgorithm.SM4, "aes": KeyAlgorithm.AES_128}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``branchd sim pinpad`` to ``parser``."""
    parser.add_argument(
        "--link", help="keep this symlink pointing at the current pty (a stable device path)"
    )
    parser.add_argument(
        "--algorithm",
        choices=sorted(_ALGORITHMS),
        default="3des",
        help="the TMK's (and so the PIN key's) cipher (default: %(default)s)",
    )
    parser.add_argument(
        "--tmk",
        default=DEMO_TMK.hex().upper(),
        help="the terminal master key, 32 hex digits (default: the demo TMK)",
    )
    parser.add_argument(
        "--auto-pin",
        help="answer every PIN entry with this PIN (otherwise type keys on standard input)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        choices=[f.value for f in Fault],
        default=[],
        help="a fault active from the start (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> PinPadSimConfig:
    """The simulator configuration the options describe.

    Raises:
        ValueError: The TMK is not 32 hex digits.
    """
    tmk = bytes.fromhex(args.tmk)
    if len(tmk) != 16:  # noqa: PLR2004 (double-length 3DES, SM4, AES-128)
        msg = "the TMK is 32 hex digits"
        raise ValueError(msg)
    return PinPadSimConfig(
        tmk=tmk,
        algorithm=_ALGORITHMS[args.algorithm],
        auto_pin=args.auto_pin,
        faults=frozenset(Fault(f) for f in args.fault),
        link=args.link,
    )


def keys_of_line(line: str) -> str:
    """The key presses a line of input means: digits alone are typed and entered."""
    keys = line.strip().upper()
    return keys + "E" if keys.isdigit() else keys


class _StdinKeys:
    """Lines typed on standard input, read on the loop (no thread left blocking at exit)."""

    def __init__(self, queue: asyncio.Queue[str]) -> None:
        self._queue = queue
        self._pending = b""
        self._fd = sys.stdin.fileno()

    def __call__(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._fd)
            return
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            self._queue.put_nowait(keys_of_line(line.decode("ascii", "replace")))


async def _serve(config: PinPadSimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    keys: asyncio.Queue[str] | None = None
    if config.auto_pin is None and sys.stdin.isatty():
        keys = asyncio.Queue()
        loop.add_reader(sys.stdin.fileno(), _StdinKeys(keys))
    try:
        await run_pinpad_simulator(config, stop=stop, keys=keys)
    finally:
        if keys is not None:
            loop.remove_reader(sys.stdin.fileno())


def run(args: argparse.Namespace) -> int:
    """Serve the pad until SIGINT or SIGTERM; return the exit status (2: bad options)."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        sys.stderr.write(f"branchd sim pinpad: {exc}\n")
        return 2
    asyncio.run(_serve(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m simulators.pinpad.cli``."""
    parser = argparse.ArgumentParser(prog="branchd sim pinpad", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
