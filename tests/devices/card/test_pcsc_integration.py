"""pyscard -> pcscd -> vpcd -> our card simulator: SELECT, events, recovery after a restart."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import pytest

from devices.backoff import BackoffPolicy
from devices.clock import SystemClock
from devices.encoder import (
    CardInserted,
    CardRemoved,
    PcscEncoder,
    ReaderEvent,
    ServiceLost,
    ServiceRestored,
    SocialSecurityApplication,
)
from protocols import sscard
from simulators.card.cli import demo_issuer
from tests.devices.card.conftest import VPCD_READER, VpcdCard

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.card import CardProtocol
    from tests.devices.card.conftest import CardFactory, Pcscd

pytestmark = [pytest.mark.integration, pytest.mark.pcsc]

#: Waiting on pcscd (it polls vpcd readers about every 0.4 s), not on a timer.
EVENT_TIMEOUT = 15.0


class Events:
    """Collects driver events and lets a test wait for one."""

    def __init__(self) -> None:
        """Start empty."""
        self.seen: list[ReaderEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ReaderEvent) -> None:
        """The driver's listener."""
        self.seen.append(event)
        self._changed.set()

    async def wait_for(self, match: Callable[[ReaderEvent], bool]) -> ReaderEvent:
        """Wait until an event matching ``match`` arrives (consumes the ones before it)."""
        async with asyncio.timeout(EVENT_TIMEOUT):
            while True:
                for index, event in enumerate(self.seen):
                    if match(event):
                        del self.seen[: index + 1]
                        return event
                self._changed.clear()
                await self._changed.wait()


def _encoder(events: Events) -> PcscEncoder:
    return PcscEncoder(
        clock=SystemClock(),
        rng=random.Random(7),
        listener=events,
        backoff=BackoffPolicy(initial=0.1, maximum=0.5),
        poll_timeout=0.2,
    )


def _inserted(event: ReaderEvent) -> bool:
    return isinstance(event, CardInserted) and event.reader == VPCD_READER


@pytest.mark.parametrize("protocol", ["T=0", "T=1"])
async def test_select_and_read_over_pcscd(
    pcscd: Pcscd, issue_card: CardFactory, protocol: CardProtocol
) -> None:
    """SELECT answers 61xx then 9000 (T=0) or 9000 (T=1); EF05 reads back through pcscd."""
    del pcscd
    vpcd = VpcdCard(issue_card(protocol=protocol))
    events = Events()
    vpcd.insert()
    try:
        async with _encoder(events) as encoder:
            await events.wait_for(
                lambda e: _inserted(e) and e == CardInserted(VPCD_READER, vpcd.card.atr)
            )
            channel = await encoder.connect(VPCD_READER)
            try:
                assert channel.protocol == protocol
                raw = await channel.transmit_raw(sscard.select_application().to_bytes())
                if protocol == "T=0":
                    assert raw[0] == 0x61
                else:
                    assert raw == b"\x90\x00"
                answer = await channel.transmit(sscard.select_application())
                assert answer.ok
                app = SocialSecurityApplication(channel)
                assert await app.read_issuer() == demo_issuer(3)
            finally:
                await channel.close()
    finally:
        vpcd.remove()


async def test_insert_and_remove_events(vpcd_card: VpcdCard) -> None:
    """The driver reports the card going in and out of the vpcd reader."""
    events = Events()
    async with _encoder(events):
        await encoder_ready(events)
        vpcd_card.insert()
        inserted = await events.wait_for(_inserted)
        assert isinstance(inserted, CardInserted)
        assert inserted.atr == vpcd_card.card.atr
        vpcd_card.remove()
        await events.wait_for(lambda e: e == CardRemoved(VPCD_READER))
        vpcd_card.insert()
        await events.wait_for(_inserted)


async def encoder_ready(events: Events) -> None:
    """Wait until the first poll has listed the vpcd reader."""
    await events.wait_for(lambda e: getattr(e, "reader", None) == VPCD_READER)


async def test_recovers_after_pcscd_restart(pcscd: Pcscd, vpcd_card: VpcdCard) -> None:
    """After pcscd restarts the driver reports loss and return, sees the card, and talks to it."""
    events = Events()
    vpcd_card.insert()
    async with _encoder(events) as encoder:
        await events.wait_for(_inserted)
        channel = await encoder.connect(VPCD_READER)
        assert (await channel.transmit(sscard.select_application())).ok
        await channel.close()
        await asyncio.to_thread(pcscd.restart)
        await events.wait_for(lambda e: isinstance(e, ServiceLost))
        await events.wait_for(lambda e: isinstance(e, ServiceRestored))
        await events.wait_for(_inserted)
        channel = await encoder.connect(VPCD_READER)
        try:
            answer = await channel.transmit(sscard.select_application())
            assert answer.ok
        finally:
            await channel.close()
