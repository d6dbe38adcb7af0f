"""What the production controller journals: jobs, their steps, and stock movements.

A job is one card application in production. Its record holds where the job
is (the last journaled step and whether that step was begun or done), which
blank card it is on (``card_seq``, 1 for the first blank, one more after each
spoiled card) and what the chip said. The step order is the field order::

    pre_open -> feed -> read_chip -> authenticate -> write -> verify -> print
      -> eject -> quality_check -> return_data -> bind_account -> enable -> issued

A step is journaled as ``begun`` before it acts and ``done`` after; a job found
with a ``begun`` step at start was interrupted there, and the controller
inspects the station before going on (docs/production.md, "Crash recovery").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import datetime as dt

__all__ = [
    "CARD_STEPS",
    "STEP_ORDER",
    "ChipFacts",
    "JobRecord",
    "JobStatus",
    "Order",
    "Phase",
    "Priority",
    "StepEvent",
    "StepName",
    "StockEntry",
    "StockKind",
    "next_step",
]


class StepName(enum.StrEnum):
    """The steps of an instant-issuance job, and the reject step."""

    PRE_OPEN = "pre_open"  # platform: card number and photo (idempotent)
    FEED = "feed"  # take a blank from the feeder to the contact station
    READ_CHIP = "read_chip"  # ATR, card identification code, generation
    AUTHENTICATE = "authenticate"  # EXTERNAL AUTHENTICATE through the key service
    WRITE = "write"  # UPDATE RECORD of EF05 and EF06
    VERIFY = "verify"  # read back and compare
    PRINT = "print"  # the card surface
    EJECT = "eject"  # to the output
    QUALITY_CHECK = "quality_check"  # the teller's explicit confirmation
    RETURN_DATA = "return_data"  # 回盘 to the platform
    BIND_ACCOUNT = "bind_account"  # bank core
    ENABLE = "enable"  # platform: enable the application
    REJECT = "reject"  # the card to the reject box and the spoiled ledger


#: The pipeline, in order (``REJECT`` is outside it).
STEP_ORDER: Final = (
    StepName.PRE_OPEN,
    StepName.FEED,
    StepName.READ_CHIP,
    StepName.AUTHENTICATE,
    StepName.WRITE,
    StepName.VERIFY,
    StepName.PRINT,
    StepName.EJECT,
    StepName.QUALITY_CHECK,
    StepName.RETURN_DATA,
    StepName.BIND_ACCOUNT,
    StepName.ENABLE,
)
#: Steps during which the job's card is inside the printer.
CARD_STEPS: Final = frozenset(
    STEP_ORDER[STEP_ORDER.index(StepName.FEED) : STEP_ORDER.index(StepName.EJECT) + 1]
)


class Phase(enum.StrEnum):
    """Where a step stands in the journal."""

    BEGUN = "begun"  # journaled before acting
    DONE = "done"  # the action succeeded
    FAILED = "failed"  # the action failed (the detail says why)


class JobStatus(enum.StrEnum):
    """The life of a job."""

    QUEUED = "queued"  # waiting for a station
    RUNNING = "running"  # on a station, or finishing after eject
    ISSUED = "issued"  # handed over, returned, bound and enabled (or enabling deferred)
    FAILED = "failed"  # gave up; ``failure`` says why

    @property
    def finished(self) -> bool:
        """Whether nothing more happens to the job."""
        return self in {JobStatus.ISSUED, JobStatus.FAILED}


class Priority(enum.IntEnum):
    """Scheduling class: lower runs first."""

    WINDOW = 0  # instant issuance for a customer at the window
    BATCH = 1  # batch production


@dataclass(frozen=True, slots=True)
class Order:
    """What a job makes: the application and the holder's data (personal data).

    Never logged; the journal keeps it encrypted.

    Attributes:
        application_id: The application this card is for (one good card each).
        ssn: Social security number (AAC002).
        name: Name (AAC003).
        sex: Sex code.
        ethnicity: Ethnicity code, two digits.
        birth_date: Birth date.
        region: Region code (AAB301).
        name_extension: Name extension (third-generation cards), if any.
        photo: Photo to print (set by pre-open when the platform gives one).
        card_number: Card number (AAZ500), set by pre-open.
        enable_on_issue: Enable the card on the platform as the job's last step
            (a card handed over at once). ``False`` for a card handed over later
            (employer batches: enabled 96 hours after pickup): the ``enable``
            step is journaled done with detail ``deferred`` and the platform is
            not called.
    """

    application_id: str
    ssn: str = field(repr=False)
    name: str = field(repr=False)
    sex: str = field(repr=False)
    ethnicity: str = field(repr=False)
    birth_date: dt.date = field(repr=False)
    region: str
    name_extension: str | None = field(default=None, repr=False)
    photo: bytes | None = field(default=None, repr=False)
    card_number: str | None = None
    enable_on_issue: bool = True


@dataclass(frozen=True, slots=True)
class ChipFacts:
    """What the chip of the job's current card said (no personal data).

    Attributes:
        atr: Answer to reset, hex (AAZ507).
        card_id_code: Card identification code (AAZ501), 32 hex digits.
        chip_serial: Chip serial: the card identification code's last 8 bytes.
        spec_version: Spec version record, e.g. ``"3.00"``.
    """

    atr: str
    card_id_code: str
    chip_serial: str
    spec_version: str


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as journaled.

    Attributes:
        job_id: Identifier.
        order: The application and holder data.
        priority: Scheduling class.
        status: Life state.
        created_at: When submitted (UTC).
        step: The last journaled step (``None`` before the first).
        phase: Where that step stands.
        card_seq: Which blank the job is on (1, then one more per spoiled card).
        station: The station holding the job's card, if any.
        feeder: The feeder the current card came from.
        issue_date: The date printed and written on the card (fixed at pre-open).
        chip: What the current card's chip said, once read.
        failure: Why the job failed (a stable code).
    """

    job_id: str
    order: Order
    priority: Priority
    status: JobStatus
    created_at: dt.datetime
    step: StepName | None = None
    phase: Phase | None = None
    card_seq: int = 1
    station: str | None = None
    feeder: str | None = None
    issue_date: dt.date | None = None
    chip: ChipFacts | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class StepEvent:
    """One line of a job's step journal.

    Attributes:
        job_id: The job.
        step: The step.
        phase: Begun, done or failed.
        card_seq: Which blank.
        at: When (UTC).
        station: Where, if on a station.
        detail: A stable code or short note (never personal data).
    """

    job_id: str
    step: StepName
    phase: Phase
    card_seq: int
    at: dt.datetime
    station: str | None = None
    detail: str = ""


