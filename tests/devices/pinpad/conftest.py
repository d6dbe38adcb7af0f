"""Fixtures for the PIN pad tests: a simulated pad on a real pty, drivers for it.

The pty check is the printer tests' fixture, shared (not copied).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest

from devices.pinpad import PinPadDriver, Timeouts
from protocols.pinpad.frames import KeyAlgorithm
from security.keystore import Algorithm, KeyUsage, MasterKey, SoftwareKeyStore
from simulators.pinpad import DEMO_TMK, PinPadSimConfig, PinPadSimulator, encipher_key
from tests.devices.printer.conftest import pty_available  # noqa: F401 - a fixture
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from protocols.pinpad.commands import LoadKeyParams

KEY_LABEL = "tpk-window-1"
ACCOUNT = "6217000010001234567"  # a 19-digit bank card number (test data)
TPK: dict[KeyAlgorithm, bytes] = {
    KeyAlgorithm.TDES_2KEY: bytes.fromhex("E8DD93B8AF13999C7644C0FE11F5D2A7"),
    KeyAlgorithm.SM4: bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    KeyAlgorithm.AES_128: bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"),
}
STORE_ALGORITHM = {
    KeyAlgorithm.TDES_2KEY: Algorithm.TDES_2KEY,
    KeyAlgorithm.SM4: Algorithm.SM4_128,
    KeyAlgorithm.AES_128: Algorithm.AES_128,
}
FORMAT = {KeyAlgorithm.TDES_2KEY: 0, KeyAlgorithm.SM4: 0, KeyAlgorithm.AES_128: 4}
TEST_TIMEOUTS = Timeouts(command=2.0, pad_grace=5.0)


def load_params(algorithm: KeyAlgorithm = KeyAlgorithm.TDES_2KEY) -> LoadKeyParams:
    """The test TPK of ``algorithm`` enciphered under the demo TMK, with its KCV."""
    return encipher_key(DEMO_TMK, algorithm, TPK[algorithm])


@pytest.fixture
def pad_config() -> PinPadSimConfig:
    """The demo TMK, 3DES; tests may edit it before the pad starts."""
    return PinPadSimConfig()


@pytest.fixture
def pad_clock() -> FakeClock:
    """The clock of the pad's own entry timeout: it moves only when a test advances it."""
    return FakeClock(autojump=False)


@pytest.fixture
def clock() -> FakeClock:
    """The driver's clock: it moves only when a test advances it."""
    return FakeClock(autojump=False)


@pytest.fixture
async def pad(
    pty_available: None,  # noqa: F811 - the shared fixture
    pad_config: PinPadSimConfig,
    pad_clock: FakeClock,
) -> AsyncIterator[PinPadSimulator]:
    """A simulated PIN pad serving a real pty."""
    del pty_available
    simulator = PinPadSimulator(pad_config, sleep=pad_clock.sleep)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


class DriverFactory:
    """Builds drivers bound to the pad and closes them all afterwards."""

    def __init__(self, pad: PinPadSimulator, clock: FakeClock) -> None:
        """Remember the pad whose current path every driver opens."""
        self.pad = pad
        self.clock = clock
        self.lost: list[Exception] = []
        self.keys: list[int] = []
        self.drivers: list[PinPadDriver] = []

    def __call__(self, **kwargs: Any) -> PinPadDriver:  # noqa: ANN401 (driver settings)
        """A driver for the pad's current path (asked again at every connect)."""
        settings: dict[str, Any] = {
            "clock": self.clock,
            "rng": random.Random(7),
            "key_label": KEY_LABEL,
            "timeouts": TEST_TIMEOUTS,
            "on_connection_lost": self.lost.append,
            "on_key": self.keys.append,
        }
        settings.update(kwargs)
        driver = PinPadDriver(settings.pop("url", lambda: self.pad.path), **settings)
        self.drivers.append(driver)
        return driver

    async def close(self) -> None:
        """Close every driver built."""
        for driver in self.drivers:
            await driver.close()


@pytest.fixture
async def make_driver(pad: PinPadSimulator, clock: FakeClock) -> AsyncIterator[DriverFactory]:
    """A factory of drivers for ``pad``."""
    factory = DriverFactory(pad, clock)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
def branch_store(tmp_path: Path) -> Iterator[SoftwareKeyStore]:
    """The branch's key store holding the pad's TPK (all three kinds) and a zone key."""
    store = SoftwareKeyStore.open(
        tmp_path / "branch-keys.bin", MasterKey(bytes(range(32)), source="test"), create=True
    )
    for algorithm, material in TPK.items():
        label = f"{KEY_LABEL}-{algorithm.name.lower()}"
        store.import_key(label, STORE_ALGORITHM[algorithm], KeyUsage.PIN, material)
    store.generate_key("zpk-bank", Algorithm.TDES_2KEY, KeyUsage.PIN)
    try:
        yield store
    finally:
        store.close()
