"""Request and response bodies of the batch API (validated by the server, in /openapi.json)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.operations.catalogue import Material
from gateway.operations.schemas import PersonIn

__all__ = [
    "BatchImportIn",
    "BatchOut",
    "BatchPickupIn",
    "BatchPickupOut",
    "BatchRowOut",
    "BatchRowsOut",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class BatchImportIn(BaseModel):
    """A card list from an employer's handler, with its photos and scans."""

    model_config = _STRICT

    employer: str = Field(min_length=2, max_length=128, description="Employer (单位名称)")
    handler: PersonIn = Field(description="The employer's handler at the counter (单位经办人)")
    materials: list[Material] = Field(default_factory=list, max_length=32)
    priority: Literal["urgent", "normal"] = "normal"
    operation: Literal["batch-apply", "reissue", "replace", "renew"] = Field(
        default="batch-apply",
        description="batch-apply: new cards (制卡明细表); reissue, replace, renew: new cards "
        "for holders whose card is lost, damaged or expiring (补换卡明细表, 001 §3.2)",
    )
    list_name: str = Field(
        min_length=5, max_length=255, pattern=r"(?i)\.(xlsx|csv)$", description="File name"
    )
    list_data: str = Field(min_length=4, description="The card list (xlsx or csv), base64")
    files: str | None = Field(
        default=None, description="Zip of the photos and identity scans, base64"
    )


class BatchPickupIn(BaseModel):
    """The employer's handler picks up the batch's made cards."""

    model_config = _STRICT

    handler: PersonIn
    materials: list[Material] = Field(default_factory=list, max_length=32)
    #: Lines of the card list to hand over (default: every made card).
    lines: list[int] | None = Field(default=None, max_length=100_000)
    #: The employer's stamped letter for a handler other than the one who submitted.
    letter: str | None = Field(default=None, description="Scan (JPEG, PNG or PDF), base64")
    letter_content_type: Literal["image/jpeg", "image/png", "application/pdf"] | None = None


class BatchOut(BaseModel):
    """A batch and how far it is."""

    id: str
    receipt_number: str
    employer: str
    handler: str = Field(description="Masked identity number of the handler")
    priority: Literal["urgent", "normal"]
    status: Literal["importing", "imported", "submitted", "finished"]
    deadline: date | None
    created_at: datetime
    submitted_at: datetime | None
    rows: int
    #: Rows by status (``invalid``, ``ready``, ``queued``, ``producing``, ``produced``,
    #: ``failed``, ``single``, ``issued``, ``picked-up``, ``enabled``).
    counts: dict[str, int]
    #: Rows finished with production (made, failed or taken out) over rows submitted.
    done: int
    total: int


class BatchRowOut(BaseModel):
    """One row (no personal data but the masked identity number)."""

    line: int
    number: str
    status: str
    holder: str
    problems: list[dict[str, str]]
    failure: str | None
    single_receipt: str | None
    picked_up_at: datetime | None
    enable_due_at: datetime | None
    enabled_at: datetime | None


class BatchRowsOut(BaseModel):
    """Rows of a batch, in line order."""

    items: list[BatchRowOut]


class BatchPickupOut(BaseModel):
    """What was handed over."""

    receipt_number: str
    lines: list[int]
    enable_due_at: datetime
    changed_handler: bool
