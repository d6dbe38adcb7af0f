"""Request and response bodies of the teller API.

The server validates with these pydantic models and ``/openapi.json`` is
generated from the same models, so the document cannot drift from the code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.operations.catalogue import Case, Channel, Material, Operation
from protocols.documents import DocumentType

__all__ = [
    "ApplicationOut",
    "ApprovalIn",
    "ApprovalOut",
    "CardOut",
    "DocumentIn",
    "FeeDayOut",
    "FeeIn",
    "FeeOut",
    "FeeTotal",
    "IdentityQuery",
    "OperationRequest",
    "OperationResult",
    "PersonIn",
    "ProgressOut",
    "Scope",
    "VerificationIn",
    "VerificationOut",
    "WithdrawalIn",
    "WithdrawalOut",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
#: What a scoped operation covers: the social-security side (platform), the bank
#: account (bank core), or both; each side has its own state and messages.
Scope = Literal["social-security", "bank", "both"]


class DocumentIn(BaseModel):
    """An identity document shown at the window (its number is checked by type)."""

    model_config = _STRICT

    type: DocumentType
    number: str = Field(min_length=4, max_length=32)


class PersonIn(BaseModel):
    """A person at the counter: the applicant or the agent."""

    model_config = _STRICT

    id_number: str = Field(
        min_length=18, max_length=18, description="Resident identity number (AAC002)"
    )
    name: str = Field(min_length=1, max_length=30, description="Name (AAC003)")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9-]{5,20}$")
    address: str | None = Field(default=None, max_length=200)
    #: The identity document shown (kept with the person; counts as its material).
    document: DocumentIn | None = None


class OperationRequest(BaseModel):
    """One business request. Which fields matter depends on the operation."""

    model_config = _STRICT

    case: Case
    channel: Channel
    applicant: PersonIn
    agent: PersonIn | None = None
    materials: list[Material] = Field(default_factory=list, max_length=32)
    photo: str | None = Field(
        default=None, max_length=3_000_000, description="JPEG photo, base64 (358x441, 300 DPI)"
    )
    card_number: str | None = Field(default=None, max_length=16)
    fee_waived: bool = Field(default=False, strict=True)
    #: What a loss report, cancel loss, activation or cancellation covers: the
    #: social-security application, the bank account, or both. Unset: the
    #: operation's default (docs/operations.md, "Scope").
    scope: Scope | None = Field(
        default=None,
        description=(
            "Loss reports, cancel loss, activation and cancellation only: "
            "social-security, bank or both (unset: the operation's default)"
        ),
    )


class OperationResult(BaseModel):
    """What the teller sees after an operation was accepted."""

    receipt_number: str
    operation: Operation
    #: ``queued``: accepted here; the platform is down and is told when it is back.
    status: Literal["completed", "accepted", "queued"]
    title_zh: str
    title_en: str
    deadline: date | None
    fee_yuan: int
    fee_waived: bool
    application_state: str | None
    card_state: str | None
    bank_state: str | None
    #: ``none``, ``due`` (settle it at the window before the card is made: POST
    #: /v1/applications/{receipt}/fee), ``waived``.
    fee_status: str = "none"
    #: ``incomplete``: attach the credential, scene and signature images
    #: (POST /v1/applications/{receipt}/archive); ``not-required`` otherwise.
    archive_status: str = "not-required"
    #: What the operation covered (scoped operations and rollback; else ``None``).
    scope: Scope | None = None


class ApprovalIn(BaseModel):
    """A supervisor approves one exact request."""

    model_config = _STRICT

    operation: Operation
    request: OperationRequest
    reason: str = Field(min_length=2, max_length=256)


class ApprovalOut(BaseModel):
    """An approval to quote in ``X-Approval-ID`` with the identical request."""

    id: str
    operation: Operation
    expires_at: datetime


class CardOut(BaseModel):
    """A card's states (masked holder)."""

    card_number: str | None
    region: str
    application_state: str
    card_state: str
    bank_state: str


