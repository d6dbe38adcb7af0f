"""Fixtures for the printer tests: a simulated printer on a real pty, a driver for it."""

from __future__ import annotations

import os
import pty
import random
from typing import TYPE_CHECKING, Any

import pytest

from devices.printer import PrinterDriver
from protocols.printer.commands import Timeouts
from simulators.printer import PrinterSimConfig, PrinterSimulator
from tests.conftest import missing_part
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

# Short timeouts: the simulator runs at time scale 0, so any wait this long is a failure.
TEST_TIMEOUTS = Timeouts(read=2.0, parameter=2.0, motion=3.0, print=5.0, download=10.0)


@pytest.fixture(scope="session")
def pty_available() -> None:
    """Skip (or fail in CI) when this machine cannot open a pseudo-terminal."""
    try:
        master, slave = pty.openpty()
    except OSError:
        missing_part("a pseudo-terminal (/dev/ptmx, devpts mounted)")
    os.close(master)
    os.close(slave)


@pytest.fixture
def sim_config() -> PrinterSimConfig:
    """An instant printer (time scale 0) with the default stock; tests may edit it."""
    return PrinterSimConfig(time_scale=0.0)


@pytest.fixture
async def sim(pty_available: None, sim_config: PrinterSimConfig) -> AsyncIterator[PrinterSimulator]:
    """A simulated printer serving a real pty."""
    del pty_available
    simulator = PrinterSimulator(sim_config)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


class DriverFactory:
    """Builds drivers bound to the simulator and closes them all afterwards."""

    def __init__(self, sim: PrinterSimulator) -> None:
        """Remember the simulator whose current pty every driver opens."""
        self.sim = sim
        self.lost: list[Exception] = []
        self.drivers: list[PrinterDriver] = []

    def __call__(self, **kwargs: Any) -> PrinterDriver:  # noqa: ANN401 (driver settings)
        """A driver for the simulator's current path (asked again at every connect)."""
        settings: dict[str, Any] = {
            "clock": FakeClock(),
            "rng": random.Random(7),
            "timeouts": TEST_TIMEOUTS,
            "on_connection_lost": self.lost.append,
        }
        settings.update(kwargs)
        url: str | Callable[[], str] = settings.pop("url", lambda: self.sim.path)
        driver = PrinterDriver(url, **settings)
        self.drivers.append(driver)
        return driver

    async def close(self) -> None:
        """Close every driver built."""
        for driver in self.drivers:
            await driver.close()


@pytest.fixture
async def make_driver(sim: PrinterSimulator) -> AsyncIterator[DriverFactory]:
    """A factory of drivers for ``sim``."""
    factory = DriverFactory(sim)
    try:
        yield factory
    finally:
        await factory.close()
