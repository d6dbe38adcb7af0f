"""Why the batch service refuses a request: its reasons, no HTTP.

:class:`~gateway.batches.service.BatchService` raises :class:`BatchRefusal` with
one :class:`BatchReason`, the English and Chinese detail of the occurrence and
the members the caller needs (the batch's status, the row's status, the lines,
the missing materials). The batch API's section maps each reason to its
registered problem in one table (:data:`gateway.batches.routes.PROBLEMS`).

A reason's value is unique in the whole application, not only in this enum: the
problem middleware looks refusals up in one table merged from every section, and
a ``StrEnum`` member is equal to (and hashes like) another one of the same name
and value. Every value here therefore begins with ``batch-``.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Any

from gateway.runtime.refusals import Refusal

__all__ = ["BatchReason", "BatchRefusal"]


@unique
class BatchReason(StrEnum):
    """Every refusal of the batch service."""

    #: No batch with this id.
    NOT_FOUND = "batch-not-found"
    #: The card list is not the template, unreadable, or has no rows.
    FILE_INVALID = "batch-file-invalid"
    #: The batch's status does not allow it (submitting twice); member ``status``.
    STATE = "batch-state"
    #: The row is not where the request needs it (taken out after production started,
    #: no made card waiting for pickup); member ``row_status`` or ``lines``.
    ROW_STATE = "batch-row-state"
    #: The applicant of a batch-to-single is not the row's holder.
    HOLDER_MISMATCH = "batch-holder-mismatch"
    #: The handler's materials are missing or invalid (import, pickup, the letter's
    #: scan); member ``missing``, every item at once.
    INCOMPLETE = "batch-materials-incomplete"


class BatchRefusal(Refusal):
    """A request the batch service refused (:attr:`reason` is a :class:`BatchReason`)."""

    reason: BatchReason

    def __init__(self, reason: BatchReason, detail: str, detail_zh: str, **members: Any) -> None:  # noqa: ANN401 - JSON values
        """Keep the reason, both texts and the members."""
        super().__init__(reason, detail, detail_zh, **members)
