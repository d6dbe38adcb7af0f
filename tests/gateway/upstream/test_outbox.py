"""The outbox and its relay on SQLite and PostgreSQL, against the simulators over real TLS."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from gateway.upstream import (
    CardRef,
    ChangeInfo,
    DialectPlatformClient,
    FreezeAccount,
    JsonBankClient,
    Outbox,
    QueueStatus,
    ReportLoss,
    UnknownMessageError,
    json_platform_client,
    list_dead_letters,
    retry_dead_letter,
)
from gateway.upstream.models import OutboxRow, OutboxState
from simulators.platform import PlatformSimulator, platform_name
from tests.gateway.upstream.conftest import PROVINCE, ChannelFactory, RelayFactory

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from simulators.bank import BankSimulator
    from tests.fakes import FakeClock

pytestmark = pytest.mark.integration


def _cards(platform_sim: PlatformSimulator, count: int) -> list[CardRef]:
    """``count`` active cards in Xinjiang."""
    province = platform_sim.provinces[PROVINCE]
    refs = []
    for i in range(count):
        card = province.add_card(f"65010219900101{i:04d}", f"持卡人{i}", "652300")
        card.aaz502 = "1"
        refs.append(CardRef(card.aaz500))
    return refs


async def _enqueue_changes(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, cards: list[CardRef], per_card: int
) -> None:
    """``per_card`` phone changes per card, interleaved across cards, in one transaction."""
    async with sessions.begin() as session:
        for seq in range(per_card):
            for card in cards:
                await outbox.enqueue(session, ChangeInfo(card, phone=f"{seq:06d}"))


def _phones_by_card(platform_sim: PlatformSimulator) -> dict[str, list[str]]:
    """The phone numbers each card received, in arrival order."""
    seen: dict[str, list[str]] = defaultdict(list)
    for entry in platform_sim.endpoint.log:
        seen[entry.fields["AAZ500"]].append(entry.fields["phone"])
    return seen


async def _count(sessions: async_sessionmaker[AsyncSession], state: str) -> int:
    async with sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.state == state)
        )
        return int(found or 0)


async def test_ten_thousand_messages_down_then_up(  # noqa: PLR0913, PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    make_channel: ChannelFactory,
    platform_sim: PlatformSimulator,
    make_relay: RelayFactory,
    manual_clock: FakeClock,
) -> None:
    """10,000 messages queued while the platform is down are each delivered once, in card order."""
    platform_client = json_platform_client(
        make_channel("platform", platform_sim.url(PROVINCE, "json"), platform_name(PROVINCE))
    )
    cards = _cards(platform_sim, 1000)
    await _enqueue_changes(sessions, outbox, cards, 10)
    relay = make_relay({"platform": platform_client})
    await platform_sim.set_faults(down=True)
    for _ in range(3):  # three failed batches open the breaker
        await relay.run_once()
        await manual_clock.advance(120)
    assert not platform_client.breaker.closed
    requests = platform_sim.counters.requests
    assert await relay.run_once() == 0  # the breaker holds the relay back
    await platform_sim.set_faults(down=False)
    await manual_clock.advance(3600)
    assert await relay.drain() == 10_000
    counters = platform_sim.counters
    assert requests == 0
    assert (counters.received, counters.duplicates) == (10_000, 0)
    expected = [f"{seq:06d}" for seq in range(10)]
    assert all(phones == expected for phones in _phones_by_card(platform_sim).values())
    assert await _count(sessions, OutboxState.DELIVERED) == 10_000


async def test_relay_killed_mid_send_loses_nothing(  # noqa: PLR0913, PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    make_relay: RelayFactory,
    manual_clock: FakeClock,
) -> None:
    """A relay cancelled mid-send: the batch is resent as a repeat and absorbed as a duplicate."""
    cards = _cards(platform_sim, 30)
    await _enqueue_changes(sessions, outbox, cards, 2)
    await platform_sim.set_faults(slow=60.0)
    first = make_relay({"platform": platform_client}, batch_size=10, max_in_flight=1)
    task = asyncio.create_task(first.run(), name="relay-under-test")
    async with asyncio.timeout(20):
        while platform_sim.counters.received < 10:  # noqa: ASYNC110 - real I/O, bounded
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await platform_sim.set_faults(slow=0.0)
    await manual_clock.advance(3600)
    second = make_relay({"platform": platform_client}, batch_size=10, max_in_flight=1)
    assert await second.drain() == 60
    counters = platform_sim.counters
    assert counters.received == 60
    assert counters.duplicates == 10
    assert counters.repeats == 10
    expected = ["000000", "000001"]
    assert all(phones == expected for phones in _phones_by_card(platform_sim).values())
    assert await _count(sessions, OutboxState.DELIVERED) == 60


async def test_dead_letters_list_and_retry(  # noqa: PLR0913, PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    platform_client: DialectPlatformClient,
    platform_sim: PlatformSimulator,
    make_relay: RelayFactory,
    manual_clock: FakeClock,
) -> None:
    """Expired and refused messages become dead letters; a retried one is delivered."""
    (card,) = _cards(platform_sim, 1)
    async with sessions.begin() as session:
        expiring = await outbox.enqueue(session, ChangeInfo(card, phone="1"))
    assert expiring.status is QueueStatus.ACCEPTED
    relay = make_relay({"platform": platform_client})
    await platform_sim.set_faults(down=True)
    await relay.run_once()
    await manual_clock.advance(73 * 3600)
    await platform_sim.set_faults(down=False)
    async with sessions.begin() as session:
        refused = await outbox.enqueue(session, ReportLoss(CardRef("X99999999")))
    await relay.drain()
    letters = {letter.message_id: letter for letter in await list_dead_letters(sessions)}
    assert letters[expiring.message_id].last_error == "expired"
    assert letters[expiring.message_id].attempts == 1
    assert (letters[refused.message_id].last_error or "").startswith("not_found")
    await retry_dead_letter(sessions, expiring.message_id, manual_clock.now())
    with pytest.raises(UnknownMessageError):
        await retry_dead_letter(sessions, "no-such-message", manual_clock.now())
    assert await relay.drain() == 1
    assert platform_sim.counters.repeats == 1  # it had been sent before the platform went down
    assert platform_sim.provinces[PROVINCE].cards[card.card_number].phone == "1"
    assert [d.message_id for d in await list_dead_letters(sessions)] == [refused.message_id]


async def test_bank_messages_and_forged_live_only_rows(  # noqa: PLR0913, PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    platform_client: DialectPlatformClient,
    bank_client: JsonBankClient,
    platform_sim: PlatformSimulator,
    bank_sim: BankSimulator,
    make_relay: RelayFactory,
    manual_clock: FakeClock,
) -> None:
    """Bank messages are relayed; a PIN row slipped into the table is buried, never sent."""
    await bank_client.open_account("X00000001", "650102199001011234")
    async with sessions.begin() as session:
        await outbox.enqueue(session, FreezeAccount("X00000001"))
        forged = OutboxRow(
            message_id="forged-pin-reset",
            target="platform",
            operation="pin_reset_auth",
            card_key="X00000002",
            payload="v1.1.AA.AA",
            state=OutboxState.PENDING,
            attempts=0,
            created_at=manual_clock.now(),
            next_attempt_at=manual_clock.now(),
            expires_at=manual_clock.now() + timedelta(hours=1),
        )
        session.add(forged)
    relay = make_relay({"platform": platform_client, "bank": bank_client})
    assert await relay.drain() == 2
    assert bank_sim.accounts["X00000001"].state == "frozen"
    assert platform_sim.counters.requests == 0
    (letter,) = await list_dead_letters(sessions)
    assert letter.message_id == "forged-pin-reset"
