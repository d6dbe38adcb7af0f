"""One printer test-suite for the local driver and for the driver behind the agent.

Remote path: remote client -> Mosquitto -> agent -> driver -> pty simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from devices.printer import (
    PrinterCoverOpenError,
    PrinterFeederEmptyError,
    PrinterJamError,
    PrinterRibbonError,
)
from protocols.printer import commands
from protocols.printer.commands import CardPosition, EncodingStation
from protocols.printer.frames import Depth, ErrorCode, Panel, TextReply, panel_size
from simulators.printer import Fault

if TYPE_CHECKING:
    from devices.agent import Printer
    from simulators.printer import PrinterSimulator

pytestmark = pytest.mark.integration


def card(sim: PrinterSimulator) -> CardPosition:
    """Where the simulated printer holds its card now."""
    return sim.model.card


def ymcko() -> list[tuple[Panel, Depth, bytes]]:
    """A full colour card: three 7-bit colour panels and two 1-bit panels (~1.9 MB)."""
    colour = bytes(range(256)) * (panel_size(Depth.LEVELS_128) // 256 + 1)
    return [
        (Panel.YELLOW, Depth.LEVELS_128, colour[: panel_size(Depth.LEVELS_128)]),
        (Panel.MAGENTA, Depth.LEVELS_128, colour[1 : panel_size(Depth.LEVELS_128) + 1]),
        (Panel.CYAN, Depth.LEVELS_128, colour[2 : panel_size(Depth.LEVELS_128) + 2]),
        (Panel.BLACK, Depth.LEVELS_2, b"\r\x1b" * (panel_size(Depth.LEVELS_2) // 2)),
        (Panel.OVERLAY, Depth.LEVELS_2, b"\xff" * panel_size(Depth.LEVELS_2)),
    ]


async def test_status_and_firmware(printer: Printer) -> None:
    """The status reads the simulator's state; the firmware text comes back."""
    assert printer.connected
    status = await printer.status()
    assert status.ready
    assert status.ribbon_type == "YMCKO"
    assert status.ribbon_remaining == 200
    assert status.card_position is CardPosition.NONE
    assert await printer.firmware_version() == "SSC-SIM 1.0.0"


async def test_raw_command(printer: Printer) -> None:
    """A raw command returns the printer's reply."""
    assert await printer.command(commands.read_ribbon_remaining()) == TextReply("200")


async def test_issue_one_card(printer: Printer, sim: PrinterSimulator) -> None:
    """Insert to the contact station, print a full YMCKO card (>1 MB), eject."""
    await printer.insert_card()
    assert card(sim) is CardPosition.CONTACT
    assert (await printer.status()).card_position is CardPosition.CONTACT
    await printer.print_card(ymcko())
    assert sim.model.printed == 1
    assert sim.received[-7:] == ["Ss", "Db;y;128", "Db;m;128", "Db;c;128", "Db;k;2", "Db;o;2", "Se"]
    await printer.eject_card()
    assert sim.model.ejected == 1
    assert card(sim) is CardPosition.NONE


async def test_contactless_then_reject(printer: Printer, sim: PrinterSimulator) -> None:
    """A card at the contactless station goes to the reject box."""
    await printer.insert_card(EncodingStation.CONTACTLESS)
    assert card(sim) is CardPosition.CONTACTLESS
    await printer.reject_card()
    assert sim.model.reject_box == 1


async def test_jam_is_typed_and_clears(printer: Printer, sim: PrinterSimulator) -> None:
    """A jam is PrinterJamError with code T and command Sis; clearing it lets work go on."""
    sim.inject(Fault.JAM)
    with pytest.raises(PrinterJamError) as info:
        await printer.insert_card()
    assert info.value.printer_code is ErrorCode.MECHANICAL
    assert info.value.command == "Sis"
    await printer.clear_error()
    await printer.reject_card()
    await printer.insert_card()
    assert card(sim) is CardPosition.CONTACT


async def test_cover_feeder_ribbon_errors(printer: Printer, sim: PrinterSimulator) -> None:
    """Cover open, feeder empty and ribbon out are their own typed errors."""
    sim.inject(Fault.COVER_OPEN)
    assert (await printer.status()).cover_open
    with pytest.raises(PrinterCoverOpenError):
        await printer.insert_card()
    sim.clear(Fault.COVER_OPEN)
    sim.inject(Fault.FEEDER_EMPTY)
    with pytest.raises(PrinterFeederEmptyError) as feeder:
        await printer.insert_card()
    assert feeder.value.printer_code is ErrorCode.FEEDER_EMPTY
    sim.clear(Fault.FEEDER_EMPTY)
    sim.inject(Fault.RIBBON_OUT)
    await printer.insert_card()
    panel = [(Panel.BLACK, Depth.LEVELS_2, bytes(panel_size(Depth.LEVELS_2)))]
    with pytest.raises(PrinterRibbonError):
        await printer.print_card(panel)
    sim.clear(Fault.RIBBON_OUT)
    await printer.print_card(panel)
    assert sim.model.printed == 1
