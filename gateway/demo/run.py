"""``branchd demo``: the whole branch on this machine, with a morning's work to watch.

Everything the branch talks to is simulated here (:mod:`gateway.demo.world`):
the provincial platform and the bank over mutual TLS, an MQTT broker, an
issuance station (a printer on a pty whose blanks carry chips). The daemon runs
on SQLite in a data directory (a temporary one unless given), and a script
plays a window instant issuance, a small batch, a loss report and the stock
reconciliation through the teller API, printing each step. Then the demo keeps
serving until Ctrl+C; with ``--once`` it exits, 0 when everything agreed.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import aiohttp
from rich.console import Console

from gateway.demo.world import DEMO_BRANCH, DemoError, DemoScript, DemoWorld
from gateway.runtime.logs import configure_logging

if TYPE_CHECKING:
    import argparse

__all__ = ["DEMO_BRANCH", "run_demo"]


async def run_demo(  # noqa: PLR0913 - the command's options
    data_dir: Path | None,
    host: str,
    port: int,
    *,
    once: bool = False,
    time_scale: float | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demonstration; return the exit status.

    Without ``once`` it serves until Ctrl+C or SIGTERM after the script (0);
    with ``once`` it exits after the script: 0 when all went well, else 1.
    """
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="branchd-demo-")) if data_dir is None else data_dir
    console = Console(file=out, highlight=False, soft_wrap=True)
    configure_logging("warning", "auto")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        scale = time_scale if time_scale is not None else (0.01 if once else 0.05)
        async with DemoWorld(directory.resolve(), host=host, port=port, time_scale=scale) as world:
            _print_banner(console, world)
            script = DemoScript(world, say=console.print)
            ok = await _play(console, script, stop)
            if once or stop.is_set():
                return 0 if ok or stop.is_set() else 1
            console.print("The branch keeps serving; press Ctrl+C to stop.")
            await stop.wait()
            return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


async def _play(console: Console, script: DemoScript, stop: asyncio.Event) -> bool:
    """Run the script unless stopped first; say how it went."""
    play = asyncio.create_task(script.run(), name="demo-script")
    stopped = asyncio.create_task(stop.wait(), name="demo-stop")
    await asyncio.wait({play, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not play.done():
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)
        console.print("Stopped before the script finished.")
        return False
    try:
        play.result()
    except (DemoError, aiohttp.ClientError, TimeoutError) as exc:
        console.print(f"[bold red]演示未通过 The demo found a problem:[/] {exc}")
        return False
    console.print("[bold green]演示完成 Everything agreed: chip, platform, bank and stock.[/]")
    return True


def _print_banner(console: Console, world: DemoWorld) -> None:
    daemon = world.daemon
    assert daemon is not None  # noqa: S101 - the world runs
    config = daemon.config
    base = world.base_url
    tokens = world.directory / "tokens"
    lines = [
        f"sscard-branchd demo: branch {config.branch.id} (region {config.branch.region})",
        f"  data directory  {config.data_dir}",
        f"  configuration   {world.config_path}",
        f"  database        {config.database_url}",
        f"  key store       {config.keystore_path} ({config.security.suite} suite)",
        f"  service         {base}/",
        f"  API docs        {base}/docs",
        f"  liveness        {base}/healthz",
        f"  readiness       {base}/readyz",
        f"  metrics         {base}/metrics",
        f"  terminal tokens {tokens}/{{teller,supervisor,ops}}.token",
        f"  printer (pty)   {world.station.device if world.station else '-'}",
        f"  MQTT broker     127.0.0.1:{world.broker_port}",
        "Press Ctrl+C to stop.",
    ]
    console.print("\n".join(lines), markup=False)


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
