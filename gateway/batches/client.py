"""``branchd batch import|submit|progress|pickup``: the batch API from a terminal.

The commands talk to a running daemon's teller API over HTTP(S), as the
teller system does, with the terminal's credentials
(:mod:`gateway.runtime.http.client`: ``--url``, ``--token-file``, ``--cert``,
``--key``, ``--ca`` or their environment variables).

Every POST carries an ``Idempotency-Key``: a fresh one per run, or the one
given with ``--idempotency-key``. When the answer is lost (the connection
broke), the command prints its key; running it again with that key answers
what the daemon did, and does nothing twice.

A refusal is the API's problem document: the command prints its code, both
titles, the detail and every missing item, and exits 1.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import zipfile
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.runtime.http.client import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    TIMEOUT,
    ApiClient,
    ApiProblemError,
    ClientError,
    Endpoint,
    add_connection_options,
)
from security.pki import PkiError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

__all__ = [
    "ApiProblemError",
    "BatchClient",
    "ClientError",
    "Endpoint",
    "add_connection_options",
    "follow",
    "run_remote",
]

#: Row statuses still on their way through production (progress is not over while any is left).
IN_PRODUCTION: Final = frozenset({"ready", "queued", "producing", "single"})


class BatchClient(ApiClient):
    """The batch API over one HTTP session."""

    async def import_batch(  # noqa: PLR0913 - one argument per part of the submission
        self,
        *,
        employer: str,
        handler: Mapping[str, str],
        materials: list[str],
        priority: str,
        list_name: str,
        list_data: bytes,
        files: bytes,
        operation: str = "batch-apply",
    ) -> dict[str, Any]:
        """``POST /v1/batches``: the list and the zip of photos and scans; the batch."""
        body = {
            "employer": employer,
            "handler": dict(handler),
            "materials": materials,
            "priority": priority,
            "operation": operation,
            "list_name": list_name,
            "list_data": base64.b64encode(list_data).decode(),
            "files": base64.b64encode(files).decode(),
        }
        return await self._json("POST", "/v1/batches", body)

    async def submit(self, batch_id: str) -> dict[str, Any]:
        """``POST /v1/batches/{id}/submit``: queue the valid rows; the batch."""
        return await self._json("POST", f"/v1/batches/{batch_id}/submit")

    async def batch(self, batch_id: str) -> dict[str, Any]:
        """``GET /v1/batches/{id}``: the batch with its rows counted by status."""
        return await self._json("GET", f"/v1/batches/{batch_id}")

    async def report(self, batch_id: str) -> bytes:
        """``GET /v1/batches/{id}/report``: the problems as xlsx."""
        status, raw, content_type = await self._call("GET", f"/v1/batches/{batch_id}/report")
        if status >= 400:  # noqa: PLR2004 - HTTP error statuses
            answer = json.loads(raw) if content_type.endswith("json") else {"code": "http-error"}
            raise ApiProblemError(status, answer)
        return raw

    async def pickup(
        self,
        batch_id: str,
        *,
        handler: Mapping[str, str],
        materials: list[str],
        lines: list[int] | None,
        letter: bytes | None,
    ) -> dict[str, Any]:
        """``POST /v1/batches/{id}/pickup``: the handler takes the made cards."""
        body: dict[str, Any] = {"handler": dict(handler), "materials": materials}
        if lines:
            body["lines"] = lines
        if letter is not None:
            body["letter"] = base64.b64encode(letter).decode()
        return await self._json("POST", f"/v1/batches/{batch_id}/pickup", body)


def production_over(batch: Mapping[str, Any]) -> bool:
    """Whether production is done with the batch (no row waits or is being made)."""
    counts: Mapping[str, int] = batch.get("counts", {})
    return batch.get("status") in {"submitted", "finished"} and not any(
        counts.get(status, 0) for status in IN_PRODUCTION
    )


async def follow(
    client: BatchClient,
    batch_id: str,
    *,
    console: Console,
    interval: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, Any]:
    """Show a progress bar of the batch until production is done with it; the last answer.

    Polls ``GET /v1/batches/{id}`` every ``interval`` seconds (the API's
    ``done`` over ``total``), with the rows counted by status beside the bar.
    """
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("制卡 production", total=None, counts="")
        while True:
            batch = await client.batch(batch_id)
            bar.update(
                task,
                total=max(batch["total"], 1),
                completed=batch["done"],
                counts=_counts(batch["counts"]),
            )
            if production_over(batch):
                return batch
            await sleep(interval)


def _counts(counts: Mapping[str, int]) -> str:
    return " ".join(f"{status}={n}" for status, n in sorted(counts.items()))


def files_zip(source: Path) -> bytes:
    """The photos and scans as one zip: a folder's files zipped, or a zip file as it is.

    Raises:
        ClientError: ``source`` is neither a folder nor a readable zip file.
    """
    if source.is_dir():
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted(source.iterdir()):
                if path.is_file():
                    archive.write(path, path.name)
        return out.getvalue()
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read {source}: {exc}") from None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ClientError(f"{source} is neither a folder nor a zip file")
    return data


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read {what} {path}: {exc}") from None


def _handler(args: argparse.Namespace, stdin: TextIO) -> dict[str, str]:
    """The handler's identity (``--handler-id -`` reads the number from stdin, not argv)."""
    id_number = args.handler_id
    if id_number == "-":
        id_number = stdin.readline().strip()
    handler = {"id_number": id_number.upper(), "name": args.handler_name}
    if getattr(args, "handler_phone", None):
        handler["phone"] = args.handler_phone
    return handler


