"""Async driver for the encrypting PIN pad (密码键盘) on a serial port (or TCP).

The PIN services code against :class:`PinPadDriver`: ``read_pin``,
``read_new_pin`` and ``show``; a PIN never leaves the pad in clear, only an
:class:`PadPinBlock` under the pad's PIN key. See ``docs/protocols/pinpad.md``.
"""

from devices.pinpad.block import PadPinBlock
from devices.pinpad.driver import PinPadDriver
from devices.pinpad.errors import (
    PinPadCancelledError,
    PinPadError,
    PinPadKeyRefusedError,
    PinPadMismatchError,
    PinPadNoKeyError,
    PinPadOfflineError,
    PinPadProtocolError,
    PinPadRequestError,
    PinPadTimeoutError,
)
from protocols.pinpad.commands import LoadKeyParams, PadInfo, Timeouts
from protocols.pinpad.frames import KeyAlgorithm, Prompt

__all__ = [
    "KeyAlgorithm",
    "LoadKeyParams",
    "PadInfo",
    "PadPinBlock",
    "PinPadCancelledError",
    "PinPadDriver",
    "PinPadError",
    "PinPadKeyRefusedError",
    "PinPadMismatchError",
    "PinPadNoKeyError",
    "PinPadOfflineError",
    "PinPadProtocolError",
    "PinPadRequestError",
    "PinPadTimeoutError",
    "Prompt",
    "Timeouts",
]
