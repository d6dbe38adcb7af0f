"""Clear ISO 9564-1 PIN block fields: formats 0, 3 and 4.

**For key store implementations only.** These pure functions build and parse
the *clear* PIN block, which holds the PIN. Outside :mod:`security.keystore`
nothing may import this module (a test enforces it): the rest of the daemon
handles :class:`security.keystore.EncryptedPinBlock` objects only.

Supported layouts (one hex digit is one nibble)::

    format 0, 8 bytes (3DES):   PIN field  0 N P P P P P/F ... F      (16 nibbles)
                                PAN field  0 0 0 0 A1 ... A12         (16 nibbles)
                                block    = PIN field XOR PAN field
    format 3, 8 bytes (3DES):   as format 0, control nibble 3, fill random A-F
    format 0/3, 16 bytes (SM4): the same, widened to 32 nibbles: the PIN field
                                is filled to 32 nibbles, the PAN field is 20
                                zero nibbles then A1..A12 (the layout Chinese
                                bank PIN pads use with SM4; example below)
    format 4, 16 bytes (AES):   PIN field  4 N P P P P P/A ... A (16 nibbles)
                                           R R ... R (8 random bytes)
                                PAN field  M A1 ... A(12+M) 0 ... 0   (32 nibbles)
                                (M = PAN length - 12, or 0 and the PAN
                                left-padded with zeros to 12 digits)
                                enciphered as E(E(PIN field) XOR PAN field)
                                by the key store

``N`` is the PIN length (4-12), ``A1..A12`` are the 12 rightmost PAN digits
excluding the check digit. Every error is a :class:`PinBlockError` whose message
and attributes never contain PIN digits or block bytes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from enum import IntEnum, StrEnum
from typing import Final, TypeAlias

from security.errors import SecurityError

__all__ = [
    "MAX_PIN_LENGTH",
    "MIN_PIN_LENGTH",
    "PinBlockError",
    "PinBlockFault",
    "PinBlockFormat",
    "RandomSource",
    "build_format0",
    "build_format3",
    "build_format4_pan_field",
    "build_format4_pin_field",
    "parse_format0",
    "parse_format3",
    "parse_format4_pin_field",
]

#: PIN length bounds, ISO 9564-1 clause 8.1 (digits).
MIN_PIN_LENGTH: Final = 4
MAX_PIN_LENGTH: Final = 12

#: Block sizes in bytes: 64-bit ciphers (3DES) and 128-bit ciphers (SM4, AES).
_SHORT_BLOCK: Final = 8
_LONG_BLOCK: Final = 16
_FORMAT4_PIN_PART: Final = 8  # bytes of the format 4 PIN field before the random half

#: A callable returning that many random bytes (``secrets.token_bytes`` by default).
RandomSource: TypeAlias = Callable[[int], bytes]

_PIN_RE: Final = re.compile(r"[0-9]{4,12}")
_PAN_RE: Final = re.compile(r"[0-9]{1,19}")
_PAN_MIN_FORMAT_0_3: Final = 13  # 12 digits plus the check digit
_PAN_DIGITS_FORMAT_4: Final = 12
_RANDOM_TRIES: Final = 64  # rejection-sampling rounds before giving up on a random source
_FILL_VALUES: Final = 6  # format 3 fill nibbles are A..F
_UNBIASED_LIMIT: Final = 252  # largest multiple of 6 not above 256


class PinBlockFormat(IntEnum):
    """ISO 9564-1 PIN block formats this module supports (the value is the control nibble)."""

    ISO_0 = 0
    ISO_3 = 3
    ISO_4 = 4


class PinBlockFault(StrEnum):
    """What is wrong with a PIN, a PAN or a clear PIN block."""

    PIN = "pin must be 4-12 decimal digits"
    PAN = "pan is not a valid account number for this format"
    BLOCK_SIZE = "wrong block size"
    CONTROL = "control nibble does not match the format"
    LENGTH = "pin length nibble out of range"
    DIGITS = "pin digit nibble out of range"
    FILL = "fill nibbles invalid"
    RANDOM = "random source produced no usable bytes"


class PinBlockError(SecurityError):
    """A PIN, PAN or clear PIN block is invalid.

    Attributes:
        fault: What is wrong.
        pin_block_format: The format being built or parsed.
    """

    def __init__(self, fault: PinBlockFault, pin_block_format: PinBlockFormat) -> None:
        """Record the fault and the format; never the PIN or the block."""
        super().__init__(f"PIN block format {int(pin_block_format)}: {fault.value}")
        self.fault = fault
        self.pin_block_format = pin_block_format


def _check_pin(pin: str, fmt: PinBlockFormat) -> None:
    if not isinstance(pin, str) or _PIN_RE.fullmatch(pin) is None:
        raise PinBlockError(PinBlockFault.PIN, fmt)


def _check_block_size(block_size: int, fmt: PinBlockFormat) -> None:
    if block_size not in (_SHORT_BLOCK, _LONG_BLOCK):
        raise PinBlockError(PinBlockFault.BLOCK_SIZE, fmt)


def _pan_field_0_3(pan: str, block_size: int, fmt: PinBlockFormat) -> bytes:
    if not isinstance(pan, str) or _PAN_RE.fullmatch(pan) is None or len(pan) < _PAN_MIN_FORMAT_0_3:
        raise PinBlockError(PinBlockFault.PAN, fmt)
    digits = pan[-13:-1]  # 12 rightmost digits excluding the check digit
    return bytes.fromhex(digits.rjust(block_size * 2, "0"))


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _random_fill_nibbles(count: int, random: RandomSource, fmt: PinBlockFormat) -> str:
    """``count`` nibbles uniformly drawn from A..F (rejection sampling, no modulo bias)."""
    out: list[str] = []
    for _ in range(_RANDOM_TRIES):
        if len(out) >= count:
            break
        out.extend("ABCDEF"[b % _FILL_VALUES] for b in random(count) if b < _UNBIASED_LIMIT)
    if len(out) < count:
        raise PinBlockError(PinBlockFault.RANDOM, fmt)
    return "".join(out[:count])


def _build_0_3(
    fmt: PinBlockFormat, pin: str, pan: str, block_size: int, fill: Callable[[int], str]
) -> bytes:
    _check_pin(pin, fmt)
    _check_block_size(block_size, fmt)
    pan_field = _pan_field_0_3(pan, block_size, fmt)
    head = f"{int(fmt):X}{len(pin):X}{pin}"
    pin_field = bytes.fromhex(head + fill(block_size * 2 - len(head)))
    return _xor(pin_field, pan_field)


def build_format0(pin: str, pan: str, *, block_size: int = _SHORT_BLOCK) -> bytes:
    """Build a clear ISO 9564 format 0 PIN block.

    Args:
        pin: 4-12 decimal digits.
        pan: The primary account number, 13-19 digits.
        block_size: 8 for 3DES, 16 for the widened SM4 layout.

    Returns:
        The clear PIN block.

    Raises:
        PinBlockError: The PIN, PAN or block size is invalid.
    """
    return _build_0_3(PinBlockFormat.ISO_0, pin, pan, block_size, lambda n: "F" * n)


def build_format3(
    pin: str,
    pan: str,
    *,
    block_size: int = _SHORT_BLOCK,
    random: RandomSource = secrets.token_bytes,
) -> bytes:
    """Build a clear ISO 9564 format 3 PIN block (fill nibbles random in A..F).

    Args:
        pin: 4-12 decimal digits.
        pan: The primary account number, 13-19 digits.
        block_size: 8 for 3DES, 16 for the widened SM4 layout.
        random: Source of random bytes (injectable for tests).

    Returns:
        The clear PIN block.

    Raises:
        PinBlockError: The PIN, PAN or block size is invalid.
    """
    fmt = PinBlockFormat.ISO_3
    return _build_0_3(fmt, pin, pan, block_size, lambda n: _random_fill_nibbles(n, random, fmt))


def _parse_0_3(fmt: PinBlockFormat, block: bytes, pan: str, fill: str) -> str:
    if not isinstance(block, bytes | bytearray) or len(block) not in (_SHORT_BLOCK, _LONG_BLOCK):
        raise PinBlockError(PinBlockFault.BLOCK_SIZE, fmt)
    nibbles = _xor(bytes(block), _pan_field_0_3(pan, len(block), fmt)).hex().upper()
    return _parse_pin_nibbles(fmt, nibbles, fill)


def _parse_pin_nibbles(fmt: PinBlockFormat, nibbles: str, fill: str) -> str:
    if nibbles[0] != f"{int(fmt):X}":
        raise PinBlockError(PinBlockFault.CONTROL, fmt)
    length = int(nibbles[1], 16)
    if not MIN_PIN_LENGTH <= length <= MAX_PIN_LENGTH:
        raise PinBlockError(PinBlockFault.LENGTH, fmt)
    pin = nibbles[2 : 2 + length]
    if not pin.isdigit():
        raise PinBlockError(PinBlockFault.DIGITS, fmt)
    if any(n not in fill for n in nibbles[2 + length :]):
        raise PinBlockError(PinBlockFault.FILL, fmt)
    return pin


def parse_format0(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 0 PIN block (8 or 16 bytes).

    Args:
        block: The clear PIN block.
        pan: The primary account number it was built with.

    Returns:
        The PIN digits.

    Raises:
        PinBlockError: The block is not a valid format 0 block for this PAN.
    """
    return _parse_0_3(PinBlockFormat.ISO_0, block, pan, "F")


