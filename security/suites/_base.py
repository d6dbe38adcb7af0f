"""What every crypto suite offers, the key handles it works with, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol, runtime_checkable

from security.errors import SecurityError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "AeadAuthenticationError",
    "CryptoError",
    "CryptoSuite",
    "InvalidParameterError",
    "KeyFormatError",
    "SigningKey",
    "SuiteMismatchError",
    "SuiteName",
    "UnknownSuiteError",
    "VerifyKey",
]

SuiteName = Literal["gm", "intl"]

#: AEAD nonce length in bytes (96 bits: the GCM fast path, NIST SP 800-38D 8.2).
AEAD_NONCE_SIZE: Final = 12
#: AEAD tag length in bytes (128 bits, full GCM tag).
AEAD_TAG_SIZE: Final = 16
#: Signature length in bytes: raw ``r || s``, each 32 bytes big-endian.
SIGNATURE_SIZE: Final = 64
#: Public key length in bytes: uncompressed SEC 1 point ``04 || X || Y``.
PUBLIC_KEY_SIZE: Final = 65


class CryptoError(SecurityError):
    """Root of the crypto-suite errors."""


class UnknownSuiteError(CryptoError):
    """No suite has this name.

    Attributes:
        name: The name asked for.
    """

    def __init__(self, name: str) -> None:
        """Record the unknown name."""
        super().__init__(f"unknown crypto suite {name!r}")
        self.name = name


class SuiteMismatchError(CryptoError):
    """A key made by one suite was handed to another (local misuse).

    Attributes:
        expected: The suite that was asked to use the key.
        actual: The suite the key belongs to.
    """

    def __init__(self, expected: str, actual: str) -> None:
        """Record both suite names."""
        super().__init__(f"key of suite {actual!r} used with suite {expected!r}")
        self.expected = expected
        self.actual = actual


class InvalidParameterError(CryptoError):
    """A key or nonce has the wrong length (local misuse).

    Attributes:
        parameter: Which parameter (``"key"``, ``"nonce"``).
        expected: The length the suite needs, in bytes.
        actual: The length given, in bytes.
    """

    def __init__(self, parameter: str, expected: int, actual: int) -> None:
        """Record the lengths; the value itself is never kept."""
        super().__init__(f"{parameter} must be {expected} bytes, got {actual}")
        self.parameter = parameter
        self.expected = expected
        self.actual = actual


class KeyFormatError(CryptoError):
    """Encoded key bytes do not make a valid key for the suite.

    Attributes:
        suite: The suite that tried to load the key.
        kind: ``"public"`` or ``"private"``.
    """

    def __init__(self, suite: str, kind: Literal["public", "private"]) -> None:
        """Record which kind of key was refused; the bytes are never kept."""
        super().__init__(f"invalid {kind} key for suite {suite!r}")
        self.suite = suite
        self.kind = kind


class AeadAuthenticationError(CryptoError):
    """AEAD authentication failed: wrong key, nonce, associated data, or tampered text.

    Attributes:
        suite: The suite that refused the ciphertext.
    """

    def __init__(self, suite: str) -> None:
        """Record the suite."""
        super().__init__(f"AEAD authentication failed ({suite})")
        self.suite = suite


@dataclass(frozen=True, repr=False, eq=False)
class SigningKey:
    """A private signing key, opaque outside the suite that made it.

    Its ``repr`` names the suite and the public key only; the private scalar
    leaves the object only through :meth:`CryptoSuite.signing_key_bytes`.

    Attributes:
        suite: Name of the suite the key belongs to.
        public_key: The matching verify key.
    """

    suite: SuiteName
    public_key: VerifyKey
    handle: object = field(compare=False)
    """The backing library's key object (suite-private)."""

    def __repr__(self) -> str:
        """Show the suite and a public fingerprint, never the private key."""
        return f"SigningKey(suite={self.suite!r}, public={self.public_key.encoded[:9].hex()}...)"


@dataclass(frozen=True, repr=False)
class VerifyKey:
    """A public verify key.

    Attributes:
        suite: Name of the suite the key belongs to.
        encoded: The uncompressed SEC 1 point ``04 || X || Y`` (65 bytes).
    """

    suite: SuiteName
    encoded: bytes
    handle: object = field(compare=False)
    """The backing library's key object (suite-private)."""

    def __repr__(self) -> str:
        """Show the suite and the start of the point."""
        return f"VerifyKey(suite={self.suite!r}, encoded={self.encoded[:9].hex()}...)"


