"""The card path follows the printer model (sans-I/O: the model is driven directly)."""

from __future__ import annotations

from protocols.printer import commands
from protocols.printer.commands import CardPosition
from protocols.printer.frames import ErrorCode, Request
from simulators.card.blanks import FaultyCard, blank_card
from simulators.printer import PrinterModel, PrinterSimConfig
from simulators.station import CardPath, ChipIn, ChipOut
from tests.devices.station.conftest import PANELS


def _station(blanks: int = 5, **faults: frozenset[int]) -> tuple[PrinterModel, CardPath]:
    model = PrinterModel(PrinterSimConfig(feeder=blanks, time_scale=0.0))
    path = CardPath(factory=blank_card, first_serial=100, **faults)
    path.attach(model)
    return model, path


def _do(model: PrinterModel, request: Request) -> bytes:
    reply, _ = model.handle(request)
    return reply


def _armed(model: PrinterModel) -> bool:
    """Whether a jam is armed (a call, so that type narrowing does not stick)."""
    return model.jam_armed


def _print(model: PrinterModel) -> bytes:
    _do(model, commands.start_sequence())
    for panel, depth, data in PANELS:
        _do(model, commands.download_panel(panel, depth, data))
    return _do(model, commands.end_sequence())


def test_a_blank_goes_through_the_reader_to_the_output_tray() -> None:
    """The first blank: fed to the contact station (chip in), printed, ejected (chip out)."""
    model, path = _station()
    assert _do(model, commands.insert_card()) == b"OK\r"
    [event] = path.drain()
    assert isinstance(event, ChipIn)
    assert event.card.serial == 100
    assert event.card.ordinal == 1
    assert path.in_reader is event.card
    assert _print(model) == b"OK\r"  # prints and ejects (the default)
    assert path.drain() == [ChipOut(event.card)]
    assert path.snapshot()["chip_in_reader"] is False
    assert path.output_tray == [event.card]
    assert event.card.printed
    state = path.snapshot()
    assert state["feeder"] == 4
    assert state["printed"] == 1
    assert state["card_position"] == "none"
    assert state["output_tray"][0]["card_id_code"] == "330100D1560000050000000000000064"
    assert state["output_tray"][0]["card_number"] is None


def test_the_second_blank_is_the_next_serial_and_rejects_go_to_the_reject_box() -> None:
    """Blanks come off the stack in serial order; a reject lands in the reject box."""
    model, path = _station()
    _do(model, commands.insert_card())
    _do(model, commands.reject_card())
    _do(model, commands.insert_card())
    _do(model, commands.eject_card())
    assert [c.serial for c in path.reject_box] == [100]
    assert [c.serial for c in path.output_tray] == [101]
    events = path.drain()
    assert [type(e) for e in events] == [ChipIn, ChipOut, ChipIn, ChipOut]
    assert path.snapshot()["reject_box_count"] == 1


def test_a_jam_on_feed_takes_the_blank_but_never_reaches_the_reader() -> None:
    """A jam on feed: the blank is taken, stuck at the print head, never in the reader."""
    model, path = _station(jam_on_feed=frozenset({2}))
    _do(model, commands.insert_card())
    assert not _armed(model)
    _do(model, commands.eject_card())
    assert _armed(model)  # for the next blank taken from the feeder
    reply = _do(model, commands.insert_card())
    assert reply != b"OK\r"
    assert model.error is ErrorCode.MECHANICAL
    assert path.card is not None
    assert path.card.ordinal == 2
    assert path.card.jammed
    assert path.position is CardPosition.PRINT
    assert path.in_reader is None
    _do(model, commands.clear_error())
    assert _do(model, commands.reject_card()) == b"OK\r"
    assert [c.ordinal for c in path.reject_box] == [2]
    assert [type(e) for e in path.drain()] == [ChipIn, ChipOut]
    assert path.snapshot()["reject_box"][0]["jammed"] is True


def test_a_jam_after_the_contact_station_keeps_the_encoded_card_in_the_reader() -> None:
    """A jam after encoding: the card stays at the contact station until rejected."""
    model, path = _station(jam_after_contact=frozenset({1}))
    _do(model, commands.insert_card())
    assert model.jam_armed
    assert _print(model) != b"OK\r"
    assert path.in_reader is not None
    assert path.in_reader.jammed
    _do(model, commands.clear_error())
    _do(model, commands.reject_card())
    assert len(path.reject_box) == 1
    assert not model.jam_armed


def test_a_card_rejected_before_its_jam_takes_the_jam_with_it() -> None:
    """A card rejected before its armed jam happened leaves no jam for the next blank."""
    model, path = _station(jam_after_contact=frozenset({1}))
    _do(model, commands.insert_card())
    _do(model, commands.reject_card())
    assert not model.jam_armed
    assert _do(model, commands.insert_card()) == b"OK\r"
    assert path.in_reader is not None
    assert not path.in_reader.jammed


def test_a_faulty_chip_is_a_faulty_card_wrapper() -> None:
    """The configured blank's chip is a FaultyCard."""
    model, path = _station(faulty_chips=frozenset({1}))
    _do(model, commands.insert_card())
    assert path.in_reader is not None
    assert isinstance(path.in_reader.chip, FaultyCard)
    assert path.snapshot()["card"]["faulty_chip"] is True


def test_a_card_moved_from_contact_to_the_print_head_leaves_the_reader() -> None:
    """Moving between stations takes the chip out and puts it back without a new blank."""
    model, path = _station()
    _do(model, commands.insert_card())
    _do(model, commands.insert_card(commands.EncodingStation.CONTACTLESS))
    assert path.in_reader is None
    _do(model, commands.insert_card())
    assert [type(e) for e in path.drain()] == [ChipIn, ChipOut, ChipIn]
    assert path.snapshot()["fed"] == 1
