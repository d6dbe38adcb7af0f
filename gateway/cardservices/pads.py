"""The PIN pad driver (``devices.pinpad``) as the window services' :class:`PinPad`.

The driver hands back its own block type (with the pad's key label and check
value); :class:`DriverPinPad` turns it into the key store's
:class:`~security.keystore.EncryptedPinBlock` under the key version the pad
used. Prompts are the pad's own (``protocols.pinpad.Prompt``) throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from devices.pinpad import PinPadError

if TYPE_CHECKING:
    from devices.pinpad import PinPadDriver, Prompt
    from security.keystore import EncryptedPinBlock, KeyStore

__all__ = ["DRIVER_ERRORS", "DriverPinPad"]

#: What the driver raises when no block comes (each with a stable ``code``).
DRIVER_ERRORS: Final = (PinPadError,)


class DriverPinPad:
    """A connected :class:`~devices.pinpad.PinPadDriver` behind the :class:`PinPad` interface."""

    def __init__(self, driver: PinPadDriver, store: KeyStore) -> None:
        """Use ``driver``; ``store`` holds the pad's TPK (its versions by check value)."""
        self._driver = driver
        self._store = store

    async def read_pin(
        self,
        *,
        account: str,
        prompt: Prompt,
        timeout: float,  # noqa: ASYNC109 - the pad's own deadline
    ) -> EncryptedPinBlock:
        """One PIN, as a key-store block under the pad's TPK."""
        block = await self._driver.read_pin(account=account, prompt=prompt, timeout=timeout)
        return block.for_key_store(self._store)

    async def read_new_pin(
        self,
        *,
        account: str,
        timeout: float,  # noqa: ASYNC109 - the pad's own deadline
    ) -> EncryptedPinBlock:
        """A new PIN entered twice (the pad compares)."""
        block = await self._driver.read_new_pin(account=account, timeout=timeout)
        return block.for_key_store(self._store)

    async def show(self, prompt: Prompt) -> None:
        """Show a prompt or the result."""
        await self._driver.show(prompt)
