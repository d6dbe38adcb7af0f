"""Crypto suites: one :class:`CryptoSuite` interface, two algorithm families.

``gm``: SM3, HMAC-SM3, SM4-GCM, SM2 with SM3 and the default user id.
``intl``: SHA-256, HMAC-SHA256, AES-256-GCM, ECDSA P-256 with SHA-256.

>>> suite = get_suite("gm")
>>> key = suite.generate_signing_key()
>>> suite.verify(key.public_key, suite.sign(key, b"hello"), b"hello")
True
"""

from __future__ import annotations

from typing import Final

from security.suites._base import (
    AEAD_NONCE_SIZE,
    AEAD_TAG_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    AeadAuthenticationError,
    CryptoError,
    CryptoSuite,
    InvalidParameterError,
    KeyFormatError,
    SigningKey,
    SuiteMismatchError,
    SuiteName,
    UnknownSuiteError,
    VerifyKey,
)
from security.suites.gm import GmSuite
from security.suites.intl import IntlSuite

__all__ = [
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "GM",
    "INTL",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "SUITES",
    "AeadAuthenticationError",
    "CryptoError",
    "CryptoSuite",
    "GmSuite",
    "IntlSuite",
    "InvalidParameterError",
    "KeyFormatError",
    "SigningKey",
    "SuiteMismatchError",
    "SuiteName",
    "UnknownSuiteError",
    "VerifyKey",
    "get_suite",
]

#: The Chinese commercial-cryptography suite (stateless, shareable).
GM: Final[CryptoSuite] = GmSuite()
#: The international suite (stateless, shareable).
INTL: Final[CryptoSuite] = IntlSuite()
#: Every suite by name.
SUITES: Final[dict[str, CryptoSuite]] = {GM.name: GM, INTL.name: INTL}


def get_suite(name: str) -> CryptoSuite:
    """Return the suite called ``name`` (``"gm"`` or ``"intl"``).

    Raises:
        UnknownSuiteError: No suite has that name.
    """
    try:
        return SUITES[name]
    except KeyError:
        raise UnknownSuiteError(name) from None
