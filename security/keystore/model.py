"""Value types of the key store: algorithms, usages, key descriptions and results.

None of these types holds secret key material. :class:`EncryptedPinBlock` holds
PIN block *ciphertext*, which is still treated as sensitive: its ``repr``,
``str`` and ``format`` never show the bytes, and it refuses pickling, copying
through ``__reduce__`` and JSON serialization. The bytes leave it only through
the explicit :meth:`EncryptedPinBlock.ciphertext_bytes`.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final, NoReturn, Self

from security.keystore.errors import InvalidKeyIdError
from security.pinblock import PinBlockFormat

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "Algorithm",
    "Ciphertext",
    "EncryptedPinBlock",
    "KeyInfo",
    "KeyUsage",
    "Mac",
    "PinBlockFormat",
    "Signature",
    "WrappedKey",
    "check_key_id",
]

_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_key_id(key_id: str) -> str:
    """Return ``key_id`` if it is 1-64 of ``A-Z a-z 0-9 . _ -``, starting alphanumeric.

    Raises:
        InvalidKeyIdError: It is not.
    """
    if not isinstance(key_id, str) or _KEY_ID_RE.fullmatch(key_id) is None:
        raise InvalidKeyIdError(str(key_id))
    return key_id


class KeyUsage(StrEnum):
    """What a key may be used for; fixed when the key is created."""

    #: AEAD encryption of data (AES-GCM, SM4-GCM): personal data at rest, envelopes.
    ENCRYPT = "encrypt"
    #: PIN block encryption and translation only (terminal PIN keys, zone PIN keys).
    PIN = "pin"
    #: HMAC: message authentication, blind indexes.
    MAC = "mac"
    #: Digital signatures (ECDSA P-256, SM2).
    SIGN = "sign"
    #: Key encryption only: a device's master key (a PIN pad's TMK) that PIN keys
    #: are exported under for loading into that device (``KeyStore.export_key``).
    KEY_WRAP = "wrap"


class Algorithm(StrEnum):
    """Key algorithms; :attr:`usages` says what each may be used for."""

    AES_128 = "aes-128"
    AES_256 = "aes-256"
    SM4_128 = "sm4-128"
    TDES_2KEY = "3des-2key"
    TDES_3KEY = "3des-3key"
    HMAC_SHA256 = "hmac-sha256"
    HMAC_SM3 = "hmac-sm3"
    EC_P256 = "ec-p256"
    SM2 = "sm2"

    @property
    def usages(self) -> frozenset[KeyUsage]:
        """The usages a key of this algorithm may be created with."""
        return _USAGES[self]

    @property
    def key_lengths(self) -> tuple[int, ...]:
        """Lengths in bytes accepted on import (empty: import not supported)."""
        return _IMPORT_LENGTHS[self]

    @property
    def block_size(self) -> int | None:
        """Cipher block size in bytes, ``None`` for non-cipher keys."""
        return _BLOCK_SIZES.get(self)

    @property
    def pin_block_formats(self) -> frozenset[PinBlockFormat]:
        """PIN block formats a PIN key of this algorithm encrypts."""
        return _PIN_FORMATS.get(self, frozenset())


_USAGES: Final[Mapping[Algorithm, frozenset[KeyUsage]]] = {
    Algorithm.AES_128: frozenset({KeyUsage.ENCRYPT, KeyUsage.PIN, KeyUsage.KEY_WRAP}),
    Algorithm.AES_256: frozenset({KeyUsage.ENCRYPT, KeyUsage.PIN, KeyUsage.KEY_WRAP}),
    Algorithm.SM4_128: frozenset({KeyUsage.ENCRYPT, KeyUsage.PIN, KeyUsage.KEY_WRAP}),
    Algorithm.TDES_2KEY: frozenset({KeyUsage.PIN, KeyUsage.KEY_WRAP}),
    Algorithm.TDES_3KEY: frozenset({KeyUsage.PIN, KeyUsage.KEY_WRAP}),
    Algorithm.HMAC_SHA256: frozenset({KeyUsage.MAC}),
    Algorithm.HMAC_SM3: frozenset({KeyUsage.MAC}),
    Algorithm.EC_P256: frozenset({KeyUsage.SIGN}),
    Algorithm.SM2: frozenset({KeyUsage.SIGN}),
}

# HMAC key lengths in bytes: at least the SHA-256 output (RFC 2104 section 3; SoftHSM2
# refuses shorter keys too), at most 256 (longer keys are hashed first anyway).
_HMAC_LENGTHS: Final = tuple(range(32, 257))

_IMPORT_LENGTHS: Final[Mapping[Algorithm, tuple[int, ...]]] = {
    Algorithm.AES_128: (16,),
    Algorithm.AES_256: (32,),
    Algorithm.SM4_128: (16,),
    Algorithm.TDES_2KEY: (16,),
    Algorithm.TDES_3KEY: (24,),
    Algorithm.HMAC_SHA256: _HMAC_LENGTHS,
    Algorithm.HMAC_SM3: _HMAC_LENGTHS,
    Algorithm.EC_P256: (),
    Algorithm.SM2: (),
}

_BLOCK_SIZES: Final[Mapping[Algorithm, int]] = {
    Algorithm.AES_128: 16,
    Algorithm.AES_256: 16,
    Algorithm.SM4_128: 16,
    Algorithm.TDES_2KEY: 8,
    Algorithm.TDES_3KEY: 8,
}

_PIN_FORMATS: Final[Mapping[Algorithm, frozenset[PinBlockFormat]]] = {
    Algorithm.AES_128: frozenset({PinBlockFormat.ISO_4}),
    Algorithm.AES_256: frozenset({PinBlockFormat.ISO_4}),
    # Chinese PIN pads and HSMs widen formats 0 and 3 to 16 bytes for SM4 (see pinblock).
    Algorithm.SM4_128: frozenset({PinBlockFormat.ISO_0, PinBlockFormat.ISO_3}),
    Algorithm.TDES_2KEY: frozenset({PinBlockFormat.ISO_0, PinBlockFormat.ISO_3}),
    Algorithm.TDES_3KEY: frozenset({PinBlockFormat.ISO_0, PinBlockFormat.ISO_3}),
}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One live version of a key, as :meth:`KeyStore.list_keys` describes it.

    Attributes:
        key_id: The key's name.
        version: Its version, 1 for the first; the highest live version is current.
        algorithm: The key algorithm.
        usage: What the key may be used for.
    """

    key_id: str
    version: int
    algorithm: Algorithm
    usage: KeyUsage


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A PIN key enciphered under a key-encryption key, for loading into a device.

    Attributes:
        key_id: The exported key.
        version: Its version.
        algorithm: Its algorithm.
        kek_id: The key-encryption key it is enciphered under (the device's TMK).
        kek_version: That key's version.
        wrapped: The key enciphered under the KEK, ECB of the KEK's algorithm
            (never in the ``repr``).
        key_check_value: The exported key's check value (E(zero block), 3 bytes,
            upper-case hex): the device checks it after deciphering.
    """

    key_id: str
    version: int
    algorithm: Algorithm
    kek_id: str
    kek_version: int
    wrapped: bytes = field(repr=False)
    key_check_value: str


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature and the key version that made it.

    Attributes:
        key_id: The signing key.
        key_version: The version that signed.
        value: The DER-encoded ECDSA (or SM2) signature.
    """

    key_id: str
    key_version: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Mac:
    """An HMAC and the key version that made it.

    Attributes:
        key_id: The MAC key.
        key_version: The version used.
        value: The full-length HMAC.
    """

    key_id: str
    key_version: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """AEAD output and what is needed to open it (besides the associated data).

    Attributes:
        key_id: The encryption key.
        key_version: The version used.
        nonce: The 12-byte GCM nonce.
        data: Ciphertext followed by the 16-byte tag.
    """

    key_id: str
    key_version: int
    nonce: bytes
    data: bytes


