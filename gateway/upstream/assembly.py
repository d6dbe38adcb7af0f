"""Builds the upstream pieces from settings: channels, clients, outbox, relay.

The composition root calls :func:`build_upstream` once, spawns
``upstream.relay.run`` under the supervisor and closes the channels on
shutdown (:meth:`Upstream.close`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from devices.backoff import BackoffPolicy
from gateway.upstream.bank import JsonBankClient
from gateway.upstream.breaker import CircuitBreaker
from gateway.upstream.outbox import Outbox
from gateway.upstream.platform import (
    DialectPlatformClient,
    json_platform_client,
    soap_platform_client,
)
from gateway.upstream.relay import OutboxSender, Relay
from gateway.upstream.transport import EnvelopeChannel
from security.envelope import EnvelopeOpener, EnvelopeSealer
from security.pki import client_context

if TYPE_CHECKING:
    import random

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from devices.clock import Clock
    from gateway.upstream.outbox import PayloadProtector
    from gateway.upstream.settings import UpstreamSettings
    from security.envelope import EnvelopeKeys, SenderIdentity

__all__ = ["Upstream", "build_upstream"]


@dataclass(slots=True)
class Upstream:
    """The platform and bank clients, the outbox and its relay."""

    platform: DialectPlatformClient
    bank: JsonBankClient | None
    outbox: Outbox
    relay: Relay
    breakers: dict[str, CircuitBreaker]
    #: Seals as this branch and opens what is addressed to it (the platform's notices).
    sealer: EnvelopeSealer | None = None
    opener: EnvelopeOpener | None = None

    async def close(self) -> None:
        """Close the HTTP sessions."""
        await self.platform.channel.close()
        if self.bank is not None:
            await self.bank.channel.close()


def build_upstream(  # noqa: PLR0913 - the composition root's parts
    settings: UpstreamSettings,
    *,
    identity: SenderIdentity,
    peer_keys: EnvelopeKeys,
    suites: tuple[str, ...],
    sessions: async_sessionmaker[AsyncSession],
    protector: PayloadProtector,
    clock: Clock,
    rng: random.Random,
) -> Upstream:
    """Wire the upstream pieces.

    Args:
        settings: The ``[upstream]`` section (paths already resolved).
        identity: The branch's envelope identity (sender name, keys).
        peer_keys: The platform's and the bank's envelope keys.
        suites: Envelope suites accepted (the configured one).
        sessions: Database sessions.
        protector: Seals outbox payloads at rest.
        clock: The injected clock.
        rng: Jitter and nothing cryptographic.
    """
    tls = client_context(settings.tls.cert, settings.tls.key, settings.tls.ca)
    sealer = EnvelopeSealer(identity)
    opener = EnvelopeOpener(identity.sender, peer_keys, suites=suites)
    breakers: dict[str, CircuitBreaker] = {}

    def channel(target: str, url: str, receiver: str, timeout: float) -> EnvelopeChannel:
        breakers[target] = CircuitBreaker(
            target,
            clock,
            failure_threshold=settings.breaker.failure_threshold,
            reset_timeout=settings.breaker.reset_timeout,
        )
        return EnvelopeChannel(
            target=target,
            url=url,
            receiver=receiver,
            sealer=sealer,
            opener=opener,
            ssl_context=tls,
            clock=clock,
            breaker=breakers[target],
            timeout=timeout,
        )

    platform_settings = settings.platform
    make = json_platform_client if platform_settings.dialect == "json" else soap_platform_client
    platform = make(
        channel(
            "platform",
            platform_settings.url,
            platform_settings.receiver,
            platform_settings.timeout,
        )
    )
    senders: dict[str, OutboxSender] = {"platform": platform}
    bank = None
    if settings.bank is not None:
        bank = JsonBankClient(
            channel("bank", settings.bank.url, settings.bank.receiver, settings.bank.timeout)
        )
        senders["bank"] = bank
    relay_settings = settings.outbox
    outbox = Outbox(
        protector=protector,
        now=clock.now,
        ttl=timedelta(hours=relay_settings.ttl_hours),
        breakers=breakers,
    )
    relay = Relay(
        sessions=sessions,
        outbox=outbox,
        senders=senders,
        clock=clock,
        rng=rng,
        policy=BackoffPolicy(
            initial=relay_settings.backoff_initial,
            maximum=max(relay_settings.backoff_max, relay_settings.backoff_initial),
        ),
        batch_size=relay_settings.batch_size,
        max_in_flight=relay_settings.max_in_flight,
        poll_interval=relay_settings.poll_interval,
    )
    outbox.on_enqueued = relay.wake
    return Upstream(
        platform=platform,
        bank=bank,
        outbox=outbox,
        relay=relay,
        breakers=breakers,
        sealer=sealer,
        opener=opener,
    )
