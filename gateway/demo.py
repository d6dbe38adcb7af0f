"""``branchd demo``: the daemon on embedded defaults, ready to look at.

Writes a configuration into a data directory (a temporary one unless given),
migrates the SQLite database, serves, and prints the URLs. Later subsystems add
their simulators here (printer on a pty, cards behind a virtual reader,
platform and bank on loopback), so the demo always shows the whole product.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.config import load_config
from gateway.daemon import serve
from gateway.logs import configure_logging

if TYPE_CHECKING:
    import argparse

    from gateway.config import Config
    from gateway.daemon import Daemon

__all__ = ["DEMO_BRANCH", "run_demo", "write_demo_config"]

DEMO_BRANCH = "DEMO-652300-01"

_DEMO_CONFIG = """\
# Written by `branchd demo`; see docs/branchd.example.toml for every key.
data_dir = "{data_dir}"

[branch]
id = "{branch}"
name = "演示网点 Demo branch"
region = "652300"

[server]
host = "{host}"
port = {port}
shutdown_timeout = 10

[logging]
level = "info"
format = "auto"

[security]
suite = "gm"

[keystore]
# A random master key made for this demo, readable by its owner only.
master_key = {{ file = "{master_key}" }}
"""


def write_demo_config(data_dir: Path, host: str, port: int) -> Path:
    """Write the demo's ``branchd.toml`` into ``data_dir`` and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    master_key = data_dir / "master.key"
    if not master_key.exists():
        fd = os.open(master_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
    path = data_dir / "branchd.toml"
    path.write_text(
        _DEMO_CONFIG.format(
            data_dir=data_dir, branch=DEMO_BRANCH, host=host, port=port, master_key=master_key
        ),
        encoding="utf-8",
    )
    return path


async def run_demo(data_dir: Path | None, host: str, port: int, out: TextIO = sys.stdout) -> int:
    """Run the demonstration until Ctrl+C or SIGTERM; return the exit status."""
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="branchd-demo-")) if data_dir is None else data_dir
    try:
        config_path = write_demo_config(directory.resolve(), host, port)
        config = load_config(config_path)
        configure_logging(config.logging.level, config.logging.format)

        def announce(daemon: Daemon) -> None:
            _print_banner(out, config, config_path, daemon.urls)

        return await serve(config, migrate=True, on_started=announce)
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


def _print_banner(out: TextIO, config: Config, config_path: Path, urls: list[str]) -> None:
    base = urls[0] if urls else "(not listening)"
    lines = [
        f"sscard-branchd demo: branch {config.branch.id} (region {config.branch.region})",
        f"  data directory  {config.data_dir}",
        f"  configuration   {config_path}",
        f"  database        {config.database_url}",
        f"  key store       {config.keystore_path} ({config.security.suite} suite)",
        f"  service         {base}/",
        f"  liveness        {base}/healthz",
        f"  readiness       {base}/readyz",
        f"  metrics         {base}/metrics",
        "Press Ctrl+C to stop.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def add_sim_parsers(sim: argparse.ArgumentParser) -> None:
    """``branchd sim ...``: the simulators, each until stopped."""
    from simulators.bank import cli as bank_cli  # noqa: PLC0415
    from simulators.card import cli as card_cli  # noqa: PLC0415 - only for `branchd sim`
    from simulators.platform import cli as platform_cli  # noqa: PLC0415
    from simulators.printer import cli as printer_cli  # noqa: PLC0415

    kinds = sim.add_subparsers(dest="sim_command", required=True, metavar="SIMULATOR")
    card = kinds.add_parser(
        "card",
        help="insert a simulated social security card into the vpcd virtual reader",
        description="Serve one simulated card to pcscd through vpcd until Ctrl+C.",
    )
    card_cli.add_arguments(card)
    printer = kinds.add_parser(
        "printer",
        help="an Evolis-compatible card printer on a pty",
        description="Serve a simulated card printer on a pty (its path is printed) until Ctrl+C.",
    )
    printer_cli.add_arguments(printer)
    from simulators.pinpad import cli as pinpad_cli  # noqa: PLC0415 - only for `branchd sim`

    pinpad = kinds.add_parser(
        "pinpad",
        help="an encrypting PIN pad on a pty (keys typed on stdin or --auto-pin)",
        description="Serve a simulated PIN pad on a pty (its path is printed) until Ctrl+C.",
    )
    pinpad_cli.add_arguments(pinpad)
    from simulators.station import cli as station_cli  # noqa: PLC0415 - only for `branchd sim`

    station = kinds.add_parser(
        "station",
        help="a card printer on a pty whose cards' chips go into the vpcd reader",
        description="Serve a simulated issuance station (printer + chip cards) until Ctrl+C.",
    )
    station_cli.add_arguments(station)
    platform = kinds.add_parser(
        "platform",
        help="provincial platforms, national hub and key service over mutual TLS",
        description="Serve the simulated platforms (several provinces and the hub) until Ctrl+C.",
    )
    platform_cli.add_arguments(platform)
    bank = kinds.add_parser(
        "bank",
        help="the bank core over mutual TLS",
        description="Serve the simulated bank core until Ctrl+C.",
    )
    bank_cli.add_arguments(bank)


def run_sim(args: argparse.Namespace) -> int:
    """Run the simulator chosen on the command line."""
    from simulators.bank import cli as bank_cli  # noqa: PLC0415
    from simulators.card import cli as card_cli  # noqa: PLC0415 - only for `branchd sim`
    from simulators.platform import cli as platform_cli  # noqa: PLC0415
    from simulators.printer import cli as printer_cli  # noqa: PLC0415

    if args.sim_command == "platform":
        return platform_cli.run(args)
    if args.sim_command == "bank":
        return bank_cli.run(args)
    if args.sim_command == "card":
        return card_cli.run(args)
    if args.sim_command == "printer":
        return printer_cli.run(args)
    if args.sim_command == "pinpad":
        from simulators.pinpad import cli as pinpad_cli  # noqa: PLC0415 - only for `branchd sim`

        return pinpad_cli.run(args)
    if args.sim_command == "station":
        from simulators.station import cli as station_cli  # noqa: PLC0415 - only for `branchd sim`

        return station_cli.run(args)
    raise AssertionError(args.sim_command)  # pragma: no cover - argparse refuses others