class ApplicationOut(BaseModel):
    """An accepted request, as queries return it."""

    receipt_number: str
    operation: Operation
    case: Case
    channel: Channel
    status: str
    holder: str = Field(description="Masked identity number")
    terminal: str
    accepted_at: datetime
    deadline: date | None
    overdue: bool
    fee_yuan: int
    fee_waived: bool
    #: ``none``, ``due``, ``settling``, ``settled``, ``waived`` or ``unrecorded``.
    fee_status: str = "none"
    #: The branch's fee receipt number, once settled.
    fee_receipt: str | None = None
    #: ``not-required``, ``incomplete``, ``complete`` or ``waived``.
    archive_status: str = "not-required"
    #: An online application's number at the platform (channel ``online``).
    online_ref: str | None = None
    #: When an online application was verified at the window (its card is made after).
    verified_at: datetime | None = None
    #: Where it stands, in the words the citizen is told (docs/operations.md, "Progress").
    progress: ProgressOut


class ProgressOut(BaseModel):
    """A step of the citizen's view of an application (办理进度)."""

    code: Literal[
        "submitted", "verifying", "fee-due", "in-production", "awaiting-pickup",
        "picked-up", "enabled", "done", "returned",
    ]  # fmt: skip
    zh: str
    en: str


class FeeIn(BaseModel):
    """How the citizen settles the fee an application owes."""

    model_config = _STRICT

    method: Literal["cash", "pos", "debit"]
    #: The POS terminal's reference (``pos``, required).
    reference: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{4,64}$")
    #: The card number (AAZ500) of the bank account to debit (``debit``, required).
    account: str | None = Field(default=None, pattern=r"^[A-Z0-9]{6,16}$")

    @model_validator(mode="after")
    def _what_the_method_needs(self) -> FeeIn:
        if self.method == "pos" and self.reference is None:
            raise ValueError("a POS payment needs its reference")
        if self.method == "debit" and self.account is None:
            raise ValueError("a debit needs the account's card number")
        if self.method != "pos" and self.reference is not None:
            raise ValueError("only a POS payment carries a reference")
        return self


class FeeOut(BaseModel):
    """An application's fee after settlement."""

    receipt_number: str
    yuan: int
    status: str
    method: str | None
    #: The POS reference or the bank's debit receipt.
    reference: str | None
    fee_receipt: str | None
    settled_at: datetime | None


class FeeTotal(BaseModel):
    """Fees settled one way on one day."""

    key: str
    count: int
    yuan: int


class FeeDayOut(BaseModel):
    """A business day's fees."""

    day: date
    settled: list[FeeTotal]
    settled_yuan: int
    waived_count: int
    #: Applications accepted that day that still owe their fee.
    due_count: int
    due_yuan: int


class WithdrawalIn(BaseModel):
    """Why a supervisor withdraws an application."""

    model_config = _STRICT

    reason: str = Field(min_length=2, max_length=256)


class WithdrawalOut(BaseModel):
    """The application after its withdrawal."""

    receipt_number: str
    status: str
    #: ``reversed`` (a settled fee given back), ``void`` (it was never paid), or as it was.
    fee_status: str
    #: The holder's card after it: back where it was before the reissue or replacement.
    card_state: str | None


class VerificationIn(BaseModel):
    """What the citizen shows at the window for an online application (线下核验)."""

    model_config = _STRICT

    #: The materials shown (the identity document at least, 002 §6.1.3.2 a).
    materials: list[Material] = Field(default_factory=list, max_length=32)
    #: The photo, when the holder has none on record (002 §6.1.3.2 b).
    photo: str | None = Field(
        default=None, max_length=3_000_000, description="JPEG photo, base64 (358x441, 300 DPI)"
    )


class VerificationOut(BaseModel):
    """An online application once verified: its card may now be made here."""

    receipt_number: str
    #: The platform's number of the online application.
    online_ref: str
    verified_at: datetime
    verified_by: str
    deadline: date | None
    #: The window's images are kept for the verification (``incomplete`` until they are).
    archive_status: str


class IdentityQuery(BaseModel):
    """Look a person up by identity number (sent in a body, never in a URL)."""

    model_config = _STRICT

    id_number: str = Field(min_length=15, max_length=18)
