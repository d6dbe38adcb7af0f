"""The ``intl`` suite: SHA-256, HMAC-SHA256, AES-256-GCM and ECDSA P-256 with SHA-256.

Everything comes from ``cryptography``. Signatures travel as raw ``r || s``
(64 bytes, as in JOSE ES256) so both suites share one wire layout.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from security.suites._base import (
    AEAD_NONCE_SIZE,
    AEAD_TAG_SIZE,
    PUBLIC_KEY_SIZE,
    AeadAuthenticationError,
    KeyFormatError,
    SigningKey,
    SuiteName,
    VerifyKey,
    check_length,
    check_suite,
    join_signature,
    scalar_from_bytes,
    split_signature,
)

__all__ = ["P256_ORDER", "IntlSuite"]

#: Order ``n`` of NIST P-256 (FIPS 186-4, D.1.2.3).
P256_ORDER: Final = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
_AES_KEY_SIZE: Final = 32
_NAME: Final[SuiteName] = "intl"
_ECDSA: Final = ec.ECDSA(hashes.SHA256())


class IntlSuite:
    """SHA-256 / HMAC-SHA256 / AES-256-GCM / ECDSA P-256 with SHA-256."""

    @property
    def name(self) -> SuiteName:
        """``"intl"``."""
        return _NAME

    @property
    def aead_key_size(self) -> int:
        """32: AES-256."""
        return _AES_KEY_SIZE

    @property
    def digest_size(self) -> int:
        """32: SHA-256."""
        return hashes.SHA256.digest_size

    def hash(self, data: bytes) -> bytes:
        """SHA-256 of ``data``."""
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        return digest.finalize()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under ``key``."""
        mac = crypto_hmac.HMAC(key, hashes.SHA256())
        mac.update(data)
        return mac.finalize()

    def hmac_verify(self, key: bytes, data: bytes, tag: bytes) -> bool:
        """Tell, in constant time, whether ``tag`` is the HMAC-SHA256 of ``data``."""
        return constant_time.bytes_eq(self.hmac(key, data), tag)

    def aead_encrypt(
        self, key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes
    ) -> bytes:
        """AES-256-GCM encrypt; return ``ciphertext || tag`` (16-byte tag)."""
        check_length("key", key, _AES_KEY_SIZE)
        check_length("nonce", nonce, AEAD_NONCE_SIZE)
        return AESGCM(key).encrypt(nonce, plaintext, associated_data)

    def aead_decrypt(
        self, key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes
    ) -> bytes:
        """AES-256-GCM check and decrypt ``ciphertext || tag``."""
        check_length("key", key, _AES_KEY_SIZE)
        check_length("nonce", nonce, AEAD_NONCE_SIZE)
        if len(ciphertext) < AEAD_TAG_SIZE:
            raise AeadAuthenticationError(_NAME)
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise AeadAuthenticationError(_NAME) from None

    def generate_signing_key(self) -> SigningKey:
        """Make a new random P-256 key."""
        return self._wrap_private(ec.generate_private_key(ec.SECP256R1()))

    def load_signing_key(self, data: bytes) -> SigningKey:
        """Load a P-256 key from its 32-byte scalar ``d`` (``1 <= d <= n - 1``)."""
        scalar = scalar_from_bytes(data, P256_ORDER - 1, lambda: KeyFormatError(_NAME, "private"))
        return self._wrap_private(ec.derive_private_key(scalar, ec.SECP256R1()))

    def signing_key_bytes(self, key: SigningKey) -> bytes:
        """Export the 32-byte private scalar ``d``."""
        check_suite(_NAME, key)
        private = _private(key)
        return private.private_numbers().private_value.to_bytes(32, "big")

    def load_verify_key(self, data: bytes) -> VerifyKey:
        """Load a P-256 public key from ``04 || X || Y``."""
        if len(data) != PUBLIC_KEY_SIZE or data[0] != 0x04:  # noqa: PLR2004 - SEC 1 uncompressed
            raise KeyFormatError(_NAME, "public")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
        except ValueError:
            raise KeyFormatError(_NAME, "public") from None
        return VerifyKey(suite=_NAME, encoded=bytes(data), handle=public)

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        """ECDSA-P256-SHA256-sign ``data``; return the 64-byte ``r || s``."""
        check_suite(_NAME, key)
        r, s = decode_dss_signature(_private(key).sign(data, _ECDSA))
        return join_signature(r, s)

    def verify(self, key: VerifyKey, signature: bytes, data: bytes) -> bool:
        """Check an ECDSA ``r || s`` signature over ``data``; never raises on bad input."""
        check_suite(_NAME, key)
        parts = split_signature(signature, P256_ORDER)
        if parts is None:
            return False
        public = key.handle
        if not isinstance(public, ec.EllipticCurvePublicKey):  # pragma: no cover - own handles
            return False
        try:
            public.verify(encode_dss_signature(*parts), data, _ECDSA)
        except InvalidSignature:
            return False
        return True

    @staticmethod
    def _wrap_private(private: ec.EllipticCurvePrivateKey) -> SigningKey:
        public = private.public_key()
        encoded = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        verify_key = VerifyKey(suite=_NAME, encoded=encoded, handle=public)
        return SigningKey(suite=_NAME, public_key=verify_key, handle=private)


def _private(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    handle = key.handle
    if not isinstance(handle, ec.EllipticCurvePrivateKey):  # pragma: no cover - own handles
        raise TypeError("not a P-256 private key handle")
    return handle
