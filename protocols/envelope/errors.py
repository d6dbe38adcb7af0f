"""Errors of the envelope codec.

:class:`EnvelopeError` is the only family the decoder raises, whatever the
input. Decoding errors (remote misbehaviour) and encoding errors (local misuse)
are separate branches. Every error has a stable ``code``; none carries the
envelope's bytes.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EnvelopeDecodeError",
    "EnvelopeEncodeError",
    "EnvelopeError",
    "MalformedEnvelopeError",
    "TruncatedEnvelopeError",
    "UnknownSuiteIdError",
    "UnsupportedVersionError",
]


class EnvelopeError(Exception):
    """Root of the envelope codec errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"envelope.truncated"``.
    """

    code: ClassVar[str] = "envelope.error"


class EnvelopeEncodeError(EnvelopeError):
    """A field given to the encoder is out of range (local misuse).

    Attributes:
        field: The field's name.
        reason: What is wrong with it.
    """

    code: ClassVar[str] = "envelope.invalid_field"

    def __init__(self, field: str, reason: str) -> None:
        """Record the field and the reason."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EnvelopeDecodeError(EnvelopeError):
    """Received bytes are not a valid envelope (remote misbehaviour).

    Attributes:
        offset: Byte offset where decoding stopped.
    """

    code: ClassVar[str] = "envelope.malformed"

    def __init__(self, message: str, offset: int) -> None:
        """Record the offset."""
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


class TruncatedEnvelopeError(EnvelopeDecodeError):
    """The bytes end before the envelope does.

    Attributes:
        needed: Total length the envelope needs so far, in bytes.
        available: Length received.
    """

    code: ClassVar[str] = "envelope.truncated"

    def __init__(self, needed: int, available: int) -> None:
        """Record the lengths."""
        super().__init__(f"truncated: need {needed} bytes, have {available}", available)
        self.needed = needed
        self.available = available


class MalformedEnvelopeError(EnvelopeDecodeError):
    """A field holds a value the format does not allow.

    Attributes:
        field: The field's name.
        reason: What is wrong with it.
    """

    code: ClassVar[str] = "envelope.malformed"

    def __init__(self, field: str, reason: str, offset: int) -> None:
        """Record the field, the reason and the offset."""
        super().__init__(f"{field}: {reason}", offset)
        self.field = field
        self.reason = reason


class UnsupportedVersionError(EnvelopeDecodeError):
    """The magic is right but the format version is not one we speak.

    Attributes:
        version: The version byte received.
    """

    code: ClassVar[str] = "envelope.unsupported_version"

    def __init__(self, version: int) -> None:
        """Record the version."""
        super().__init__(f"unsupported envelope version {version}", 2)
        self.version = version


class UnknownSuiteIdError(EnvelopeDecodeError):
    """The suite byte names no suite.

    Attributes:
        suite_id: The suite byte received.
    """

    code: ClassVar[str] = "envelope.unknown_suite"

    def __init__(self, suite_id: int) -> None:
        """Record the suite byte."""
        super().__init__(f"unknown suite id {suite_id}", 3)
        self.suite_id = suite_id