def parse_format3(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 3 PIN block (8 or 16 bytes).

    Args:
        block: The clear PIN block.
        pan: The primary account number it was built with.

    Returns:
        The PIN digits.

    Raises:
        PinBlockError: The block is not a valid format 3 block for this PAN.
    """
    return _parse_0_3(PinBlockFormat.ISO_3, block, pan, "ABCDEF")


def build_format4_pin_field(pin: str, *, random: RandomSource = secrets.token_bytes) -> bytes:
    """Build the clear 16-byte ISO 9564 format 4 plain-text PIN field.

    Args:
        pin: 4-12 decimal digits.
        random: Source of the 8 random bytes of the second half (injectable for tests).

    Returns:
        The PIN field.

    Raises:
        PinBlockError: The PIN is invalid or the random source failed.
    """
    fmt = PinBlockFormat.ISO_4
    _check_pin(pin, fmt)
    head = f"4{len(pin):X}{pin}"
    tail = random(_FORMAT4_PIN_PART)
    if not isinstance(tail, bytes) or len(tail) != _FORMAT4_PIN_PART:
        raise PinBlockError(PinBlockFault.RANDOM, fmt)
    return bytes.fromhex(head.ljust(_FORMAT4_PIN_PART * 2, "A")) + tail


def build_format4_pan_field(pan: str) -> bytes:
    """Build the 16-byte ISO 9564 format 4 plain-text PAN field.

    Args:
        pan: The primary account number, 1-19 digits.

    Returns:
        The PAN field.

    Raises:
        PinBlockError: The PAN is invalid.
    """
    if not isinstance(pan, str) or _PAN_RE.fullmatch(pan) is None:
        raise PinBlockError(PinBlockFault.PAN, PinBlockFormat.ISO_4)
    extra = max(len(pan) - _PAN_DIGITS_FORMAT_4, 0)
    digits = pan.rjust(_PAN_DIGITS_FORMAT_4, "0")
    return bytes.fromhex(f"{extra:X}{digits}".ljust(_LONG_BLOCK * 2, "0"))


def parse_format4_pin_field(field: bytes) -> str:
    """Recover the PIN from a clear format 4 plain-text PIN field.

    Args:
        field: The 16-byte PIN field (after the key store deciphered the block).

    Returns:
        The PIN digits.

    Raises:
        PinBlockError: The field is not a valid format 4 PIN field.
    """
    fmt = PinBlockFormat.ISO_4
    if not isinstance(field, bytes | bytearray) or len(field) != _LONG_BLOCK:
        raise PinBlockError(PinBlockFault.BLOCK_SIZE, fmt)
    return _parse_pin_nibbles(fmt, bytes(field[:_FORMAT4_PIN_PART]).hex().upper(), "A")
