"""``branchd pinpad load-key``: load a window's PIN pad with its TPK from the key store.

The pad's PIN key (TPK, ``[[devices.pinpads]] key_label``) is exported from
the branch's key store enciphered under the pad's terminal master key (TMK),
held in the store as a ``wrap`` key (``--tmk``, default ``tmk-<pad id>``),
with its check value (:meth:`security.keystore.KeyStore.export_key`); the
driver sends it with LOAD KEY and checks the check value the pad answers.
The clear TPK never leaves the key store.

The pad's serial link has one opener at a time: run it while the daemon is
stopped (or before the pad is configured in it).
"""

from __future__ import annotations

import random
import sys
from typing import TYPE_CHECKING, Final

from devices.clock import SystemClock
from devices.pinpad import PinPadDriver, PinPadError
from protocols.pinpad.commands import LoadKeyParams
from protocols.pinpad.frames import KeyAlgorithm
from security.keystore import Algorithm, KeyStoreError

if TYPE_CHECKING:
    import argparse

    from gateway.config import Config

__all__ = ["add_pinpad_parser", "run_pinpad"]

#: The pad's key algorithm for each key store algorithm a TPK may have.
PAD_ALGORITHMS: Final = {
    Algorithm.TDES_2KEY: KeyAlgorithm.TDES_2KEY,
    Algorithm.SM4_128: KeyAlgorithm.SM4,
    Algorithm.AES_128: KeyAlgorithm.AES_128,
}
_EXIT_OK: Final = 0
_EXIT_FAILURE: Final = 1
_EXIT_USAGE: Final = 2


def add_pinpad_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pinpad load-key`` to the command line."""
    from pathlib import Path  # noqa: PLC0415 - argparse types only

    pinpad = commands.add_parser(
        "pinpad", help="PIN pads at the windows", description="Manage the windows' PIN pads."
    )
    sub = pinpad.add_subparsers(dest="pinpad_command", required=True, metavar="PINPAD_COMMAND")
    load = sub.add_parser(
        "load-key",
        help="load a pad's TPK from the key store, under its TMK",
        description="Export the pad's TPK under its TMK from the key store and load the pad.",
    )
    load.add_argument("--config", "-c", type=Path, required=True, help="daemon configuration")
    load.add_argument("pad", help="the pad's [[devices.pinpads]] id")
    load.add_argument("--tmk", help="key store id of the pad's TMK (default: tmk-<pad id>)")


async def run_pinpad(args: argparse.Namespace, config: Config) -> int:
    """``pinpad load-key``: exit 0 when the pad took the key, 1 when not, 2 on bad usage."""
    from gateway.assembly import open_keystore  # noqa: PLC0415 - on demand

    pads = {p.id: p for p in (config.devices.pinpads if config.devices else ())}
    settings = pads.get(args.pad)
    if settings is None:
        _err(f"branchd: no [[devices.pinpads]] entry {args.pad!r}")
        return _EXIT_USAGE
    store = open_keystore(config)
    if store is None:
        _err("branchd: no [keystore] configured")
        return _EXIT_USAGE
    try:
        exported = store.export_key(settings.key_label, args.tmk or f"tmk-{settings.id}")
    except KeyStoreError as exc:
        _err(f"branchd: {exc}")
        return _EXIT_USAGE
    finally:
        store.close()
    algorithm = PAD_ALGORITHMS.get(exported.algorithm)
    if algorithm is None:
        _err(f"branchd: a PIN pad takes no {exported.algorithm.value} key")
        return _EXIT_USAGE
    params = LoadKeyParams(algorithm, exported.wrapped, exported.key_check_value)
    driver = PinPadDriver.from_settings(
        settings,
        clock=SystemClock(),
        rng=random.Random(),  # noqa: S311 - reconnect jitter, not cryptography
    )
    try:
        await driver.connect()
        kcv = await driver.load_key(params)
    except PinPadError as exc:
        _err(f"branchd: {settings.id}: {exc.code}")
        return _EXIT_FAILURE
    finally:
        await driver.close()
    sys.stdout.write(
        f"{settings.id}: {exported.key_id} version {exported.version} loaded under "
        f"{exported.kek_id} version {exported.kek_version}, check value {kcv}\n"
    )
    return _EXIT_OK


def _err(message: str) -> None:
    sys.stderr.write(f"{message}\n")
