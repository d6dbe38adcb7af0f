"""Simulated provincial card-management systems and the national hub between them.

Each :class:`Province` keeps its card registry and the application state of
each card (AAZ502: 0 sealed, 1 normal, 2 formal loss, 3 locked, 4 temporary
loss, 9 cancelled), with the states under the losses, locks and cancellations
in force (``Card.under``): cancel loss, unlock and the rollback of a
cancellation return to the state the interruption found. It refuses what a
platform refuses: a second enable, an enable or electronic card for a card in
loss or cancelled, an information change for a cancelled card, a rollback of a
cancellation it has closed (:meth:`Province.close_cancellation`).

The :class:`Hub` routes a request about a card to its issuing province by
region code: the first 6 digits of the card identification code (AAZ501),
else the region (AAB301), else the province that knows the card number.
Key-service answers name the issuing province (``issuer``), whose master keys
diversify the card keys.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from protocols.platform import KEY_SERVICE, PlatformOperation, Request, Result, Status
from simulators.platform.keyservice import (
    CardKeyRef,
    KeyServiceError,
    parse_algorithm,
    pin_block_account,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.platform.keyservice import KeyService

__all__ = ["DEFAULT_PROVINCES", "Card", "Hub", "Province", "province_of"]

#: Provinces in one simulator by default: code -> (name, card number letter, regions).
DEFAULT_PROVINCES: Final = {
    "500000": ("重庆市 Chongqing", "C", ("500000", "500100")),
    "650000": ("新疆维吾尔自治区 Xinjiang", "X", ("650000", "650100", "652300")),
    "410000": ("河南省 Henan", "H", ("410000", "410100")),
}
_ID_LENGTH: Final = 18
_CARD_ID_LENGTH: Final = 32  # AAZ501: 16 bytes as hex digits
_REGION_LENGTH: Final = 6
_EDITABLE: Final = frozenset({"address", "phone"})
_IDENTIFYING: Final = frozenset({"AAZ500", "AAZ501", "AAC002", "AAB301"})
_ACTIVE_STATES: Final = frozenset({"1", "2", "3", "4"})
#: Card events a branch may report (``card_event``).
CARD_EVENTS: Final = frozenset(
    {"pin-changed", "pin-locked", "pin-reset", "unlocked", "application-blocked"}
)
_BRANCH_REPORTS: Final = frozenset(
    {PlatformOperation.QUERY_STATUS, PlatformOperation.CARD_EVENT, PlatformOperation.LOSS_NOTICE}
)
#: APPLICATION BLOCK header: the key service protects it even for a cancelled card.
_APPLICATION_BLOCK: Final = "841E0000"


def _is_card_id(text: str) -> bool:
    """A card identification code: 32 hex digits, the first 6 a region code."""
    head = text[:_REGION_LENGTH]
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) == _CARD_ID_LENGTH and head.isascii() and head.isdigit()


def province_of(region: str) -> str:
    """The province code of a 6-digit region code (its first two digits, then zeros)."""
    return region[:2] + "0000"


@dataclass(slots=True)
class Card:
    """One card in a province's registry."""

    aaz500: str
    aac002: str
    aac003: str
    aab301: str
    photo: str
    aaz502: str = "0"
    aaz501: str = ""
    aaz507: str = ""
    chip_serial: str = ""
    version: str = ""
    address: str = ""
    phone: str = ""
    ecard_no: str = ""
    #: AAZ502 under each interruption in force (loss, lock, cancellation), oldest first.
    under: list[str] = dataclasses.field(default_factory=list)
    #: The cancellation was closed on the platform (settled): no rollback any more.
    cancellation_closed: bool = False

    def data(self) -> dict[str, str]:
        """The card's data as platform fields."""
        found = {
            "AAZ500": self.aaz500,
            "AAC002": self.aac002,
            "AAC003": self.aac003,
            "AAB301": self.aab301,
            "AAZ502": self.aaz502,
            "photo": self.photo,
        }
        if self.aaz501:
            found["AAZ501"] = self.aaz501
        return found