class StockKind(enum.StrEnum):
    """Movements of blank cards."""

    LOADED = "loaded"  # put into a feeder (box or batch number)
    TAKEN = "taken"  # taken from the feeder by a job
    ISSUED = "issued"  # a good card handed over
    SPOILED = "spoiled"  # rejected (reason, operator)
    DESTROYED = "destroyed"  # a spoiled card physically destroyed
    ADJUSTED = "adjusted"  # a counted correction (supervisor approval)


@dataclass(frozen=True, slots=True)
class StockEntry:
    """One stock movement; ``key`` is unique, so recording twice counts once.

    Attributes:
        key: Unique key (``<job>:<card_seq>:<kind>`` for a job's card).
        feeder: The feeder (one per printer).
        kind: The movement.
        quantity: Cards moved (signed for adjustments).
        at: When (UTC).
        operator: Who (``"system"`` for the controller).
        reason: Why (spoiled, destroyed, adjusted), a stable code or note.
        box: Box or batch number of loaded cards.
        job_id: The job, for a job's card.
        approver: The supervisor who approved an adjustment.
    """

    key: str
    feeder: str
    kind: StockKind
    quantity: int
    at: dt.datetime
    operator: str = "system"
    reason: str = ""
    box: str = ""
    job_id: str | None = None
    approver: str | None = None


def next_step(step: StepName | None) -> StepName | None:
    """The step after ``step`` in :data:`STEP_ORDER` (``None`` after the last).

    After a reject the job takes another blank: the next step is ``feed``.
    """
    if step is None:
        return STEP_ORDER[0]
    if step is StepName.REJECT:
        return StepName.FEED
    index = STEP_ORDER.index(step) + 1
    return STEP_ORDER[index] if index < len(STEP_ORDER) else None