class EncryptedPinBlock:
    """A PIN block encrypted under a PIN key: opaque outside the key store.

    ``repr``, ``str`` and ``format`` show the key, version, format and length,
    never the bytes; pickling, ``copy`` via ``__reduce__`` and JSON serialization
    are refused. Equality is constant-time.
    """

    __slots__ = ("_ciphertext", "_format", "_key_id", "_key_version")

    def __init__(
        self,
        ciphertext: bytes,
        *,
        key_id: str,
        key_version: int,
        pin_block_format: PinBlockFormat,
    ) -> None:
        """Wrap PIN block ciphertext received from a PIN pad or a peer.

        Args:
            ciphertext: 8 bytes (formats 0/3 under 3DES) or 16 bytes (SM4, AES).
            key_id: The PIN key it is encrypted under.
            key_version: That key's version.
            pin_block_format: The ISO 9564 format inside.

        Raises:
            ValueError: The length does not fit the format.
            InvalidKeyIdError: The key id is malformed.
        """
        fmt = PinBlockFormat(pin_block_format)
        allowed = (16,) if fmt is PinBlockFormat.ISO_4 else (8, 16)
        if not isinstance(ciphertext, bytes) or len(ciphertext) not in allowed:
            msg = f"PIN block ciphertext for format {int(fmt)} must be {allowed} bytes long"
            raise ValueError(msg)
        self._ciphertext = ciphertext
        self._key_id = check_key_id(key_id)
        self._key_version = int(key_version)
        self._format = fmt

    @property
    def key_id(self) -> str:
        """The PIN key the block is encrypted under."""
        return self._key_id

    @property
    def key_version(self) -> int:
        """The version of that key."""
        return self._key_version

    @property
    def pin_block_format(self) -> PinBlockFormat:
        """The ISO 9564 format inside the ciphertext."""
        return self._format

    def __len__(self) -> int:
        """Length of the ciphertext in bytes."""
        return len(self._ciphertext)

    def ciphertext_bytes(self) -> bytes:
        """The ciphertext, for the one place that puts it on the wire to a peer."""
        return self._ciphertext

    def __repr__(self) -> str:
        """Describe the block without its bytes."""
        return (
            f"EncryptedPinBlock(key_id={self._key_id!r}, key_version={self._key_version}, "
            f"format={int(self._format)}, length={len(self._ciphertext)}, ciphertext=<hidden>)"
        )

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        """Format as the ``repr``, whatever the format spec."""
        return repr(self)

    def __eq__(self, other: object) -> bool:
        """Constant-time comparison of ciphertext, key, version and format."""
        if not isinstance(other, EncryptedPinBlock):
            return NotImplemented
        return (
            hmac.compare_digest(self._ciphertext, other._ciphertext)
            and self._key_id == other._key_id
            and self._key_version == other._key_version
            and self._format == other._format
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-free but deliberately unhashable

    def __reduce__(self) -> NoReturn:
        """Refuse pickling: PIN blocks are never persisted or queued."""
        msg = "EncryptedPinBlock cannot be pickled or serialized"
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
