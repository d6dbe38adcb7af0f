"""Card services at the window: PIN change, PIN reset, unlock, status (see docs/pin-services.md).

:class:`CardServices` drives the window's card encoder and PIN pad, the key
store and the provincial platform's key service; ``gateway.cardservices.routes``
puts it on the teller API. The services refuse with a
:class:`~gateway.cardservices.errors.CardServiceReason`
(:class:`~gateway.cardservices.errors.CardServiceRefusal`); the section answers each
reason with its problem (:data:`gateway.cardservices.routes.PROBLEMS`).
"""

from gateway.cardservices.errors import CardServiceReason, CardServiceRefusal
from gateway.cardservices.pad import PinPad, PinPadFailure, Prompt
from gateway.cardservices.service import CardServices, ChipCard, Outcome, province_of
from gateway.cardservices.settings import PinSettings, WindowSettings

__all__ = [
    "CardServiceReason",
    "CardServiceRefusal",
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
