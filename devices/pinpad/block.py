"""The PIN pad's result: a PIN block enciphered under the pad's PIN key (TPK).

:class:`PadPinBlock` is what the PIN services receive. It never shows the
block: not in ``repr``/``str``, not through pickling. To translate it (TPK to
zone key) the services hand it to the key store: :meth:`PadPinBlock.for_key_store`
finds the key store version of ``key_label`` whose check value matches the
pad's, and wraps the bytes as :class:`security.keystore.EncryptedPinBlock`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, Self

from security.keystore import EncryptedPinBlock as StorePinBlock
from security.keystore import KeyNotFoundError, PinBlockFormat

if TYPE_CHECKING:
    from security.keystore import KeyStore

__all__ = ["PadPinBlock"]

_LENGTHS = {0: (8, 16), 3: (8, 16), 4: (16,)}


@dataclass(frozen=True, slots=True, eq=False)
class PadPinBlock:
    """An ISO 9564-1 PIN block as the pad enciphered it.

    Attributes:
        block: 8 bytes (format 0/3 under a 3DES TPK) or 16 bytes (format 0/3
            under an SM4 TPK, format 4 under an AES TPK); never in the ``repr``.
        format: The ISO 9564-1 format (0, 3 or 4).
        key_label: The key store id of the pad's PIN key (the terminal key label).
        key_check_value: Check value of the pad key that enciphered the block
            (six hex digits), which tells the key store version; empty if unknown.
    """

    block: bytes = field(repr=False)
    format: int
    key_label: str
    key_check_value: str = ""

    def __post_init__(self) -> None:
        """Refuse a block whose length does not fit its format.

        Raises:
            ValueError: Unknown format or wrong length (the message holds no bytes).
        """
        lengths = _LENGTHS.get(self.format)
        if lengths is None:
            msg = "PIN block format must be 0, 3 or 4"
            raise ValueError(msg)
        if not isinstance(self.block, bytes) or len(self.block) not in lengths:
            msg = f"a format {self.format} PIN block is {' or '.join(map(str, lengths))} bytes"
            raise ValueError(msg)

    def __eq__(self, other: object) -> bool:
        """Constant-time comparison of the block, and the other fields."""
        if not isinstance(other, PadPinBlock):
            return NotImplemented
        return (
            hmac.compare_digest(self.block, other.block)
            and self.format == other.format
            and self.key_label == other.key_label
            and self.key_check_value == other.key_check_value
        )

    __hash__ = None  # type: ignore[assignment]  # deliberately unhashable, like the store's blocks

    def __reduce__(self) -> NoReturn:
        """Refuse pickling: PIN blocks are never persisted or queued."""
        msg = "PadPinBlock cannot be pickled or serialized"
        raise TypeError(msg)

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        """Refuse pickling: PIN blocks are never persisted or queued."""
        self.__reduce__()

    def __copy__(self) -> Self:
        """Immutable: a copy is the same object."""
        return self

    def __deepcopy__(self, memo: object) -> Self:
        """Immutable: a copy is the same object."""
        return self

    def for_key_store(self, store: KeyStore) -> StorePinBlock:
        """The same block as the key store's type, under the version the pad used.

        The version is the one of ``key_label`` whose check value equals
        :attr:`key_check_value` (the current version when that is empty).

        Raises:
            KeyNotFoundError: No live version of ``key_label`` has that check value.
        """
        versions = sorted(
            (i.version for i in store.list_keys() if i.key_id == self.key_label), reverse=True
        )
        for version in versions:
            if not self.key_check_value or hmac.compare_digest(
                store.key_check_value(self.key_label, version), self.key_check_value
            ):
                return StorePinBlock(
                    self.block,
                    key_id=self.key_label,
                    key_version=version,
                    pin_block_format=PinBlockFormat(self.format),
                )
        raise KeyNotFoundError(self.key_label)
