"""``[[devices.pinpads]]``: one entry per pad, and a driver built from it."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from devices.pinpad import PinPadDriver
from devices.registry.settings import DevicesSettings, PinPadSettings
from tests.fakes import FakeClock


def test_pinpads_parse_and_build_drivers() -> None:
    """A pad entry gives a driver with its key label, format and speed."""
    devices = DevicesSettings.model_validate(
        {
            "province": "650000",
            "branch": "T-652300-01",
            "pinpads": [
                {"id": "pinpad-1", "url": "/dev/ttyS1", "key_label": "tpk-window-1"},
                {
                    "id": "pinpad-2",
                    "url": "socket://10.0.0.9:4001",
                    "key_label": "tpk-window-2",
                    "baudrate": 115200,
                    "pin_block_format": 4,
                },
            ],
        }
    )
    assert [p.id for p in devices.pinpads] == ["pinpad-1", "pinpad-2"]
    driver = PinPadDriver.from_settings(devices.pinpads[1], clock=FakeClock(), rng=random.Random(1))
    assert (driver.key_label, driver.pin_block_format) == ("tpk-window-2", 4)
    assert not driver.connected


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "pinpad-1", "url": "/dev/ttyS1", "key_label": "-bad"},
        {"id": "pinpad-1", "url": "/dev/ttyS1", "key_label": "tpk", "pin_block_format": 1},
        {"id": "pinpad-1", "url": "", "key_label": "tpk"},
        {"id": "pinpad-1", "url": "/dev/ttyS1", "key_label": "tpk", "agent": "a"},
    ],
)
def test_bad_entries_are_refused(entry: dict[str, object]) -> None:
    """Bad key labels, formats, empty URLs and unknown keys are refused."""
    with pytest.raises(ValidationError):
        PinPadSettings.model_validate(entry)


def test_pad_ids_are_unique_among_devices() -> None:
    """A pad may not share its id with a printer."""
    with pytest.raises(ValidationError, match="unique"):
        DevicesSettings.model_validate(
            {
                "province": "650000",
                "branch": "T-652300-01",
                "printers": [{"id": "dev-1", "url": "/dev/ttyS0"}],
                "pinpads": [{"id": "dev-1", "url": "/dev/ttyS1", "key_label": "tpk"}],
            }
        )
