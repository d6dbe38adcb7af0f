"""The transactional outbox: upstream messages committed with the state change they report.

The business core calls :meth:`Outbox.enqueue` with its own ``AsyncSession``
inside the transaction that changes the card's state; the message exists if
and only if the change was committed. The relay (:mod:`gateway.upstream.relay`)
sends it later. Only the commands in :data:`QueueableCommand` can be enqueued:
PIN reset, unlock and every other key-service request have no command type
here (so a type checker refuses them) and :meth:`Outbox.enqueue` refuses
anything else at run time with :class:`~gateway.upstream.errors.LiveOnlyError`.

Payloads are JSON sealed by a :class:`PayloadProtector` (the key store's AEAD:
personal data is encrypted at rest); the message id is the associated data, so
a payload cannot be moved to another row.

Dead letters (expired, or refused by the receiver) are listed with
:func:`list_dead_letters` and put back with :func:`retry_dead_letter`.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol, get_args

from sqlalchemy import select, update

from gateway.upstream.errors import LiveOnlyError, UnknownMessageError
from gateway.upstream.models import OutboxRow, OutboxState
from gateway.upstream.platform import CardRef, LossType, ProductionData
from protocols.bank import BANK_QUEUEABLE, BankOperation
from protocols.platform import QUEUEABLE, PlatformOperation
from security.keystore import Ciphertext

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.upstream.breaker import CircuitBreaker
    from security.keystore import KeyStore

__all__ = [
    "ActivateFinancial",
    "CancelCard",
    "CancelLoss",
    "ChangeInfo",
    "CloseAccount",
    "DeadLetter",
    "EnableCard",
    "Enqueued",
    "FreezeAccount",
    "KeyStorePayloadProtector",
    "Outbox",
    "PayloadProtector",
    "QueueStatus",
    "QueueableCommand",
    "ReopenAccount",
    "ReportCardEvent",
    "ReportLoss",
    "RequestElectronicCard",
    "ReturnCardData",
    "ReverseFee",
    "RollbackCancellation",
    "UnfreezeAccount",
    "UpdateContact",
    "list_dead_letters",
    "retry_dead_letter",
]

DEFAULT_TTL = timedelta(hours=72)


# ------------------------------------------------------------------ commands
@dataclass(frozen=True, slots=True)
class _CardCommand:
    """A platform message that names only its card."""

    target: ClassVar[str] = "platform"
    operation: ClassVar[str]
    card: CardRef

    @property
    def card_number(self) -> str:
        """The card the message is about."""
        return self.card.card_number

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        return self.card.fields()


@dataclass(frozen=True, slots=True)
class _AccountCommand:
    """A bank message that names only the card's account."""

    target: ClassVar[str] = "bank"
    operation: ClassVar[str]
    card_number: str

    def fields(self) -> dict[str, str]:
        """As bank fields."""
        return {"AAZ500": self.card_number}


@dataclass(frozen=True, slots=True)
class ReturnCardData:
    """Return production data (回盘) to the platform."""

    target: ClassVar[str] = "platform"
    operation: ClassVar[str] = PlatformOperation.RETURN_DATA
    data: ProductionData

    @property
    def card_number(self) -> str:
        """The card the message is about."""
        return self.data.card_number

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        return self.data.fields()


@dataclass(frozen=True, slots=True)
class EnableCard(_CardCommand):
    """Enable the social-security application."""

    operation: ClassVar[str] = PlatformOperation.ENABLE


@dataclass(frozen=True, slots=True)
class ReportLoss:
    """Report the card lost."""

    target: ClassVar[str] = "platform"
    operation: ClassVar[str] = PlatformOperation.REPORT_LOSS
    card: CardRef
    loss_type: LossType = LossType.FORMAL

    @property
    def card_number(self) -> str:
        """The card the message is about."""
        return self.card.card_number

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        return {**self.card.fields(), "lossType": LossType(self.loss_type).value}


