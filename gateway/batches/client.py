"""``branchd batch import|submit|progress|pickup``: the batch API from a terminal.

The commands talk to a running daemon's teller API over HTTP(S), as the
teller system does, with the terminal's credentials:

- ``--url`` (``$BRANCHD_URL``, default ``http://127.0.0.1:8080``): the daemon;
- ``--token-file`` (``$BRANCHD_TOKEN_FILE``): a file holding the terminal's
  bearer token (never the token itself on the command line);
- ``--cert``/``--key`` (``$BRANCHD_CLIENT_CERT``/``$BRANCHD_CLIENT_KEY``): the
  terminal's TLS client certificate, for a daemon with mutual TLS;
  ``--ca`` (``$BRANCHD_CA``): the branch CA the daemon's certificate is checked
  against.

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
import os
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from security.pki import PkiError, client_context

if TYPE_CHECKING:
    import argparse
    import ssl
    from collections.abc import Awaitable, Callable, Mapping

__all__ = [
    "ApiProblemError",
    "BatchClient",
    "ClientError",
    "Endpoint",
    "add_connection_options",
    "follow",
    "run_remote",
]

DEFAULT_URL: Final = "http://127.0.0.1:8080"
#: Row statuses still on their way through production (progress is not over while any is left).
IN_PRODUCTION: Final = frozenset({"ready", "queued", "producing", "single"})
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
_TIMEOUT: Final = aiohttp.ClientTimeout(total=300, connect=10)


class ClientError(Exception):
    """The command cannot run: unusable options, files or connection (the message says which)."""


class ApiProblemError(Exception):
    """The daemon refused: its problem document (``code``, titles, ``detail``, extras)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        """Keep the HTTP status and the problem document."""
        self.status = status
        self.problem = dict(problem)
        super().__init__(f"{status} {self.problem.get('code', '?')}")

    def describe(self) -> str:
        """The problem for a terminal: code, both titles, detail, every listed item."""
        p = self.problem
        head = f"{p.get('code', 'error')} ({self.status}): {p.get('title_zh', '')} / "
        lines = [head + str(p.get("title", ""))]
        lines.extend(f"  {p[key]}" for key in ("detail_zh", "detail") if p.get(key))
        lines.extend(
            f"  - {item.get('code')}: {item.get('title_zh')} / {item.get('title_en')}"
            for item in p.get("missing") or ()
        )
        if p.get("lines"):
            lines.append(f"  lines: {', '.join(str(n) for n in p['lines'])}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the daemon is and how this terminal proves who it is.

    Attributes:
        url: The daemon's base URL.
        token: The terminal's bearer token (read from a file).
        ssl: TLS context for ``https`` URLs (CA, and the client certificate if any).
    """

    url: str
    token: str | None = field(default=None, repr=False)
    ssl: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, args: argparse.Namespace) -> Endpoint:
        """From ``--url``, ``--token-file``, ``--cert``, ``--key``, ``--ca`` (or their env vars).

        Raises:
            ClientError: A file cannot be read, or the options do not fit together.
        """
        url = (args.url or os.environ.get("BRANCHD_URL") or DEFAULT_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ClientError(f"--url must start with http:// or https://, not {url!r}")
        token = None
        token_file = args.token_file or _env_path("BRANCHD_TOKEN_FILE")
        if token_file is not None:
            try:
                token = token_file.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ClientError(f"cannot read the token file {token_file}: {exc}") from None
            if not token:
                raise ClientError(f"the token file {token_file} is empty")
        cert = args.cert or _env_path("BRANCHD_CLIENT_CERT")
        key = args.key or _env_path("BRANCHD_CLIENT_KEY")
        ca = args.ca or _env_path("BRANCHD_CA")
        if (cert is None) != (key is None):
            raise ClientError("--cert and --key go together")
        if token is None and cert is None:
            raise ClientError(
                "no credentials: give --token-file (or $BRANCHD_TOKEN_FILE), "
                "or --cert and --key for a daemon with mutual TLS"
            )
        context = None
        if url.startswith("https://"):
            if ca is None:
                raise ClientError("an https URL needs --ca (the branch CA) to check the daemon")
            context = client_context(cert, key, ca)
        elif cert is not None:
            raise ClientError("a client certificate needs an https URL")
        return cls(url, token, context)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The daemon's URL and the terminal's credentials (each also from an env var)."""
    group = parser.add_argument_group("daemon", "the running daemon and this terminal's identity")
    group.add_argument("--url", help=f"daemon URL ($BRANCHD_URL, default {DEFAULT_URL})")
    group.add_argument("--token-file", type=Path, help="terminal token file ($BRANCHD_TOKEN_FILE)")
    group.add_argument("--cert", type=Path, help="terminal certificate ($BRANCHD_CLIENT_CERT)")
    group.add_argument("--key", type=Path, help="its private key ($BRANCHD_CLIENT_KEY)")
    group.add_argument("--ca", type=Path, help="branch CA for https ($BRANCHD_CA)")
    group.add_argument(
        "--idempotency-key", help="repeat an earlier run whose answer was lost (its printed key)"
    )


class BatchClient:
    """The batch API over one HTTP session."""

    def __init__(
        self, http: aiohttp.ClientSession, endpoint: Endpoint, *, key: str | None = None
    ) -> None:
        """Call ``endpoint`` through ``http``; POSTs use ``key`` or a fresh idempotency key."""
        self._http = http
        self._endpoint = endpoint
        #: The Idempotency-Key of this run's POST (printed when its answer is lost).
        self.key = key or f"cli-{uuid.uuid4()}"

    async def _call(self, method: str, path: str, body: object = None) -> tuple[int, bytes, str]:
        headers = {"Accept": "application/json, application/problem+json"}
        if self._endpoint.token is not None:
            headers["Authorization"] = f"Bearer {self._endpoint.token}"
        if method == "POST":
            headers["Idempotency-Key"] = self.key
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        async with self._http.request(
            method, self._endpoint.url + path, data=data, headers=headers, ssl=self._ssl()
        ) as response:
            return response.status, await response.read(), response.content_type

    def _ssl(self) -> ssl.SSLContext | bool:
        return self._endpoint.ssl if self._endpoint.ssl is not None else True

    async def _json(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        status, raw, content_type = await self._call(method, path, body)
        try:
            answer: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if status >= 400:  # noqa: PLR2004 - HTTP error statuses
            if content_type != "application/problem+json" or "code" not in answer:
                answer = {"code": "http-error", "title": raw[:200].decode(errors="replace")}
            raise ApiProblemError(status, answer)
        return answer

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
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
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
