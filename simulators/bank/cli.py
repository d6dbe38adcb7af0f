"""``branchd sim bank``: the simulated bank core until stopped.

Serves ``/bank/esb`` over mutual TLS with the envelope identity ``BANK-CORE``
from ``--identity`` (made with ``--new-identity``); its public key and AEAD key
are added to the shared ``--peer-keys`` file, and the branches' keys are read
from it (re-read when it changes). The URL is printed on standard output;
SIGINT or SIGTERM stops the simulator and returns 0; a bad key file or TLS
file returns 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Final

from security.pki import PkiError, server_context
from simulators.bank.simulator import BANK_NAME, BankSimulator
from simulators.platform.cli import add_common_arguments, wait_for_stop
from simulators.platform.peers import (
    PeerKeysFile,
    PeerKeysFileError,
    prepare_identities,
    publish_identities,
)

if TYPE_CHECKING:
    import ssl
    import threading
    from collections.abc import Sequence

    from security.envelope import SenderIdentity

__all__ = ["KEY_ID", "add_arguments", "main", "run"]

#: Key id of the bank's envelope identity.
KEY_ID: Final = "bank-sig"
_USAGE_ERROR: Final = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``branchd sim bank`` to ``parser``."""
    add_common_arguments(parser, port=8444, identity="sim-bank-identity.json")


async def _serve(
    args: argparse.Namespace,
    context: ssl.SSLContext,
    identity: SenderIdentity,
    stop: threading.Event | None,
) -> None:
    simulator = BankSimulator(
        ssl_context=context,
        trusted=PeerKeysFile(args.peer_keys),
        suite=args.suite,
        host=args.host,
        port=args.port,
        identity=identity,
    )
    async with simulator:
        sys.stdout.write(f"bank simulator: {simulator.url}\n")
        sys.stdout.flush()
        await wait_for_stop(stop)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until ``stop`` is set or a signal arrives; 2 on a bad key or TLS file.

    Without ``stop`` (the command line), SIGINT and SIGTERM stop it; that needs
    the main thread.
    """
    try:
        identities = prepare_identities(
            args.identity, {BANK_NAME: KEY_ID}, args.suite, create=args.new_identity
        )
        publish_identities(args.peer_keys, identities.values())
        context = server_context(args.cert, args.key, args.ca)
    except (PeerKeysFileError, PkiError) as exc:
        sys.stderr.write(f"branchd sim bank: {exc}\n")
        return _USAGE_ERROR
    asyncio.run(_serve(args, context, identities[BANK_NAME], stop))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run (the function behind ``branchd sim bank``)."""
    parser = argparse.ArgumentParser(prog="branchd sim bank", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
