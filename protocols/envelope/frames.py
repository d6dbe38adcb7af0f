"""The message envelope, version 1: header, AEAD-encrypted body, signature.

The byte layout is specified in docs/protocols/envelope.md; this module is its
only implementation. All integers are big-endian; text fields are 1 to 64
bytes of visible ASCII (0x21-0x7E) behind a one-byte length.

::

    offset  size  field
    ------  ----  ---------------------------------------------------------
         0     2  magic "SE" (0x53 0x45)
         2     1  version = 0x01
         3     1  suite: 0x01 gm, 0x02 intl
         4     1  flags: bit 0 repeat (重发); bits 1-7 zero
         5     8  timestamp: milliseconds since 1970-01-01T00:00:00Z (u64)
        13    12  nonce (replay key and AEAD nonce)
        25     4  key version (u32)
        29   1+n  sender            (u8 length, ASCII)
         .   1+n  receiver          (u8 length, ASCII)
         .   1+n  message id        (u8 length, ASCII)
         .   1+n  key id            (u8 length, ASCII)
                  ---- end of header = AEAD associated data
         .     4  body length (u32), 16 .. MAX_BODY_SIZE
         .     n  body: ciphertext || 16-byte tag
                  ---- end of signed part = signature input
         .     1  signature length = 64
         .    64  signature r || s
                  ---- end: no trailing bytes

The codec is pure: bytes in, frozen dataclasses out, and the decoder raises
only :class:`~protocols.envelope.errors.EnvelopeError` subclasses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final, Literal

from protocols.envelope.errors import (
    EnvelopeEncodeError,
    MalformedEnvelopeError,
    TruncatedEnvelopeError,
    UnknownSuiteIdError,
    UnsupportedVersionError,
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
    "EnvelopeHeader",
    "SuiteName",
]

SuiteName = Literal["gm", "intl"]

#: First two bytes of every envelope.
MAGIC: Final = b"SE"
#: Format version this module reads and writes.
VERSION: Final = 1
#: Suite byte on the wire, by suite name.
SUITE_IDS: Final[dict[SuiteName, int]] = {"gm": 0x01, "intl": 0x02}
_SUITE_NAMES: Final[dict[int, SuiteName]] = {value: name for name, value in SUITE_IDS.items()}
#: Flag bit: the sender is repeating a message it sent before (same message id).
FLAG_REPEAT: Final = 0x01
#: Nonce length in bytes (the AEAD nonce: 96 bits).
NONCE_SIZE: Final = 12
#: AEAD tag length in bytes; the body is at least this long.
TAG_SIZE: Final = 16
#: Signature length in bytes (raw r || s) for every suite of version 1.
SIGNATURE_SIZE: Final = 64
#: Largest text field, in bytes.
MAX_TEXT_LENGTH: Final = 64
#: Largest body (ciphertext plus tag), in bytes: 16 MiB of plaintext.
MAX_BODY_SIZE: Final = 16 * 1024 * 1024 + TAG_SIZE
_MAX_U32: Final = 0xFFFF_FFFF
_MAX_U64: Final = 0xFFFF_FFFF_FFFF_FFFF

# magic, version, suite, flags, timestamp, nonce, key version
_FIXED: Final = struct.Struct(">2sBBBQ12sI")
_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")


def _text_problem(value: str) -> str | None:
    """Say what is wrong with a text field, or ``None`` if it is valid."""
    if not 1 <= len(value) <= MAX_TEXT_LENGTH:
        return f"length must be 1..{MAX_TEXT_LENGTH}"
    if not all("!" <= char <= "~" for char in value):
        return "only visible ASCII (0x21-0x7E) is allowed"
    return None


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The clear, signed and AEAD-authenticated header of an envelope.

    Attributes:
        sender: Who sealed the envelope (branch, platform or hub code).
        receiver: Who may open it.
        message_id: The sender's message id; the receiver de-duplicates on it.
        timestamp_ms: Sealing time, milliseconds since the Unix epoch (UTC).
        nonce: 12 random bytes: the replay-cache key and the AEAD nonce.
        suite: ``"gm"`` or ``"intl"``.
        key_id: The sender's key set (signing key and AEAD key).
        key_version: Version of that key set (rotation).
        repeat: The sender sends this message id again (a retry).
    """

    sender: str
    receiver: str
    message_id: str
    timestamp_ms: int
    nonce: bytes
    suite: SuiteName
    key_id: str
    key_version: int
    repeat: bool = False

    def __post_init__(self) -> None:
        """Check every field against the format's limits.

        Raises:
            EnvelopeEncodeError: A field is out of range.
        """
        for name in ("sender", "receiver", "message_id", "key_id"):
            problem = _text_problem(getattr(self, name))
            if problem is not None:
                raise EnvelopeEncodeError(name, problem)
        if not 0 <= self.timestamp_ms <= _MAX_U64:
            raise EnvelopeEncodeError("timestamp_ms", "must fit in 64 bits unsigned")
        if len(self.nonce) != NONCE_SIZE:
            raise EnvelopeEncodeError("nonce", f"must be {NONCE_SIZE} bytes")
        if self.suite not in SUITE_IDS:
            raise EnvelopeEncodeError("suite", "unknown suite")
        if not 0 <= self.key_version <= _MAX_U32:
            raise EnvelopeEncodeError("key_version", "must fit in 32 bits unsigned")

    def to_bytes(self) -> bytes:
        """Encode the header; these bytes are also the AEAD associated data."""
        parts = [
            _FIXED.pack(
                MAGIC,
                VERSION,
                SUITE_IDS[self.suite],
                FLAG_REPEAT if self.repeat else 0,
                self.timestamp_ms,
                self.nonce,
                self.key_version,
            )
        ]
        for value in (self.sender, self.receiver, self.message_id, self.key_id):
            encoded = value.encode("ascii")
            parts.append(bytes((len(encoded),)) + encoded)
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A whole envelope: header, encrypted body and signature.

    Attributes:
        header: The clear header.
        body: AEAD ciphertext followed by its 16-byte tag.
        signature: Raw ``r || s`` over :meth:`signed_bytes`.
    """

    header: EnvelopeHeader
    body: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        """Check the body and signature lengths.

        Raises:
            EnvelopeEncodeError: A length is out of range.
        """
        if not TAG_SIZE <= len(self.body) <= MAX_BODY_SIZE:
            raise EnvelopeEncodeError("body", f"length must be {TAG_SIZE}..{MAX_BODY_SIZE}")
        if len(self.signature) != SIGNATURE_SIZE:
            raise EnvelopeEncodeError("signature", f"must be {SIGNATURE_SIZE} bytes")

    @staticmethod
    def signed_part(header: EnvelopeHeader, body: bytes) -> bytes:
        """Return the bytes a signature covers: header, body length and body."""
        return header.to_bytes() + _U32.pack(len(body)) + body

    def signed_bytes(self) -> bytes:
        """Return the bytes :attr:`signature` covers."""
        return self.signed_part(self.header, self.body)

    def to_bytes(self) -> bytes:
        """Encode the whole envelope."""
        return self.signed_bytes() + bytes((len(self.signature),)) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Envelope:
        """Decode one whole envelope; trailing bytes are refused.

        Raises:
            TruncatedEnvelopeError: The data ends early.
            UnsupportedVersionError: The version byte is not 1.
            UnknownSuiteIdError: The suite byte names no suite.
            MalformedEnvelopeError: Any other field is invalid.
        """
        return _decode(bytes(data))


class _Reader:
    """Cursor over received bytes that reports truncation precisely."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise TruncatedEnvelopeError(end, len(self.data))
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def text(self, name: str) -> str:
        start = self.offset
        (length,) = self.take(1)
        raw = self.take(length)
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedEnvelopeError(name, "not ASCII", start) from None
        problem = _text_problem(value)
        if problem is not None:
            raise MalformedEnvelopeError(name, problem, start)
        return value