@dataclass(frozen=True, slots=True)
class CancelLoss(_CardCommand):
    """Cancel a loss report."""

    operation: ClassVar[str] = PlatformOperation.CANCEL_LOSS


@dataclass(frozen=True, slots=True)
class CancelCard:
    """Cancel the card."""

    target: ClassVar[str] = "platform"
    operation: ClassVar[str] = PlatformOperation.CANCEL_CARD
    card: CardRef
    reason: str

    @property
    def card_number(self) -> str:
        """The card the message is about."""
        return self.card.card_number

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        return {**self.card.fields(), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RollbackCancellation(_CardCommand):
    """Roll a cancellation back: the platform returns the card to the state under it."""

    operation: ClassVar[str] = PlatformOperation.ROLLBACK_CANCEL


@dataclass(frozen=True, slots=True)
class ChangeInfo:
    """Change non-key information (address, phone)."""

    target: ClassVar[str] = "platform"
    operation: ClassVar[str] = PlatformOperation.CHANGE_INFO
    card: CardRef
    address: str | None = None
    phone: str | None = None

    @property
    def card_number(self) -> str:
        """The card the message is about."""
        return self.card.card_number

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        found = self.card.fields()
        if self.address is not None:
            found["address"] = self.address
        if self.phone is not None:
            found["phone"] = self.phone
        return found


@dataclass(frozen=True, slots=True)
class RequestElectronicCard(_CardCommand):
    """Request the electronic card."""

    operation: ClassVar[str] = PlatformOperation.ELECTRONIC_CARD


@dataclass(frozen=True, slots=True)
class ReportCardEvent:
    """Tell the issuing province what happened to a card at the window (PIN changed, locked...).

    The outcome report may be retried; the PIN operation it reports never is.
    """

    target: ClassVar[str] = "platform"
    operation: ClassVar[str] = PlatformOperation.CARD_EVENT
    card: CardRef
    event: str
    event_time: str
    tries_left: int | None = None

    @property
    def card_number(self) -> str:
        """The card the message is about."""
        return self.card.card_number

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        found = {**self.card.fields(), "event": self.event, "eventTime": self.event_time}
        if self.tries_left is not None:
            found["triesLeft"] = str(self.tries_left)
        return found


@dataclass(frozen=True, slots=True)
class ActivateFinancial(_AccountCommand):
    """Activate the card's financial function at the bank."""

    operation: ClassVar[str] = BankOperation.ACTIVATE_FINANCIAL


@dataclass(frozen=True, slots=True)
class FreezeAccount(_AccountCommand):
    """Freeze the bank account on loss."""

    operation: ClassVar[str] = BankOperation.FREEZE


@dataclass(frozen=True, slots=True)
class UnfreezeAccount(_AccountCommand):
    """Unfreeze the bank account when the loss is cancelled."""

    operation: ClassVar[str] = BankOperation.UNFREEZE


@dataclass(frozen=True, slots=True)
class CloseAccount(_AccountCommand):
    """Close the bank account with the card's cancellation."""

    operation: ClassVar[str] = BankOperation.CLOSE_ACCOUNT


@dataclass(frozen=True, slots=True)
class ReopenAccount(_AccountCommand):
    """Restore the bank account a rolled-back cancellation had closed."""

    operation: ClassVar[str] = BankOperation.REOPEN_ACCOUNT


@dataclass(frozen=True, slots=True)
class UpdateContact:
    """The holder's new phone and address, for the bank's own record of the account."""

    target: ClassVar[str] = "bank"
    operation: ClassVar[str] = BankOperation.UPDATE_CONTACT
    card_number: str
    address: str | None = None
    phone: str | None = None

    def fields(self) -> dict[str, str]:
        """As bank fields."""
        found = {"AAZ500": self.card_number}
        if self.address is not None:
            found["address"] = self.address
        if self.phone is not None:
            found["phone"] = self.phone
        return found


@dataclass(frozen=True, slots=True)
class ReverseFee:
    """Give a fee debit back (冲正): the operation was withdrawn before its card was made."""

    target: ClassVar[str] = "bank"
    operation: ClassVar[str] = BankOperation.REVERSE_FEE
    card_number: str  # the account's card, as debited
    receipt_no: str  # the bank's receipt of the debit
    amount_fen: int

    def fields(self) -> dict[str, str]:
        """As bank fields."""
        return {
            "AAZ500": self.card_number,
            "receiptNo": self.receipt_no,
            "amount": str(self.amount_fen),
        }


#: Everything that may wait in the outbox. PIN and key-service requests are not here.
QueueableCommand = (
    ReturnCardData
    | EnableCard
    | ReportLoss
    | CancelLoss
    | CancelCard
    | RollbackCancellation
    | ChangeInfo
    | RequestElectronicCard
    | ReportCardEvent
    | ActivateFinancial
    | FreezeAccount
    | UnfreezeAccount
    | CloseAccount
    | ReopenAccount
    | UpdateContact
    | ReverseFee
)
_QUEUEABLE_TYPES = get_args(QueueableCommand)
#: (target, operation) pairs the relay will ever send.
SENDABLE = frozenset(
    [("platform", str(op)) for op in QUEUEABLE] + [("bank", str(op)) for op in BANK_QUEUEABLE]
)


# ------------------------------------------------------------------ payloads
class PayloadProtector(Protocol):
    """Seals outbox payloads at rest; ``context`` (the message id) binds them to their row."""

    def seal(self, plaintext: bytes, context: bytes) -> str:
        """Encrypt; return printable text for the payload column."""
        ...

    def open(self, sealed: str, context: bytes) -> bytes:
        """Decrypt what :meth:`seal` made."""
        ...


class KeyStorePayloadProtector:
    """AEAD under a key store ENCRYPT key (current version seals; any live version opens)."""

    def __init__(self, store: KeyStore, key_id: str) -> None:
        """Use ``key_id`` in ``store``."""
        self._store = store
        self._key_id = key_id

    def seal(self, plaintext: bytes, context: bytes) -> str:
        """``v1.<version>.<nonce b64>.<ciphertext b64>``."""
        sealed = self._store.encrypt(self._key_id, plaintext, associated_data=context)
        nonce = base64.b64encode(sealed.nonce).decode()
        data = base64.b64encode(sealed.data).decode()
        return f"v1.{sealed.key_version}.{nonce}.{data}"

    def open(self, sealed: str, context: bytes) -> bytes:
        """Decrypt.

        Raises:
            ValueError: Not a sealed payload.
            KeyStoreError: It does not decrypt.
        """
        tag, version, nonce, data = sealed.split(".")
        if tag != "v1":
            raise ValueError("unknown payload format")
        ciphertext = Ciphertext(
            self._key_id, int(version), base64.b64decode(nonce), base64.b64decode(data)
        )
        return self._store.decrypt(ciphertext, associated_data=context)


# ------------------------------------------------------------------- enqueue
class QueueStatus(StrEnum):
    """What a teller is told about a queued message."""

    #: The receiver is up: the relay sends it now.
    ACCEPTED = "accepted"
    #: The receiver is down (degraded mode): it is sent when it comes back.
    QUEUED = "queued"


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A message written to the outbox (committed with the caller's transaction)."""

    message_id: str
    status: QueueStatus


def _random_id() -> str:
    return uuid.uuid4().hex


class Outbox:
    """Writes upstream messages into the caller's transaction."""

    def __init__(  # noqa: PLR0913 - keyword-only wiring
        self,
        *,
        protector: PayloadProtector,
        now: Callable[[], datetime],
        ttl: timedelta = DEFAULT_TTL,
        breakers: dict[str, CircuitBreaker] | None = None,
        message_ids: Callable[[], str] = _random_id,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        """Configure the outbox.

        Args:
            protector: Seals payloads at rest.
            now: Wall clock (the injected clock's ``now``).
            ttl: How long a message may wait before it becomes a dead letter.
            breakers: Circuit breakers by target, to answer ``queued`` while one is open.
            message_ids: Makes message ids.
            on_enqueued: Called after each enqueue (the relay's ``wake``); the
                relay only sees the message once the caller commits.
        """
        self._protector = protector
        self._now = now
        self._ttl = ttl
        self._breakers = breakers or {}
        self._message_ids = message_ids
        self.on_enqueued = on_enqueued

    async def enqueue(
        self,
        session: AsyncSession,
        command: QueueableCommand,
        *,
        card_key: str | None = None,
        message_id: str | None = None,
    ) -> Enqueued:
        """Add ``command`` to ``session``'s transaction; it is sent after the commit.

        Args:
            session: The caller's session, inside the transaction of the state change.
            command: What to tell upstream.
            card_key: Orders delivery (default: the card number); messages with
                the same key are delivered in enqueue order.
            message_id: A stable id (for example from the teller's idempotency key).

        Raises:
            LiveOnlyError: ``command`` is not a queueable command (PIN, key service...).
        """
        if not isinstance(command, _QUEUEABLE_TYPES) or (
            (command.target, str(command.operation)) not in SENDABLE
        ):
            raise LiveOnlyError(type(command).__name__)
        now = self._now()
        ident = message_id or self._message_ids()
        payload = json.dumps(command.fields(), ensure_ascii=False, separators=(",", ":"))
        row = OutboxRow(
            message_id=ident,
            target=command.target,
            operation=str(command.operation),
            card_key=card_key or command.card_number,
            payload=self._protector.seal(payload.encode(), ident.encode()),
            state=OutboxState.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
            expires_at=now + self._ttl,
        )
        session.add(row)
        if self.on_enqueued is not None:
            self.on_enqueued()
        breaker = self._breakers.get(command.target)
        down = breaker is not None and not breaker.closed
        return Enqueued(ident, QueueStatus.QUEUED if down else QueueStatus.ACCEPTED)

    def open_payload(self, row: OutboxRow) -> dict[str, str]:
        """The fields of a stored message.

        Raises:
            ValueError: The payload does not decode to fields.
        """
        fields = json.loads(self._protector.open(row.payload, row.message_id.encode()))
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise ValueError("payload is not a field mapping")
        return fields


# -------------------------------------------------------------- dead letters
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that will not be sent unless ops retry it."""

    message_id: str
    target: str
    operation: str
    card_key: str
    attempts: int
    created_at: datetime
    expires_at: datetime
    last_error: str | None


async def list_dead_letters(
    sessions: async_sessionmaker[AsyncSession], *, limit: int = 100
) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters (no payloads: they hold personal data)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxRow)
            .where(OutboxRow.state == OutboxState.DEAD)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [
            DeadLetter(
                message_id=r.message_id,
                target=r.target,
                operation=r.operation,
                card_key=r.card_key,
                attempts=r.attempts,
                created_at=r.created_at,
                expires_at=r.expires_at,
                last_error=r.last_error,
            )
            for r in rows
        ]


async def retry_dead_letter(
    sessions: async_sessionmaker[AsyncSession],
    message_id: str,
    now: datetime,
    *,
    ttl: timedelta = DEFAULT_TTL,
) -> None:
    """Put a dead letter back in the queue, due now, with a fresh time to live.

    It keeps its message id (the receiver still de-duplicates) and its attempt
    count (so it is sent with the repeat flag if it was sent before).

    Raises:
        UnknownMessageError: No dead letter has this id.
    """
    async with sessions.begin() as session:
        result = await session.execute(
            update(OutboxRow)
            .where(OutboxRow.message_id == message_id, OutboxRow.state == OutboxState.DEAD)
            .values(
                state=OutboxState.PENDING,
                next_attempt_at=now,
                expires_at=now + ttl,
                last_error=None,
            )
        )
        if getattr(result, "rowcount", 0) != 1:
            raise UnknownMessageError(message_id)
