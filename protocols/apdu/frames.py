"""ISO/IEC 7816-4 command and response APDUs, short and extended (ISO/IEC 7816-3 cases).

::

    command APDU                                     case
    +-----+-----+----+----+                          1   no data, no answer data
    | CLA | INS | P1 | P2 |
    +-----+-----+----+----+----+                     2S  Le in 1 byte (00 = 256)
    | CLA | INS | P1 | P2 | Le |
    +-----+-----+----+----+----+------+              3S  Lc in 1 byte (1..255)
    | CLA | INS | P1 | P2 | Lc | data |
    +-----+-----+----+----+----+------+----+         4S
    | CLA | INS | P1 | P2 | Lc | data | Le |
    +-----+-----+----+----+----+------+----+
    | CLA | INS | P1 | P2 | 00 | Le Le |             2E  Le in 2 bytes (0000 = 65536)
    | CLA | INS | P1 | P2 | 00 | Lc Lc | data |      3E  Lc in 2 bytes (1..65535)
    | CLA | INS | P1 | P2 | 00 | Lc Lc | data | Le Le |  4E

    response APDU
    +------------------+-----+-----+
    | data (0..65536)  | SW1 | SW2 |
    +------------------+-----+-----+

An extended APDU is used when the data is longer than 255 bytes or Le above
256, or when asked for; in case 4E, Le takes 2 bytes without the leading 00.
The codec is pure and its decoders raise only :class:`~protocols.apdu.errors.ApduError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocols.apdu.errors import ApduDecodeError, ApduEncodeError

__all__ = [
    "MAX_EXTENDED_DATA",
    "MAX_EXTENDED_LE",
    "MAX_SHORT_DATA",
    "MAX_SHORT_LE",
    "SW_OK",
    "CommandApdu",
    "ResponseApdu",
]

#: Largest command data in a short APDU (ISO/IEC 7816-3, 12.1.3).
MAX_SHORT_DATA: Final = 255
#: Largest Le in a short APDU (encoded as ``00``).
MAX_SHORT_LE: Final = 256
#: Largest command data in an extended APDU.
MAX_EXTENDED_DATA: Final = 65535
#: Largest Le in an extended APDU (encoded as ``0000``).
MAX_EXTENDED_LE: Final = 65536
#: Status word of normal processing.
SW_OK: Final = 0x9000
_HEADER_SIZE: Final = 4


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """One command APDU (layout in the module docstring).

    Attributes:
        cla: Class byte.
        ins: Instruction byte.
        p1: Parameter 1.
        p2: Parameter 2.
        data: Command data (``Lc`` is its length; empty for cases 1 and 2).
        le: Expected answer length, 1..65536, or ``None`` when absent (cases 1 and 3).
        extended: Encoded with 2-byte lengths. Set automatically when the data
            or ``le`` does not fit a short APDU.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        """Check every field and choose the extended form when needed."""
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:  # noqa: PLR2004 - one byte
                raise ApduEncodeError(name, "must be 0..255")
        if len(self.data) > MAX_EXTENDED_DATA:
            raise ApduEncodeError("data", f"at most {MAX_EXTENDED_DATA} bytes")
        if self.le is not None and not 1 <= self.le <= MAX_EXTENDED_LE:
            raise ApduEncodeError("le", f"must be 1..{MAX_EXTENDED_LE} or absent")
        needs_extended = len(self.data) > MAX_SHORT_DATA or (
            self.le is not None and self.le > MAX_SHORT_LE
        )
        if needs_extended and not self.extended:
            object.__setattr__(self, "extended", True)
        if self.extended and not self.data and self.le is None:
            object.__setattr__(self, "extended", False)

    @property
    def header(self) -> bytes:
        """``CLA INS P1 P2``."""
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def with_le(self, le: int) -> CommandApdu:
        """The same command with another Le (a ``6Cxx`` resend)."""
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, le, self.extended)

    def to_bytes(self) -> bytes:
        """Encode to wire bytes."""
        out = bytearray(self.header)
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
                if self.le is not None:
                    out += (self.le % MAX_EXTENDED_LE).to_bytes(2, "big")
            elif self.le is not None:
                out += b"\x00" + (self.le % MAX_EXTENDED_LE).to_bytes(2, "big")
            return bytes(out)
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out.append(self.le % MAX_SHORT_LE)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> CommandApdu:
        """Decode wire bytes into a command APDU.

        Raises:
            ApduDecodeError: The bytes fit none of the seven ISO/IEC 7816-3 cases.
        """
        size = len(data)
        if size < _HEADER_SIZE:
            raise ApduDecodeError("shorter than a header", size)
        cla, ins, p1, p2 = data[:_HEADER_SIZE]
        body = data[_HEADER_SIZE:]
        if not body:
            return cls(cla, ins, p1, p2)
        first = body[0]
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=first or MAX_SHORT_LE)
        if first:
            if len(body) == 1 + first:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if len(body) == 2 + first:
                return cls(cla, ins, p1, p2, bytes(body[1:-1]), body[-1] or MAX_SHORT_LE)
            raise ApduDecodeError("short Lc does not match the body", size)
        return cls._from_extended(cla, ins, p1, p2, body)

    @classmethod
    def _from_extended(cls, cla: int, ins: int, p1: int, p2: int, body: bytes) -> CommandApdu:
        size = _HEADER_SIZE + len(body)
        if len(body) < 3:  # noqa: PLR2004 - 00 + two length bytes
            raise ApduDecodeError("extended length needs three bytes", size)
        value = int.from_bytes(body[1:3], "big")
        if len(body) == 3:  # noqa: PLR2004 - case 2E
            return cls(cla, ins, p1, p2, le=value or MAX_EXTENDED_LE, extended=True)
        if value == 0:
            raise ApduDecodeError("extended Lc of zero", size)
        if len(body) == 3 + value:
            return cls(cla, ins, p1, p2, bytes(body[3:]), extended=True)
        if len(body) == 5 + value:
            le = int.from_bytes(body[-2:], "big") or MAX_EXTENDED_LE
            return cls(cla, ins, p1, p2, bytes(body[3:-2]), le, extended=True)
        raise ApduDecodeError("extended Lc does not match the body", size)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """One response APDU: answer data and the status word.

    ::

        +------------------+-----+-----+
        | data (0..65536)  | SW1 | SW2 |
        +------------------+-----+-----+

    Attributes:
        data: Answer data (may be empty).
        sw: Status word ``SW1 << 8 | SW2``.
    """

    data: bytes
    sw: int

    def __post_init__(self) -> None:
        """Check the status word and the data length."""
        if not 0 <= self.sw <= 0xFFFF:  # noqa: PLR2004 - two bytes
            raise ApduEncodeError("sw", "must be 0..0xFFFF")
        if len(self.data) > MAX_EXTENDED_LE:
            raise ApduEncodeError("data", f"at most {MAX_EXTENDED_LE} bytes")

    @property
    def sw1(self) -> int:
        """The first status byte."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """The second status byte."""
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        """True for ``9000``."""
        return self.sw == SW_OK

    def to_bytes(self) -> bytes:
        """Encode to wire bytes: data then SW1 SW2."""
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> ResponseApdu:
        """Decode wire bytes into a response APDU.

        Raises:
            ApduDecodeError: Fewer than two bytes, or more data than an APDU carries.
        """
        if len(data) < 2:  # noqa: PLR2004 - SW1 SW2
            raise ApduDecodeError("a response needs SW1 SW2", len(data))
        if len(data) > MAX_EXTENDED_LE + 2:
            raise ApduDecodeError("response longer than an extended APDU", len(data))
        return cls(bytes(data[:-2]), int.from_bytes(data[-2:], "big"))
