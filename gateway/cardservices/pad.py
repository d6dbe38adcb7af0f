"""What the window services need of a PIN pad (the driver lives in ``devices.pinpad``).

The pad encrypts what the holder types under its terminal PIN key (TPK) in the
key store and hands over an :class:`~security.keystore.EncryptedPinBlock`; the
daemon never sees a clear PIN. Its errors carry a stable ``code``
(``pinpad-timeout``, ``pinpad-cancelled``, ``pinpad-mismatch``,
``pinpad-offline``) that the teller is shown. What the pad shows is the pad's
own :class:`~protocols.pinpad.Prompt` (re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from devices.pinpad import Prompt

if TYPE_CHECKING:
    from security.keystore import EncryptedPinBlock

__all__ = ["PinPad", "PinPadFailure", "Prompt"]


class PinPadFailure(Exception):  # noqa: N818 - the pad's own failures, named by code
    """The pad could not deliver a PIN block (timeout, cancel, mismatch, offline).

    Attributes:
        code: Stable code shown to the teller.
    """

    def __init__(self, code: str) -> None:
        """Record the code."""
        super().__init__(code)
        self.code = code


class PinPad(Protocol):
    """A PIN pad at a window.

    Every method raises an error with a stable ``code`` attribute when the
    holder does not complete the entry (timeout, cancel, mismatch) or the pad
    is offline.
    """

    async def read_pin(
        self,
        *,
        account: str,
        prompt: Prompt,
        timeout: float,  # noqa: ASYNC109 - the pad's own deadline
    ) -> EncryptedPinBlock:
        """One PIN, as a block under the pad's TPK bound to ``account``."""
        ...

    async def read_new_pin(
        self,
        *,
        account: str,
        timeout: float,  # noqa: ASYNC109 - the pad's own deadline
    ) -> EncryptedPinBlock:
        """A new PIN entered twice (the pad compares), as one block."""
        ...

    async def show(self, prompt: Prompt) -> None:
        """Show a prompt or a result."""
        ...
