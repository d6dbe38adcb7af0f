"""The dialect-neutral model of upstream messages: requests, results, operations.

A request document carries one or more :class:`Request` items; the answer
carries one :class:`Result` per item, matched by message id. Every item has
its own message id, which the receiver de-duplicates on, and a ``repeat`` flag
set when it is sent again (a store-and-forward retry). Field names follow the
national data dictionary where one exists (``AAB301`` region, ``AAC002`` social
security number, ``AAC003`` name, ``AAZ500`` card number, ``AAZ501`` card
identification code, ``AAZ502`` application state, ``AAZ507`` ATR); the others
are the camel-case names in :data:`FIELDS`.

Operations are split by whether they may wait: :data:`QUEUEABLE` ones report a
change already made at the branch and may travel later through the outbox;
everything else needs the answer now. :data:`KEY_SERVICE` operations (PIN
reset and unlock authorization, card cryptograms) are never stored and never
re-sent: a PIN command replayed from a queue could burn the card's retry
counter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from protocols.platform.errors import MessageDecodeError, MessageEncodeError

__all__ = [
    "FIELDS",
    "KEY_SERVICE",
    "MAX_DOCUMENT_SIZE",
    "MAX_ITEMS",
    "QUEUEABLE",
    "PlatformOperation",
    "Request",
    "Result",
    "Status",
    "check_field_name",
    "check_message_id",
]

#: Largest number of items in one document (a relay batch is far smaller).
MAX_ITEMS: Final = 1000
#: Largest document accepted by a decoder, in bytes (photos are ~20 KB each).
MAX_DOCUMENT_SIZE: Final = 8 * 1024 * 1024

_FIELD_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")
_MESSAGE_ID_RE: Final = re.compile(r"[\x21-\x7e]{1,64}")  # the envelope's text field rule
_MAX_VALUE: Final = 1024 * 1024

#: Field names used besides the national data dictionary's.
FIELDS: Final = {
    "AAB301": "region code (行政区划), 6 digits",
    "AAC002": "social security number (社会保障号码), 18 characters",
    "AAC003": "name (姓名)",
    "AAZ500": "card number (社会保障卡卡号), 9 characters",
    "AAZ501": "card identification code (卡识别码), 32 hex digits; first 6 = issuing region",
    "AAZ502": "application state: 0 sealed, 1 normal, 2 formal loss, 3 locked, "
    "4 temporary loss, 9 cancelled",
    "AAZ507": "ATR, hex",
    "photo": "photo, base64 JPEG",
    "chipSerial": "chip serial number, hex",
    "cardVersion": "card specification version, e.g. 3.00",
    "lossType": "2 formal loss, 4 temporary loss",
    "address": "postal address (non-key information)",
    "phone": "telephone number (non-key information)",
    "reason": "free-text reason (cancellation)",
    "eCardNo": "electronic card sign number",
    "terminalId": "terminal code of the key-service caller",
    "keyVersion": "card key version",
    "algorithm": "SM4 or 3DES",
    "challenge": "card challenge (GET CHALLENGE answer), hex",
    "command": "card command header and data to protect, hex",
    "pinBlock": "new PIN block under the zone PIN key, hex (never stored)",
    "cryptogram": "EXTERNAL AUTHENTICATE cryptogram, hex",
    "apdu": "card command with its MAC (issuer script), hex",
    "accountNo": "bank account number",
    "amount": "amount in fen (0.01 yuan)",
    "receiptNo": "bank receipt number",
    "bankState": "bank account state",
    "event": "card event: pin-changed, pin-locked, pin-reset, unlocked, application-blocked",
    "eventTime": "when the event happened at the branch, ISO 8601 UTC",
    "triesLeft": "PIN tries left after the event",
    "noticeType": "loss notice: loss or unloss",
    "freezeBank": "loss notice: 1 when the bank account is frozen (unfrozen) too",
    "source": "where a loss notice was made: 12333, online, window",
}


class PlatformOperation(StrEnum):
    """What the branch asks of the provincial platform (dialect-neutral names)."""

    APPLY = "apply"  # 申领 / 预开户: returns AAZ500 and the photo
    GET_CARD_DATA = "get_card_data"  # 获取制卡数据
    RETURN_DATA = "return_data"  # 回盘: ATR, AAZ501, chip serial, version
    ENABLE = "enable"  # 启用
    QUERY_STATUS = "query_status"  # 应用状态查询
    REPORT_LOSS = "report_loss"  # 挂失
    CANCEL_LOSS = "cancel_loss"  # 解挂
    CANCEL_CARD = "cancel_card"  # 注销
    ROLLBACK_CANCEL = "rollback_cancel"  # 注销回退: back to the state before the cancellation
    CHANGE_INFO = "change_info"  # 信息变更 (non-key only)
    ELECTRONIC_CARD = "electronic_card"  # 电子社保卡
    PIN_RESET_AUTH = "pin_reset_auth"  # 密码重置授权: MAC-ed reset command
    UNLOCK_AUTH = "unlock_auth"  # 解锁授权: MAC-ed unlock command
    EXTERNAL_AUTH = "external_auth"  # 外部认证密文
    SECURE_COMMAND = "secure_command"  # MAC-ed card command (UPDATE RECORD...)
    CARD_EVENT = "card_event"  # 卡片事件: PIN changed / locked / reset, unlocked, chip blocked
    #: Platform -> branch: a loss or cancel loss made elsewhere (12333, online, another
    #: branch) for a card this branch holds; the branch answers with the states it set.
    LOSS_NOTICE = "loss_notice"
    #: Platform -> branch: an application made online (000: 线上申请) that the citizen
    #: chose to have verified at this branch (线下核验), where the card is then made and
    #: picked up (领卡); the branch answers with the receipt number it gave it.
    ONLINE_APPLICATION = "online_application"
    #: 日终对账: what the platform accepted from this branch on one day, by operation
    #: (``day``; answered with ``counts``, a JSON object, and ``amounts``).
    DAY_SUMMARY = "day_summary"


#: Operations that report a change already made and may wait in the outbox.
QUEUEABLE: Final = frozenset(
    {
        PlatformOperation.RETURN_DATA,
        PlatformOperation.ENABLE,
        PlatformOperation.REPORT_LOSS,
        PlatformOperation.CANCEL_LOSS,
        PlatformOperation.CANCEL_CARD,
        PlatformOperation.ROLLBACK_CANCEL,
        PlatformOperation.CHANGE_INFO,
        PlatformOperation.ELECTRONIC_CARD,
        PlatformOperation.CARD_EVENT,
    }
)
#: Operations answered by the live key service: never stored, never re-sent.
KEY_SERVICE: Final = frozenset(
    {
        PlatformOperation.PIN_RESET_AUTH,
        PlatformOperation.UNLOCK_AUTH,
        PlatformOperation.EXTERNAL_AUTH,
        PlatformOperation.SECURE_COMMAND,
    }
)


class Status(StrEnum):
    """How the receiver answered one item (each dialect has its own codes for these)."""

    OK = "ok"
    #: "The applicant already has a valid application": the idempotent success it is.
    ALREADY_APPLIED = "already_applied"
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"
    INVALID_REQUEST = "invalid_request"
    REFUSED = "refused"
    ERROR = "error"


def check_field_name(name: str) -> str:
    """Return ``name`` if it is a valid field name (letter, then up to 31 letters/digits).

    Raises:
        MessageEncodeError: It is not.
    """
    if not isinstance(name, str) or _FIELD_RE.fullmatch(name) is None:
        raise MessageEncodeError(f"invalid field name {name!r}")
    return name


def check_message_id(message_id: str) -> str:
    """Return ``message_id`` if it is 1-64 visible ASCII characters.

    Raises:
        MessageEncodeError: It is not.
    """
    if not isinstance(message_id, str) or _MESSAGE_ID_RE.fullmatch(message_id) is None:
        raise MessageEncodeError("message id must be 1-64 visible ASCII characters")
    return message_id


def _valid_fields(fields: dict[str, str]) -> bool:
    return all(
        isinstance(k, str)
        and _FIELD_RE.fullmatch(k) is not None
        and isinstance(v, str)
        and len(v) <= _MAX_VALUE
        for k, v in fields.items()
    )


@dataclass(frozen=True, slots=True)
class Request:
    """One request item.

    Attributes:
        operation: The operation's wire name in the dialect-neutral form
            (:class:`PlatformOperation` for the platform, the bank's own names for the bank).
        message_id: Unique per message; the receiver de-duplicates on it.
        repeat: True when this message id was sent before (重发标志).
        fields: Text fields by data-dictionary name.
    """

    operation: str
    message_id: str
    repeat: bool = False
    fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the message id and the field names."""
        check_message_id(self.message_id)
        if not _valid_fields(self.fields):
            raise MessageEncodeError("fields must map valid names to text")


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to one request item.

    Attributes:
        message_id: The request item's message id.
        status: How it went.
        message: The receiver's human-readable text (often Chinese).
        fields: Returned fields.
    """

    message_id: str
    status: Status
    message: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the message id and the field names."""
        check_message_id(self.message_id)
        if not _valid_fields(self.fields):
            raise MessageEncodeError("fields must map valid names to text")

    @property
    def succeeded(self) -> bool:
        """True for OK and for the idempotent "already has a valid application"."""
        return self.status in (Status.OK, Status.ALREADY_APPLIED)


def decode_fields(raw: object) -> dict[str, str]:
    """Validate a decoded field mapping.

    Raises:
        MessageDecodeError: Not a mapping of valid names to text.
    """
    if not isinstance(raw, dict):
        raise MessageDecodeError("bad_fields", "not an object")
    if not _valid_fields(raw):
        raise MessageDecodeError("bad_fields", "invalid name or value")
    return dict(raw)


def decode_message_id(raw: object) -> str:
    """Validate a decoded message id.

    Raises:
        MessageDecodeError: Not 1-64 visible ASCII characters.
    """
    if not isinstance(raw, str) or _MESSAGE_ID_RE.fullmatch(raw) is None:
        raise MessageDecodeError("bad_message_id")
    return raw