def _decode(data: bytes) -> Envelope:
    reader = _Reader(data)
    magic = reader.take(2)
    if magic != MAGIC:
        raise MalformedEnvelopeError("magic", "not an envelope", 0)
    (version,) = reader.take(1)
    if version != VERSION:
        raise UnsupportedVersionError(version)
    (suite_id,) = reader.take(1)
    suite = _SUITE_NAMES.get(suite_id)
    if suite is None:
        raise UnknownSuiteIdError(suite_id)
    (flags,) = reader.take(1)
    if flags & ~FLAG_REPEAT:
        raise MalformedEnvelopeError("flags", "reserved bits set", 4)
    (timestamp_ms,) = _U64.unpack(reader.take(_U64.size))
    nonce = reader.take(NONCE_SIZE)
    (key_version,) = _U32.unpack(reader.take(_U32.size))
    sender = reader.text("sender")
    receiver = reader.text("receiver")
    message_id = reader.text("message_id")
    key_id = reader.text("key_id")
    body_offset = reader.offset
    (body_length,) = _U32.unpack(reader.take(_U32.size))
    if not TAG_SIZE <= body_length <= MAX_BODY_SIZE:
        raise MalformedEnvelopeError("body_length", "out of range", body_offset)
    body = reader.take(body_length)
    signature_offset = reader.offset
    (signature_length,) = reader.take(1)
    if signature_length != SIGNATURE_SIZE:
        raise MalformedEnvelopeError("signature_length", "wrong length", signature_offset)
    signature = reader.take(signature_length)
    if reader.offset != len(data):
        raise MalformedEnvelopeError("trailer", "bytes after the signature", reader.offset)
    header = EnvelopeHeader(
        sender=sender,
        receiver=receiver,
        message_id=message_id,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        suite=suite,
        key_id=key_id,
        key_version=key_version,
        repeat=bool(flags & FLAG_REPEAT),
    )
    return Envelope(header=header, body=body, signature=signature)
