"""``branchd day close|reopen|show DATE``: the day's close (日终) from a terminal.

Through a running daemon's teller API, with a supervisor terminal's credentials
(:mod:`gateway.runtime.http.client`). ``close`` prints the day's counts and every
difference with the platform and the bank; it exits 0 when the day closed
balanced, 1 when it was refused or closed with differences (the differences are
the branch's to settle), 2 on a usage error.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, TextIO

import aiohttp
from rich.console import Console
from rich.table import Table

from gateway.runtime.http.client import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    TIMEOUT,
    ApiClient,
    ApiProblemError,
    ClientError,
    Endpoint,
)
from security.pki import PkiError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

__all__ = ["DayClient", "run_async", "run_remote"]


class DayClient(ApiClient):
    """The day's close over one HTTP session."""

    async def close(self, day: str) -> dict[str, Any]:
        """``POST /v1/days/{day}/close``."""
        return await self._json("POST", f"/v1/days/{day}/close")

    async def reopen(self, day: str, reason: str) -> dict[str, Any]:
        """``POST /v1/days/{day}/reopen`` with the reason."""
        return await self._json("POST", f"/v1/days/{day}/reopen", {"reason": reason})

    async def show(self, day: str) -> dict[str, Any]:
        """``GET /v1/days/{day}``."""
        return await self._json("GET", f"/v1/days/{day}")


def print_day(day: Mapping[str, Any], console: Console) -> None:
    """The close for a terminal: status, counts, differences, pending messages."""
    console.print(f"{day['day']}  {day['status']}  closed by {day.get('closed_by') or '-'}")
    summary = day.get("summary")
    if not summary:
        return
    operations = Table("operation", "status", "count", title="applications")
    for line in summary["operations"]:
        operations.add_row(line["operation"], line["status"], str(line["count"]))
    console.print(operations)
    fees = summary["fees"]
    settled = ", ".join(f"{f['method']} {f['count']} ({f['yuan']} yuan)" for f in fees["settled"])
    console.print(
        f"fees settled: {settled or '-'}; waived {fees['waived']['count']}; "
        f"reversed {fees['reversed']['count']} ({fees['reversed']['yuan']} yuan)"
    )
    console.print(
        f"cards issued {summary['cards']['issued']}, spoiled {summary['cards']['spoiled']}"
    )
    if summary["differences"]:
        table = Table("with", "operation", "what", "branch", "remote", title="differences")
        for d in summary["differences"]:
            table.add_row(
                d["target"], d["operation"], d["what"], str(d["branch"]), str(d["remote"])
            )
        console.print(table)
    for message in summary["unacknowledged"]:
        console.print(
            f"not acknowledged: #{message['id']} {message['target']} {message['operation']} "
            f"({message['state']})"
        )
    console.print("balanced" if summary["balanced"] else "NOT balanced")


async def run_async(args: argparse.Namespace, *, console: Console | None = None) -> int:
    """Run one ``branchd day`` command; the exit status."""
    console = console or Console(highlight=False, soft_wrap=True)
    try:
        endpoint = Endpoint.from_options(args)
    except (ClientError, PkiError) as exc:
        _say(str(exc))
        return EXIT_USAGE
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        client = DayClient(http, endpoint, key=args.idempotency_key)
        try:
            if args.day_command == "close":
                day = await client.close(args.day)
            elif args.day_command == "reopen":
                day = await client.reopen(args.day, args.reason)
            else:
                day = await client.show(args.day)
        except ApiProblemError as refused:
            _say(refused.describe())
            return EXIT_FAILURE
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            _say(f"{endpoint.url}: {type(exc).__name__}: {exc}")
            return EXIT_FAILURE
    print_day(day, console)
    summary = day.get("summary") or {}
    if args.day_command == "close" and not summary.get("balanced", False):
        return EXIT_FAILURE
    return EXIT_OK


def _say(text: str, stream: TextIO | None = None) -> None:
    print(f"branchd: {text}", file=stream or sys.stderr)


def run_remote(args: argparse.Namespace) -> int:
    """Entry point from :mod:`gateway.cli.main` (its own event loop)."""
    return asyncio.run(run_async(args))
