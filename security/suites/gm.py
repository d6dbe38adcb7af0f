"""The ``gm`` suite: SM3, HMAC-SM3, SM4-GCM and SM2 with SM3.

SM3 (GB/T 32905) and SM4 (GB/T 32907) come from ``cryptography``; SM4-GCM is
``cryptography``'s generic GCM mode over SM4 and matches RFC 8998 Appendix A.1.
``cryptography`` has no SM2, so signatures use ``tongsuopy`` (Tongsuo, the
OpenAtom fork of OpenSSL, as a native wheel); see docs/performance.md "Crypto"
for why this library was chosen.

SM2 signatures follow GB/T 32918.2 / GM/T 0009: the message is hashed with SM3
after the ``Z_A`` prefix computed over the default user id
``1234567812345678``, the id every Chinese platform uses unless agreed
otherwise. Signatures travel as raw ``r || s`` (64 bytes).
"""

from __future__ import annotations

from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from tongsuopy.crypto import exceptions as tongsuo_exceptions  # type: ignore[import-untyped]
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec  # type: ignore[import-untyped]

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

__all__ = ["SM2_DEFAULT_USER_ID", "SM2_ORDER", "GmSuite"]

#: Order ``n`` of the SM2 recommended curve (GB/T 32918.5, clause 3).
SM2_ORDER: Final = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
#: User id hashed into ``Z_A`` when none is agreed (GM/T 0009-2012, clause 10).
SM2_DEFAULT_USER_ID: Final = b"1234567812345678"
_SM4_KEY_SIZE: Final = 16
_NAME: Final[SuiteName] = "gm"
# Tongsuo reports a malformed DER signature as InternalError (its assert on the
# EVP_DigestVerify return value), a wrong one as InvalidSignature.
_VERIFY_FAILURES: Final = (
    tongsuo_exceptions.InvalidSignature,
    tongsuo_exceptions.InternalError,
    ValueError,
)


def _sm2_algorithm() -> Any:  # noqa: ANN401 - tongsuopy ships no type information
    # Tongsuo computes Z_A with the default user id 1234567812345678 (checked
    # against the GM/T 0003.5 example in tests/security/test_suites.py).
    return tongsuo_ec.ECDSA(tongsuo_hashes.SM3())


class GmSuite:
    """SM3 / HMAC-SM3 / SM4-GCM / SM2-with-SM3 (Chinese commercial cryptography)."""

    @property
    def name(self) -> SuiteName:
        """``"gm"``."""
        return _NAME

    @property
    def aead_key_size(self) -> int:
        """16: SM4 has 128-bit keys."""
        return _SM4_KEY_SIZE

    @property
    def digest_size(self) -> int:
        """32: SM3 digests are 256 bits."""
        return hashes.SM3.digest_size

    def hash(self, data: bytes) -> bytes:
        """SM3 of ``data``."""
        digest = hashes.Hash(hashes.SM3())
        digest.update(data)
        return digest.finalize()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        """HMAC-SM3 of ``data`` under ``key``."""
        mac = crypto_hmac.HMAC(key, hashes.SM3())
        mac.update(data)
        return mac.finalize()

    def hmac_verify(self, key: bytes, data: bytes, tag: bytes) -> bool:
        """Tell, in constant time, whether ``tag`` is the HMAC-SM3 of ``data``."""
        return constant_time.bytes_eq(self.hmac(key, data), tag)

    def aead_encrypt(
        self, key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes
    ) -> bytes:
        """SM4-GCM encrypt; return ``ciphertext || tag`` (16-byte tag)."""
        check_length("key", key, _SM4_KEY_SIZE)
        check_length("nonce", nonce, AEAD_NONCE_SIZE)
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(associated_data)
        ciphertext = encryptor.update(plaintext) + encryptor.finalize()
        return ciphertext + encryptor.tag

    def aead_decrypt(
        self, key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes
    ) -> bytes:
        """SM4-GCM check and decrypt ``ciphertext || tag``."""
        check_length("key", key, _SM4_KEY_SIZE)
        check_length("nonce", nonce, AEAD_NONCE_SIZE)
        if len(ciphertext) < AEAD_TAG_SIZE:
            raise AeadAuthenticationError(_NAME)
        body, tag = ciphertext[:-AEAD_TAG_SIZE], ciphertext[-AEAD_TAG_SIZE:]
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(associated_data)
        try:
            return decryptor.update(body) + decryptor.finalize()
        except InvalidTag:
            raise AeadAuthenticationError(_NAME) from None

    def generate_signing_key(self) -> SigningKey:
        """Make a new random SM2 key."""
        return self._wrap_private(tongsuo_ec.generate_private_key(tongsuo_ec.SM2()))

    def load_signing_key(self, data: bytes) -> SigningKey:
        """Load an SM2 key from its 32-byte scalar ``d`` (``1 <= d <= n - 2``)."""
        scalar = scalar_from_bytes(data, SM2_ORDER - 2, lambda: KeyFormatError(_NAME, "private"))
        try:
            private = tongsuo_ec.derive_private_key(scalar, tongsuo_ec.SM2())
        except ValueError:
            raise KeyFormatError(_NAME, "private") from None
        return self._wrap_private(private)

    def signing_key_bytes(self, key: SigningKey) -> bytes:
        """Export the 32-byte private scalar ``d``."""
        check_suite(_NAME, key)
        scalar: int = key.handle.private_numbers().private_value  # type: ignore[attr-defined]
        return scalar.to_bytes(32, "big")

    def load_verify_key(self, data: bytes) -> VerifyKey:
        """Load an SM2 public key from ``04 || X || Y``."""
        if len(data) != PUBLIC_KEY_SIZE or data[0] != 0x04:  # noqa: PLR2004 - SEC 1 uncompressed
            raise KeyFormatError(_NAME, "public")
        try:
            public = tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(tongsuo_ec.SM2(), data)
        except ValueError:
            raise KeyFormatError(_NAME, "public") from None
        return VerifyKey(suite=_NAME, encoded=bytes(data), handle=public)

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        """SM2-sign ``data`` (SM3, default user id); return the 64-byte ``r || s``."""
        check_suite(_NAME, key)
        der: bytes = key.handle.sign(data, _sm2_algorithm())  # type: ignore[attr-defined]
        r, s = decode_dss_signature(der)
        return join_signature(r, s)

    def verify(self, key: VerifyKey, signature: bytes, data: bytes) -> bool:
        """Check an SM2 ``r || s`` signature over ``data``; never raises on bad input."""
        check_suite(_NAME, key)
        parts = split_signature(signature, SM2_ORDER)
        if parts is None:
            return False
        der = encode_dss_signature(*parts)
        try:
            key.handle.verify(der, data, _sm2_algorithm())  # type: ignore[attr-defined]
        except _VERIFY_FAILURES:
            return False
        return True

    @staticmethod
    def _wrap_private(private: Any) -> SigningKey:  # noqa: ANN401 - tongsuopy is untyped
        public = private.public_key()
        encoded: bytes = public.public_bytes(
            tongsuo_serialization.Encoding.X962,
            tongsuo_serialization.PublicFormat.UncompressedPoint,
        )
        verify_key = VerifyKey(suite=_NAME, encoded=encoded, handle=public)
        return SigningKey(suite=_NAME, public_key=verify_key, handle=private)
