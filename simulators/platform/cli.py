"""``branchd sim platform``: the simulated provinces, hub and key service until stopped.

Serves every province of :data:`~simulators.platform.provinces.DEFAULT_PROVINCES`
on ``/platform/<code>/json`` and ``/platform/<code>/soap`` over mutual TLS.
Its envelope identities (``PLATFORM-<code>``) live in ``--identity`` (made
with ``--new-identity``); their public keys and AEAD keys are added to the
shared ``--peer-keys`` file, and the branches' keys are read from it (re-read
when it changes). The key service uses the card simulator's demo master keys
and the demo zone PIN key. The URLs are printed on standard output; SIGINT or
SIGTERM stops the simulator and returns 0; a bad key file or TLS file returns 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from security.pki import PkiError, server_context
from simulators.platform.peers import (
    PeerKeysFile,
    PeerKeysFileError,
    prepare_identities,
    publish_identities,
)
from simulators.platform.provinces import DEFAULT_PROVINCES
from simulators.platform.simulator import DIALECTS, PlatformSimulator, platform_name

if TYPE_CHECKING:
    import ssl
    import threading
    from collections.abc import Sequence

    from security.envelope import SenderIdentity

__all__ = ["KEY_ID", "add_arguments", "add_common_arguments", "main", "run", "wait_for_stop"]

#: Key id of every province's envelope identity.
KEY_ID: Final = "platform-sig"
_USAGE_ERROR: Final = 2


def add_common_arguments(parser: argparse.ArgumentParser, *, port: int, identity: str) -> None:
    """The options every upstream simulator shares (TLS, address, suite, key files)."""
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    parser.add_argument("--ca", type=Path, required=True, help="CA of the clients (PEM)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=port, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--suite", choices=("gm", "intl"), default="gm", help="envelope suite (default: gm)"
    )
    parser.add_argument(
        "--peer-keys",
        type=Path,
        default=Path("peer-keys.json"),
        help="shared peer-keys file, mode 0600 (default: %(default)s)",
    )
    parser.add_argument(
        "--identity",
        type=Path,
        default=Path(identity),
        help="this simulator's private envelope keys, mode 0600 (default: %(default)s)",
    )
    parser.add_argument(
        "--new-identity",
        action="store_true",
        help="generate the identity file's missing keys (else they must exist)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``branchd sim platform`` to ``parser``."""
    add_common_arguments(parser, port=8443, identity="sim-platform-identity.json")


def _identities(args: argparse.Namespace) -> dict[str, SenderIdentity]:
    wanted = {platform_name(code): KEY_ID for code in DEFAULT_PROVINCES}
    return prepare_identities(args.identity, wanted, args.suite, create=args.new_identity)


async def wait_for_stop(stop: threading.Event | None) -> None:
    """Wait for SIGINT/SIGTERM (``stop`` is ``None``) or for ``stop`` to be set."""
    if stop is not None:
        await asyncio.to_thread(stop.wait)
        return
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    try:
        await event.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _serve(
    args: argparse.Namespace,
    context: ssl.SSLContext,
    identities: dict[str, SenderIdentity],
    stop: threading.Event | None,
) -> None:
    by_code = {code: identities[platform_name(code)] for code in DEFAULT_PROVINCES}
    simulator = PlatformSimulator(
        ssl_context=context,
        trusted=PeerKeysFile(args.peer_keys),
        suite=args.suite,
        host=args.host,
        port=args.port,
        identities=by_code,
    )
    async with simulator:
        lines = [f"platform simulator: {simulator.endpoint.url()}"]
        lines += [
            f"  {code} {dialect}: {simulator.url(code, dialect)}"
            for code in DEFAULT_PROVINCES
            for dialect in DIALECTS
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        await wait_for_stop(stop)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until ``stop`` is set or a signal arrives; 2 on a bad key or TLS file.

    Without ``stop`` (the command line), SIGINT and SIGTERM stop it; that needs
    the main thread.
    """
    try:
        identities = _identities(args)
        publish_identities(args.peer_keys, identities.values())
        context = server_context(args.cert, args.key, args.ca)
    except (PeerKeysFileError, PkiError) as exc:
        sys.stderr.write(f"branchd sim platform: {exc}\n")
        return _USAGE_ERROR
    asyncio.run(_serve(args, context, identities, stop))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run (the function behind ``branchd sim platform``)."""
    parser = argparse.ArgumentParser(prog="branchd sim platform", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
