"""What the controller needs from the world, as protocols ``gateway`` wires.

- :class:`PrinterPort`: a card printer (:class:`devices.printer.PrinterDriver` fits).
- :class:`EncoderPort`: a chip encoder giving card channels
  (:class:`devices.encoder.InProcessEncoder` and ``PcscEncoder`` fit).
- :class:`KeyService`: EXTERNAL AUTHENTICATE cryptograms (the platform's key
  service; :class:`production.keys.LocalKeyService` computes them with
  :mod:`security.cardcrypto` for the demo and tests).
- :class:`PlatformPort` and :class:`BankPort`: upstream calls; each gets a
  message id that stays the same when a step is repeated after a crash, so the
  receiver de-duplicates.
- :class:`QualityCheck`: the teller's explicit confirmation.
- :class:`Journal`: durable storage of jobs, steps and stock movements
  (``gateway.issuance.journal.SqlJournal``; :class:`production.memory.MemoryJournal`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devices.encoder.channel import CardChannel
    from production.model import JobRecord, Order, StepEvent, StockEntry, StockKind
    from protocols.printer.commands import PrinterStatus
    from protocols.printer.frames import Depth, Panel
    from protocols.sscard import CardAlgorithm

__all__ = [
    "BankPort",
    "EncoderPort",
    "Journal",
    "KeyRequest",
    "KeyService",
    "PlatformPort",
    "PreOpened",
    "PrinterPort",
    "QcVerdict",
    "QualityCheck",
    "ReturnData",
]


class PrinterPort(Protocol):
    """The printer commands a job uses."""

    @property
    def connected(self) -> bool:
        """Whether the printer is online."""
        ...

    async def status(self) -> PrinterStatus:
        """Read every sensor, the card position and the ribbon."""
        ...

    async def insert_card(self) -> None:
        """Take a blank from the feeder (or the card inside) to the contact station."""
        ...

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print the panels on the card inside."""
        ...

    async def eject_card(self) -> None:
        """Eject the card to the output."""
        ...

    async def reject_card(self) -> None:
        """Move the card to the reject box."""
        ...

    async def clear_error(self) -> None:
        """Clear a held mechanical error."""
        ...


class EncoderPort(Protocol):
    """A chip encoder: channels to the card in a named reader."""

    async def connect(self, reader: str) -> CardChannel:
        """Connect to the card in ``reader`` (``CardAbsentError`` when there is none)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """What the key service needs to find a card's keys (never the keys).

    Attributes:
        card_id_code: AAZ501 (32 hex digits).
        algorithm: ``"sm4"`` or ``"3des"``, from the card generation.
        atr: AAZ507, hex.
        card_number: AAZ500.
        ssn: AAC002.
        region: AAB301.
        key_version: Card key version.
    """

    card_id_code: str
    algorithm: CardAlgorithm
    atr: str
    card_number: str
    ssn: str = field(repr=False)
    region: str
    key_version: int = 1


class KeyService(Protocol):
    """Computes the EXTERNAL AUTHENTICATE cryptogram from a card's challenge."""

    async def external_authenticate(self, request: KeyRequest, challenge: bytes) -> bytes:
        """The 8-byte cryptogram for this card and challenge."""
        ...


@dataclass(frozen=True, slots=True)
class PreOpened:
    """The platform's answer to pre-opening a card.

    Attributes:
        card_number: AAZ500.
        photo: The photo to print (JPEG or PNG), if the platform has one.
    """

    card_number: str
    photo: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ReturnData:
    """Return data (回盘): what the chip of the made card says.

    Attributes:
        application_id: The application.
        card_number: AAZ500.
        atr: AAZ507, hex.
        card_id_code: AAZ501.
        chip_serial: The chip serial.
        version: The spec version.
    """

    application_id: str
    card_number: str
    atr: str
    card_id_code: str
    chip_serial: str
    version: str


class PlatformPort(Protocol):
    """The provincial platform, for production (idempotent by ``message_id``)."""

    async def pre_open(self, order: Order, *, message_id: str) -> PreOpened:
        """Pre-open the card: its number and photo ("already applied" is success)."""
        ...

    async def return_data(self, data: ReturnData, *, message_id: str) -> None:
        """Return the production data (回盘)."""
        ...

    async def enable(self, card_number: str, card_id_code: str, *, message_id: str) -> None:
        """Enable the social-security application."""
        ...


class BankPort(Protocol):
    """The bank core, for production."""

    async def bind_account(self, order: Order, card_number: str, *, message_id: str) -> None:
        """Bind (open) the holder's bank account to the card."""
        ...


@dataclass(frozen=True, slots=True)
class QcVerdict:
    """The teller's quality-check answer.

    Attributes:
        passed: The card is good.
        operator: Who checked.
        reason: Why not, when it failed (e.g. ``"print_defect"``).
    """

    passed: bool
    operator: str
    reason: str = ""


class QualityCheck(Protocol):
    """The teller's explicit confirmation of a made card (waits for it)."""

    async def inspect(self, job: JobRecord) -> QcVerdict:
        """Wait for the teller's verdict on the job's ejected card."""
        ...


class Journal(Protocol):
    """Durable jobs, step events and stock movements.

    :meth:`record` is one transaction: the job's new record, its step event and
    any stock entries are stored together or not at all. Stock entries whose
    ``key`` is already stored are skipped (recording twice counts once).
    """

    async def add_job(self, job: JobRecord, event: StepEvent) -> JobRecord:
        """Store a new job; if its application already has one, return that one."""
        ...

    async def record(
        self,
        job: JobRecord,
        event: StepEvent,
        stock: Sequence[StockEntry] = (),
        *,
        durable: bool,
    ) -> None:
        """Store the job's new record, the event and the stock entries at once.

        With ``durable`` this returns once they are stored for good (the caller
        acts on them next); without, they may only be queued, to be stored
        before any later write or read of this journal, in order.
        """
        ...

    async def load_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        ...

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs neither issued nor failed, oldest first."""
        ...

    async def step_events(self, job_id: str) -> list[StepEvent]:
        """The job's step journal, in order."""
        ...

    async def add_stock(self, entries: Sequence[StockEntry]) -> None:
        """Store stock entries (known keys are skipped)."""
        ...

    async def stock_entries(self, feeder: str | None = None) -> list[StockEntry]:
        """Stock entries (of one feeder), oldest first."""
        ...

    async def flush(self) -> None:
        """Store every write made so far for good."""
        ...

    async def stock_totals(self) -> dict[str, dict[StockKind, int]]:
        """Per feeder, the sum of the stored entries' quantities by kind."""
        ...
