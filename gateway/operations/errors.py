"""Why the business service refuses an operation: its reasons, no HTTP.

:class:`~gateway.operations.service.BusinessService` raises
:class:`OperationRefusal` with one :class:`OperationReason`, the English and
Chinese detail of the occurrence and the members the caller needs (the missing
materials, the card's state, when to retry). Its approvals are refused by the
approvals themselves (:class:`~gateway.approvals.errors.ApprovalRefusal`), and a
terminal whose role may not do the operation by the runtime's ``require_role``
(``forbidden``), as everywhere in the teller API. The operations' section maps
each reason to its registered problem in one table
(:data:`gateway.operations.routes.PROBLEMS`); the table answers a refusal raised
while a batch or card-service request runs as well.

A reason's value is unique in the whole application, not only in this enum (a
``StrEnum`` member is equal to, and hashes like, any other of the same value):
every value here begins with ``operation-``.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Any

from gateway.runtime.refusals import Refusal

__all__ = ["OperationReason", "OperationRefusal"]


@unique
class OperationReason(StrEnum):
    """Every refusal of the business service."""

    #: The one-time notice: materials, identity numbers, case or scope missing or
    #: invalid; member ``missing``, every item at once.
    INCOMPLETE = "operation-incomplete"
    #: No holder with the applicant's identity number.
    PERSON_NOT_FOUND = "operation-person-not-found"
    #: The holder has no such card.
    CARD_NOT_FOUND = "operation-card-not-found"
    #: The operation is for a card not cancelled, and the holder's are all cancelled.
    CARD_CANCELLED = "operation-card-cancelled"
    #: A first card for a holder who has one (reissue, replace or renew instead).
    CARD_EXISTS = "operation-card-exists"
    #: Another request for this holder changed the same card or application first.
    STATE_CONFLICT = "operation-state-conflict"
    #: The card's state does not allow the operation; members ``card_state``, or
    #: ``machine``, ``state`` and ``event``.
    ILLEGAL_TRANSITION = "operation-illegal-transition"
    #: The request's channel is not the terminal's (kiosk requests from kiosks only).
    CHANNEL_MISMATCH = "operation-channel-mismatch"
    #: PIN change, reset or unlock asked of the operations (the card services do them).
    PIN_SERVICES_UNAVAILABLE = "operation-pin-services-unavailable"
    #: A live operation while the platform's circuit is open; member ``retry_after``.
    UPSTREAM_UNAVAILABLE = "operation-upstream-unavailable"
    #: The working-day calendar does not cover the deadline.
    CALENDAR_INCOMPLETE = "operation-calendar-incomplete"
    #: The bank account asked of a branch without a bank core.
    BANK_NOT_CONFIGURED = "operation-bank-not-configured"
    #: No application with the receipt number.
    APPLICATION_NOT_FOUND = "operation-application-not-found"
    #: The application owes no fee now; member ``fee_status``.
    FEE_NOT_DUE = "operation-fee-not-due"
    #: A bank debit of the fee is under way; member ``retry_after``.
    FEE_SETTLING = "operation-fee-settling"
    #: The bank refused the debit (frozen, closed, unknown account); member ``bank_status``.
    FEE_DEBIT_REFUSED = "operation-fee-debit-refused"
    #: The identity document is on record for another person; member ``document_type``.
    DOCUMENT_TAKEN = "operation-document-taken"
    #: Done, withdrawn, or its card is being made; members ``status``, ``card_state``.
    NOT_WITHDRAWABLE = "operation-not-withdrawable"
    #: Not an online application awaiting verification (verified, done or withdrawn
    #: already, or made at this branch); members ``status``, ``verified``.
    NOT_VERIFIABLE = "operation-not-verifiable"
    #: The business day was closed (日终): nothing more is posted on it; member ``day``.
    DAY_CLOSED = "operation-day-closed"
    #: The card already has its electronic card (requested once per card).
    ELECTRONIC_CARD_EXISTS = "operation-electronic-card-exists"


class OperationRefusal(Refusal):
    """An operation the business service refused (:attr:`reason` is an :class:`OperationReason`)."""

    reason: OperationReason

    def __init__(
        self,
        reason: OperationReason,
        detail: str,
        detail_zh: str,
        **members: Any,  # noqa: ANN401 - JSON values
    ) -> None:
        """Keep the reason, both texts and the members."""
        super().__init__(reason, detail, detail_zh, **members)
