"""A simulated encrypting PIN pad on a pty, for the demo and the tests."""

from simulators.pinpad.model import (
    DEMO_TMK,
    Fault,
    PadKeys,
    PinPadSimConfig,
    encipher_key,
    key_check_value,
)
from simulators.pinpad.server import KEYS, PinPadSimulator, run_pinpad_simulator

__all__ = [
    "DEMO_TMK",
    "KEYS",
    "Fault",
    "PadKeys",
    "PinPadSimConfig",
    "PinPadSimulator",
    "encipher_key",
    "key_check_value",
    "run_pinpad_simulator",
]
