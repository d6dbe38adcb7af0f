"""An HTTPS endpoint that speaks enveloped documents: the simulators' common base.

Every request body is an envelope (docs/protocols/envelope.md) addressed to
this endpoint's receiver name; its plaintext is a document of request items in
the route's dialect. The answer is an envelope sealed back to the sender with
one result per item. An envelope that does not open is refused with HTTP 400,
its refusal code in the ``X-Envelope-Refused`` header and the body.

Items are de-duplicated by (sender, message id): a message id seen before is
answered with the stored result and counted as a duplicate, so a retry after a
lost answer never applies a change twice.

Faults, set from the configuration or at run time: ``down`` (the listener is
closed: connections are refused), ``slow`` (answers wait that many seconds,
or until the faults change), ``error_status`` (every request gets that HTTP
status, nothing is processed), ``drop`` (items are processed, then the
connection is closed without an answer), ``corrupt`` (answers carry a broken
signature).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import web

from protocols.platform import MessageDecodeError, MessageEncodeError, Request, Result, Status
from security.envelope import EnvelopeOpener, EnvelopeRejectedError, EnvelopeSealer

if TYPE_CHECKING:
    import ssl
    from datetime import datetime

    from protocols.platform import Codec
    from security.envelope import EnvelopeKeys, SenderIdentity

__all__ = [
    "REFUSED_HEADER",
    "SUMMARY_OPERATION",
    "Counters",
    "EnvelopeEndpoint",
    "Faults",
    "Handler",
    "LogEntry",
]

log = structlog.get_logger(__name__)

#: Response header naming the refusal code of an envelope that did not open.
REFUSED_HEADER: Final = "X-Envelope-Refused"
_ENVELOPE_TYPE: Final = "application/octet-stream"
_MAX_BODY: Final = 16 * 1024 * 1024 + 512

#: The day summary's operation name (platform and bank): answered from the log.
SUMMARY_OPERATION: Final = "day_summary"
_BUSINESS_TZ: Final = timezone(timedelta(hours=8))

#: Handles one new (not duplicate) item: ``(receiver, request) -> result``.
Handler = Callable[[str, Request], Awaitable[Result]]


@dataclass(slots=True)
class Faults:
    """Faults to inject; change them at run time with :meth:`EnvelopeEndpoint.set_faults`."""

    down: bool = False
    slow: float = 0.0
    error_status: int | None = None
    drop: bool = False
    corrupt: bool = False


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One item applied (first arrival of its message id)."""

    receiver: str
    operation: str
    message_id: str
    repeat: bool
    fields: dict[str, str] = field(repr=False)
    sender: str = ""
    #: The receiver's business day (Asia/Shanghai) when it arrived.
    day: str = ""
    succeeded: bool = False


@dataclass(slots=True)
class Counters:
    """What tests read: items received (distinct), duplicates, repeats, refusals."""

    requests: int = 0
    received: int = 0
    duplicates: int = 0
    repeats: int = 0
    refused: Counter[str] = field(default_factory=Counter)


