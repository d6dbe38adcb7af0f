"""Why an approval is refused: the approvals' reasons, no HTTP.

:class:`~gateway.approvals.service.Approvals` raises :class:`ApprovalRefusal` with
one :class:`ApprovalReason` and the English and Chinese detail of the occurrence.
The approvals have no section of their own: the operations' section, whose
``POST /v1/approvals`` grants them, maps each reason to its problem in its table
(:data:`gateway.operations.routes.PROBLEMS`), and so answers the refusals of every
request that takes an approval (a stock adjustment's too).

A reason's value is unique in the whole application, not only in this enum (a
``StrEnum`` member is equal to, and hashes like, any other of the same value):
every value here begins with ``approval-``.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Any

from gateway.runtime.refusals import Refusal

__all__ = ["ApprovalReason", "ApprovalRefusal"]


@unique
class ApprovalReason(StrEnum):
    """Every refusal of the approvals."""

    #: The request needs a supervisor's approval and names none.
    REQUIRED = "approval-required"
    #: The approval named is unknown, used, expired, or was given for another request.
    INVALID = "approval-invalid"


class ApprovalRefusal(Refusal):
    """A request refused for its approval (:attr:`reason` is an :class:`ApprovalReason`)."""

    reason: ApprovalReason

    def __init__(self, reason: ApprovalReason, detail: str, detail_zh: str, **members: Any) -> None:  # noqa: ANN401 - JSON values
        """Keep the reason, both texts and the members."""
        super().__init__(reason, detail, detail_zh, **members)