def _photo(aac002: str) -> str:
    """A stand-in archived photo: a JPEG start/end marker around a digest of the holder."""
    digest = hashlib.sha256(aac002.encode()).digest()
    return base64.b64encode(b"\xff\xd8\xff\xe0" + digest + b"\xff\xd9").decode()


class Province:
    """One province's card registry, state rules and key service."""

    def __init__(
        self, code: str, name: str, letter: str, regions: tuple[str, ...], keys: KeyService
    ) -> None:
        """Hold no cards yet."""
        self.code = code
        self.name = name
        self.letter = letter
        self.regions = frozenset(regions)
        self.keys = keys
        self.cards: dict[str, Card] = {}
        #: Card events branches reported: (card number, event), in order.
        self.events: list[tuple[str, str]] = []
        #: Return data (回盘) accepted, by card number (a test oracle: once each).
        self.returns: Counter[str] = Counter()
        self._serial = 0
        self._card_handlers: dict[PlatformOperation, Callable[[Request, Card], Result]] = {
            PlatformOperation.CHANGE_INFO: self._change_info,
            PlatformOperation.ELECTRONIC_CARD: self._electronic_card,
            PlatformOperation.ENABLE: self._enable,
            PlatformOperation.REPORT_LOSS: self._report_loss,
            PlatformOperation.CANCEL_LOSS: self._cancel_loss,
            PlatformOperation.CANCEL_CARD: self._cancel,
            PlatformOperation.ROLLBACK_CANCEL: self._rollback,
        }

    # ----------------------------------------------------------- registry
    def add_card(self, aac002: str, aac003: str, aab301: str, **extra: str) -> Card:
        """Register a card directly (a card issued before the simulation started)."""
        self._serial += 1
        card = Card(
            aaz500=f"{self.letter}{self._serial:08d}",
            aac002=aac002,
            aac003=aac003,
            aab301=aab301,
            photo=_photo(aac002),
        )
        for name, value in extra.items():
            setattr(card, name, value)
        self.cards[card.aaz500] = card
        return card

    def find(self, fields: dict[str, str]) -> Card | None:
        """The card named by AAZ500, else AAZ501, else the holder's live card (AAC002)."""
        if "AAZ500" in fields:
            return self.cards.get(fields["AAZ500"])
        if "AAZ501" in fields:
            return next((c for c in self.cards.values() if c.aaz501 == fields["AAZ501"]), None)
        if "AAC002" in fields:
            return self._live_card(fields["AAC002"])
        return None

    def _live_card(self, aac002: str) -> Card | None:
        return next(
            (c for c in self.cards.values() if c.aac002 == aac002 and c.aaz502 != "9"), None
        )

    # ----------------------------------------------------------- handling
    def handle(self, item: Request) -> Result:  # noqa: PLR0911 - one answer per operation
        """Apply one request item and answer it."""
        op = PlatformOperation(item.operation)
        fields = item.fields
        if op is PlatformOperation.APPLY:
            return self._apply(item)
        card = self.find(fields)
        if card is None:
            return _answer(item, Status.NOT_FOUND, "卡片不存在 card not found")
        if op in KEY_SERVICE:
            return self._key_service(item, op, card)
        if op is PlatformOperation.GET_CARD_DATA:
            return _answer(item, Status.OK, "成功", card.data())
        if op in _BRANCH_REPORTS:
            return self._branch_report(item, op, card)
        if op is PlatformOperation.RETURN_DATA:
            return self._return_data(item, card)
        return self._card_handlers[op](item, card)

    def close_cancellation(self, aaz500: str) -> None:
        """Settle a card's cancellation (the fund is paid out): it can no longer be rolled back."""
        self.cards[aaz500].cancellation_closed = True

    def _rollback(self, item: Request, card: Card) -> Result:
        if card.aaz502 != "9" or not card.under:
            return _answer(item, Status.INVALID_STATE, "卡片未注销 card not cancelled")
        if card.cancellation_closed:
            return _answer(
                item, Status.INVALID_STATE, "注销已办结，不能回退 cancellation already closed"
            )
        card.aaz502 = card.under.pop()
        return _answer(item, Status.OK, "成功", {"AAZ502": card.aaz502})

    def _apply(self, item: Request) -> Result:
        fields = item.fields
        aac002, aac003, aab301 = fields["AAC002"], fields["AAC003"], fields["AAB301"]
        if len(aac002) != _ID_LENGTH or aab301 not in self.regions:
            return _answer(item, Status.INVALID_REQUEST, "申领信息有误 invalid application")
        existing = self._live_card(aac002)
        if existing is not None and existing.aaz502 == "0":
            # An application in progress (not yet enabled): pre-opening again finds it.
            # A holder whose card was issued applies for its successor (reissue,
            # replacement): a new card; the old one is cancelled when the new is made.
            data = {"AAZ500": existing.aaz500, "photo": existing.photo}
            return _answer(
                item, Status.ALREADY_APPLIED, "已存在有效申请 already has a valid application", data
            )
        card = self.add_card(aac002, aac003, aab301)
        if fields.get("photo"):
            card.photo = fields["photo"]
        return _answer(item, Status.OK, "成功", {"AAZ500": card.aaz500, "photo": card.photo})

    def _return_data(self, item: Request, card: Card) -> Result:
        fields = item.fields
        aaz501 = fields["AAZ501"]
        if not _is_card_id(aaz501) or aaz501[:_REGION_LENGTH] not in self.regions:
            return _answer(
                item, Status.INVALID_REQUEST, "卡识别码有误 bad card identification code"
            )
        if card.aaz501 and card.aaz501 != aaz501:
            return _answer(item, Status.INVALID_STATE, "已回盘 data already returned")
        if card.aaz502 != "0":
            return _answer(item, Status.INVALID_STATE, "卡片状态不允许 card state forbids it")
        card.aaz501 = aaz501
        card.aaz507 = fields["AAZ507"]
        card.chip_serial = fields["chipSerial"]
        card.version = fields["cardVersion"]
        self.returns[card.aaz500] += 1
        return _answer(item, Status.OK, "成功", {"AAZ500": card.aaz500})

    def _branch_report(self, item: Request, op: PlatformOperation, card: Card) -> Result:
        """Status query (with the card's codes), card events, and what only branches take."""
        if op is PlatformOperation.QUERY_STATUS:
            found = {"AAZ500": card.aaz500, "AAZ502": card.aaz502, "AAB301": card.aab301}
            if card.aaz501:
                found["AAZ501"] = card.aaz501
            return _answer(item, Status.OK, "成功", found)
        if op is PlatformOperation.CARD_EVENT:
            return self._card_event(item, card)
        return _answer(item, Status.INVALID_REQUEST, "平台不接收该通知 not a platform service")

    def _card_event(self, item: Request, card: Card) -> Result:
        """Record what a branch reports happened to a card; a PIN lock locks the application."""
        event = item.fields.get("event", "")
        if event not in CARD_EVENTS:
            return _answer(item, Status.INVALID_REQUEST, "事件类型有误 unknown card event")
        self.events.append((card.aaz500, event))
        if event == "pin-locked" and card.aaz502 == "1":
            card.under.append(card.aaz502)
            card.aaz502 = "3"
        elif event in {"pin-reset", "unlocked"} and card.aaz502 == "3":
            card.aaz502 = card.under.pop() if card.under else "1"
        return _answer(item, Status.OK, "成功", {"AAZ500": card.aaz500, "AAZ502": card.aaz502})

    def _change_info(self, item: Request, card: Card) -> Result:
        if card.aaz502 == "9":
            return _answer(item, Status.INVALID_STATE, "卡片已注销 card cancelled")
        changes = {k: v for k, v in item.fields.items() if k not in _IDENTIFYING}
        if not changes or not set(changes) <= _EDITABLE:
            return _answer(
                item, Status.INVALID_REQUEST, "仅可变更非关键信息 only non-key information changes"
            )
        card.address = changes.get("address", card.address)
        card.phone = changes.get("phone", card.phone)
        return _answer(item, Status.OK, "成功")

    def _electronic_card(self, item: Request, card: Card) -> Result:
        if card.aaz502 != "1":
            return _refused(item, card.aaz502)
        card.ecard_no = card.ecard_no or f"E{self.code}{card.aaz500}"
        return _answer(item, Status.OK, "成功", {"eCardNo": card.ecard_no})

    def _enable(self, item: Request, card: Card) -> Result:
        if card.aaz502 == "1":
            return _answer(item, Status.INVALID_STATE, "卡片已启用 already enabled")
        if card.aaz502 != "0" or not card.aaz501:
            return _refused(item, card.aaz502)
        card.aaz502 = "1"
        return _answer(item, Status.OK, "成功", {"AAZ502": "1"})

    def _report_loss(self, item: Request, card: Card) -> Result:
        target = item.fields.get("lossType", "2")
        if target not in {"2", "4"}:
            return _answer(item, Status.INVALID_REQUEST, "挂失类型有误 bad loss type")
        if card.aaz502 == target:  # a repeat
            return _answer(item, Status.OK, "成功", {"AAZ502": target})
        if card.aaz502 not in {"0", "1", "3", "4"}:
            return _refused(item, card.aaz502)
        return self._interrupt(item, card, target)

    def _cancel_loss(self, item: Request, card: Card) -> Result:
        if card.aaz502 in {"0", "1"} and not card.under:  # a repeat: nothing in force
            return _answer(item, Status.OK, "成功", {"AAZ502": card.aaz502})
        if card.aaz502 != "4" or not card.under:
            return _refused(item, card.aaz502)  # a formal loss is final: a reissue follows
        card.aaz502 = card.under.pop()
        return _answer(item, Status.OK, "成功", {"AAZ502": card.aaz502})

    def _cancel(self, item: Request, card: Card) -> Result:
        if card.aaz502 == "9":  # a repeat
            return _answer(item, Status.OK, "成功", {"AAZ502": "9"})
        return self._interrupt(item, card, "9")

    @staticmethod
    def _interrupt(item: Request, card: Card, target: str) -> Result:
        card.under.append(card.aaz502)
        card.aaz502 = target
        return _answer(item, Status.OK, "成功", {"AAZ502": target})

    def _key_service(self, item: Request, op: PlatformOperation, card: Card) -> Result:
        if op is PlatformOperation.EXTERNAL_AUTH and not card.aaz501 and card.aaz502 == "0":
            # Being made: the blank's chip (AAZ501 of the request) must be one of ours.
            aaz501 = item.fields.get("AAZ501", "")
            if not _is_card_id(aaz501) or aaz501[:_REGION_LENGTH] not in self.regions:
                return _answer(item, Status.INVALID_REQUEST, "AAZ501 无效 not a card of ours")
            card = dataclasses.replace(card, aaz501=aaz501)
        blocking = op is PlatformOperation.SECURE_COMMAND and (
            item.fields.get("command", "").upper() == _APPLICATION_BLOCK
        )
        usable = _ACTIVE_STATES | {"0"} | ({"9"} if blocking else set())
        if not card.aaz501 or card.aaz502 not in usable:
            return _answer(item, Status.INVALID_STATE, "卡片状态不允许 card state forbids it")
        if op is PlatformOperation.PIN_RESET_AUTH and card.aaz502 not in _ACTIVE_STATES:
            return _answer(item, Status.INVALID_STATE, "卡片状态不允许 card state forbids it")
        try:
            apdu_or_cryptogram = self._compute(item, op, card)
        except KeyServiceError as exc:
            return _answer(
                item,
                Status.INVALID_REQUEST,
                f"密钥服务拒绝 key service refused: {exc.parameter}: {exc.reason}",
            )
        name = "cryptogram" if op is PlatformOperation.EXTERNAL_AUTH else "apdu"
        fields = {name: apdu_or_cryptogram.hex().upper(), "issuer": self.code}
        return _answer(item, Status.OK, "成功", fields)

    def _compute(self, item: Request, op: PlatformOperation, card: Card) -> bytes:
        """Ask the key service; the card keys are the issuing province's."""
        fields = item.fields
        default = "3DES" if card.version.startswith(("1.", "2.")) else "SM4"
        version = fields.get("keyVersion", "1")
        if not (version.isascii() and version.isdigit()):
            raise KeyServiceError("key_version", "must be a number")
        ref = CardKeyRef(
            card.aaz501, parse_algorithm(fields.get("algorithm", default)), int(version)
        )
        challenge = _hex(fields, "challenge")
        if op is PlatformOperation.EXTERNAL_AUTH:
            return self.keys.external_authenticate(ref, challenge)
        if op is PlatformOperation.SECURE_COMMAND:
            return self.keys.protect_command(ref, _hex(fields, "command"), challenge)
        if op is PlatformOperation.PIN_RESET_AUTH:
            pin_format = fields.get("pinFormat", "0")
            if pin_format not in {"0", "3"}:
                raise KeyServiceError("pin_format", "must be 0 or 3")
            return self.keys.pin_reset_command(
                ref,
                _hex(fields, "pinBlock"),
                int(pin_format),
                pin_block_account(card.aac002),
                challenge,
            )
        return self.keys.unlock_command(ref, challenge)


