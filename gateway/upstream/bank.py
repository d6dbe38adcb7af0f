"""The bank core client: one interface, a JSON/HTTPS adapter (ESB style).

A bank that speaks something else plugs its own :class:`BankClient`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.upstream.errors import UpstreamProtocolError
from gateway.upstream.platform import DocumentClient, random_message_id
from protocols.bank import BANK_DIALECT, BankOperation

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

    from gateway.upstream.platform import DaySummary
    from gateway.upstream.transport import EnvelopeChannel

__all__ = ["BankClient", "FeeReceipt", "JsonBankClient"]


@dataclass(frozen=True, slots=True)
class FeeReceipt:
    """A fee debit's receipt."""

    receipt_no: str
    amount_fen: int


class BankClient(Protocol):
    """The bank core operations (live calls; see the platform client for errors)."""

    async def open_account(
        self, card_number: str, social_security_number: str, *, message_id: str | None = None
    ) -> str:
        """Open / bind the account for a card; returns the account number."""
        ...

    async def activate_financial(self, card_number: str, *, message_id: str | None = None) -> None:
        """Activate the card's financial function."""
        ...

    async def freeze(self, card_number: str, *, message_id: str | None = None) -> None:
        """Freeze the account on loss."""
        ...

    async def unfreeze(self, card_number: str, *, message_id: str | None = None) -> None:
        """Unfreeze the account when the loss is cancelled."""
        ...

    async def close_account(self, card_number: str, *, message_id: str | None = None) -> None:
        """Close the account with the card's cancellation."""
        ...

    async def reopen_account(self, card_number: str, *, message_id: str | None = None) -> None:
        """Restore the account a rolled-back cancellation had closed."""
        ...

    async def update_contact(
        self,
        card_number: str,
        *,
        address: str | None = None,
        phone: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """The holder's new phone or address."""
        ...

    async def debit_fee(
        self, card_number: str, amount_fen: int, *, message_id: str | None = None
    ) -> FeeReceipt:
        """Debit a fee (工本费); pass a stable ``message_id`` so a retry never debits twice."""
        ...

    async def day_summary(self, day: date) -> DaySummary:
        """日终对账: the bank's transactions from this branch on ``day``."""
        ...


class JsonBankClient(DocumentClient):
    """:class:`BankClient` over the bank's ESB-style JSON."""

    def __init__(
        self, channel: EnvelopeChannel, *, message_ids: Callable[[], str] = random_message_id
    ) -> None:
        """Speak the bank dialect over ``channel``."""
        super().__init__(channel, BANK_DIALECT, message_ids=message_ids)

    async def open_account(
        self, card_number: str, social_security_number: str, *, message_id: str | None = None
    ) -> str:
        """Open / bind the account."""
        fields = {"AAZ500": card_number, "AAC002": social_security_number}
        result = await self.call(BankOperation.OPEN_ACCOUNT, fields, message_id)
        account = result.fields.get("accountNo")
        if not account:
            raise UpstreamProtocolError("bank answer lacks accountNo", "bank")
        return account

    async def activate_financial(self, card_number: str, *, message_id: str | None = None) -> None:
        """Activate the financial function."""
        await self.call(BankOperation.ACTIVATE_FINANCIAL, {"AAZ500": card_number}, message_id)

    async def freeze(self, card_number: str, *, message_id: str | None = None) -> None:
        """Freeze on loss."""
        await self.call(BankOperation.FREEZE, {"AAZ500": card_number}, message_id)

    async def unfreeze(self, card_number: str, *, message_id: str | None = None) -> None:
        """Unfreeze."""
        await self.call(BankOperation.UNFREEZE, {"AAZ500": card_number}, message_id)

    async def close_account(self, card_number: str, *, message_id: str | None = None) -> None:
        """Close the account."""
        await self.call(BankOperation.CLOSE_ACCOUNT, {"AAZ500": card_number}, message_id)

    async def reopen_account(self, card_number: str, *, message_id: str | None = None) -> None:
        """Reopen the account."""
        await self.call(BankOperation.REOPEN_ACCOUNT, {"AAZ500": card_number}, message_id)

    async def update_contact(
        self,
        card_number: str,
        *,
        address: str | None = None,
        phone: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """The holder's new phone or address."""
        fields = {"AAZ500": card_number}
        if address is not None:
            fields["address"] = address
        if phone is not None:
            fields["phone"] = phone
        await self.call(BankOperation.UPDATE_CONTACT, fields, message_id)

    async def debit_fee(
        self, card_number: str, amount_fen: int, *, message_id: str | None = None
    ) -> FeeReceipt:
        """Debit a fee with a receipt."""
        if amount_fen <= 0:
            raise ValueError("a fee is a positive number of fen")
        fields = {"AAZ500": card_number, "amount": str(amount_fen)}
        result = await self.call(BankOperation.DEBIT_FEE, fields, message_id)
        receipt = result.fields.get("receiptNo")
        if not receipt:
            raise UpstreamProtocolError("bank answer lacks receiptNo", "bank")
        return FeeReceipt(receipt, amount_fen)
