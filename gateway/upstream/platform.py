"""The provincial platform client: one interface, one adapter per dialect.

:class:`PlatformClient` is what the business core calls; :class:`DialectPlatformClient`
implements it over an :class:`~gateway.upstream.transport.EnvelopeChannel` and a
dialect codec. :func:`json_platform_client` and :func:`soap_platform_client`
are the two adapters provinces need (JSON ``saveCardOpen`` ... and SOAP
``applyNewCard`` ...). The same client delivers outbox batches
(:meth:`DialectPlatformClient.send_batch`).

Key-service operations (EXTERNAL AUTHENTICATE cryptograms, protected card
commands, PIN reset and unlock authorization) are live only: when the platform
cannot be reached they raise :class:`~gateway.upstream.errors.KeyServiceUnavailableError`
at once, and nothing about them is ever stored.

Why one module of this size: the interface and its adapter are one contract, read
side by side (every method, its message and its refusals); the dialects' codecs
live in :mod:`protocols.platform`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from gateway.upstream.errors import (
    KeyServiceUnavailableError,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from protocols.platform import (
    JSON_DIALECT,
    SOAP_DIALECT,
    MessageDecodeError,
    PlatformOperation,
    Request,
    Result,
    Status,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import date

    from gateway.upstream.breaker import CircuitBreaker
    from gateway.upstream.transport import EnvelopeChannel
    from protocols.platform import Codec
    from security.keystore import EncryptedPinBlock

__all__ = [
    "AppState",
    "Applicant",
    "ApplyResult",
    "CardData",
    "CardRef",
    "DaySummary",
    "DialectPlatformClient",
    "DocumentClient",
    "FoundCard",
    "KeyServiceContext",
    "LossType",
    "PlatformClient",
    "ProductionData",
    "is_already_applied",
    "json_platform_client",
    "pin_block_account",
    "random_message_id",
    "soap_platform_client",
]

log = structlog.get_logger(__name__)

#: Texts with which platforms say "the applicant already has a valid application"
#: under an error code; answered so, an application is the idempotent success it is.
ALREADY_APPLIED_TEXTS: Final = ("已存在有效申请", "已有有效申请", "already has a valid application")
_SSN_DIGITS: Final = 17


class AppState(StrEnum):
    """Social-security application state (AAZ502)."""

    SEALED = "0"
    NORMAL = "1"
    FORMAL_LOSS = "2"
    LOCKED = "3"
    TEMPORARY_LOSS = "4"
    CANCELLED = "9"


class LossType(StrEnum):
    """Loss report kinds: the AAZ502 state they lead to."""

    FORMAL = "2"
    TEMPORARY = "4"


@dataclass(frozen=True, slots=True)
class CardRef:
    """Which card: its number (AAZ500) and, when known, identification code (AAZ501).

    A request about a card issued in another province is routed by the AAZ501
    region through the national hub.
    """

    card_number: str
    card_id_code: str | None = None

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        found = {"AAZ500": self.card_number}
        if self.card_id_code:
            found["AAZ501"] = self.card_id_code
        return found


@dataclass(frozen=True, slots=True)
class Applicant:
    """A card application: who and where (AAC002, AAC003, AAB301), optional new photo."""

    social_security_number: str
    name: str
    region: str
    photo: bytes | None = None

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        found = {"AAC002": self.social_security_number, "AAC003": self.name, "AAB301": self.region}
        if self.photo is not None:
            found["photo"] = base64.b64encode(self.photo).decode()
        return found


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The answer to an application / pre-open.

    Attributes:
        card_number: AAZ500.
        photo: The photo to print (JPEG bytes).
        already_applied: The platform said an application already existed.
    """

    card_number: str
    photo: bytes
    already_applied: bool = False


@dataclass(frozen=True, slots=True)
class CardData:
    """The card's data as the platform holds it."""

    card_number: str
    social_security_number: str
    name: str
    region: str
    state: AppState
    card_id_code: str | None
    photo: bytes


@dataclass(frozen=True, slots=True)
class FoundCard:
    """A person's live card as the platform (or, through the hub, the issuing province) knows it.

    Attributes:
        card: Its number and, when the platform has it, identification code.
        state: AAZ502.
        region: The issuing region: the first six digits of AAZ501, else AAB301.
    """

    card: CardRef
    state: AppState
    region: str