def _hex(fields: dict[str, str], name: str) -> bytes:
    try:
        return bytes.fromhex(fields[name])
    except ValueError:
        raise KeyServiceError(name, "must be hex digits") from None


def _refused(item: Request, state: str) -> Result:
    return _answer(
        item, Status.INVALID_STATE, f"卡片状态{state}不允许 card state {state} forbids it"
    )


def _answer(
    item: Request, status: Status, message: str, fields: dict[str, str] | None = None
) -> Result:
    return Result(item.message_id, status, message, fields or {})


class Hub:
    """The national hub: routes a request to the province that issued the card."""

    def __init__(self, provinces: dict[str, Province]) -> None:
        """Route between ``provinces`` (by province code)."""
        self.provinces = provinces
        self.routed = 0

    def route(
        self, local: str, item: Request, on_route: Callable[[str], None] | None = None
    ) -> Province:
        """The province that must answer ``item`` received by province ``local``."""
        target = self._target(local, item)
        if target != local:
            self.routed += 1
            if on_route is not None:
                on_route(target)
        return self.provinces[target]

    def _target(self, local: str, item: Request) -> str:
        fields = item.fields
        card_id = fields.get("AAZ501", "")
        if item.operation != PlatformOperation.RETURN_DATA and _is_card_id(card_id):
            code = province_of(card_id[:_REGION_LENGTH])
            if code in self.provinces:
                return code
        region = fields.get("AAB301", "")
        if item.operation == PlatformOperation.APPLY and len(region) == _REGION_LENGTH:
            code = province_of(region)
            if code in self.provinces:
                return code
        number = fields.get("AAZ500")
        if number is not None and number not in self.provinces[local].cards:
            for code, province in self.provinces.items():
                if number in province.cards:
                    return code
        if number is None and not card_id and item.operation != PlatformOperation.APPLY:
            return self._by_holder(local, fields.get("AAC002", ""))
        return local

    def _by_holder(self, local: str, holder: str) -> str:
        """The national card index: the province that holds the person's live card."""
        if not holder or self.provinces[local].find({"AAC002": holder}) is not None:
            return local
        for code, province in self.provinces.items():
            if province.find({"AAC002": holder}) is not None:
                return code
        return local
