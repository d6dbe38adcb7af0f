"""The station behind pcscd: its chips go into the vpcd reader and the PC/SC encoder sees them.

The station connects the chip of the card at the contact station to the vpcd
reader and answers the printer command only once pcscd reports the card
present (or, after a move away, the reader empty). These tests use the
second vpcd reader (port 35963 + 1), leaving the first to the card tests.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import TYPE_CHECKING

import pytest

from devices.backoff import BackoffPolicy
from devices.clock import SystemClock
from devices.encoder import CardInserted, CardRemoved, PcscEncoder, ReaderEvent
from devices.printer import PrinterJamError
from protocols.sscard import CardStatusError
from simulators.card.vpcd import VPCD_PORT
from simulators.station import StationConfig, StationSimulator, reader_for_port
from tests.devices.station.conftest import PANELS, make_driver, personalize

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from protocols.sscard import HolderData
    from tests.devices.card.conftest import Pcscd

pytestmark = [pytest.mark.integration, pytest.mark.pcsc]

#: Waiting on pcscd (it polls the vpcd reader about every 0.4 s), not on a timer.
EVENT_TIMEOUT = 15.0
PORT = VPCD_PORT + 1
READER = reader_for_port(PORT)
#: The station's promise: after the ACK, the card is in the reader within this.
CARD_IN_READER_WITHIN = 1.0


class Events:
    """The encoder's reader events, with a wait for one that matches."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.seen: list[ReaderEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ReaderEvent) -> None:
        """The encoder's listener."""
        self.seen.append(event)
        self._changed.set()

    async def wait_for(self, match: Callable[[ReaderEvent], bool]) -> ReaderEvent:
        """Wait until a matching event arrives (the ones before it are consumed)."""
        async with asyncio.timeout(EVENT_TIMEOUT):
            while True:
                for index, event in enumerate(self.seen):
                    if match(event):
                        del self.seen[: index + 1]
                        return event
                self._changed.clear()
                await self._changed.wait()


def _inserted(event: ReaderEvent) -> bool:
    return isinstance(event, CardInserted) and event.reader == READER


def _removed(event: ReaderEvent) -> bool:
    return isinstance(event, CardRemoved) and event.reader == READER


async def test_the_chip_is_in_pcscd_reader_at_the_contact_station_and_leaves_on_eject(
    pcscd: Pcscd, pty_available: None, tmp_path: Path, holder: HolderData
) -> None:
    """Insert: PcscEncoder sees the card within a second of the ACK; eject: it goes."""
    del pcscd, pty_available
    status = tmp_path / "status.json"
    config = StationConfig(blanks=3, time_scale=0.0, vpcd_port=PORT, status=status)
    events = Events()
    encoder = PcscEncoder(
        clock=SystemClock(),
        rng=random.Random(7),
        listener=events,
        backoff=BackoffPolicy(initial=0.1, maximum=0.5),
        poll_timeout=0.2,
    )
    async with StationSimulator(config) as station, encoder:
        driver = make_driver(lambda: station.device)
        try:
            await driver.connect()
            await driver.insert_card()
            acked = time.monotonic()
            await events.wait_for(_inserted)
            assert time.monotonic() - acked < CARD_IN_READER_WITHIN
            channel = await encoder.connect(READER)
            card_id_code = await personalize(channel, "B00000001", holder)
            await channel.close()
            assert card_id_code == "330100D1560000050000000000000001"
            await driver.eject_card()
            await events.wait_for(_removed)

            await driver.insert_card()  # the next blank, straight after
            await events.wait_for(_inserted)
            channel = await encoder.connect(READER)
            assert await personalize(channel, "B00000002", holder) == (
                "330100D1560000050000000000000002"
            )
            await channel.close()
            await driver.reject_card()
            await events.wait_for(_removed)
        finally:
            await driver.close()
    state = json.loads(status.read_text(encoding="utf-8"))
    assert [c["card_number"] for c in state["output_tray"]] == ["B00000001"]
    assert [c["card_number"] for c in state["reject_box"]] == ["B00000002"]
    assert state["output_tray"][0]["ssn"] == holder.ssn


async def test_a_host_connecting_right_after_the_ack_finds_the_card(
    pcscd: Pcscd, pty_available: None
) -> None:
    """No event wait: a connect straight after the insert's ACK reaches the chip."""
    del pcscd, pty_available
    config = StationConfig(blanks=1, time_scale=0.0, vpcd_port=PORT)
    encoder = PcscEncoder(clock=SystemClock(), rng=random.Random(7), poll_timeout=0.2)
    async with StationSimulator(config) as station:
        driver = make_driver(lambda: station.device)
        try:
            await driver.connect()
            await driver.insert_card()
            channel = await encoder.connect(READER)
            chip = station.contact_card
            assert chip is not None
            assert channel.atr == chip.atr
            assert (await channel.transmit_raw(bytes.fromhex("00B2012C00")))[-2:] != b""
            await channel.close()
            await driver.eject_card()
        finally:
            await driver.close()
            await encoder.close()


async def test_a_jam_after_encoding_leaves_the_chip_with_pcscd_until_the_reject(
    pcscd: Pcscd, pty_available: None, tmp_path: Path, holder: HolderData
) -> None:
    """jam-print:1 and faulty-chip:2 through pcscd: the encoder sees what the printer does."""
    del pcscd, pty_available
    status = tmp_path / "status.json"
    config = StationConfig(
        blanks=3,
        time_scale=0.0,
        vpcd_port=PORT,
        status=status,
        jam_after_contact=frozenset({1}),
        faulty_chips=frozenset({2}),
    )
    events = Events()
    encoder = PcscEncoder(
        clock=SystemClock(), rng=random.Random(7), listener=events, poll_timeout=0.2
    )
    async with StationSimulator(config) as station, encoder:
        driver = make_driver(lambda: station.device)
        try:
            await driver.connect()
            await driver.insert_card()
            await events.wait_for(_inserted)
            channel = await encoder.connect(READER)
            await personalize(channel, "B00000001", holder)
            await channel.close()
            with pytest.raises(PrinterJamError):
                await driver.print_card(PANELS)
            assert encoder.card_present(READER)
            await driver.clear_error()
            await driver.reject_card()
            await events.wait_for(_removed)

            await driver.insert_card()
            await events.wait_for(_inserted)
            channel = await encoder.connect(READER)
            with pytest.raises(CardStatusError):
                await personalize(channel, "B00000002", holder)
            await channel.close()
            await driver.reject_card()
            await events.wait_for(_removed)
        finally:
            await driver.close()
    state = json.loads(status.read_text(encoding="utf-8"))
    assert [(c["card_number"], c["jammed"], c["faulty_chip"]) for c in state["reject_box"]] == [
        ("B00000001", True, False),
        (None, False, True),
    ]
