"""The daemon drives the window's PIN pad from ``[[devices.pinpads]]``: pty, pcscd, platform.

The simulated PIN pad serves a real pty; the daemon builds its driver from the
configuration, keeps it connected as a supervised task (the registry shows it
online), and puts it behind the window of ``[pin]``. The pad's TPK is loaded
under the demo TMK through the daemon's driver; the holder's keys are pressed
on the pad; the card behind pcscd and vpcd then has the new PIN, and a reset
through the national hub takes the new PIN from the pad as well.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from protocols.mqtt.state import DeviceStatus
from protocols.pinpad.frames import KeyAlgorithm
from simulators.pinpad import PinPadSimConfig
from simulators.pinpad.server import ENTER
from tests.devices.pinpad.conftest import TPK as PAD_TPKS
from tests.devices.pinpad.conftest import load_params, pad, pad_clock  # noqa: F401 - fixtures
from tests.devices.printer.conftest import pty_available  # noqa: F401 - a fixture
from tests.gateway.cardservices.conftest import CHONGQING_SSN, TPK, add_chongqing_card
from tests.gateway.cardservices.test_pin_e2e import HOLDER_PIN, NEW_PIN, body

if TYPE_CHECKING:
    from pathlib import Path

    from simulators.pinpad import PinPadSimulator
    from tests.gateway.cardservices.conftest import PinBranch

pytestmark = [pytest.mark.integration, pytest.mark.pcsc]

_ROUNDS = 200


@pytest.fixture
def pad_config() -> PinPadSimConfig:
    """The demo TMK as an SM4 key: the pad's TPK is SM4, as the zone PIN key."""
    return PinPadSimConfig(algorithm=KeyAlgorithm.SM4)


@pytest.fixture
def window_pads(pad: PinPadSimulator) -> list[dict[str, Any]]:  # noqa: F811 - the fixture
    """The window's pad on the simulator's pty."""
    return [{"id": "pinpad-1", "url": pad.path, "key_label": TPK}]


@pytest.fixture
def window_tpk() -> bytes:
    """The TPK the pad gets loaded with, in the branch's key store too."""
    return PAD_TPKS[KeyAlgorithm.SM4]


async def test_pin_change_and_reset_on_the_daemons_pad(
    pin_branch: PinBranch,
    pad: PinPadSimulator,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """Keys pressed on the pty pad change, then reset, the PIN of the card behind pcscd."""
    b = pin_branch
    devices = b.daemon.devices
    assert devices is not None
    driver = devices.pinpads["pinpad-1"]
    for _ in range(_ROUNDS):
        if driver.connected:
            break
        await asyncio.sleep(0.05)
    assert driver.connected
    assert devices.registry.state("pinpad-1").state is DeviceStatus.ONLINE
    await driver.load_key(load_params(KeyAlgorithm.SM4))

    card = add_chongqing_card(b.platform, tmp_path / "chongqing.json")
    await b.insert(card)
    who = body(CHONGQING_SSN)
    pad.press("123456" + ENTER)
    pad.press(HOLDER_PIN + ENTER)
    pad.press(HOLDER_PIN + ENTER)
    status, answer = await b.call("/v1/operations/pin-change", who)
    assert status == 200, answer
    assert card.state.pin == HOLDER_PIN

    pad.press(NEW_PIN + ENTER)
    pad.press(NEW_PIN + ENTER)
    status, answer = await b.call("/v1/operations/pin-reset", who)
    assert status == 200, answer
    assert (answer["issuer_province"], answer["cross_region"]) == ("500000", True)
    assert card.state.pin == NEW_PIN
