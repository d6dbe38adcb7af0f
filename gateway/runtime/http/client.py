"""A command-line client of the teller API: where the daemon is, who is asking, the answer.

The commands that talk to a running daemon (``branchd batch ...``, ``branchd day
...``) do it over HTTP(S), as a teller system does, with the terminal's
credentials:

- ``--url`` (``$BRANCHD_URL``, default ``http://127.0.0.1:8080``): the daemon;
- ``--token-file`` (``$BRANCHD_TOKEN_FILE``): a file holding the terminal's
  bearer token (never the token itself on the command line);
- ``--cert``/``--key`` (``$BRANCHD_CLIENT_CERT``/``$BRANCHD_CLIENT_KEY``): the
  terminal's TLS client certificate, for a daemon with mutual TLS;
  ``--ca`` (``$BRANCHD_CA``): the branch CA the daemon's certificate is checked
  against.

Every POST carries an ``Idempotency-Key``: a fresh one per run, or the one
given with ``--idempotency-key``. A refusal is the API's problem document
(:class:`ApiProblemError`).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from security.pki import client_context

if TYPE_CHECKING:
    import argparse
    import ssl
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_URL",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "TIMEOUT",
    "ApiClient",
    "ApiProblemError",
    "ClientError",
    "Endpoint",
    "add_connection_options",
]

DEFAULT_URL: Final = "http://127.0.0.1:8080"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
TIMEOUT: Final = aiohttp.ClientTimeout(total=300, connect=10)


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


class ApiClient:
    """The teller API over one HTTP session (features add their calls)."""

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