@dataclass(frozen=True, slots=True)
class ProductionData:
    """Return data (回盘) after a card was made: what the chip says."""

    card_number: str
    atr: str
    card_id_code: str
    chip_serial: str
    version: str

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        return {
            "AAZ500": self.card_number,
            "AAZ501": self.card_id_code,
            "AAZ507": self.atr,
            "chipSerial": self.chip_serial,
            "cardVersion": self.version,
        }


@dataclass(frozen=True, slots=True)
class KeyServiceContext:
    """What the key service needs to find a card's keys (never the keys themselves)."""

    terminal_id: str
    region: str
    social_security_number: str
    card_number: str
    card_id_code: str
    atr: str
    algorithm: str = "SM4"
    key_version: int = 1

    def fields(self) -> dict[str, str]:
        """As platform fields."""
        return {
            "terminalId": self.terminal_id,
            "AAB301": self.region,
            "AAC002": self.social_security_number,
            "AAZ500": self.card_number,
            "AAZ501": self.card_id_code,
            "AAZ507": self.atr,
            "algorithm": self.algorithm,
            "keyVersion": str(self.key_version),
        }


class PlatformClient(Protocol):
    """The provincial platform operations the catalogue needs (live calls).

    Every method takes an optional ``message_id``: pass a stable one (from the
    teller's idempotency key) to make a retry safe; a new one is made otherwise.

    Raises (every method):
        UpstreamUnavailableError: The platform is known to be down (breaker open).
        UpstreamConnectionError, UpstreamTimeoutError: It could not be reached.
        UpstreamProtocolError: Its answer cannot be trusted or understood.
        UpstreamRejectedError: It refused (state, not found, invalid request).
    """

    async def apply(self, applicant: Applicant, *, message_id: str | None = None) -> ApplyResult:
        """Apply / pre-open a card: card number and photo."""
        ...

    async def day_summary(self, day: date) -> DaySummary:
        """日终对账: what the platform accepted from this branch on ``day``."""
        ...

    async def get_card_data(self, card: CardRef, *, message_id: str | None = None) -> CardData:
        """The card's data (for personalization)."""
        ...

    async def return_data(self, data: ProductionData, *, message_id: str | None = None) -> None:
        """Return production data (回盘)."""
        ...

    async def enable(self, card: CardRef, *, message_id: str | None = None) -> None:
        """Enable the social-security application."""
        ...

    async def query_status(self, card: CardRef, *, message_id: str | None = None) -> AppState:
        """The application state (AAZ502)."""
        ...

    async def find_card(
        self, social_security_number: str, *, message_id: str | None = None
    ) -> FoundCard:
        """The person's live card and its state, wherever it was issued (national index)."""
        ...

    async def report_loss(
        self, card: CardRef, loss_type: LossType, *, message_id: str | None = None
    ) -> None:
        """Report the card lost (formal or temporary)."""
        ...

    async def cancel_loss(self, card: CardRef, *, message_id: str | None = None) -> None:
        """Cancel a loss report."""
        ...

    async def cancel_card(
        self, card: CardRef, reason: str, *, message_id: str | None = None
    ) -> None:
        """Cancel the card."""
        ...

    async def rollback_cancel(self, card: CardRef, *, message_id: str | None = None) -> None:
        """Roll a cancellation back (the card returns to the state under it)."""
        ...

    async def change_info(
        self,
        card: CardRef,
        *,
        address: str | None = None,
        phone: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Change non-key information."""
        ...

    async def electronic_card(self, card: CardRef, *, message_id: str | None = None) -> str:
        """Request the electronic card; returns its sign number."""
        ...

    async def external_authenticate(self, context: KeyServiceContext, challenge: bytes) -> bytes:
        """The EXTERNAL AUTHENTICATE cryptogram for the card's challenge (live only)."""
        ...

    async def protect_command(
        self, context: KeyServiceContext, command: bytes, challenge: bytes
    ) -> bytes:
        """A card command (header and data) returned with Lc and its MAC (live only)."""
        ...

    async def authorize_pin_reset(
        self, context: KeyServiceContext, pin_block: EncryptedPinBlock, challenge: bytes
    ) -> bytes:
        """The MAC-ed PIN reset command (issuer script) for the card (live only)."""
        ...

    async def authorize_unlock(self, context: KeyServiceContext, challenge: bytes) -> bytes:
        """The MAC-ed unlock command (issuer script) for the card (live only)."""
        ...


def pin_block_account(social_security_number: str) -> str:
    """The account number ("PAN") a PIN block for this holder is bound to.

    The first 17 characters of the social security number are digits and the
    last is a check character (possibly ``X``): the account number is the 17
    digits followed by ``0`` in the check position, which ISO 9564 formats 0
    and 3 leave out. Pass it to the key store's ``encrypt_pin_block`` /
    ``translate_pin_block``; the platform's key service binds the block to the
    same number.

    Raises:
        ValueError: Not an 18-character social security number.
    """
    body = social_security_number[:_SSN_DIGITS]
    if len(social_security_number) != _SSN_DIGITS + 1 or not (body.isascii() and body.isdigit()):
        raise ValueError("a social security number is 17 digits and a check character")
    return body + "0"


def random_message_id() -> str:
    """A new random message id (32 hex digits)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class DaySummary:
    """日终对账: what the platform or the bank accepted from this branch on one day.

    Attributes:
        counts: Items accepted, by operation (dialect-neutral names).
        amounts: The sum of their ``amount`` fields in fen, by operation (fees).
    """

    counts: dict[str, int]
    amounts: dict[str, int]


#: The day summary's operation name, the platform's and the bank's alike.
DAY_SUMMARY: Final = "day_summary"


def _tally(result: Result, name: str, target: str) -> dict[str, int]:
    try:
        found = json.loads(result.fields.get(name, "{}"))
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in found.items()
    ):
        raise UpstreamProtocolError(f"day summary {name} is not a tally", target)
    return found


class DocumentClient:
    """Sends request items as one enveloped document and matches the results."""

    def __init__(
        self,
        channel: EnvelopeChannel,
        codec: Codec,
        *,
        message_ids: Callable[[], str] = random_message_id,
    ) -> None:
        """Speak ``codec`` over ``channel``; ``message_ids`` makes new message ids."""
        self.channel = channel
        self.codec = codec
        self._message_ids = message_ids

    @property
    def target(self) -> str:
        """``platform`` or ``bank``."""
        return self.channel.target

    @property
    def breaker(self) -> CircuitBreaker:
        """The channel's circuit breaker."""
        return self.channel.breaker

    def new_message_id(self) -> str:
        """A new message id."""
        return self._message_ids()

    async def send_batch(self, items: Sequence[Request]) -> list[Result]:
        """Send items in one envelope; return their results in the same order.

        The envelope's message id is the item's own for a single item, a new
        batch id otherwise; its repeat flag is set when any item is a repeat.

        Raises:
            UpstreamError: Any family; no result is then known for any item.
        """
        target = self.target
        document = self.codec.encode_requests(items)
        envelope_id = items[0].message_id if len(items) == 1 else f"B-{self.new_message_id()}"
        answer = await self.channel.exchange(
            envelope_id,
            document,
            repeat=any(item.repeat for item in items),
            operation=items[0].operation,
        )
        try:
            results = {r.message_id: r for r in self.codec.decode_results(answer)}
        except MessageDecodeError as exc:
            raise UpstreamProtocolError(
                f"{target} answer undecodable: {exc.reason}", target
            ) from None
        try:
            return [results[item.message_id] for item in items]
        except KeyError:
            raise UpstreamProtocolError(f"{target} left an item unanswered", target) from None

    async def day_summary(self, day: date) -> DaySummary:
        """日终对账: what the other side accepted from this branch on ``day``."""
        result = await self.call(DAY_SUMMARY, {"day": day.isoformat()})
        counts, amounts = (_tally(result, name, self.target) for name in ("counts", "amounts"))
        return DaySummary(counts, amounts)

    async def call(
        self, operation: str, fields: dict[str, str], message_id: str | None = None
    ) -> Result:
        """One live request; a refusal raises :class:`UpstreamRejectedError`."""
        item = Request(operation, message_id or self.new_message_id(), fields=fields)
        (result,) = await self.send_batch([item])
        if not result.succeeded:
            raise UpstreamRejectedError(self.target, operation, result.status, result.message)
        return result


def _photo(result: Result) -> bytes:
    try:
        return base64.b64decode(result.fields.get("photo", ""), validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamProtocolError(
            "platform sent a photo that is not base64", "platform"
        ) from None


def _require(result: Result, name: str) -> str:
    value = result.fields.get(name)
    if not value:
        raise UpstreamProtocolError(f"platform answer lacks {name}", "platform")
    return value


def _hex(result: Result, name: str) -> bytes:
    try:
        return bytes.fromhex(_require(result, name))
    except ValueError:
        raise UpstreamProtocolError(f"platform sent {name} that is not hex", "platform") from None


def is_already_applied(result: Result) -> bool:
    """True when an application answer says the applicant already has a valid one."""
    if result.status is Status.ALREADY_APPLIED:
        return True
    return result.status is not Status.OK and any(
        t in result.message for t in ALREADY_APPLIED_TEXTS
    )


class DialectPlatformClient(DocumentClient):
    """:class:`PlatformClient` over one dialect codec."""

    async def apply(self, applicant: Applicant, *, message_id: str | None = None) -> ApplyResult:
        """Apply / pre-open; "already has a valid application" is a success."""
        item = Request(
            PlatformOperation.APPLY, message_id or self.new_message_id(), fields=applicant.fields()
        )
        (result,) = await self.send_batch([item])
        already = is_already_applied(result)
        if not (result.succeeded or already):
            raise UpstreamRejectedError(
                "platform", PlatformOperation.APPLY, result.status, result.message
            )
        return ApplyResult(_require(result, "AAZ500"), _photo(result), already)

    async def get_card_data(self, card: CardRef, *, message_id: str | None = None) -> CardData:
        """The card's data."""
        result = await self.call(PlatformOperation.GET_CARD_DATA, card.fields(), message_id)
        try:
            state = AppState(_require(result, "AAZ502"))
        except ValueError:
            raise UpstreamProtocolError("platform sent an unknown AAZ502", "platform") from None
        return CardData(
            card_number=_require(result, "AAZ500"),
            social_security_number=_require(result, "AAC002"),
            name=_require(result, "AAC003"),
            region=_require(result, "AAB301"),
            state=state,
            card_id_code=result.fields.get("AAZ501") or None,
            photo=_photo(result),
        )

    async def return_data(self, data: ProductionData, *, message_id: str | None = None) -> None:
        """Return production data (回盘)."""
        await self.call(PlatformOperation.RETURN_DATA, data.fields(), message_id)

    async def enable(self, card: CardRef, *, message_id: str | None = None) -> None:
        """Enable the social-security application."""
        await self.call(PlatformOperation.ENABLE, card.fields(), message_id)

    async def query_status(self, card: CardRef, *, message_id: str | None = None) -> AppState:
        """The application state."""
        result = await self.call(PlatformOperation.QUERY_STATUS, card.fields(), message_id)
        try:
            return AppState(_require(result, "AAZ502"))
        except ValueError:
            raise UpstreamProtocolError("platform sent an unknown AAZ502", "platform") from None

    async def find_card(
        self, social_security_number: str, *, message_id: str | None = None
    ) -> FoundCard:
        """Status query by the holder's number: the hub finds the issuing province."""
        fields = {"AAC002": social_security_number}
        result = await self.call(PlatformOperation.QUERY_STATUS, fields, message_id)
        try:
            state = AppState(_require(result, "AAZ502"))
        except ValueError:
            raise UpstreamProtocolError("platform sent an unknown AAZ502", "platform") from None
        card_id = result.fields.get("AAZ501") or None
        region = (card_id or "")[:6] or _require(result, "AAB301")
        if len(region) != 6 or not region.isdigit():  # noqa: PLR2004 - a region code
            raise UpstreamProtocolError("platform sent no usable issuing region", "platform")
        return FoundCard(CardRef(_require(result, "AAZ500"), card_id), state, region)

    async def report_loss(
        self, card: CardRef, loss_type: LossType, *, message_id: str | None = None
    ) -> None:
        """Report the card lost."""
        await self.call(
            PlatformOperation.REPORT_LOSS,
            {**card.fields(), "lossType": loss_type.value},
            message_id,
        )

    async def cancel_loss(self, card: CardRef, *, message_id: str | None = None) -> None:
        """Cancel a loss report."""
        await self.call(PlatformOperation.CANCEL_LOSS, card.fields(), message_id)

    async def cancel_card(
        self, card: CardRef, reason: str, *, message_id: str | None = None
    ) -> None:
        """Cancel the card."""
        await self.call(
            PlatformOperation.CANCEL_CARD, {**card.fields(), "reason": reason}, message_id
        )

    async def rollback_cancel(self, card: CardRef, *, message_id: str | None = None) -> None:
        """Roll a cancellation back."""
        await self.call(PlatformOperation.ROLLBACK_CANCEL, card.fields(), message_id)

    async def change_info(
        self,
        card: CardRef,
        *,
        address: str | None = None,
        phone: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Change non-key information."""
        fields = card.fields()
        if address is not None:
            fields["address"] = address
        if phone is not None:
            fields["phone"] = phone
        await self.call(PlatformOperation.CHANGE_INFO, fields, message_id)

    async def electronic_card(self, card: CardRef, *, message_id: str | None = None) -> str:
        """Request the electronic card."""
        result = await self.call(PlatformOperation.ELECTRONIC_CARD, card.fields(), message_id)
        return _require(result, "eCardNo")

    async def _key_service(self, operation: PlatformOperation, fields: dict[str, str]) -> Result:
        """A live key-service call: unreachable means :class:`KeyServiceUnavailableError`.

        The answer names the province whose key service answered (``issuer``):
        for a card of another province, the issuing one, through the national hub.
        """
        try:
            result = await self.call(operation, fields)
        except UpstreamUnavailableError as exc:
            raise KeyServiceUnavailableError("platform", operation, exc.retry_after) from exc
        except (UpstreamConnectionError, UpstreamTimeoutError) as exc:
            raise KeyServiceUnavailableError(
                "platform", operation, self.channel.breaker.retry_after()
            ) from exc
        log.info(
            "key_service_answered",
            operation=str(operation),
            issuer=result.fields.get("issuer", ""),
        )
        return result

    async def external_authenticate(self, context: KeyServiceContext, challenge: bytes) -> bytes:
        """The EXTERNAL AUTHENTICATE cryptogram."""
        fields = {**context.fields(), "challenge": challenge.hex().upper()}
        return _hex(await self._key_service(PlatformOperation.EXTERNAL_AUTH, fields), "cryptogram")

    async def protect_command(
        self, context: KeyServiceContext, command: bytes, challenge: bytes
    ) -> bytes:
        """The command with Lc and MAC."""
        fields = {
            **context.fields(),
            "challenge": challenge.hex().upper(),
            "command": command.hex().upper(),
        }
        return _hex(await self._key_service(PlatformOperation.SECURE_COMMAND, fields), "apdu")

    async def authorize_pin_reset(
        self, context: KeyServiceContext, pin_block: EncryptedPinBlock, challenge: bytes
    ) -> bytes:
        """The MAC-ed PIN reset command; the PIN block travels only inside the envelope.

        The block is ISO 9564 format 0 or 3 under the zone PIN key, bound to
        :func:`pin_block_account` of the holder's social security number.
        """
        fields = {
            **context.fields(),
            "challenge": challenge.hex().upper(),
            "pinBlock": pin_block.ciphertext_bytes().hex().upper(),
            "pinFormat": str(int(pin_block.pin_block_format)),
        }
        return _hex(await self._key_service(PlatformOperation.PIN_RESET_AUTH, fields), "apdu")

    async def authorize_unlock(self, context: KeyServiceContext, challenge: bytes) -> bytes:
        """The MAC-ed unlock command."""
        fields = {**context.fields(), "challenge": challenge.hex().upper()}
        return _hex(await self._key_service(PlatformOperation.UNLOCK_AUTH, fields), "apdu")


def json_platform_client(
    channel: EnvelopeChannel, *, message_ids: Callable[[], str] = random_message_id
) -> DialectPlatformClient:
    """The JSON adapter (``saveCardOpen`` / ``saveCardCompleted`` / ``saveCardActive`` ...)."""
    return DialectPlatformClient(channel, JSON_DIALECT, message_ids=message_ids)


def soap_platform_client(
    channel: EnvelopeChannel, *, message_ids: Callable[[], str] = random_message_id
) -> DialectPlatformClient:
    """The SOAP/XML adapter (``applyNewCard`` / ``getCardData`` / ``returnCardData`` ...)."""
    return DialectPlatformClient(channel, SOAP_DIALECT, message_ids=message_ids)
