"""Errors of the platform and bank message codecs."""

from __future__ import annotations

__all__ = ["MessageDecodeError", "MessageEncodeError", "MessageError"]


class MessageError(Exception):
    """Root of the upstream message codec errors."""


class MessageDecodeError(MessageError):
    """Bytes that are not a valid message document; the only error a decoder raises.

    Attributes:
        reason: Short machine-readable reason (``"not_json"``, ``"bad_item"``...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        """Record the reason; ``detail`` never holds message content."""
        super().__init__(f"undecodable message: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason


class MessageEncodeError(MessageError):
    """A message cannot be encoded (local misuse: bad field name, too many items)."""
