"""``Idempotency-Key`` on every POST: replays answer the stored response.

The key is scoped to the terminal. A request is identified by the digest of its
method, path and body:

* first time: the key is recorded as in flight, the handler runs, and its
  answer (success or refusal) is stored with the key;
* same key, same request, answered: the stored answer is returned unchanged
  (``Idempotent-Replayed: true``);
* same key, same request, still running: 409 ``idempotency-in-flight``;
* same key, another request: 422 ``idempotency-key-reused``;
* an unexpected failure (a bug, the database gone) stores nothing: the key is
  released and the teller may retry with it.

Keys expire after ``business.idempotency_hours`` (24 h by default).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from gateway.runtime.problems import (
    REQUEST_ID,
    ProblemError,
    problem_of,
    problem_response,
    register,
)
from gateway.runtime.refusals import Refusal
from gateway.runtime.rows import IdempotencyRow

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock

__all__ = ["Idempotency", "request_digest"]

_KEY: Final = re.compile(r"^[\x21-\x7e]{1,128}$")

KEY_REQUIRED: Final = register(
    "idempotency-key-required",
    400,
    "Idempotency-Key header required",
    "缺少 Idempotency-Key 请求头",
)
KEY_REUSED: Final = register(
    "idempotency-key-reused",
    422,
    "Idempotency-Key already used for another request",
    "该 Idempotency-Key 已用于其他请求",
)
IN_FLIGHT: Final = register(
    "idempotency-in-flight",
    409,
    "The first request with this key is still running",
    "该请求正在处理中",
    retryable=True,
)


def request_digest(method: str, path: str, body: bytes) -> str:
    """SHA-256 over method, path and body: what "the same request" means."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class Idempotency:
    """Stores answers by (terminal, key) in the database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, hours: float
    ) -> None:
        """Keep answers ``hours`` long."""
        self._sessions = sessions
        self._clock = clock
        self._ttl = timedelta(hours=hours)

    async def run(
        self,
        request: web.Request,
        terminal_id: str,
        body: bytes,
        handler: Callable[[], Awaitable[web.Response]],
    ) -> web.Response:
        """Answer ``request`` once per key; replay the stored answer afterwards."""
        key = request.headers.get("Idempotency-Key", "")
        if not _KEY.match(key):
            raise ProblemError(
                KEY_REQUIRED,
                "Every POST needs an Idempotency-Key header (1-128 visible ASCII characters).",
                "每个 POST 请求须带 Idempotency-Key 请求头（1-128个可见ASCII字符）。",
            )
        digest = request_digest(request.method, request.path, body)
        stored = await self._claim(terminal_id, key, digest)
        if stored is not None:
            return stored
        try:
            try:
                response = await handler()
            except (ProblemError, Refusal) as exc:
                refused = exc if isinstance(exc, ProblemError) else problem_of(request.app, exc)
                response = problem_response(
                    refused, instance=request.path, request_id=request.get(REQUEST_ID)
                )
        except BaseException:
            async with self._sessions.begin() as session:
                await session.execute(
                    delete(IdempotencyRow).where(
                        IdempotencyRow.terminal_id == terminal_id, IdempotencyRow.key == key
                    )
                )
            raise
        async with self._sessions.begin() as session:
            row = await session.get(IdempotencyRow, (terminal_id, key))
            if row is not None:
                row.state = "done"
                row.status = response.status
                row.content_type = response.content_type
                row.body = response.body if isinstance(response.body, bytes) else b""
        return response

    async def _claim(self, terminal_id: str, key: str, digest: str) -> web.Response | None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = await session.get(IdempotencyRow, (terminal_id, key), with_for_update=True)
            if row is not None and row.expires_at <= now:
                await session.delete(row)
                await session.flush()
                row = None
            if row is None:
                session.add(
                    IdempotencyRow(
                        terminal_id=terminal_id, key=key, request_digest=digest,
                        state="in-flight", created_at=now, expires_at=now + self._ttl,
                    )
                )  # fmt: skip
                try:
                    await session.flush()
                except IntegrityError:
                    raise _in_flight() from None
                return None
            if row.request_digest != digest:
                raise ProblemError(
                    KEY_REUSED,
                    "This Idempotency-Key was used for a different request; use a new key.",
                    "该 Idempotency-Key 已用于不同的请求，请使用新的键。",
                )
            if row.state != "done":
                raise _in_flight()
            response = web.Response(status=row.status or 200, body=row.body or b"")
            response.content_type = row.content_type or "application/json"
            response.headers["Idempotent-Replayed"] = "true"
            return response


def _in_flight() -> ProblemError:
    return ProblemError(
        IN_FLIGHT,
        "The first request with this Idempotency-Key has not finished; retry later.",
        "使用该 Idempotency-Key 的请求尚未处理完毕，请稍后重试。",
    )
