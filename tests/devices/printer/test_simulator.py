"""The simulated printer: timings, its entry point, and the same protocol over TCP."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from devices.printer import PrinterDriver
from devices.serial import LinkError, open_link
from protocols.printer import commands
from protocols.printer.commands import CardPosition, SerialMode
from protocols.printer.decoder import NeedData, RequestDecoder
from protocols.printer.frames import Request
from simulators.printer import TIMINGS, PrinterModel, PrinterSimConfig, PrinterSimulator
from simulators.printer.server import run_printer_simulator
from tests.devices.printer.test_driver_pty import raw_exchange
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


def test_model_answers_in_both_modes() -> None:
    """The model answers OK/ERR texts, then ACK/NACK once Pcom asks for it."""
    model = PrinterModel(PrinterSimConfig(feeder=1))
    assert model.handle(commands.insert_card()) == (b"OK\r", TIMINGS["Sis"])
    assert model.handle(commands.reject_card())[0] == b"OK\r"
    assert model.handle(commands.insert_card())[0] == b"ERR FEEDER EMPTY\r"
    assert model.handle(commands.set_serial_mode(SerialMode.ACK_NACK))[0] == b"\x06"
    assert model.handle(commands.insert_card())[0] == b"\x15F"
    assert model.handle(commands.read_sensor(commands.Sensor.FEEDER))[0] == b"0,20 Volts\r"
    assert model.handle(Request("Zz"))[0] == b"\x151"
    assert model.reject_box == 1
    assert model.card is CardPosition.NONE


async def test_durations_are_scaled_and_slept_on_the_injected_sleep(pty_available: None) -> None:
    """Each command waits its real duration times the scale, on the sleep it was given."""
    del pty_available
    clock = FakeClock()
    config = PrinterSimConfig(time_scale=0.5)
    async with PrinterSimulator(config, sleep=clock.sleep) as sim:
        driver = PrinterDriver(
            sim.path,
            clock=clock,
            rng=random.Random(1),
            setup=(),
        )
        await driver.connect()
        await driver.insert_card()
        await driver.eject_card()
        await driver.close()
    assert clock.sleeps == [TIMINGS["Sis"] * 0.5, TIMINGS["Seb"] * 0.5]


async def test_entry_point_announces_the_path_and_stops(
    pty_available: None, tmp_path: Path
) -> None:
    """``run_printer_simulator`` announces the pty (and its stable link) and stops on request."""
    del pty_available
    link = f"{tmp_path}/printer0"
    shown: list[str] = []
    stop = asyncio.Event()
    announced = asyncio.Event()

    def announce(line: str) -> None:
        shown.append(line)
        announced.set()

    task = asyncio.create_task(
        run_printer_simulator(
            PrinterSimConfig(time_scale=0.0, link=link), announce=announce, stop=stop
        )
    )
    await asyncio.wait_for(announced.wait(), 10)
    assert shown[0].startswith("/dev/")
    assert shown[0].endswith(f" -> {link}")
    driver = PrinterDriver(link, clock=FakeClock(), rng=random.Random(1))
    await driver.connect()
    assert (await driver.status()).ready
    await driver.close()
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def tcp_printer() -> AsyncIterator[tuple[str, PrinterModel]]:
    """The printer model behind a TCP socket on 127.0.0.1 (a networked printer)."""
    model = PrinterModel(PrinterSimConfig(time_scale=0.0))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = RequestDecoder()
        while data := await reader.read(65_536):
            decoder.receive_data(data)
            while not isinstance(event := decoder.next_event(), NeedData):
                if isinstance(event, Request):
                    writer.write(model.handle(event)[0])
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"socket://127.0.0.1:{port}", model


async def test_socket_url_reaches_a_networked_printer(
    tcp_printer: tuple[str, PrinterModel],
) -> None:
    """``socket://host:port`` speaks the same language; no Pcom on a network link."""
    url, model = tcp_printer
    driver = PrinterDriver(url, clock=FakeClock(), rng=random.Random(1))
    await driver.connect()
    assert "Pcom" not in model.settings
    assert model.settings["Pem"] == ("2",)
    await driver.insert_card()
    assert model.card is CardPosition.CONTACT
    await driver.close()


@pytest.mark.parametrize("url", ["ftp://x", "socket://nohost", "COM1", "/nonexistent/tty"])
async def test_bad_urls_are_link_errors(url: str) -> None:
    """An unknown URL or a missing device is a LinkError naming the URL."""
    with pytest.raises(LinkError) as info:
        await open_link(url, asyncio.Protocol)
    assert info.value.url == url


def test_command_line_serves_until_sigterm(pty_available: None, tmp_path: Path) -> None:
    """``python -m simulators.printer.cli`` prints its pty, answers on it, exits 0 on SIGTERM."""
    del pty_available
    link = tmp_path / "printer0"
    with subprocess.Popen(
        [sys.executable, "-m", "simulators.printer.cli", "--link", str(link), "--time-scale", "0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            # Log lines may come first (structlog's default output is stdout).
            lines = (process.stdout.readline().strip() for _ in range(20))
            assert any(line.endswith(f" -> {link}") for line in lines)
            assert raw_exchange(str(link), b"\x1bRrt\r") == b"YMCKO\r"
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
    assert not link.exists()
