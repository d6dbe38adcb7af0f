"""Card services at the window: PIN change, PIN reset, unlock, status (see docs/pin-services.md).

:class:`CardServices` drives the window's card encoder and PIN pad, the key
store and the provincial platform's key service; ``gateway.api.card_routes``
puts it on the teller API.
"""

from gateway.pin.pad import PinPad, PinPadFailure, Prompt
from gateway.pin.service import CardServices, ChipCard, Outcome, province_of
from gateway.pin.settings import PinSettings, WindowSettings

__all__ = [
    "CardServices",
    "ChipCard",
    "Outcome",
    "PinPad",
    "PinPadFailure",
    "PinSettings",
    "Prompt",
    "WindowSettings",
    "province_of",
]