class EnvelopeEndpoint:
    """An aiohttp server over mutual TLS whose routes speak enveloped documents."""

    def __init__(  # noqa: PLR0913 - keyword-only wiring
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        keys: EnvelopeKeys,
        now: Callable[[], datetime],
        host: str = "127.0.0.1",
        port: int = 0,
        suites: tuple[str, ...] = ("gm", "intl"),
        faults: Faults | None = None,
    ) -> None:
        """Serve on ``host:port`` (0: any free port) with ``ssl_context`` (mutual TLS).

        Args:
            ssl_context: Server TLS context (``security.pki.server_context``).
            keys: Senders' keys, to open their envelopes.
            now: Wall clock for envelope timestamps (timezone-aware).
            host: Address to bind.
            port: Port to bind; 0 picks a free one, kept across down/up.
            suites: Envelope suites accepted.
            faults: Initial faults.
        """
        self._ssl = ssl_context
        self._keys = keys
        self._now = now
        self._host = host
        self._port = port
        self._suites = suites
        self.faults = faults or Faults()
        self.counters = Counters()
        self.log: list[LogEntry] = []
        self._seen: dict[tuple[str, str], Result] = {}
        self._openers: dict[str, EnvelopeOpener] = {}
        self._sealers: dict[str, EnvelopeSealer] = {}
        self._routes: dict[str, tuple[str, Codec, Handler]] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------- set-up
    def add_route(
        self,
        path: str,
        identity: SenderIdentity,
        codec: Codec,
        handler: Handler,
    ) -> None:
        """Serve ``path``: open envelopes for ``identity.sender``, decode with ``codec``."""
        receiver = identity.sender
        if receiver not in self._openers:
            self._openers[receiver] = EnvelopeOpener(
                receiver,
                self._keys,
                suites=self._suites,
                on_refused=self._count_refusal,
            )
            self._sealers[receiver] = EnvelopeSealer(identity)
        self._routes[path] = (receiver, codec, handler)

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._port

    def url(self, path: str = "") -> str:
        """``https://localhost:<port><path>`` (the certificate names localhost)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://localhost:{self._port}{path}"

    async def start(self) -> None:
        """Start serving (and listening unless the ``down`` fault is set)."""
        app = web.Application(client_max_size=_MAX_BODY)
        for path in self._routes:
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        if not self.faults.down:
            await self._listen()

    async def stop(self) -> None:
        """Stop serving."""
        self._changed.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def _listen(self) -> None:
        assert self._runner is not None  # noqa: S101 - start() ran
        site = web.TCPSite(
            self._runner, self._host, self._port, ssl_context=self._ssl, reuse_address=True
        )
        await site.start()
        self._site = site
        if self._port == 0:
            server = site._server  # noqa: SLF001 - the only way to read the bound port
            sockets = getattr(server, "sockets", None) or []
            self._port = int(sockets[0].getsockname()[1])

    async def set_faults(self, **changes: float | None) -> None:
        """Change faults at run time; ``down`` closes or reopens the listener."""
        was_down = self.faults.down
        for name, value in changes.items():
            if not hasattr(self.faults, name):
                raise ValueError(f"unknown fault {name!r}")
            setattr(self.faults, name, value)
        if self._runner is not None and was_down != self.faults.down:
            if self.faults.down and self._site is not None:
                await self._site.stop()
                self._site = None
            elif not self.faults.down:
                await self._listen()
        # Wake answers held by the ``slow`` fault so they re-read it.
        self._changed.set()
        self._changed = asyncio.Event()
        log.info("simulator_faults", faults=str(self.faults))

    def _count_refusal(self, code: str) -> None:
        self.counters.refused[code] += 1

    # ------------------------------------------------------------ serving
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.counters.requests += 1
        if self.faults.error_status is not None:
            return web.Response(status=self.faults.error_status, text="injected fault")
        receiver, codec, handler = self._routes[request.path]
        opener = self._openers[receiver]
        data = await request.read()
        try:
            opened = opener.open(data, self._now())
        except EnvelopeRejectedError as refused:
            log.info("simulator_envelope_refused", code=refused.code, receiver=receiver)
            return web.Response(
                status=400, text=refused.code, headers={REFUSED_HEADER: refused.code}
            )
        sender = opened.header.sender
        try:
            items = codec.decode_requests(opened.body)
        except MessageDecodeError as exc:
            log.info("simulator_bad_document", reason=exc.reason)
            return web.Response(status=422, text=exc.reason)
        results = [await self._one(receiver, sender, item, handler) for item in items]
        await self._delay()
        if self.faults.drop:
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=500)
        try:
            body = codec.encode_results(results)
        except MessageEncodeError:
            log.exception("simulator_cannot_encode")
            return web.Response(status=500)
        sealed = self._sealers[receiver].seal(sender, opened.header.message_id, body, self._now())
        if self.faults.corrupt:
            sealed = sealed[:-1] + bytes([sealed[-1] ^ 0x01])
        return web.Response(body=sealed, content_type=_ENVELOPE_TYPE)

    async def _one(
        self,
        receiver: str,
        sender: str,
        item: Request,
        handler: Handler,
    ) -> Result:
        if item.repeat:
            self.counters.repeats += 1
        key = (sender, item.message_id)
        stored = self._seen.get(key)
        if stored is not None:
            self.counters.duplicates += 1
            return stored
        self.counters.received += 1
        if item.operation == SUMMARY_OPERATION:  # the platform's and the bank's alike
            result = self._day_summary(receiver, sender, item)
            self._seen[key] = result
            return result
        try:
            result = await handler(receiver, item)
        except (KeyError, ValueError) as exc:
            result = Result(item.message_id, Status.INVALID_REQUEST, f"bad request: {exc}")
        self._seen[key] = result
        self.log.append(
            LogEntry(
                receiver, item.operation, item.message_id, item.repeat, item.fields,
                sender=sender, day=self._day(), succeeded=result.succeeded,
            )
        )  # fmt: skip
        return result

    def _day(self) -> str:
        return self._now().astimezone(_BUSINESS_TZ).date().isoformat()

    def _day_summary(self, receiver: str, sender: str, item: Request) -> Result:
        """日终对账: what ``receiver`` accepted from ``sender`` on the day asked.

        ``counts``: items accepted, by operation; ``amounts``: the sum of their
        ``amount`` fields (fen), by operation, where they carry one.
        """
        day = item.fields.get("day", "")
        counts: Counter[str] = Counter()
        amounts: Counter[str] = Counter()
        for entry in self.log:
            if (entry.receiver, entry.sender, entry.day) != (receiver, sender, day):
                continue
            if not entry.succeeded or entry.operation == SUMMARY_OPERATION:
                continue
            counts[entry.operation] += 1
            amount = entry.fields.get("amount", "")
            if amount.isdigit():
                amounts[entry.operation] += int(amount)
        fields = {
            "day": day,
            "counts": json.dumps(dict(sorted(counts.items()))),
            "amounts": json.dumps(dict(sorted(amounts.items()))),
        }
        return Result(item.message_id, Status.OK, "成功", fields)

    async def _delay(self) -> None:
        """Hold the answer while the ``slow`` fault says so (until the faults change)."""
        if self.faults.slow <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), self.faults.slow)
