"""Enveloped documents over HTTPS with mutual TLS: the one way upstream bytes travel.

:meth:`EnvelopeChannel.exchange` seals a document for the receiver, POSTs it
as ``application/octet-stream``, and opens the answer, which must come from
the receiver and answer the same message id. Every failure becomes an
:class:`~gateway.upstream.errors.UpstreamError` of the right family; transient
ones are counted by the channel's circuit breaker, and while it is open no
connection is even attempted.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Final

import aiohttp
import structlog

from gateway.upstream.errors import (
    EnvelopeRefusedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHttpError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from security.envelope import EnvelopeRejectedError

if TYPE_CHECKING:
    from devices.clock import Clock
    from gateway.upstream.breaker import CircuitBreaker
    from security.envelope import EnvelopeOpener, EnvelopeSealer

__all__ = ["REFUSED_HEADER", "EnvelopeChannel"]

log = structlog.get_logger(__name__)

#: Header in which a receiver names the refusal code of our envelope (HTTP 400).
REFUSED_HEADER: Final = "X-Envelope-Refused"
_OK: Final = 200
_BAD_REQUEST: Final = 400
_MAX_CODE: Final = 64


class EnvelopeChannel:
    """One upstream endpoint: URL, receiver name, keys, TLS, breaker."""

    def __init__(  # noqa: PLR0913 - keyword-only wiring
        self,
        *,
        target: str,
        url: str,
        receiver: str,
        sealer: EnvelopeSealer,
        opener: EnvelopeOpener,
        ssl_context: ssl.SSLContext | None,
        clock: Clock,
        breaker: CircuitBreaker,
        timeout: float = 10.0,
        connections: int = 4,
    ) -> None:
        """Configure the channel; the HTTP session opens on first use.

        Args:
            target: ``"platform"`` or ``"bank"`` (names errors and logs).
            url: The endpoint's HTTPS URL.
            receiver: The endpoint's envelope name (``PLATFORM-650000``).
            sealer: Seals as this branch.
            opener: Opens answers addressed to this branch.
            ssl_context: Client TLS context with this branch's certificate.
            clock: Wall clock for envelope timestamps.
            breaker: The endpoint's circuit breaker.
            timeout: Seconds for a whole exchange.
            connections: Most connections kept open to the endpoint.
        """
        self.target = target
        self.url = url
        self.receiver = receiver
        self.breaker = breaker
        self._sealer = sealer
        self._opener = opener
        self._ssl = ssl_context
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl or False)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def exchange(
        self, message_id: str, document: bytes, *, repeat: bool, operation: str
    ) -> bytes:
        """Send ``document`` under ``message_id`` and return the answer's plaintext.

        Raises:
            UpstreamUnavailableError: The breaker is open; nothing was sent.
            UpstreamConnectionError: Connection refused, reset or lost.
            UpstreamTimeoutError: No answer in time.
            UpstreamHttpError: A status other than 200.
            EnvelopeRefusedError: Either side refused an envelope.
            UpstreamProtocolError: The answer is for another message or sender.
        """
        if not self.breaker.allow():
            raise UpstreamUnavailableError(self.target, operation, self.breaker.retry_after())
        try:
            answer = await self._exchange(message_id, document, repeat=repeat)
        except UpstreamError as exc:
            if isinstance(exc, UpstreamConnectionError | UpstreamTimeoutError) or (
                isinstance(exc, UpstreamHttpError) and exc.transient
            ):
                self.breaker.record_failure()
            else:
                # The peer is up and talking: a refusal is not an outage.
                self.breaker.record_success()
            raise
        except asyncio.CancelledError:
            raise
        self.breaker.record_success()
        return answer

    async def _exchange(self, message_id: str, document: bytes, *, repeat: bool) -> bytes:
        target = self.target
        sealed = self._sealer.seal(
            self.receiver, message_id, document, self._clock.now(), repeat=repeat
        )
        try:
            async with self._http().post(
                self.url,
                data=sealed,
                headers={"Content-Type": "application/octet-stream"},
            ) as response:
                status = response.status
                refused = response.headers.get(REFUSED_HEADER, "")
                body = await response.read()
        except TimeoutError:
            raise UpstreamTimeoutError(f"{target} did not answer in time", target) from None
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            log.info("upstream_connection_failed", target=target, error=type(exc).__name__)
            raise UpstreamConnectionError(
                f"{target} connection failed ({type(exc).__name__})", target
            ) from exc
        if status == _BAD_REQUEST and refused:
            raise EnvelopeRefusedError(target, refused[:_MAX_CODE], "remote")
        if status != _OK:
            raise UpstreamHttpError(target, status)
        try:
            opened = self._opener.open(body, self._clock.now())
        except EnvelopeRejectedError as exc:
            log.warning("upstream_answer_refused", target=target, code=exc.code)
            raise EnvelopeRefusedError(target, exc.code, "local") from None
        header = opened.header
        if header.sender != self.receiver or header.message_id != message_id:
            raise UpstreamProtocolError(f"{target} answered for another message", target)
        return opened.body
