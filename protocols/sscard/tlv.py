"""The simple TLV of the card's records: one tag byte, a BER length, the value.

::

    +-----+-----------------------------+-------------+
    | tag | length: 00..7F | 81 nn | 82 nn nn | value |
    +-----+-----------------------------+-------------+

Tags ``00`` and ``FF`` are padding and are never valid. A record may hold one
TLV or several; :func:`decode_tlvs` stops at trailing ``00``/``FF`` padding.
"""

from __future__ import annotations

from typing import Final

from protocols.sscard.errors import SscardDecodeError, SscardEncodeError

__all__ = ["MAX_VALUE_LENGTH", "decode_tlvs", "encode_tlv"]

#: Largest value this codec writes or reads (2-byte BER length).
MAX_VALUE_LENGTH: Final = 0xFFFF
_PADDING: Final = (0x00, 0xFF)
_ONE_BYTE: Final = 0x7F
_LEN_81: Final = 0x81
_LEN_82: Final = 0x82


def encode_tlv(tag: int, value: bytes) -> bytes:
    """Encode one TLV.

    Raises:
        SscardEncodeError: The tag is not 01..FE or the value is too long.
    """
    if not 0 < tag < 0xFF:  # noqa: PLR2004 - one byte, 00 and FF are padding
        raise SscardEncodeError("tag", "must be 01..FE")
    size = len(value)
    if size <= _ONE_BYTE:
        length = bytes((size,))
    elif size <= 0xFF:  # noqa: PLR2004 - one length byte after 81
        length = bytes((_LEN_81, size))
    elif size <= MAX_VALUE_LENGTH:
        length = bytes((_LEN_82,)) + size.to_bytes(2, "big")
    else:
        raise SscardEncodeError("value", f"at most {MAX_VALUE_LENGTH} bytes")
    return bytes((tag,)) + length + value


def decode_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """Decode consecutive TLVs, in order, up to the end or to padding.

    Raises:
        SscardDecodeError: A length runs past the end or uses a form other
            than one byte, ``81 nn`` or ``82 nn nn``.
    """
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data) and data[pos] not in _PADDING:
        tag = data[pos]
        if pos + 1 >= len(data):
            raise SscardDecodeError("tag without a length", tag)
        first = data[pos + 1]
        pos += 2
        if first <= _ONE_BYTE:
            size = first
        elif first == _LEN_81 and pos < len(data):
            size = data[pos]
            pos += 1
        elif first == _LEN_82 and pos + 1 < len(data):
            size = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        else:
            raise SscardDecodeError("unsupported or truncated length", tag)
        if pos + size > len(data):
            raise SscardDecodeError("value runs past the end", tag)
        items.append((tag, bytes(data[pos : pos + size])))
        pos += size
    return items
