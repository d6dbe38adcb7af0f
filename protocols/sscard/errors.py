"""Errors of the social-security card application codec.

:class:`SscardError` is the root. Decoding errors (the card's bytes are wrong)
and encoding errors (a caller's field is wrong) are separate branches, and
:class:`CardStatusError` and its subclasses say which status word the card
answered. No error carries a PIN, a key or a record's content.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ApplicationBlockedError",
    "AuthenticationFailedError",
    "CardStatusError",
    "ConditionsNotSatisfiedError",
    "MacError",
    "NotFoundError",
    "PinBlockedError",
    "SecurityStatusError",
    "SscardDecodeError",
    "SscardEncodeError",
    "SscardError",
    "WrongDataError",
    "WrongPinError",
]


class SscardError(Exception):
    """Root of the card application errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"sscard.wrong_pin"``.
    """

    code: ClassVar[str] = "sscard.error"


class SscardEncodeError(SscardError):
    """A value given to an encoder does not fit its field (local misuse).

    Attributes:
        field: The field's name.
        reason: What is wrong with it (never the value itself).
    """

    code: ClassVar[str] = "sscard.invalid_field"

    def __init__(self, field: str, reason: str) -> None:
        """Record the field and the reason."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SscardDecodeError(SscardError):
    """Bytes from the card are not a valid TLV or record (remote misbehaviour).

    Attributes:
        reason: What is wrong.
        tag: The TLV tag concerned, when known.
    """

    code: ClassVar[str] = "sscard.malformed"

    def __init__(self, reason: str, tag: int | None = None) -> None:
        """Record the reason and the tag."""
        where = "" if tag is None else f" (tag {tag:02X})"
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.tag = tag


class CardStatusError(SscardError):
    """The card answered a status word other than ``9000``.

    Attributes:
        sw: The status word.
        command: Which command it answered (``"verify"``, ``"read_record"``...).
    """

    code: ClassVar[str] = "sscard.status"

    def __init__(self, sw: int, command: str) -> None:
        """Record the status word and the command."""
        super().__init__(f"{command} answered {sw:04X}")
        self.sw = sw
        self.command = command


class WrongPinError(CardStatusError):
    """``63Cx``: the PIN is wrong; ``tries_left`` more tries before the PIN locks.

    Attributes:
        tries_left: Tries left (1..15; 0 is :class:`PinBlockedError`).
    """

    code: ClassVar[str] = "sscard.wrong_pin"

    def __init__(self, sw: int, command: str) -> None:
        """Record the tries left from the low nibble."""
        super().__init__(sw, command)
        self.tries_left = sw & 0x0F


class PinBlockedError(CardStatusError):
    """``6983`` or ``63C0``: the PIN is locked; an unlock (``84 24 00 00``) is needed."""

    code: ClassVar[str] = "sscard.pin_blocked"


class SecurityStatusError(CardStatusError):
    """``6982``: the command needs EXTERNAL AUTHENTICATE or VERIFY first."""

    code: ClassVar[str] = "sscard.security_status"


class AuthenticationFailedError(CardStatusError):
    """``6300``: EXTERNAL AUTHENTICATE's cryptogram is wrong."""

    code: ClassVar[str] = "sscard.authentication_failed"


class MacError(CardStatusError):
    """``6988``: the command MAC is wrong (or no challenge was asked for)."""

    code: ClassVar[str] = "sscard.bad_mac"


class ConditionsNotSatisfiedError(CardStatusError):
    """``6985``: e.g. the default PIN used for a transaction, or no challenge taken."""

    code: ClassVar[str] = "sscard.conditions_not_satisfied"


class ApplicationBlockedError(CardStatusError):
    """``6A81`` (or ``6283`` on SELECT): the application is blocked."""

    code: ClassVar[str] = "sscard.application_blocked"


class NotFoundError(CardStatusError):
    """``6A82``/``6A83``: no such application, file or record."""

    code: ClassVar[str] = "sscard.not_found"


class WrongDataError(CardStatusError):
    """``6A80``/``6700``: wrong data or length, e.g. the default PIN as a new PIN."""

    code: ClassVar[str] = "sscard.wrong_data"
