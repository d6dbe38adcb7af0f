"""Why the window card services refuse a request: their reasons, no HTTP.

:class:`~gateway.cardservices.service.CardServices` raises
:class:`CardServiceRefusal` with one :class:`CardServiceReason`, the English and
Chinese detail of the occurrence and the members the teller needs (the tries
left, the card's status word, the province that refused, the pad's code). A
terminal whose role may not do the service is refused by the runtime's
``require_role`` (``forbidden``), as everywhere in the teller API. The card
services' section maps each reason to its registered problem in one table
(:data:`gateway.cardservices.routes.PROBLEMS`).

A reason's value is the code of the problem it is answered with, so the status
answer names a failed chip block by the code a teller system knows. The
application's refusal table is keyed by the reason's enum as well as its value,
so a value another feature's reason has too never collides.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Any

from gateway.runtime.refusals import Refusal

__all__ = ["CardServiceReason", "CardServiceRefusal"]


@unique
class CardServiceReason(StrEnum):
    """Every refusal of the window card services."""

    #: The terminal has no window in ``[pin]``, or its PIN pad is not connected.
    WINDOW_NOT_EQUIPPED = "window-not-equipped"
    #: The window's reader and pad serve another request now (one card at a time).
    WINDOW_BUSY = "window-busy"
    #: No card in the reader, or it does not answer; member ``reader``.
    CARD_UNREADABLE = "card-unreadable"
    #: The card's social-security application is blocked.
    CARD_APPLICATION_BLOCKED = "card-application-blocked"
    #: The card in the reader is not the applicant's; member ``card_holder`` (masked).
    CARD_HOLDER_MISMATCH = "card-holder-mismatch"
    #: VERIFY or CHANGE PIN refused the PIN; member ``tries_left``.
    PIN_WRONG = "pin-wrong"
    #: No PIN tries left; member ``tries_left`` (0).
    PIN_LOCKED = "pin-locked"
    #: Unlock asked of a PIN that is not locked; member ``tries_left``.
    PIN_NOT_LOCKED = "pin-not-locked"
    #: The new PIN is the initial PIN.
    PIN_DEFAULT_REFUSED = "pin-default-refused"
    #: The pad gave no usable PIN block; member ``pad_code``.
    PIN_PAD_FAILED = "pin-pad-failed"
    #: The card refused a command; members ``command`` and ``sw`` (hex).
    CARD_REFUSED = "card-refused"
    #: The issuing province's platform refused; members ``province``, ``cross_region``,
    #: ``platform_status`` and ``platform_message``.
    ISSUER_REFUSED = "issuer-refused"
    #: No usable answer from the issuing province (time-out, bad answer, not an APDU);
    #: members ``province`` and ``cross_region`` when the call was made.
    ISSUER_UNREACHABLE = "issuer-unreachable"
    #: The platform is known to be down (its circuit is open); member ``retry_after``.
    UPSTREAM_UNAVAILABLE = "upstream-unavailable"
    #: The one-time notice: materials, case, channel or identity numbers missing or
    #: invalid; member ``missing``, every item at once.
    INCOMPLETE = "incomplete-request"
    #: Neither this branch nor the platform knows a live card of the person.
    CARD_NOT_FOUND = "card-not-found"


class CardServiceRefusal(Refusal):
    """A card service refused (:attr:`reason` is a :class:`CardServiceReason`)."""

    reason: CardServiceReason

    def __init__(
        self,
        reason: CardServiceReason,
        detail: str,
        detail_zh: str,
        **members: Any,  # noqa: ANN401 - JSON values
    ) -> None:
        """Keep the reason, both texts and the members."""
        super().__init__(reason, detail, detail_zh, **members)
