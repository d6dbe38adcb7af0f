"""Upstream fixtures: a branch PKI, envelope identities, simulators over real mutual TLS.

Both simulators and the clients run on the same fake clock (manual: time moves
only when a test advances it), so envelope timestamps agree and backoff
delays pass without real waiting.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from devices.backoff import BackoffPolicy
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.migrate import upgrade
from gateway.upstream import (
    CircuitBreaker,
    DialectPlatformClient,
    EnvelopeChannel,
    JsonBankClient,
    KeyStorePayloadProtector,
    Outbox,
    OutboxSender,
    Relay,
    json_platform_client,
    soap_platform_client,
)
from security.envelope import (
    DictEnvelopeKeys,
    EnvelopeOpener,
    EnvelopeSealer,
    SenderIdentity,
)
from security.keystore import Algorithm, KeyUsage, MasterKey, SoftwareKeyStore
from security.pki import CertificateRole, client_context, init_ca, issue, server_context
from security.suites import GM
from simulators.bank import BANK_NAME, BankSimulator
from simulators.platform import PlatformSimulator, platform_name
from tests.fakes import FakeClock

if TYPE_CHECKING:
    import ssl
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

BRANCH = "T-652300-01"
PROVINCE = "650000"


@dataclass
class Pki:
    """Certificate files of one test PKI."""

    directory: Path

    def server(self) -> ssl.SSLContext:
        """The simulators' server context (mutual TLS)."""
        d = self.directory
        return server_context(d / "upstream-sim.pem", d / "upstream-sim.key", d / "ca.pem")

    def client(self) -> ssl.SSLContext:
        """The branch's client context."""
        d = self.directory
        return client_context(d / "branchd.pem", d / "branchd.key", d / "ca.pem")


@pytest.fixture
def manual_clock() -> FakeClock:
    """A fake clock that moves only when the test advances it."""
    return FakeClock(autojump=False)


@pytest.fixture
def pki(tmp_path: Path, manual_clock: FakeClock) -> Pki:
    """A CA, a server certificate for the simulators and a peer certificate for the branch."""
    directory = tmp_path / "pki"
    init_ca(directory, BRANCH, manual_clock.now())
    issue(directory, "upstream-sim", CertificateRole.SERVER, manual_clock.now())
    issue(directory, "branchd", CertificateRole.PEER, manual_clock.now())
    return Pki(directory)


def make_identity(sender: str = BRANCH, key_id: str = "branch-env") -> SenderIdentity:
    """A gm envelope identity."""
    return SenderIdentity(
        sender=sender,
        key_id=key_id,
        key_version=1,
        signing_key=GM.generate_signing_key(),
        aead_key=os.urandom(GM.aead_key_size),
    )


@pytest.fixture
def identity() -> SenderIdentity:
    """The branch's envelope identity (gm suite)."""
    return make_identity()


@pytest.fixture
async def platform_sim(
    pki: Pki, identity: SenderIdentity, manual_clock: FakeClock
) -> AsyncIterator[PlatformSimulator]:
    """The platform simulator on a free loopback port, trusting the branch."""
    trusted = DictEnvelopeKeys()
    trusted.add(identity)
    simulator = PlatformSimulator(
        ssl_context=pki.server(),
        trusted=trusted,
        now=manual_clock.now,
    )
    async with simulator:
        yield simulator


@pytest.fixture
async def bank_sim(
    pki: Pki, identity: SenderIdentity, manual_clock: FakeClock
) -> AsyncIterator[BankSimulator]:
    """The bank simulator on a free loopback port, trusting the branch."""
    trusted = DictEnvelopeKeys()
    trusted.add(identity)
    simulator = BankSimulator(
        ssl_context=pki.server(),
        trusted=trusted,
        now=manual_clock.now,
    )
    async with simulator:
        yield simulator


ChannelFactory = Callable[..., EnvelopeChannel]


@pytest.fixture
async def make_channel(
    pki: Pki,
    identity: SenderIdentity,
    manual_clock: FakeClock,
    platform_sim: PlatformSimulator,
    bank_sim: BankSimulator,
) -> AsyncIterator[ChannelFactory]:
    """Build channels to the simulators; all are closed at the end."""
    made: list[EnvelopeChannel] = []

    def make(  # noqa: PLR0913 - test knobs
        target: str,
        url: str,
        receiver: str,
        *,
        sender: SenderIdentity | None = None,
        threshold: int = 3,
        reset_timeout: float = 30.0,
    ) -> EnvelopeChannel:
        keys = DictEnvelopeKeys()
        platform_sim.trust_platforms(keys)
        bank_sim.trust_bank(keys)
        who = sender or identity
        channel = EnvelopeChannel(
            target=target,
            url=url,
            receiver=receiver,
            sealer=EnvelopeSealer(who),
            opener=EnvelopeOpener(who.sender, keys, suites=("gm",)),
            ssl_context=pki.client(),
            clock=manual_clock,
            breaker=CircuitBreaker(
                target, manual_clock, failure_threshold=threshold, reset_timeout=reset_timeout
            ),
            timeout=10.0,
        )
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


@pytest.fixture(params=["json", "soap"])
def dialect(request: pytest.FixtureRequest) -> str:
    """Each platform dialect in turn."""
    return str(request.param)


@pytest.fixture
def platform_client(
    dialect: str, make_channel: ChannelFactory, platform_sim: PlatformSimulator
) -> DialectPlatformClient:
    """The platform adapter for ``dialect``, talking to Xinjiang."""
    channel = make_channel("platform", platform_sim.url(PROVINCE, dialect), platform_name(PROVINCE))
    make = json_platform_client if dialect == "json" else soap_platform_client
    return make(channel)


@pytest.fixture
def bank_client(make_channel: ChannelFactory, bank_sim: BankSimulator) -> JsonBankClient:
    """The bank adapter."""
    return JsonBankClient(make_channel("bank", bank_sim.url, BANK_NAME))


@pytest.fixture
def keystore(tmp_path: Path) -> SoftwareKeyStore:
    """A software key store with the outbox payload key."""
    store = SoftwareKeyStore.open(
        tmp_path / "keys.bin", MasterKey(os.urandom(32), source="test"), create=True
    )
    store.generate_key("outbox-payload", Algorithm.AES_256, KeyUsage.ENCRYPT)
    return store


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database on each backend."""
    engine = create_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the migrated database."""
    return session_factory(engine)


@pytest.fixture
def outbox(keystore: SoftwareKeyStore, manual_clock: FakeClock) -> Outbox:
    """An outbox sealing payloads with the key store."""
    return Outbox(
        protector=KeyStorePayloadProtector(keystore, "outbox-payload"), now=manual_clock.now
    )


RelayFactory = Callable[..., Relay]


@pytest.fixture
def make_relay(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    manual_clock: FakeClock,
) -> RelayFactory:
    """Build relays over the outbox with a seeded random source."""

    def make(
        senders: Mapping[str, OutboxSender], *, batch_size: int = 100, max_in_flight: int = 2
    ) -> Relay:
        return Relay(
            sessions=sessions,
            outbox=outbox,
            senders=senders,
            clock=manual_clock,
            rng=random.Random(7),
            policy=BackoffPolicy(initial=1.0, maximum=60.0),
            batch_size=batch_size,
            max_in_flight=max_in_flight,
        )

    return make