def _print_batch(batch: Mapping[str, Any], console: Console) -> None:
    console.print(
        f"batch {batch['id']}  receipt {batch['receipt_number']}  {batch['status']}  "
        f"priority {batch['priority']}  deadline {batch.get('deadline') or '-'}",
        highlight=False,
    )
    console.print(
        f"  {batch['employer']}  handler {batch['handler']}  rows {batch['rows']}  "
        f"made {batch['done']}/{batch['total']}  {_counts(batch['counts'])}",
        highlight=False,
    )


async def _import(client: BatchClient, args: argparse.Namespace, console: Console) -> int:
    batch = await client.import_batch(
        employer=args.employer,
        handler=_handler(args, sys.stdin),
        materials=args.material or [],
        priority=args.priority,
        operation=args.operation,
        list_name=args.file.name,
        list_data=await asyncio.to_thread(_read, args.file, "the card list"),
        files=await asyncio.to_thread(files_zip, args.files),
    )
    _print_batch(batch, console)
    invalid = batch["counts"].get("invalid", 0)
    if invalid:
        report = args.report or args.file.with_name(f"{args.file.stem}-problems.xlsx")
        report.write_bytes(await client.report(batch["id"]))
        console.print(f"{invalid} row(s) with problems: {report}", highlight=False)
    return EXIT_OK


async def _submit(client: BatchClient, args: argparse.Namespace, console: Console) -> int:
    _print_batch(await client.submit(args.batch), console)
    return EXIT_OK


async def _progress(client: BatchClient, args: argparse.Namespace, console: Console) -> int:
    if args.follow:
        batch = await follow(client, args.batch, console=console, interval=args.interval)
    else:
        batch = await client.batch(args.batch)
    _print_batch(batch, console)
    return EXIT_OK


async def _pickup(client: BatchClient, args: argparse.Namespace, console: Console) -> int:
    letter = None
    if args.letter is not None:
        letter = await asyncio.to_thread(_read, args.letter, "the letter")
    done = await client.pickup(
        args.batch,
        handler=_handler(args, sys.stdin),
        materials=args.material or [],
        lines=args.line,
        letter=letter,
    )
    changed = "  (changed handler, letter archived)" if done["changed_handler"] else ""
    console.print(
        f"receipt {done['receipt_number']}: {len(done['lines'])} card(s) handed over{changed}",
        highlight=False,
    )
    console.print(f"  lines {', '.join(str(n) for n in done['lines'])}", highlight=False)
    console.print(f"  enabled automatically after {done['enable_due_at']}", highlight=False)
    return EXIT_OK


_COMMANDS: Final[
    dict[str, Callable[[BatchClient, argparse.Namespace, Console], Awaitable[int]]]
] = {
    "import": _import,
    "submit": _submit,
    "progress": _progress,
    "pickup": _pickup,
}


async def run_async(
    args: argparse.Namespace,
    *,
    console: Console | None = None,
    errors: TextIO | None = None,
) -> int:
    """Run one remote batch command; the exit status (0, 1 refused or failed, 2 usage)."""
    console = console or Console(highlight=False, soft_wrap=True)
    errors = errors or sys.stderr
    try:
        endpoint = Endpoint.from_options(args)
    except (ClientError, PkiError) as exc:
        print(f"branchd: {exc}", file=errors)
        return EXIT_USAGE
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        client = BatchClient(http, endpoint, key=args.idempotency_key)
        try:
            return await _COMMANDS[args.batch_command](client, args, console)
        except ApiProblemError as refused:
            print(f"branchd: {refused.describe()}", file=errors)
            return EXIT_FAILURE
        except ClientError as exc:
            print(f"branchd: {exc}", file=errors)
            return EXIT_USAGE
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            print(f"branchd: {endpoint.url}: {type(exc).__name__}: {exc}", file=errors)
            if args.batch_command in {"import", "submit", "pickup"}:
                print(
                    "branchd: the daemon may have done it; run the command again with "
                    f"--idempotency-key {client.key} to learn the answer (it is not done twice)",
                    file=errors,
                )
            return EXIT_FAILURE


def run_remote(args: argparse.Namespace) -> int:
    """Entry point from :mod:`gateway.cli.main` (its own event loop)."""
    return asyncio.run(run_async(args))
