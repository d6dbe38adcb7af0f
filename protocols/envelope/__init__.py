"""The signed and encrypted message envelope: canonical binary codec (sans-I/O).

Specified in docs/protocols/envelope.md. Sealing and opening (keys, signature,
AEAD, time window, replay cache) live in :mod:`security.envelope`; this package
only turns frames into bytes and back.
"""

from protocols.envelope.errors import (
    EnvelopeDecodeError,
    EnvelopeEncodeError,
    EnvelopeError,
    MalformedEnvelopeError,
    TruncatedEnvelopeError,
    UnknownSuiteIdError,
    UnsupportedVersionError,
)
from protocols.envelope.frames import (
    FLAG_REPEAT,
    MAGIC,
    MAX_BODY_SIZE,
    MAX_TEXT_LENGTH,
    NONCE_SIZE,
    SIGNATURE_SIZE,
    SUITE_IDS,
    TAG_SIZE,
    VERSION,
    Envelope,
    EnvelopeHeader,
    SuiteName,
)

__all__ = [
    "FLAG_REPEAT",
    "MAGIC",
    "MAX_BODY_SIZE",
    "MAX_TEXT_LENGTH",
    "NONCE_SIZE",
    "SIGNATURE_SIZE",
    "SUITE_IDS",
    "TAG_SIZE",
    "VERSION",
    "Envelope",
    "EnvelopeDecodeError",
    "EnvelopeEncodeError",
    "EnvelopeError",
    "EnvelopeHeader",
    "MalformedEnvelopeError",
    "SuiteName",
    "TruncatedEnvelopeError",
    "UnknownSuiteIdError",
    "UnsupportedVersionError",
]
