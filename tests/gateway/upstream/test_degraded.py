"""Faults, refused envelopes, the circuit breaker and degraded mode, over real TLS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from gateway.upstream import (
    CardRef,
    ChangeInfo,
    DialectPlatformClient,
    EnvelopeRefusedError,
    KeyServiceContext,
    KeyServiceUnavailableError,
    LiveOnlyError,
    Outbox,
    QueueStatus,
    UpstreamConnectionError,
    UpstreamHttpError,
    UpstreamUnavailableError,
    json_platform_client,
)
from gateway.upstream.models import OutboxRow
from security.keystore import EncryptedPinBlock, PinBlockFormat
from simulators.platform import PlatformSimulator, platform_name
from tests.gateway.upstream.conftest import PROVINCE, ChannelFactory, make_identity

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from tests.fakes import FakeClock

pytestmark = pytest.mark.integration

CARD_ID = "652300D15600000500000000000000A1"
CONTEXT = KeyServiceContext("K1", "652300", "650102199001011234", "X00000001", CARD_ID, "3B6C0000")
BLOCK = EncryptedPinBlock(
    bytes(16), key_id="zone-pin", key_version=1, pin_block_format=PinBlockFormat.ISO_4
)


def _card(platform_sim: PlatformSimulator) -> CardRef:
    """An active card in Xinjiang."""
    card = platform_sim.provinces[PROVINCE].add_card(
        "650102199001011234", "张三", "652300", aaz501=CARD_ID
    )
    card.aaz502 = "1"
    return CardRef(card.aaz500, card.aaz501)


async def test_envelope_the_platform_refuses(
    make_channel: ChannelFactory, platform_sim: PlatformSimulator
) -> None:
    """Unknown key, forged signature, wrong receiver: refused by the platform with their codes."""
    url, receiver = platform_sim.url(PROVINCE, "json"), platform_name(PROVINCE)
    stranger = json_platform_client(
        make_channel("platform", url, receiver, sender=make_identity(key_id="other"))
    )
    with pytest.raises(EnvelopeRefusedError) as info:
        await stranger.query_status(CardRef("X00000001"))
    assert (info.value.code, info.value.side) == ("envelope.unknown_key", "remote")
    impostor = json_platform_client(make_channel("platform", url, receiver, sender=make_identity()))
    with pytest.raises(EnvelopeRefusedError) as info:
        await impostor.query_status(CardRef("X00000001"))
    assert info.value.code == "envelope.bad_signature"
    misaddressed = json_platform_client(
        make_channel("platform", platform_sim.url(PROVINCE, "json"), platform_name("410000"))
    )
    with pytest.raises(EnvelopeRefusedError) as info:
        await misaddressed.query_status(CardRef("X00000001"))
    assert info.value.code == "envelope.wrong_receiver"
    assert platform_sim.counters.refused == {
        "envelope.unknown_key": 1,
        "envelope.bad_signature": 1,
        "envelope.wrong_receiver": 1,
    }
    assert platform_sim.counters.received == 0


async def test_answer_the_branch_refuses(
    platform_client: DialectPlatformClient, platform_sim: PlatformSimulator
) -> None:
    """A corrupted answer is refused by the branch (bad signature); the item was applied once."""
    card = _card(platform_sim)
    await platform_sim.set_faults(corrupt=True)
    with pytest.raises(EnvelopeRefusedError) as info:
        await platform_client.query_status(card)
    assert (info.value.code, info.value.side) == ("envelope.bad_signature", "local")
    await platform_sim.set_faults(corrupt=False)
    assert await platform_client.query_status(card)


async def test_faults_map_to_error_families(
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    manual_clock: FakeClock,
) -> None:
    """5xx, dropped answers and a closed listener each raise their own family."""
    card = _card(platform_sim)
    await platform_sim.set_faults(error_status=503)
    with pytest.raises(UpstreamHttpError) as info:
        await platform_client.query_status(card)
    assert info.value.status == 503
    assert info.value.transient
    await platform_sim.set_faults(error_status=None, drop=True)
    with pytest.raises(UpstreamConnectionError):
        await platform_client.query_status(card)
    await platform_sim.set_faults(drop=False, down=True)
    with pytest.raises(UpstreamConnectionError):
        await platform_client.query_status(card)
    await platform_sim.set_faults(down=False)
    await manual_clock.advance(30.0)  # three transient failures opened the breaker
    assert await platform_client.query_status(card)


async def test_breaker_fails_fast_then_recovers(
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    manual_clock: FakeClock,
) -> None:
    """After 3 failures calls fail at once without a request; after the timeout one probe heals."""
    card = _card(platform_sim)
    await platform_sim.set_faults(error_status=502)
    for _ in range(3):
        with pytest.raises(UpstreamHttpError):
            await platform_client.query_status(card)
    requests = platform_sim.counters.requests
    with pytest.raises(UpstreamUnavailableError) as info:
        await platform_client.query_status(card)
    assert info.value.retry_after == pytest.approx(30.0)
    assert "稍后" in info.value.message_zh
    assert "later" in info.value.message_en
    assert platform_sim.counters.requests == requests
    await platform_sim.set_faults(error_status=None)
    await manual_clock.advance(30.0)
    assert await platform_client.query_status(card)
    assert platform_client.breaker.closed


async def test_pin_reset_with_platform_down_fails_at_once_and_queues_nothing(
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
) -> None:
    """PIN reset and unlock fail fast with a bilingual typed error; the outbox stays empty."""
    await platform_sim.set_faults(down=True)
    for _ in range(4):  # connection refused, then the open breaker: both fail fast
        with pytest.raises(KeyServiceUnavailableError) as info:
            await platform_client.authorize_pin_reset(CONTEXT, BLOCK, bytes(8))
        assert "未排队" in info.value.message_zh
        assert "Nothing was queued" in info.value.message_en
    with pytest.raises(KeyServiceUnavailableError):
        await platform_client.authorize_unlock(CONTEXT, bytes(8))
    with pytest.raises(KeyServiceUnavailableError):
        await platform_client.external_authenticate(CONTEXT, bytes(8))
    assert platform_sim.counters.requests == 0
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxRow)) == 0
    # Queueable work is accepted while the platform is down, with a "queued" status.
    queued = Outbox(
        protector=outbox._protector,
        now=outbox._now,
        breakers={"platform": platform_client.breaker},
    )
    async with sessions.begin() as session:
        answer = await queued.enqueue(session, ChangeInfo(CardRef("X00000001"), phone="1"))
    assert answer.status is QueueStatus.QUEUED


async def test_pin_commands_cannot_enter_the_outbox(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox
) -> None:
    """Handing a PIN or key-service request to the outbox is refused; nothing is written."""
    async with sessions.begin() as session:
        for thing in (CONTEXT, BLOCK, "pin_reset_auth"):
            with pytest.raises(LiveOnlyError):
                await outbox.enqueue(session, thing)  # type: ignore[arg-type]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxRow)) == 0
