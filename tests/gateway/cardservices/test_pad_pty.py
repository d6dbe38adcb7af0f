"""PIN change with the simulated PIN pad on a real pty, through the pad driver.

The holder's keys are pressed on the simulated pad; the driver hands over its
block, :class:`~gateway.cardservices.pads.DriverPinPad` turns it into the key store's
block under the pad's TPK, and the key store builds VERIFY and CHANGE PIN for
the card (in an in-process reader here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from devices.encoder import InProcessEncoder
from gateway.audit.log import AuditLog
from gateway.cardservices import CardServices, PinSettings, WindowSettings
from gateway.cardservices.pads import DriverPinPad
from gateway.operations.catalogue import Role
from gateway.runtime.db import create_engine, session_factory
from gateway.runtime.http.auth import Terminal
from gateway.runtime.migrate import upgrade
from protocols.pinpad.frames import KeyAlgorithm
from security.suites import GM
from simulators.pinpad import PinPadSimConfig
from simulators.pinpad.server import ENTER
from tests.devices.pinpad.conftest import (  # noqa: F401 - fixtures
    KEY_LABEL,
    DriverFactory,
    branch_store,
    clock,
    load_params,
    make_driver,
    pad,
    pad_clock,
)
from tests.devices.printer.conftest import pty_available  # noqa: F401 - a fixture
from tests.fakes import FakeClock
from tests.gateway.cardservices.conftest import (
    CHONGQING_CARD_ID,
    CHONGQING_MASTERS,
    CHONGQING_SSN,
    make_card,
)
from tests.gateway.cardservices.test_service import READER, request

if TYPE_CHECKING:
    from pathlib import Path

    from security.keystore import SoftwareKeyStore
    from simulators.pinpad import PinPadSimulator

pytestmark = pytest.mark.integration


@pytest.fixture
def pad_config() -> PinPadSimConfig:
    """The demo TMK as an SM4 key: the pad's TPK is SM4, as the zone PIN key."""
    return PinPadSimConfig(algorithm=KeyAlgorithm.SM4)


async def test_pin_change_with_the_simulated_pad(
    tmp_path: Path,
    pad: PinPadSimulator,  # noqa: F811 - the fixture
    make_driver: DriverFactory,  # noqa: F811 - the fixture
    branch_store: SoftwareKeyStore,  # noqa: F811 - the fixture
) -> None:
    """Old PIN, then the new one twice, typed on the pad: the card has the new PIN."""
    driver = make_driver(key_label=f"{KEY_LABEL}-sm4", pin_block_format=0)
    await driver.open()
    await driver.load_key(load_params(KeyAlgorithm.SM4))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'branch.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)
    card = make_card(CHONGQING_CARD_ID, CHONGQING_SSN, CHONGQING_MASTERS, tmp_path / "card.json")
    encoder = InProcessEncoder(readers=(READER,))
    encoder.insert(READER, card)
    services = CardServices(
        settings=PinSettings(
            windows=[WindowSettings(terminal="teller-01", encoder="enc", pinpad="pad")]
        ),
        keystore=branch_store,
        platform=None,  # type: ignore[arg-type]  # a PIN change asks no platform
        breaker=None,
        sessions=sessions,
        audit=AuditLog(sessions, GM, FakeClock()),
        region="652300",
        encoders={"enc": (encoder, READER)},
        index=lambda number: number,
        pads={"pad": DriverPinPad(driver, branch_store)},
    )
    pad.press("123456" + ENTER)
    pad.press("246810" + ENTER)
    pad.press("246810" + ENTER)
    try:
        outcome = await services.pin_change(request(), Terminal("teller-01", Role.TELLER))
    finally:
        await engine.dispose()
    assert (outcome.tries_left_before, outcome.tries_left_after) == (3, 3)
    assert card.state.pin == "246810"
    assert not card.state.pin_is_default
