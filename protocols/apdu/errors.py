"""Errors of the ISO 7816-4 APDU codec and of the T=0 exchange state machine.

:class:`ApduError` is the only family this package raises, whatever the input.
Encoding errors (local misuse) and decoding errors (remote misbehaviour) are
separate branches. No error carries APDU bytes (they may hold a PIN block).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ApduDecodeError",
    "ApduEncodeError",
    "ApduError",
    "ExchangeError",
]


class ApduError(Exception):
    """Root of the APDU codec errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"apdu.malformed"``.
    """

    code: ClassVar[str] = "apdu.error"


class ApduEncodeError(ApduError):
    """A field given to the encoder is out of range (local misuse).

    Attributes:
        field: The field's name.
        reason: What is wrong with it.
    """

    code: ClassVar[str] = "apdu.invalid_field"

    def __init__(self, field: str, reason: str) -> None:
        """Record the field and the reason."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ApduDecodeError(ApduError):
    """Received bytes are not a valid command or response APDU (remote misbehaviour).

    Attributes:
        length: Length of the bytes received.
        reason: What is wrong with them.
    """

    code: ClassVar[str] = "apdu.malformed"

    def __init__(self, reason: str, length: int) -> None:
        """Record the reason and the length."""
        super().__init__(f"{reason} (length {length})")
        self.reason = reason
        self.length = length


class ExchangeError(ApduError):
    """The T=0 exchange cannot go on.

    Either the card keeps answering ``61xx``/``6Cxx`` past the round limit or
    the accumulated answer grows past 65,536 bytes (remote misbehaviour), or
    the caller feeds an exchange that is already done (local misuse).

    Attributes:
        reason: ``"too_many_rounds"``, ``"answer_too_long"`` or ``"already_done"``.
    """

    code: ClassVar[str] = "apdu.exchange"

    def __init__(self, reason: str) -> None:
        """Record the reason."""
        super().__init__(reason)
        self.reason = reason
