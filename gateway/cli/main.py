"""The ``branchd`` command line.

Exit status: 0 success, 1 failure while running, 2 unusable configuration or
arguments (the message names what is wrong; no traceback).

Why one module of this size: it is the one parser of every command and its
dispatch; each command's work is imported on demand from its feature (the
pinpad's from :mod:`gateway.cli.pinpad`), so a command starts without loading
the others.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.clock import SystemClock
from gateway import __version__
from gateway.archive.store import ArchiveError
from gateway.config import Config, ConfigError, load_config, load_model
from security.keystore import KeyStoreError
from security.pki import CertificateRole, PkiError, certificate_info, init_ca, issue

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_CONFIG = Path(os.environ.get("BRANCHD_CONFIG", "/etc/branchd/branchd.toml"))


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one parser, every command
    parser = argparse.ArgumentParser(
        prog="branchd",
        description="Branch daemon for social security card services (社保卡网点服务).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            "-c",
            type=Path,
            default=DEFAULT_CONFIG,
            help="configuration file (default: $BRANCHD_CONFIG or %(default)s)",
        )

    run = commands.add_parser("run", help="run the daemon", description="Run the daemon.")
    add_config(run)
    run.add_argument(
        "--migrate", action="store_true", help="bring the database schema up to date first"
    )

    demo = commands.add_parser(
        "demo",
        help="run the daemon on embedded defaults and print its URLs",
        description="Run the daemon on SQLite in a temporary (or given) data directory.",
    )
    demo.add_argument(
        "--data-dir", type=Path, help="keep the demo's data here (default: temporary)"
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    demo.add_argument("--port", type=int, default=8080, help="port, 0 for any free (%(default)s)")
    demo.add_argument(
        "--once", action="store_true", help="run the script, then exit (0 when all went well)"
    )
    demo.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="printer timings multiplied by this (default 0.05; 0.01 with --once)",
    )

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file",
        description="Validate a configuration file and print a summary (secrets hidden).",
    )
    check.add_argument("file", type=Path, help="the configuration file")

    db = commands.add_parser("db", help="database schema", description="Database schema.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    up = db_commands.add_parser(
        "upgrade", help="apply migrations", description="Apply Alembic migrations."
    )
    add_config(up)
    up.add_argument("--revision", default="head", help="target revision (%(default)s)")
    current = db_commands.add_parser(
        "current",
        help="show the schema revision",
        description="Show the database's revision and this build's newest.",
    )
    add_config(current)

    _add_pki(commands)
    agent = commands.add_parser(
        "agent",
        help="run the MQTT device agent next to printers and readers",
        description="Expose this PC's printers and card readers to the branch daemon over MQTT.",
    )
    agent.add_argument("--config", "-c", type=Path, required=True, help="agent configuration")
    monitor = commands.add_parser(
        "monitor",
        help="run the central operations monitor of a province",
        description="Aggregate the telemetry of a province's branches: dashboard, alerts, history.",
    )
    monitor.add_argument("--config", "-c", type=Path, required=True, help="monitor configuration")
    _add_batch(commands)
    _add_day(commands)
    from gateway.cli.pinpad import add_pinpad_parser  # noqa: PLC0415 - `branchd pinpad`

    add_pinpad_parser(commands)
    archive = commands.add_parser(
        "archive", help="monthly archive", description="Export and verify the monthly archive."
    )
    archive_commands = archive.add_subparsers(
        dest="archive_command", required=True, metavar="ARCHIVE_COMMAND"
    )
    export = archive_commands.add_parser(
        "export",
        help="write one month's archive to one file",
        description="Write the month's images with index.csv and SHA256SUMS into one ZIP file.",
    )
    add_config(export)
    export.add_argument("month", help="YYYY-MM (business month, Beijing time)")
    export.add_argument("--output", type=Path, help="file to write (default: archive-MONTH.zip)")
    check_archive = archive_commands.add_parser(
        "verify",
        help="check an exported archive",
        description="Recompute every checksum; exit 1 naming the first bad member.",
    )
    check_archive.add_argument("file", type=Path, help="the exported archive")
    sim = commands.add_parser(
        "sim", help="run a simulator", description="Simulated devices for the demo and tests."
    )
    from gateway.demo.run import add_sim_parsers  # noqa: PLC0415 - simulators only on demand

    add_sim_parsers(sim)
    outbox = commands.add_parser(
        "outbox", help="upstream outbox", description="Inspect and retry upstream messages."
    )
    outbox_commands = outbox.add_subparsers(
        dest="outbox_command", required=True, metavar="OUTBOX_COMMAND"
    )
    dead = outbox_commands.add_parser(
        "list",
        help="list dead letters (expired messages)",
        description="List messages that expired without delivery (no personal data shown).",
    )
    add_config(dead)
    dead.add_argument("--limit", type=int, default=100, help="at most this many (%(default)s)")
    retry = outbox_commands.add_parser(
        "retry",
        help="send one dead letter again",
        description="Put a dead letter back in the outbox with a fresh lifetime.",
    )
    add_config(retry)
    retry.add_argument("message_id", help="the message id shown by `branchd outbox list`")
    stock = commands.add_parser(
        "stock",
        help="the blank-card stock per feeder",
        description=(
            "Show each feeder's blank-card ledger (loaded, taken, issued, spoiled, destroyed, "
            "adjusted, in process, remaining) and check that it adds up. Exit 1 on a difference."
        ),
    )
    add_config(stock)
    audit = commands.add_parser(
        "audit", help="the audit log", description="Check the hash-chained audit log."
    )
    audit_commands = audit.add_subparsers(
        dest="audit_command", required=True, metavar="AUDIT_COMMAND"
    )
    verify = audit_commands.add_parser(
        "verify",
        help="re-compute the chain and check the signed checkpoints",
        description=(
            "Exit 0 when intact; exit 1 naming the first finding otherwise: an edited, "
            "deleted, inserted or reordered entry, a re-chained edit, a truncated tail, a "
            "wiped log, or a finished checkpoint period without its signed checkpoint. With "
            "--monitor, the central monitor's copy of the checkpoints is compared too; an "
            "unreachable monitor is reported, and is a failure only with --require-monitor."
        ),
    )
    add_config(verify)
    verify.add_argument(
        "--monitor", metavar="URL", help="the central monitor, e.g. http://mon:8090"
    )
    verify.add_argument(
        "--require-monitor",
        action="store_true",
        help="exit 1 when the monitor cannot be read",
    )
    public_key = audit_commands.add_parser(
        "public-key",
        help="print the public key that checks the branch's checkpoints (PEM)",
        description="For the central monitor's [audit_keys] (one file per branch).",
    )
    add_config(public_key)
    commands.add_parser("version", help="print the version", description="Print the version.")
    return parser


def _add_pki(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pki = commands.add_parser(
        "pki",
        help="development certificates for a branch",
        description="Create a branch CA and issue TLS certificates (ECDSA P-256, mutual TLS).",
    )
    sub = pki.add_subparsers(dest="pki_command", required=True, metavar="PKI_COMMAND")
    init = sub.add_parser(
        "init",
        help="create the branch CA and the daemon's certificate",
        description="Create ca.pem/ca.key and branchd.pem/branchd.key (server and client).",
    )
    init.add_argument("--dir", type=Path, required=True, help="where the files go")
    init.add_argument("--branch", required=True, help="branch id, written into every subject")
    issue = sub.add_parser(
        "issue",
        help="issue a certificate from the branch CA",
        description="Issue NAME.pem and NAME.key from the CA in --dir.",
    )
    issue.add_argument("name", help="file name and common name, e.g. teller-01")
    issue.add_argument("--dir", type=Path, required=True, help="the CA's directory")
    issue.add_argument(
        "--role",
        choices=[r.value for r in CertificateRole],
        default=CertificateRole.CLIENT.value,
        help="server, client (teller terminal, device agent) or peer (both) (%(default)s)",
    )
    issue.add_argument("--dns", action="append", help="DNS name (repeatable; servers)")
    issue.add_argument("--ip", action="append", help="IP address (repeatable; servers)")
    issue.add_argument("--days", type=int, default=825, help="validity (%(default)s days)")
    show = sub.add_parser(
        "show",
        help="list certificates and their expiry",
        description="List the certificates in --dir; flag those expiring within 30 days.",
    )
    show.add_argument("--dir", type=Path, required=True, help="the directory to list")


def _add_batch(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser(
        "batch",
        help="employer batches: card lists, import, production, pickup",
        description="Batch card lists (制卡明细表): template and check offline; import, "
        "submit, progress and pickup through a running daemon.",
    )
    batch_commands = batch.add_subparsers(
        dest="batch_command", required=True, metavar="BATCH_COMMAND"
    )
    template = batch_commands.add_parser(
        "template",
        help="write the card list template (xlsx)",
        description="Write the empty 制卡明细表 with its documented columns.",
    )
    template.add_argument("file", type=Path, help="the xlsx to write")
    check_batch = batch_commands.add_parser(
        "check",
        help="check a card list and its photos and scans",
        description="Check every row with all its problems; write them to an xlsx report.",
    )
    check_batch.add_argument("file", type=Path, help="the card list (xlsx or csv)")
    check_batch.add_argument(
        "--files", type=Path, required=True, help="folder or zip with the photos and scans"
    )
    check_batch.add_argument(
        "--report", type=Path, help="problem report to write (default: FILE-problems.xlsx)"
    )
    _add_batch_remote(batch_commands)


def _add_batch_remote(batch_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``batch import|submit|progress|pickup``: through a running daemon's API."""
    from gateway.runtime.http.client import add_connection_options  # noqa: PLC0415

    materials = "material the handler brought (repeatable), e.g. handler-id-card, batch-file"

    def handler_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--handler-id", required=True, help="handler's identity number ('-': read from stdin)"
        )
        sub.add_argument("--handler-name", required=True, help="handler's name")
        sub.add_argument("--material", action="append", help=materials)

    imported = batch_commands.add_parser(
        "import",
        help="import a card list with its photos and scans",
        description="Send the card list and its files to the daemon; every row is checked. "
        "Rows with problems are listed in FILE-problems.xlsx (for the employer).",
    )
    imported.add_argument("file", type=Path, help="the card list (xlsx or csv)")
    imported.add_argument(
        "--files", type=Path, required=True, help="folder or zip with the photos and scans"
    )
    imported.add_argument("--employer", required=True, help="employer (单位名称)")
    imported.add_argument("--handler-phone", help="handler's phone")
    handler_options(imported)
    imported.add_argument("--priority", choices=["normal", "urgent"], default="normal")
    imported.add_argument(
        "--operation",
        choices=["batch-apply", "reissue", "replace", "renew"],
        default="batch-apply",
        help="new cards (制卡明细表), or new cards for lost, damaged or expiring ones "
        "(补换卡明细表) (%(default)s)",
    )
    imported.add_argument(
        "--report", type=Path, help="problem report to write (default: FILE-problems.xlsx)"
    )
    add_connection_options(imported)
    submitted = batch_commands.add_parser(
        "submit",
        help="queue an imported batch's valid rows for production",
        description="Queue the valid rows of an imported batch for production.",
    )
    submitted.add_argument("batch", help="the batch id (printed by import)")
    add_connection_options(submitted)
    progress = batch_commands.add_parser(
        "progress",
        help="show how far a batch is",
        description="Show the batch's rows by status; --follow draws a progress bar until "
        "production is done with the batch.",
    )
    progress.add_argument("batch", help="the batch id")
    progress.add_argument("--follow", "-f", action="store_true", help="follow until done")
    progress.add_argument(
        "--interval", type=float, default=2.0, help="seconds between looks (%(default)s)"
    )
    add_connection_options(progress)
    pickup = batch_commands.add_parser(
        "pickup",
        help="hand the made cards to the employer's handler",
        description="Hand over the made cards (all, or --line ones). Another handler than the "
        "one who submitted brings the stamped letter: --material employer-letter --letter SCAN.",
    )
    pickup.add_argument("batch", help="the batch id")
    handler_options(pickup)
    pickup.add_argument("--line", type=int, action="append", help="line to hand over (repeatable)")
    pickup.add_argument("--letter", type=Path, help="scan of the stamped letter (JPEG, PNG, PDF)")
    add_connection_options(pickup)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``branchd`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ConfigError, PkiError, KeyStoreError) as exc:
        print(f"branchd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ArchiveError as exc:
        print(f"branchd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    without_config: dict[str, Callable[[argparse.Namespace], int]] = {
        "version": _version,
        "check-config": lambda a: _check_config(a.file),
        "pki": _pki,
        "sim": _sim,
        "demo": _demo,
        "agent": _agent,
        "monitor": _monitor,
        "batch": _batch,
        "day": _day,
    }
    if args.command in without_config:
        return without_config[args.command](args)
    if args.command == "archive" and args.archive_command == "verify":
        return _archive_verify(args.file)

    config = load_config(args.config)
    from gateway.runtime.logs import configure_logging  # noqa: PLC0415 - after the config is known good

    configure_logging(config.logging.level, config.logging.format)
    with_config: dict[str, Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]]] = {
        "run": _run,
        "audit": _audit,
        "outbox": _outbox,
        "stock": _stock,
        "archive": _archive_export,
        "db": lambda a, c: _db(a.db_command, c, getattr(a, "revision", "head")),
        "pinpad": _pinpad,
    }
    return asyncio.run(with_config[args.command](args, config))


async def _pinpad(args: argparse.Namespace, config: Config) -> int:
    from gateway.cli.pinpad import run_pinpad  # noqa: PLC0415 - the pad driver on demand

    return await run_pinpad(args, config)


def _agent(args: argparse.Namespace) -> int:
    import random  # noqa: PLC0415

    from devices.agent import AgentSettings, run_agent  # noqa: PLC0415 - only for the agent
    from gateway.runtime.logs import configure_logging  # noqa: PLC0415

    settings = load_model(args.config, AgentSettings)
    configure_logging("info", "auto")
    return asyncio.run(run_agent(settings, clock=SystemClock(), rng=random.Random()))  # noqa: S311


def _monitor(args: argparse.Namespace) -> int:
    import random  # noqa: PLC0415

    from gateway.monitor import MonitorSettings  # noqa: PLC0415 - only for the monitor
    from gateway.monitor.run import run_monitor  # noqa: PLC0415
    from gateway.runtime.logs import configure_logging  # noqa: PLC0415

    settings = load_model(args.config, MonitorSettings)
    if not settings.data_dir.is_absolute():
        settings = settings.model_copy(
            update={"data_dir": args.config.parent.resolve() / settings.data_dir}
        )
    configure_logging("info", "auto")
    rng = random.Random()  # noqa: S311 - reconnect jitter, not cryptography
    return asyncio.run(run_monitor(settings, clock=SystemClock(), rng=rng))


def _day(args: argparse.Namespace) -> int:
    from gateway.closing.client import run_remote  # noqa: PLC0415 - HTTP client on demand

    return run_remote(args)


def _add_day(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``day close|reopen|show DATE``: the day's close (日终) through the daemon's API."""
    from gateway.runtime.http.client import add_connection_options  # noqa: PLC0415

    day = commands.add_parser(
        "day",
        help="the day's close (日终): close, reopen, show",
        description="Close a business day (counted, compared with the platform and the bank), "
        "reopen it, or show its close. Needs a supervisor terminal's credentials.",
    )
    day_commands = day.add_subparsers(dest="day_command", required=True, metavar="DAY_COMMAND")
    for name, text in (
        ("close", "count the day, compare it with the platform and the bank, close it"),
        ("reopen", "reopen a closed day (supervisor, with a reason)"),
        ("show", "show a day's close"),
    ):
        command = day_commands.add_parser(name, help=text, description=text)
        command.add_argument("day", help="the business day, YYYY-MM-DD (Asia/Shanghai)")
        if name == "reopen":
            command.add_argument("--reason", required=True, help="why it is reopened")
        add_connection_options(command)


def _batch(args: argparse.Namespace) -> int:
    import zipfile  # noqa: PLC0415

    from gateway.batches.cardlist import (  # noqa: PLC0415 - on demand
        BatchFileError,
        check_rows,
        read_rows,
        write_report,
        write_template,
    )

    if args.batch_command not in {"template", "check"}:
        from gateway.batches.client import run_remote  # noqa: PLC0415 - HTTP client on demand

        return run_remote(args)
    if args.batch_command == "template":
        write_template(args.file)
        print(f"{args.file}: template written")
        return EXIT_OK
    files: dict[str, Callable[[], bytes]] = {}
    if args.files.is_dir():
        files = {p.name: p.read_bytes for p in args.files.iterdir() if p.is_file()}
    else:
        archive = zipfile.ZipFile(args.files)
        files = {
            Path(name).name: (lambda name=name: archive.read(name))  # type: ignore[misc]
            for name in archive.namelist()
            if not name.endswith("/")
        }
    try:
        rows = check_rows(read_rows(args.file), files, SystemClock().now().date())
    except BatchFileError as exc:
        print(f"branchd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    report = args.report or args.file.with_name(f"{args.file.stem}-problems.xlsx")
    problems = write_report(report, rows)
    good = sum(row.ok for row in rows)
    print(f"{args.file}: {len(rows)} rows, {good} ready, {len(rows) - good} with problems")
    print(f"{report}: {problems} problem(s) listed")
    return EXIT_OK if good == len(rows) else EXIT_FAILURE


def _version(_args: argparse.Namespace) -> int:
    print(f"sscard-branchd {__version__}")
    return EXIT_OK


def _sim(args: argparse.Namespace) -> int:
    from gateway.demo.run import run_sim  # noqa: PLC0415 - simulators only on demand

    return run_sim(args)


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo.run import run_demo  # noqa: PLC0415 - keep simulators out of other commands

    return asyncio.run(
        run_demo(args.data_dir, args.host, args.port, once=args.once, time_scale=args.time_scale)
    )


async def _run(args: argparse.Namespace, config: Config) -> int:
    from gateway.daemon import serve  # noqa: PLC0415 - heavy imports only when serving

    return await serve(config, migrate=args.migrate)


def _check_config(path: Path) -> int:
    config = load_config(path)
    url = config.database_url
    shown = url if config.database.url is None else url.split("://", 1)[0] + "://(hidden)"
    print(f"{path}: OK")
    print(f"  branch    {config.branch.id} (region {config.branch.region})")
    print(f"  listen    {config.server.host}:{config.server.port}")
    print(f"  database  {shown}")
    print(f"  data dir  {config.data_dir}")
    return EXIT_OK


async def _db(command: str, config: Config, revision: str) -> int:
    from gateway.runtime.db import create_engine  # noqa: PLC0415 - on demand
    from gateway.runtime.migrate import current_revision, head_revision, upgrade  # noqa: PLC0415 - on demand

    engine = create_engine(config.database_url, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        if command == "upgrade":
            await upgrade(engine, revision)
            print(f"database at revision {await current_revision(engine)}")
        else:
            current = await current_revision(engine)
            state = "current" if current == head_revision() else "NOT current"
            print(f"database at {current}, this build's head is {head_revision()}: {state}")
    finally:
        await engine.dispose()
    return EXIT_OK


def _pki(args: argparse.Namespace) -> int:
    now = SystemClock().now()
    if args.pki_command == "init":
        ca = init_ca(args.dir, args.branch, now)
        cert, key = issue(args.dir, "branchd", CertificateRole.PEER, now)
        print(f"branch CA      {ca}")
        print(f"daemon (peer)  {cert}  {key}")
        return EXIT_OK
    if args.pki_command == "issue":
        cert, key = issue(
            args.dir, args.name, CertificateRole(args.role), now,
            dns_names=args.dns, ip_addresses=args.ip, days=args.days,
        )  # fmt: skip
        print(f"{cert}  {key}")
        return EXIT_OK
    status = EXIT_OK
    for path in sorted(args.dir.glob("*.pem")):
        info = certificate_info(path)
        days = info.days_left(now)
        flag = "EXPIRED" if days <= 0 else "expires soon" if info.expires_soon(now) else "ok"
        if days <= 0:
            status = EXIT_FAILURE
        print(
            f"{path.name:24} {info.not_after:%Y-%m-%d} {days:8.1f} days  {flag:13} {info.subject}"
        )
    return status


async def _audit(args: argparse.Namespace, config: Config) -> int:
    from gateway.cli.audit import audit_public_key, audit_verify  # noqa: PLC0415 - on demand

    if args.audit_command == "public-key":
        return audit_public_key(config)
    return await audit_verify(config, monitor=args.monitor, require_monitor=args.require_monitor)


async def _outbox(args: argparse.Namespace, config: Config) -> int:
    from gateway.runtime.db import create_engine, session_factory  # noqa: PLC0415
    from gateway.upstream.errors import UnknownMessageError  # noqa: PLC0415
    from gateway.upstream.outbox import list_dead_letters, retry_dead_letter  # noqa: PLC0415

    engine = create_engine(config.database_url, busy_timeout_ms=config.database.busy_timeout_ms)
    sessions = session_factory(engine)
    try:
        if args.outbox_command == "list":
            letters = await list_dead_letters(sessions, limit=args.limit)
            for letter in letters:
                print(
                    f"{letter.message_id}  {letter.target:8} {letter.operation:24} "
                    f"attempts={letter.attempts} expired={letter.expires_at:%Y-%m-%d %H:%M} "
                    f"{letter.last_error or ''}"
                )
            print(f"{len(letters)} dead letter(s)")
            return EXIT_OK
        try:
            await retry_dead_letter(sessions, args.message_id, SystemClock().now())
        except UnknownMessageError:
            print(f"no dead letter {args.message_id}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"{args.message_id} queued again")
        return EXIT_OK
    finally:
        await engine.dispose()


class _NoPersonalData:
    """The stock ledger reads no personal data: a sealer that refuses to be used."""

    def seal(self, field: str, text: str) -> bytes:
        """Refuse."""
        del text
        raise RuntimeError(f"`branchd stock` does not handle personal data ({field})")

    def open(self, field: str, blob: bytes) -> str:
        """Refuse."""
        del blob
        raise RuntimeError(f"`branchd stock` does not handle personal data ({field})")


async def _stock(_args: argparse.Namespace, config: Config) -> int:
    from rich.console import Console  # noqa: PLC0415 - only for this command
    from rich.table import Table  # noqa: PLC0415

    from gateway.issuance.journal import SqlJournal  # noqa: PLC0415
    from gateway.runtime.db import create_engine  # noqa: PLC0415
    from production import StockLedger  # noqa: PLC0415

    engine = create_engine(config.database_url, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        ledger = StockLedger(SqlJournal(engine, _NoPersonalData()), SystemClock())
        result = await ledger.reconcile()
    finally:
        await engine.dispose()
    table = Table(title=f"Blank-card stock, {config.branch.id}, {result.day.isoformat()}")
    columns = ("loaded", "adjusted", "taken", "issued", "spoiled", "destroyed")
    for column in ("feeder", *columns, "in process", "remaining"):
        table.add_column(column, justify="left" if column == "feeder" else "right")
    for balance in result.balances.values():
        values = [str(getattr(balance, c)) for c in columns]
        table.add_row(balance.feeder, *values, str(balance.in_process), str(balance.remaining))
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 132)
    console.print(table)
    if not result.balances:
        console.print("No blank cards were ever loaded.")
    for problem in result.problems:
        console.print(f"[bold red]difference:[/] {problem}")
    if result.ok:
        console.print("loaded + adjusted = issued + spoiled + in process + remaining: reconciled")
    return EXIT_OK if result.ok else EXIT_FAILURE


async def _archive_export(args: argparse.Namespace, config: Config) -> int:
    from gateway.archive.store import ArchiveStore, export_month  # noqa: PLC0415
    from gateway.runtime.db import create_engine, session_factory  # noqa: PLC0415

    output = args.output or Path(f"archive-{args.month}.zip")
    engine = create_engine(config.database_url, busy_timeout_ms=config.database.busy_timeout_ms)
    sessions = session_factory(engine)
    try:
        store = ArchiveStore(config.data_dir / "archive", sessions, SystemClock())
        count = await export_month(store, sessions, args.month, output)
    finally:
        await engine.dispose()
    print(f"{output}: {count} file(s) for {args.month}")
    return EXIT_OK


def _archive_verify(path: Path) -> int:
    from gateway.archive.store import verify_export  # noqa: PLC0415

    result = verify_export(path)
    print(f"{path}: intact, {result.files} file(s), month {result.month}")
    return EXIT_OK
