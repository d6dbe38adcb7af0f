"""Device configuration: local or remote, never both, unknown keys refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devices.registry.settings import DevicesSettings


def test_local_and_remote_devices() -> None:
    """Printers by URL or agent, encoders by reader or agent."""
    settings = DevicesSettings.model_validate(
        {
            "province": "650000",
            "branch": "T-652300-01",
            "broker": {"host": "mqtt.branch", "port": 8883},
            "printers": [{"id": "p1", "url": "/dev/ttyUSB0"}, {"id": "p2", "agent": "kiosk-1"}],
            "encoders": [{"id": "e1", "reader": "ACS ACR38U 00 00"}, {"id": "e2", "agent": "k"}],
        }
    )
    assert [p.agent for p in settings.printers] == [None, "kiosk-1"]


@pytest.mark.parametrize(
    "printer",
    [{"id": "p1"}, {"id": "p1", "url": "/dev/ttyS0", "agent": "a"}, {"id": "p/1", "url": "x"}],
)
def test_bad_printers_are_refused(printer: dict[str, str]) -> None:
    """Neither or both places, or a name that is no topic segment, are refused."""
    with pytest.raises(ValidationError):
        DevicesSettings.model_validate({"province": "650000", "branch": "b", "printers": [printer]})


def test_remote_needs_a_broker_and_unknown_keys_fail() -> None:
    """A remote device without a broker, or an unknown key, is refused."""
    with pytest.raises(ValidationError):
        DevicesSettings.model_validate(
            {"province": "650000", "branch": "b", "printers": [{"id": "p", "agent": "a"}]}
        )
    with pytest.raises(ValidationError):
        DevicesSettings.model_validate({"province": "650000", "branch": "b", "colour": "red"})
