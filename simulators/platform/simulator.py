"""Several provincial platforms and the national hub in one process, over mutual TLS.

Every province answers on ``/platform/<code>/json`` and ``/platform/<code>/soap``
(both dialects, so the same scenarios run on either) with its own envelope
identity ``PLATFORM-<code>``. A request about a card issued elsewhere goes
through the hub to the issuing province; its answer comes back through the
province that was asked.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Self

import structlog

from protocols.platform import JSON_DIALECT, SOAP_DIALECT, Request, Result
from security.envelope import DictEnvelopeKeys, SenderIdentity
from security.pki import server_context
from security.suites import get_suite
from simulators.platform.keyservice import SoftwareKeyService
from simulators.platform.provinces import DEFAULT_PROVINCES, Hub, Province
from simulators.platform.server import EnvelopeEndpoint, Faults

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from types import TracebackType

    from protocols.platform import Codec
    from security.envelope import EnvelopeKeys
    from simulators.platform.keyservice import KeyService
    from simulators.platform.server import Counters

__all__ = ["DIALECTS", "PlatformSimulator", "platform_name", "run_platform_simulator"]

log = structlog.get_logger(__name__)

#: The dialects every simulated province speaks, by path segment.
DIALECTS: Final[dict[str, Codec]] = {"json": JSON_DIALECT, "soap": SOAP_DIALECT}


def platform_name(province: str) -> str:
    """The envelope name of a province's platform (``PLATFORM-650000``)."""
    return f"PLATFORM-{province}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PlatformSimulator:
    """Provinces, hub and key service behind one HTTPS listener."""

    def __init__(  # noqa: PLR0913 - keyword-only wiring
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        trusted: EnvelopeKeys,
        suite: str = "gm",
        now: Callable[[], datetime] = _utc_now,
        host: str = "127.0.0.1",
        port: int = 0,
        provinces: Mapping[str, tuple[str, str, tuple[str, ...]]] = DEFAULT_PROVINCES,
        key_service: KeyService | None = None,
        faults: Faults | None = None,
        identities: Mapping[str, SenderIdentity] | None = None,
    ) -> None:
        """Build the provinces; nothing listens before :meth:`start`.

        Args:
            ssl_context: Server TLS context (mutual TLS).
            trusted: The branches' envelope keys.
            suite: Suite of the platforms' own envelope keys (``gm`` or ``intl``).
            now: Wall clock.
            host: Address to bind.
            port: Port to bind (0: a free one).
            provinces: code -> (name, card number letter, region codes).
            key_service: The key service (by default a software one with the card
                simulator's demo master keys and the demo zone PIN key).
            faults: Initial faults.
            identities: The provinces' envelope identities by province code
                (new random ones by default).
        """
        self.key_service = key_service or SoftwareKeyService()
        self.provinces = {
            code: Province(code, name, letter, regions, self.key_service)
            for code, (name, letter, regions) in provinces.items()
        }
        self.hub = Hub(self.provinces)
        self.endpoint = EnvelopeEndpoint(
            ssl_context=ssl_context,
            keys=trusted,
            now=now,
            host=host,
            port=port,
            faults=faults,
        )
        crypto = get_suite(suite)
        self.identities: dict[str, SenderIdentity] = {}
        for code in self.provinces:
            given = (identities or {}).get(code)
            identity = given or SenderIdentity(
                sender=platform_name(code),
                key_id="platform-sig",
                key_version=1,
                signing_key=crypto.generate_signing_key(),
                aead_key=os.urandom(crypto.aead_key_size),
            )
            self.identities[code] = identity
            for dialect, codec in DIALECTS.items():
                self.endpoint.add_route(self.path(code, dialect), identity, codec, self._handle)
        self._by_name = {platform_name(code): code for code in self.provinces}

    @staticmethod
    def path(province: str, dialect: str) -> str:
        """The URL path of a province in a dialect."""
        return f"/platform/{province}/{dialect}"

    def url(self, province: str, dialect: str) -> str:
        """The full URL of a province in a dialect (after :meth:`start`)."""
        return self.endpoint.url(self.path(province, dialect))

    @property
    def counters(self) -> Counters:
        """Items received, duplicates, repeats and refused envelopes."""
        return self.endpoint.counters

    def trust_platforms(self, keys: DictEnvelopeKeys) -> None:
        """Add every province's public key set to a branch's ``keys``."""
        for identity in self.identities.values():
            keys.add(identity)

    async def _handle(self, receiver: str, item: Request) -> Result:
        local = self._by_name[receiver]
        province = self.hub.route(local, item)
        return province.handle(item)

    async def set_faults(self, **changes: float | None) -> None:
        """Change faults at run time (see :class:`~simulators.platform.server.Faults`)."""
        await self.endpoint.set_faults(**changes)

    async def start(self) -> None:
        """Start listening."""
        await self.endpoint.start()

    async def stop(self) -> None:
        """Stop listening."""
        await self.endpoint.stop()

    async def __aenter__(self) -> Self:
        """Start."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()


async def run_platform_simulator(  # noqa: PLR0913 - the command line's options
    *,
    cert: Path,
    key: Path,
    ca: Path,
    trusted: EnvelopeKeys,
    host: str = "127.0.0.1",
    port: int = 8443,
    suite: str = "gm",
    faults: Faults | None = None,
    on_started: Callable[[PlatformSimulator], None] | None = None,
) -> None:
    """Serve the simulated platforms until SIGTERM/SIGINT or cancellation.

    ``on_started`` receives the running simulator (to print its URLs and
    publish its envelope keys to the branch).
    """
    simulator = PlatformSimulator(
        ssl_context=server_context(cert, key, ca),
        trusted=trusted,
        suite=suite,
        host=host,
        port=port,
        faults=faults,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with simulator:
            log.info("platform_simulator_started", port=simulator.endpoint.port)
            if on_started is not None:
                on_started(simulator)
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
