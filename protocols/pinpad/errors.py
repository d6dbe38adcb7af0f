"""Errors of the PIN pad codec.

:class:`PinPadCodecError` is the only family the codec raises, whatever bytes
it is given. Local misuse (a request that cannot be encoded, a second command
while one is in flight) and remote misbehaviour (bytes given as a frame that
are not one, reply data that does not parse) are separate branches. Statuses
the *pad* reports (cancelled, timeout, mismatch, ...) are not exceptions here:
they are decoded replies, and the driver turns them into typed exceptions.

No message or attribute ever holds frame bytes: a reply may carry a PIN block.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PinPadCodecError",
    "PinPadEncodeError",
    "PinPadFrameError",
    "PinPadParameterError",
    "PinPadReplyError",
    "PinPadStateError",
]


class PinPadCodecError(Exception):
    """Root of the PIN pad codec errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"pinpad.bad_frame"``.
    """

    code: ClassVar[str] = "pinpad.codec"


class PinPadEncodeError(PinPadCodecError):
    """A request (or, on the pad side, a reply) cannot be encoded (local misuse).

    Attributes:
        field: The offending field (``"seq"``, ``"account"``, ``"timeout"``...).
        reason: What is wrong with it.
    """

    code: ClassVar[str] = "pinpad.invalid_request"

    def __init__(self, field: str, reason: str) -> None:
        """Record the field and the reason (never the value)."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PinPadStateError(PinPadCodecError):
    """The host-side connection was used out of order (local misuse).

    Attributes:
        state: The connection state when the call was made.
    """

    code: ClassVar[str] = "pinpad.bad_state"

    def __init__(self, message: str, state: str) -> None:
        """Record the state."""
        super().__init__(f"{message} (state {state})")
        self.state = state


class PinPadReplyError(PinPadCodecError):
    """A reply's data is not what its command answers (remote misbehaviour).

    Attributes:
        command: The command that was answered, e.g. ``"read_pin"``.
        expected: What valid data looks like.
    """

    code: ClassVar[str] = "pinpad.bad_reply"

    def __init__(self, command: str, expected: str) -> None:
        """Record the command and the expectation (never the data)."""
        super().__init__(f"unexpected reply data to {command}: expected {expected}")
        self.command = command
        self.expected = expected


class PinPadParameterError(PinPadCodecError):
    """A request's data is not what its command takes (pad side: answer BAD_PARAMETER).

    Attributes:
        command: The command, e.g. ``"load_key"``.
        expected: What valid data looks like.
    """

    code: ClassVar[str] = "pinpad.bad_parameter"

    def __init__(self, command: str, expected: str) -> None:
        """Record the command and the expectation (never the data)."""
        super().__init__(f"bad parameters to {command}: expected {expected}")
        self.command = command
        self.expected = expected


class PinPadFrameError(PinPadCodecError):
    """Bytes given as one whole frame are not one (remote misbehaviour).

    The incremental decoders never raise this: they skip what they cannot
    frame and resynchronise. It comes from the ``from_bytes`` constructors.

    Attributes:
        reason: Why the bytes are not a frame.
    """

    code: ClassVar[str] = "pinpad.bad_frame"

    def __init__(self, reason: str) -> None:
        """Record the reason."""
        super().__init__(f"not a frame: {reason}")
        self.reason = reason
