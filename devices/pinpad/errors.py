"""Errors of the PIN pad driver: one root, families that say what to do.

Every error is a :class:`PinPadError` with a stable ``code`` (the PIN services
map codes to problem types). None of them ever carries a PIN block, an account
number or frame bytes, in its message or its attributes.

* the customer ended the entry: :class:`PinPadCancelledError` (pressed 取消),
  :class:`PinPadTimeoutError` (nobody typed in time), :class:`PinPadMismatchError`
  (the new PIN was entered differently twice, on every attempt): ask again;
* the pad cannot be reached: :class:`PinPadOfflineError`: retry later;
* the pad's keys: :class:`PinPadKeyRefusedError` (LOAD_KEY check value refused),
  :class:`PinPadNoKeyError` (no PIN key loaded): load the key;
* the pad misbehaved: :class:`PinPadProtocolError`;
* the caller asked for something impossible: :class:`PinPadRequestError`.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PinPadCancelledError",
    "PinPadError",
    "PinPadKeyRefusedError",
    "PinPadMismatchError",
    "PinPadNoKeyError",
    "PinPadOfflineError",
    "PinPadProtocolError",
    "PinPadRequestError",
    "PinPadTimeoutError",
]


class PinPadError(Exception):
    """Root of the PIN pad driver errors.

    Attributes:
        code: Stable machine-readable code, e.g. ``"pinpad_timeout"``.
    """

    code: ClassVar[str] = "pinpad_error"


class PinPadTimeoutError(PinPadError):
    """Nobody finished the entry in time (the entry was aborted on the pad).

    Attributes:
        timeout: The entry's time limit, seconds.
        by: ``"host"`` (the driver's clock ran out and it sent ABORT) or
            ``"pad"`` (the pad's own timeout ended the entry).
    """

    code: ClassVar[str] = "pinpad_timeout"

    def __init__(self, timeout: float, *, by: str) -> None:
        """Record the limit and who noticed."""
        super().__init__(f"no PIN entered within {timeout:g} s ({by})")
        self.timeout = timeout
        self.by = by


class PinPadCancelledError(PinPadError):
    """The customer pressed the cancel key (取消)."""

    code: ClassVar[str] = "pinpad_cancelled"

    def __init__(self) -> None:
        """Say what happened."""
        super().__init__("the customer cancelled the PIN entry")


class PinPadMismatchError(PinPadError):
    """The new PIN and its re-entry differed on every attempt (两次输入不一致).

    Attributes:
        attempts: How many enter + re-enter rounds the pad gave.
    """

    code: ClassVar[str] = "pinpad_mismatch"

    def __init__(self, attempts: int) -> None:
        """Record the attempts."""
        super().__init__(f"the two entries of the new PIN differed ({attempts} attempts)")
        self.attempts = attempts


class PinPadOfflineError(PinPadError):
    """The pad is not connected, the link was lost, or the pad stopped answering.

    Attributes:
        url: The link URL.
        reason: Why (``"not connected"``, ``"no reply"``, an OS error name...).
    """

    code: ClassVar[str] = "pinpad_offline"

    def __init__(self, url: str, reason: str) -> None:
        """Record the link and the reason."""
        super().__init__(f"PIN pad {url or '(no link)'} offline: {reason}")
        self.url = url
        self.reason = reason


class PinPadProtocolError(PinPadError):
    """The pad answered something the protocol does not allow here.

    Attributes:
        command: The command, e.g. ``"read_pin"``.
        status: The pad's status name, when it refused (``"bad_parameter"``...).
        reason: What was wrong.
    """

    code: ClassVar[str] = "pinpad_protocol"

    def __init__(self, command: str, reason: str, *, status: str | None = None) -> None:
        """Record the command, the reason and the status."""
        super().__init__(f"PIN pad {command}: {reason}")
        self.command = command
        self.reason = reason
        self.status = status


class PinPadKeyRefusedError(PinPadError):
    """LOAD_KEY was refused: the check value does not match (or no TMK is loaded).

    Attributes:
        key_check_value: The check value that was sent.
    """

    code: ClassVar[str] = "pinpad_key_refused"

    def __init__(self, key_check_value: str) -> None:
        """Record the check value sent (a check value reveals nothing of the key)."""
        super().__init__(f"the PIN pad refused the key with check value {key_check_value}")
        self.key_check_value = key_check_value


class PinPadNoKeyError(PinPadError):
    """The pad holds no PIN key yet: load one (LOAD_KEY) first."""

    code: ClassVar[str] = "pinpad_no_key"

    def __init__(self) -> None:
        """Say what is missing."""
        super().__init__("the PIN pad has no PIN key loaded")


class PinPadRequestError(PinPadError):
    """The caller asked for something the pad cannot do (local misuse).

    Attributes:
        field: The offending argument.
        reason: What is wrong with it (never its value).
    """

    code: ClassVar[str] = "pinpad_bad_request"

    def __init__(self, field: str, reason: str) -> None:
        """Record the argument and the reason."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
