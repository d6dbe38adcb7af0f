"""Errors of the printer command codec.

:class:`PrinterProtocolError` is the only family the codec raises, whatever
bytes it is given. Local misuse (a request that cannot be encoded, a second
request while one is in flight) and remote misbehaviour (a reply whose text
does not parse) are separate branches. Errors the *printer* reports (NACK
codes, ``ERR ...`` replies) are not exceptions here: they are decoded replies,
and the driver turns them into typed exceptions.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PrinterEncodeError",
    "PrinterFrameError",
    "PrinterProtocolError",
    "PrinterReplyError",
    "PrinterStateError",
]


class PrinterProtocolError(Exception):
    """Root of the printer codec errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"printer.bad_reply"``.
    """

    code: ClassVar[str] = "printer.protocol"


class PrinterEncodeError(PrinterProtocolError):
    """A request cannot be encoded (local misuse).

    Attributes:
        field: The offending field (``"command"``, ``"param"``, ``"data"``).
        reason: What is wrong with it.
    """

    code: ClassVar[str] = "printer.invalid_request"

    def __init__(self, field: str, reason: str) -> None:
        """Record the field and the reason."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PrinterStateError(PrinterProtocolError):
    """The host-side connection was used out of order (local misuse).

    Attributes:
        state: The connection state when the call was made.
    """

    code: ClassVar[str] = "printer.bad_state"

    def __init__(self, message: str, state: str) -> None:
        """Record the state."""
        super().__init__(f"{message} (state {state})")
        self.state = state


class PrinterReplyError(PrinterProtocolError):
    """A reply's text is not what the command answers (remote misbehaviour).

    Attributes:
        command: The command that was answered, e.g. ``"Rse"``.
        expected: What a valid reply looks like.
    """

    code: ClassVar[str] = "printer.bad_reply"

    def __init__(self, command: str, expected: str) -> None:
        """Record the command and the expectation (never the reply bytes)."""
        super().__init__(f"unexpected reply to {command}: expected {expected}")
        self.command = command
        self.expected = expected


class PrinterFrameError(PrinterProtocolError):
    """Bytes given as one whole frame are not one (remote misbehaviour).

    The incremental decoders never raise this: they skip what they cannot
    frame and resynchronise. It comes from the ``from_bytes`` constructors.

    Attributes:
        reason: Why the bytes are not a frame.
    """

    code: ClassVar[str] = "printer.bad_frame"

    def __init__(self, reason: str) -> None:
        """Record the reason."""
        super().__init__(f"not a frame: {reason}")
        self.reason = reason
