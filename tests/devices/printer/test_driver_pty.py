"""The printer driver against the simulated printer over a real pty."""

from __future__ import annotations

import asyncio
import os
import select
import time
from typing import TYPE_CHECKING, Any

import pytest

from devices.printer import (
    PrinterConnectionError,
    PrinterCoverOpenError,
    PrinterDeviceError,
    PrinterFeederEmptyError,
    PrinterJamError,
    PrinterNoCardError,
    PrinterRejectBoxFullError,
    PrinterRibbonError,
    PrinterTimeoutError,
)
from protocols.printer import commands
from protocols.printer.commands import CardPosition, SerialMode, setup_requests
from protocols.printer.frames import Depth, ErrorCode, Panel, panel_size
from simulators.printer import Fault, PrinterSimConfig, PrinterSimulator
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from devices.printer import PrinterDriver
    from protocols.printer.commands import PrinterStatus
    from tests.devices.printer.conftest import DriverFactory

    MakeDriverFor = Callable[
        [PrinterSimConfig, SerialMode], Awaitable[tuple[PrinterSimulator, PrinterDriver]]
    ]

pytestmark = pytest.mark.integration

MODES = [SerialMode.ACK_NACK, SerialMode.NONE]


def ymcko() -> list[tuple[Panel, Depth, bytes]]:
    """A full colour card: three 7-bit colour panels and two 1-bit panels (~1.9 MB)."""
    colour = bytes(range(256)) * (panel_size(Depth.LEVELS_128) // 256 + 1)
    mono = b"\r\x1b" * (panel_size(Depth.LEVELS_2) // 2)
    return [
        (Panel.YELLOW, Depth.LEVELS_128, colour[: panel_size(Depth.LEVELS_128)]),
        (Panel.MAGENTA, Depth.LEVELS_128, colour[1 : panel_size(Depth.LEVELS_128) + 1]),
        (Panel.CYAN, Depth.LEVELS_128, colour[2 : panel_size(Depth.LEVELS_128) + 2]),
        (Panel.BLACK, Depth.LEVELS_2, mono),
        (Panel.OVERLAY, Depth.LEVELS_2, b"\xff" * panel_size(Depth.LEVELS_2)),
    ]


def card(sim: PrinterSimulator) -> CardPosition:
    """Where the simulated printer holds its card now."""
    return sim.model.card


def driver_in_mode(make_driver: DriverFactory, mode: SerialMode, **kwargs: Any) -> PrinterDriver:  # noqa: ANN401
    """A driver whose setup list puts the printer in ``mode``."""
    return make_driver(setup=setup_requests(serial_mode=mode), **kwargs)


async def test_connect_sends_setup_and_reads_status(
    sim: PrinterSimulator, make_driver: DriverFactory
) -> None:
    """Connecting sends the setup list; the status reads the simulator's state."""
    driver = make_driver()
    await driver.connect()
    assert sim.received == [r.label for r in setup_requests()]
    assert sim.model.mode is SerialMode.ACK_NACK
    assert not sim.model.eject_after_print
    status = await driver.status()
    assert status.ready
    assert status.ribbon_type == "YMCKO"
    assert status.ribbon_remaining == 200
    assert status.card_position is CardPosition.NONE
    assert await driver.firmware_version() == "SSC-SIM 1.0.0"


@pytest.mark.parametrize("mode", MODES)
async def test_issue_one_card(
    sim: PrinterSimulator, make_driver: DriverFactory, mode: SerialMode
) -> None:
    """Insert to the contact station, print a full YMCKO card (>1 MB), eject."""
    driver = driver_in_mode(make_driver, mode)
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    await driver.connect()
    await driver.insert_card()
    assert card(sim) is CardPosition.CONTACT
    assert (await driver.status()).card_position is CardPosition.CONTACT
    cpu, wall = time.process_time(), time.monotonic()
    await driver.print_card(ymcko())
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert sim.model.printed == 1
    assert sim.model.ribbon_remaining == 199
    assert card(sim) is CardPosition.PRINT
    assert sim.received[-7:] == ["Ss", "Db;y;128", "Db;m;128", "Db;c;128", "Db;k;2", "Db;o;2", "Se"]
    await driver.eject_card()
    assert sim.model.ejected == 1
    assert card(sim) is CardPosition.NONE
    assert not loop_errors, "the serial transport reported errors (write spin?)"
    assert wall < 20
    assert cpu < 15


@pytest.mark.parametrize("mode", MODES)
async def test_reject_to_the_reject_box(
    sim: PrinterSimulator, make_driver: DriverFactory, mode: SerialMode
) -> None:
    """A card at the station goes to the reject box."""
    driver = driver_in_mode(make_driver, mode)
    await driver.connect()
    await driver.insert_card(commands.EncodingStation.CONTACTLESS)
    assert card(sim) is CardPosition.CONTACTLESS
    await driver.reject_card()
    assert sim.model.reject_box == 1
    assert card(sim) is CardPosition.NONE


@pytest.mark.parametrize("mode", MODES)
async def test_jam_then_clear_and_reject(
    sim: PrinterSimulator, make_driver: DriverFactory, mode: SerialMode
) -> None:
    """A jam is PrinterJamError with code T, holds until cleared, then the card is rejected."""
    driver = driver_in_mode(make_driver, mode)
    await driver.connect()
    sim.inject(Fault.JAM)
    with pytest.raises(PrinterJamError) as info:
        await driver.insert_card()
    assert info.value.printer_code is ErrorCode.MECHANICAL
    assert info.value.command == "Sis"
    assert (await driver.status()).card_position is CardPosition.PRINT
    with pytest.raises(PrinterJamError):
        await driver.eject_card()
    await driver.clear_error()
    await driver.reject_card()
    assert sim.model.reject_box == 1
    await driver.insert_card()
    assert card(sim) is CardPosition.CONTACT


@pytest.mark.parametrize("mode", MODES)
async def test_cover_open_until_closed(
    sim: PrinterSimulator, make_driver: DriverFactory, mode: SerialMode
) -> None:
    """An open cover refuses card moves (code C); closing it lets them through."""
    driver = driver_in_mode(make_driver, mode)
    await driver.connect()
    sim.inject(Fault.COVER_OPEN)
    assert (await driver.status()).cover_open
    with pytest.raises(PrinterCoverOpenError) as info:
        await driver.insert_card()
    assert info.value.printer_code is ErrorCode.COVER_OPEN
    sim.clear(Fault.COVER_OPEN)
    await driver.insert_card()


@pytest.mark.parametrize("mode", MODES)
async def test_feeder_empty_until_refilled(
    sim: PrinterSimulator, make_driver: DriverFactory, mode: SerialMode
) -> None:
    """An empty feeder is code F and shows in the status; a refill cures it."""
    driver = driver_in_mode(make_driver, mode)
    await driver.connect()
    sim.inject(Fault.FEEDER_EMPTY)
    status = await driver.status()
    assert not status.feeder_loaded
    assert status.feeder_near_empty
    assert not status.ready
    with pytest.raises(PrinterFeederEmptyError):
        await driver.insert_card()
    sim.clear(Fault.FEEDER_EMPTY)
    await driver.insert_card()


@pytest.mark.parametrize("mode", MODES)
async def test_ribbon_out_until_replaced(
    sim: PrinterSimulator, make_driver: DriverFactory, mode: SerialMode
) -> None:
    """A finished ribbon refuses to print (code R); a new ribbon prints."""
    driver = driver_in_mode(make_driver, mode)
    await driver.connect()
    sim.inject(Fault.RIBBON_OUT)
    await driver.insert_card()
    assert (await driver.status()).ribbon_remaining == 0
    panel = [(Panel.BLACK, Depth.LEVELS_2, bytes(panel_size(Depth.LEVELS_2)))]
    with pytest.raises(PrinterRibbonError) as info:
        await driver.print_card(panel)
    assert info.value.printer_code is ErrorCode.RIBBON
    sim.clear(Fault.RIBBON_OUT)
    await driver.print_card(panel)
    assert sim.model.printed == 1


@pytest.mark.parametrize("mode", MODES)
async def test_missing_ribbon_reads_as_none(
    make_driver_for: MakeDriverFor, mode: SerialMode
) -> None:
    """Without a ribbon the status says so instead of failing."""
    sim, driver = await make_driver_for(PrinterSimConfig(time_scale=0.0, ribbon_type=None), mode)
    status = await driver.status()
    assert status.ribbon_type is None
    assert status.ribbon_remaining is None
    assert not status.ready
    del sim


@pytest.fixture
async def make_driver_for(make_driver: DriverFactory) -> AsyncIterator[MakeDriverFor]:
    """Builds a connected driver against a simulator with its own configuration."""
    started: list[PrinterSimulator] = []

    async def build(
        config: PrinterSimConfig, mode: SerialMode
    ) -> tuple[PrinterSimulator, PrinterDriver]:
        other = PrinterSimulator(config)
        started.append(other)
        await other.start()
        driver = make_driver(url=lambda: other.path, setup=setup_requests(serial_mode=mode))
        await driver.connect()
        return other, driver

    yield build
    for other in started:
        await other.stop()


@pytest.mark.parametrize("mode", MODES)
async def test_reject_box_full_and_no_card(
    make_driver_for: MakeDriverFor, mode: SerialMode
) -> None:
    """A full reject box is code B; ejecting with no card inside is code N."""
    sim, driver = await make_driver_for(
        PrinterSimConfig(time_scale=0.0, reject_box=20, reject_capacity=20), mode
    )
    assert (await driver.status()).reject_box_full
    with pytest.raises(PrinterNoCardError):
        await driver.eject_card()
    await driver.insert_card()
    with pytest.raises(PrinterRejectBoxFullError) as info:
        await driver.reject_card()
    assert isinstance(info.value, PrinterDeviceError)
    assert info.value.printer_code is ErrorCode.REJECT_BOX_FULL
    await driver.eject_card()
    assert sim.model.ejected == 1


async def test_noise_before_a_reply_is_skipped(
    sim: PrinterSimulator, make_driver: DriverFactory
) -> None:
    """Garbage bytes before a reply cost nothing: the driver resyncs."""
    driver = make_driver()
    await driver.connect()
    sim.inject(Fault.NOISE)
    await driver.insert_card()
    sim.inject(Fault.NOISE)
    assert (await driver.status()).card_position is CardPosition.CONTACT
    assert driver.connected
    assert not make_driver.lost


async def test_garbled_reply_times_out_and_reconnects(
    sim: PrinterSimulator, make_driver: DriverFactory
) -> None:
    """A lost reply is a PrinterTimeoutError; the link is reported lost and comes back."""
    connected = asyncio.Event()
    driver = make_driver(on_connected=connected.set)
    runner = asyncio.create_task(driver.run(), name="printer-run")
    try:
        await asyncio.wait_for(connected.wait(), 10)
        connected.clear()
        sim.inject(Fault.GARBLED)
        started = time.monotonic()
        with pytest.raises(PrinterTimeoutError) as info:
            await driver.insert_card()
        assert info.value.command == "Sis"
        assert time.monotonic() - started < 6
        assert [type(e) for e in make_driver.lost] == [PrinterConnectionError]
        await asyncio.wait_for(connected.wait(), 10)
        assert sim.received.count(setup_requests()[0].label) == 2
        await driver.eject_card()  # the garbled Sis did move a card
        assert sim.model.ejected == 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_link_drop_mid_job_is_reported_and_reconnects_on_a_new_pty(
    sim: PrinterSimulator, make_driver: DriverFactory
) -> None:
    """Closing the pty mid-command is reported at once; the driver reconnects to the new pty."""
    clock = FakeClock(autojump=False)
    connected = asyncio.Event()
    driver = make_driver(clock=clock, on_connected=connected.set)
    runner = asyncio.create_task(driver.run(), name="printer-run")
    try:
        await asyncio.wait_for(connected.wait(), 10)
        connected.clear()
        sim.inject(Fault.LINK_DROP)
        started = time.monotonic()
        with pytest.raises(PrinterConnectionError):
            await driver.insert_card()
        assert time.monotonic() - started < 3  # well within the motion timeout
        assert len(make_driver.lost) == 1
        assert not driver.connected
        # The pty is gone: every attempt fails and backs off on the fake clock.
        await clock.wait_for_sleepers()
        await clock.advance(clock.sleeps[-1])
        await clock.wait_for_sleepers()
        assert len(clock.sleeps) == 2
        assert 0.25 <= clock.sleeps[0] <= 0.5
        assert 0.5 <= clock.sleeps[1] <= 1.0
        await sim.restore_link()
        assert sim.link_up
        await clock.advance(clock.sleeps[-1])
        await asyncio.wait_for(connected.wait(), 10)
        status = await driver.status()
        assert status.card_position is CardPosition.NONE
        assert sim.model.mode is SerialMode.ACK_NACK
        assert len(make_driver.lost) == 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_status_polling_reports(sim: PrinterSimulator, make_driver: DriverFactory) -> None:
    """With a status interval the driver polls and hands each status over."""
    statuses: asyncio.Queue[PrinterStatus] = asyncio.Queue()
    clock = FakeClock(autojump=False)
    driver = make_driver(clock=clock, status_interval=5.0, on_status=statuses.put_nowait)
    runner = asyncio.create_task(driver.run(), name="printer-run")
    try:
        await clock.wait_for_sleepers()
        await clock.advance(5.0)
        assert (await asyncio.wait_for(statuses.get(), 10)).ready
        sim.inject(Fault.COVER_OPEN)
        await clock.wait_for_sleepers()
        await clock.advance(5.0)
        assert (await asyncio.wait_for(statuses.get(), 10)).cover_open
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_close_is_not_reported_as_a_loss(
    sim: PrinterSimulator, make_driver: DriverFactory
) -> None:
    """An intentional close reports nothing and commands then fail as not connected."""
    driver = make_driver()
    await driver.connect()
    await driver.close()
    assert not make_driver.lost
    with pytest.raises(PrinterConnectionError):
        await driver.insert_card()
    assert sim.link_up


def raw_exchange(path: str, request: bytes, timeout: float = 5.0) -> bytes:
    """Write one request with plain os calls and read until CR (or NACK and code)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, request)
        reply = b""
        deadline = time.monotonic() + timeout
        while not reply.endswith(b"\r"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                break
            reply += os.read(fd, 256)
        return reply
    finally:
        os.close(fd)


async def test_independent_raw_client(sim: PrinterSimulator) -> None:
    """A client that is not our code (plain os.open/os.write) gets the guide's replies."""
    assert await asyncio.to_thread(raw_exchange, sim.path, b"\x1bRse;f\r") == b"5,00 Volts\r"
    assert await asyncio.to_thread(raw_exchange, sim.path, b"\x1bRlr;p\r") == b"OK\r"
    assert await asyncio.to_thread(raw_exchange, sim.path, b"\x1bSis\r") == b"OK\r"
    assert await asyncio.to_thread(raw_exchange, sim.path, b"\x1bRlr;p\r") == b"SMART CARD\r"
    assert await asyncio.to_thread(raw_exchange, sim.path, b"\x1bXyz\r") == b"ERR CMD\r"
    assert await asyncio.to_thread(raw_exchange, sim.path, b"Rrt;count\r") == b"200\r"
