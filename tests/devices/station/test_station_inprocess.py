"""The station on a real pty: a printer driver moves cards, an in-process encoder sees chips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devices.encoder import InProcessEncoder
from devices.printer import PrinterJamError
from protocols.sscard import CardStatusError
from simulators.station import StationConfig, StationSimulator
from tests.devices.station.conftest import PANELS, make_driver, personalize

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from protocols.sscard import HolderData

pytestmark = pytest.mark.integration

READER = "Virtual PCD 00 00"


class Rig:
    """A station wired to an in-process encoder, and a driver on its pty."""

    def __init__(self, config: StationConfig) -> None:
        """Wire the station's chip callbacks to the encoder's reader."""
        self.encoder = InProcessEncoder(readers=(READER,))
        self.station = StationSimulator(
            config,
            on_card_in=lambda card: self.encoder.insert(READER, card),
            on_card_out=lambda: self.encoder.remove(READER),
        )
        self.driver = make_driver(lambda: self.station.device)

    def status(self) -> dict[str, Any]:
        """The status file's content."""
        assert self.station.config.status is not None
        data: dict[str, Any] = json.loads(self.station.config.status.read_text(encoding="utf-8"))
        return data

    def chip_in_reader(self) -> bool:
        """Whether the encoder's reader holds a card."""
        return self.encoder.card_present(READER)


@pytest.fixture
async def rig_for(pty_available: None, tmp_path: Path) -> AsyncIterator[Callable[..., Rig]]:
    """Build instant rigs with a status file in ``tmp_path``; stopped at the end."""
    del pty_available
    rigs: list[Rig] = []

    def build(**settings: Any) -> Rig:  # noqa: ANN401 - StationConfig fields
        config = StationConfig(time_scale=0.0, status=tmp_path / "status.json", **settings)
        rig = Rig(config)
        rigs.append(rig)
        return rig

    try:
        yield build
    finally:
        for rig in rigs:
            await rig.driver.close()
            await rig.station.stop()


async def _started(rig: Rig) -> Rig:
    await rig.station.start()
    await rig.driver.connect()
    return rig


async def test_the_chip_is_in_the_reader_at_the_contact_station_and_goes_to_the_tray(
    rig_for: Callable[..., Rig], holder: HolderData
) -> None:
    """Insert: the chip is in the reader at the ACK; personalized, printed, ejected: in the tray."""
    rig = await _started(rig_for(blanks=3))
    assert rig.status()["feeder"] == 3
    await rig.driver.insert_card()
    assert rig.chip_in_reader()
    assert rig.station.contact_card is not None
    channel = await rig.encoder.connect(READER)
    card_id_code = await personalize(channel, "B00000001", holder)
    assert card_id_code == "330100D1560000050000000000000001"
    await rig.driver.print_card(PANELS)  # the driver's setup keeps the card after printing
    assert not rig.chip_in_reader()
    assert rig.status()["card_position"] == "print"
    await rig.driver.eject_card()
    status = rig.status()
    assert status["feeder"] == 2
    assert status["printed"] == 1
    assert status["card_position"] == "none"
    assert status["chip_in_reader"] is False
    [card] = status["output_tray"]
    assert card == {
        "ordinal": 1,
        "serial": 1,
        "card_id_code": card_id_code,
        "card_number": "B00000001",
        "ssn": holder.ssn,
        "name": holder.name,
        "printed": True,
        "jammed": False,
        "faulty_chip": False,
    }


async def test_the_status_file_follows_chip_writes_while_the_card_is_in_the_reader(
    rig_for: Callable[..., Rig], holder: HolderData
) -> None:
    """Chip writes show in the status file while the card is still at the contact station."""
    rig = await _started(rig_for(blanks=2))
    await rig.driver.insert_card()
    assert rig.status()["chip_in_reader"] is True
    await personalize(await rig.encoder.connect(READER), "B00000009", holder)
    card = rig.status()["card"]
    assert isinstance(card, dict)
    assert card["card_number"] == "B00000009"
    assert card["ssn"] == holder.ssn
    await rig.driver.eject_card()
    assert rig.status()["printed"] == 0
    assert len(rig.status()["output_tray"]) == 1


async def test_a_jam_on_feed_reports_a_mechanical_error_and_the_card_can_be_rejected(
    rig_for: Callable[..., Rig],
) -> None:
    """jam:1: the insert fails with a jam; cleared and rejected, the next blank works."""
    rig = await _started(rig_for(blanks=3, jam_on_feed=frozenset({1})))
    with pytest.raises(PrinterJamError):
        await rig.driver.insert_card()
    assert not rig.chip_in_reader()
    assert rig.status()["printer_error"] == "mechanical"
    await rig.driver.clear_error()
    await rig.driver.reject_card()
    status = rig.status()
    assert status["printer_error"] is None
    assert status["reject_box_count"] == 1
    [card] = status["reject_box"]
    assert card["jammed"] is True
    await rig.driver.insert_card()  # the next blank is fine
    assert rig.chip_in_reader()


async def test_a_jam_after_encoding_keeps_the_chip_in_the_reader_until_rejected(
    rig_for: Callable[..., Rig], holder: HolderData
) -> None:
    """jam-print:1: the encoded card jams on print and stays readable until rejected."""
    rig = await _started(rig_for(blanks=3, jam_after_contact=frozenset({1})))
    await rig.driver.insert_card()
    await personalize(await rig.encoder.connect(READER), "B00000001", holder)
    with pytest.raises(PrinterJamError):
        await rig.driver.print_card(PANELS)
    assert rig.chip_in_reader()
    await rig.driver.clear_error()
    await rig.driver.reject_card()
    assert not rig.chip_in_reader()
    status = rig.status()
    [card] = status["reject_box"]
    assert card["card_number"] == "B00000001"
    assert card["printed"] is False
    assert status["printed"] == 0


async def test_a_faulty_chip_refuses_writes(
    rig_for: Callable[..., Rig], holder: HolderData
) -> None:
    """faulty-chip:2: the second blank's chip refuses UPDATE RECORD (6581)."""
    rig = await _started(rig_for(blanks=3, faulty_chips=frozenset({2})))
    await rig.driver.insert_card()
    await personalize(await rig.encoder.connect(READER), "B00000001", holder)
    await rig.driver.eject_card()
    await rig.driver.insert_card()
    with pytest.raises(CardStatusError):
        await personalize(await rig.encoder.connect(READER), "B00000002", holder)
    await rig.driver.reject_card()
    status = rig.status()
    assert status["reject_box"][0]["faulty_chip"] is True
    assert status["reject_box"][0]["card_number"] is None


async def test_the_link_symlink_and_card_files(pty_available: None, tmp_path: Path) -> None:
    """The stable symlink points at the pty; chips are kept in card files when asked."""
    del pty_available
    link = tmp_path / "printer"
    config = StationConfig(
        blanks=1, time_scale=0.0, link=str(link), card_dir=tmp_path / "cards", first_serial=7
    )
    async with StationSimulator(config) as station:
        assert link.resolve() == Path(station.device).resolve()  # noqa: ASYNC240 - no I/O wait
        driver = make_driver(str(link))
        try:
            await driver.connect()
            await driver.insert_card()
        finally:
            await driver.close()
        assert (tmp_path / "cards" / "card-7.json").exists()
        assert station.snapshot()["device"] == station.device