@runtime_checkable
class CryptoSuite(Protocol):
    """One family of algorithms: hash, HMAC, AEAD and signatures.

    ``gm`` is SM3 / HMAC-SM3 / SM4-GCM / SM2 (GB/T 32905, 32907, 32918);
    ``intl`` is SHA-256 / HMAC-SHA256 / AES-256-GCM / ECDSA P-256.
    Every suite uses 12-byte AEAD nonces, 16-byte tags, 64-byte raw ``r || s``
    signatures and 65-byte uncompressed public keys.
    """

    @property
    def name(self) -> SuiteName:
        """The suite's name as configured and carried on the wire."""
        ...

    @property
    def aead_key_size(self) -> int:
        """AEAD key length in bytes (16 for SM4, 32 for AES-256)."""
        ...

    @property
    def digest_size(self) -> int:
        """Hash output length in bytes."""
        ...

    def hash(self, data: bytes) -> bytes:
        """Hash ``data``."""
        ...

    def hmac(self, key: bytes, data: bytes) -> bytes:
        """Compute the HMAC of ``data`` under ``key``."""
        ...

    def hmac_verify(self, key: bytes, data: bytes, tag: bytes) -> bool:
        """Tell, in constant time, whether ``tag`` is the HMAC of ``data``."""
        ...

    def aead_encrypt(
        self, key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes
    ) -> bytes:
        """Encrypt and authenticate; return ``ciphertext || tag``.

        Raises:
            InvalidParameterError: The key or nonce has the wrong length.
        """
        ...

    def aead_decrypt(
        self, key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes
    ) -> bytes:
        """Check and decrypt ``ciphertext || tag``.

        Raises:
            InvalidParameterError: The key or nonce has the wrong length.
            AeadAuthenticationError: Authentication failed.
        """
        ...

    def generate_signing_key(self) -> SigningKey:
        """Make a new random signing key."""
        ...

    def load_signing_key(self, data: bytes) -> SigningKey:
        """Load a signing key from its 32-byte big-endian private scalar.

        Raises:
            KeyFormatError: The bytes are not a valid private key.
        """
        ...

    def signing_key_bytes(self, key: SigningKey) -> bytes:
        """Export the 32-byte private scalar, for a key store to wrap."""
        ...

    def load_verify_key(self, data: bytes) -> VerifyKey:
        """Load a verify key from an uncompressed SEC 1 point.

        Raises:
            KeyFormatError: The bytes are not a point on the suite's curve.
        """
        ...

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        """Sign ``data``; return the 64-byte ``r || s``."""
        ...

    def verify(self, key: VerifyKey, signature: bytes, data: bytes) -> bool:
        """Tell whether ``signature`` is valid for ``data``; never raises on bad input."""
        ...


def check_length(parameter: str, value: bytes, expected: int) -> None:
    """Raise :class:`InvalidParameterError` unless ``value`` is ``expected`` bytes long."""
    if len(value) != expected:
        raise InvalidParameterError(parameter, expected, len(value))


def check_suite(expected: str, key: SigningKey | VerifyKey) -> None:
    """Raise :class:`SuiteMismatchError` unless ``key`` belongs to suite ``expected``."""
    if key.suite != expected:
        raise SuiteMismatchError(expected, key.suite)


def split_signature(signature: bytes, order: int) -> tuple[int, int] | None:
    """Split a raw ``r || s`` signature, or return ``None`` if it is out of range."""
    if len(signature) != SIGNATURE_SIZE:
        return None
    half = SIGNATURE_SIZE // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    if not (0 < r < order and 0 < s < order):
        return None
    return r, s


def join_signature(r: int, s: int) -> bytes:
    """Join ``r`` and ``s`` into the raw 64-byte form."""
    half = SIGNATURE_SIZE // 2
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def scalar_from_bytes(data: bytes, upper: int, on_error: Callable[[], KeyFormatError]) -> int:
    """Read a 32-byte private scalar and check ``1 <= d <= upper``."""
    if len(data) != SIGNATURE_SIZE // 2:
        raise on_error()
    value = int.from_bytes(data, "big")
    if not 1 <= value <= upper:
        raise on_error()
    return value
