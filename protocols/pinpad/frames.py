"""Frames of the encrypting PIN pad (密码键盘) serial protocol.

Every message travels as one frame: STX, the message body as upper-case hex
digits, ETX, and a CRC-16 of the body as four hex digits. Hex on the wire keeps
STX and ETX out of every body, so a receiver resynchronises at the next STX.
Requests go host to pad, replies and key events pad to host. Every message is a
frozen dataclass with ``to_bytes()`` and ``from_bytes()``; ``from_bytes`` takes
exactly one whole frame and raises
:class:`~protocols.pinpad.errors.PinPadFrameError` otherwise. The byte layouts
are in each class's docstring and in ``docs/protocols/pinpad.md``.

Request and reply data may hold an account number or a PIN block: those fields
are left out of every ``repr``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, TypeAlias

from protocols.pinpad.errors import PinPadEncodeError, PinPadFrameError

__all__ = [
    "CRC_INIT",
    "ETX",
    "KEY_EVENT",
    "MAX_BODY",
    "MAX_FRAME",
    "STX",
    "Command",
    "KeyAlgorithm",
    "KeyEvent",
    "PadMessage",
    "Prompt",
    "Reply",
    "Request",
    "Status",
    "crc16",
    "decode_frame",
    "encode_frame",
    "parse_pad_message",
]

STX: Final = 0x02  # start of a frame
ETX: Final = 0x03  # end of the body; four CRC hex digits follow
CRC_INIT: Final = 0xFFFF  # CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection
CRC_DIGITS: Final = 4  # hex digits of the CRC after ETX
MAX_BODY: Final = 128  # bytes of a body (256 hex digits on the wire)
MAX_FRAME: Final = 1 + 2 * MAX_BODY + 1 + CRC_DIGITS  # 262 bytes
MIN_REQUEST_BODY: Final = 2  # SEQ CMD
MIN_REPLY_BODY: Final = 3  # SEQ CMD STATUS
KEY_EVENT: Final = 0x80  # command byte of a key event (pad to host, SEQ 00)
MAX_SEQ: Final = 0xFF  # requests use 1-255; 0 belongs to key events

_HEX_DIGITS: Final = frozenset(b"0123456789ABCDEF")


class Command(IntEnum):
    """Command codes (the CMD byte of a request and of its reply)."""

    INFO = 0x01
    LOAD_KEY = 0x02
    READ_PIN = 0x03
    READ_NEW_PIN = 0x04
    SHOW = 0x05
    ABORT = 0x06

    @property
    def label(self) -> str:
        """Lower-case name for logs and errors, e.g. ``"read_pin"``."""
        return self.name.lower()

    @property
    def is_entry(self) -> bool:
        """Whether the pad waits for the customer's keys before it answers."""
        return self in (Command.READ_PIN, Command.READ_NEW_PIN)


class Status(IntEnum):
    """Status codes of a reply (the STATUS byte)."""

    OK = 0x00
    CANCELLED = 0x01  # the customer pressed 取消 (cancel)
    TIMEOUT = 0x02  # nobody pressed a key within the entry's timeout
    MISMATCH = 0x03  # the two entries of a new PIN differed, every attempt
    ABORTED = 0x04  # the host sent ABORT
    KEY_REFUSED = 0x05  # LOAD_KEY: the check value does not match, or the TMK is missing
    NO_KEY = 0x06  # READ_PIN / READ_NEW_PIN before a PIN key was loaded
    BUSY = 0x07  # an entry is under way; only ABORT is accepted
    UNKNOWN_COMMAND = 0x08
    BAD_PARAMETER = 0x09


class Prompt(IntEnum):
    """What the pad shows (and says): the pad holds the texts, the wire carries the code."""

    IDLE = 0x00
    ENTER = 0x01
    ENTER_OLD = 0x02
    ENTER_NEW = 0x03
    REENTER = 0x04
    MISMATCH = 0x05
    SUCCESS = 0x06
    FAILED = 0x07

    @property
    def text(self) -> str:
        """The Chinese text on the pad's display."""
        return _PROMPT_TEXTS[self]


_PROMPT_TEXTS: Final = {
    Prompt.IDLE: "欢迎使用",
    Prompt.ENTER: "请输入密码",
    Prompt.ENTER_OLD: "请输入原密码",
    Prompt.ENTER_NEW: "请输入新密码",
    Prompt.REENTER: "请再次输入新密码",
    Prompt.MISMATCH: "两次输入不一致",
    Prompt.SUCCESS: "交易成功",
    Prompt.FAILED: "交易失败",
}


class KeyAlgorithm(IntEnum):
    """Cipher of the pad's keys (TMK and TPK are of one algorithm)."""

    TDES_2KEY = 0x01  # double-length 3DES, 8-byte blocks: PIN block formats 0 and 3
    SM4 = 0x02  # SM4, 16-byte blocks: formats 0 and 3 widened to 16 bytes
    AES_128 = 0x03  # AES-128, 16-byte blocks: format 4

    @property
    def key_length(self) -> int:
        """Key length in bytes (also the length of a key enciphered under the TMK)."""
        return 16

    @property
    def block_size(self) -> int:
        """Cipher block size in bytes (the PIN block length)."""
        return 8 if self is KeyAlgorithm.TDES_2KEY else 16

    @property
    def pin_block_formats(self) -> frozenset[int]:
        """ISO 9564-1 PIN block formats the pad builds under such a key."""
        return frozenset({4}) if self is KeyAlgorithm.AES_128 else frozenset({0, 3})


def crc16(body: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``body`` (check value of ``b"123456789"``: 0x29B1)."""
    return binascii.crc_hqx(body, CRC_INIT)


def encode_frame(body: bytes) -> bytes:
    """Frame a body: ``STX hex(body) ETX hex(crc16(body))``.

    Raises:
        PinPadEncodeError: The body is empty or longer than :data:`MAX_BODY`.
    """
    if not 0 < len(body) <= MAX_BODY:
        raise PinPadEncodeError("body", f"1 to {MAX_BODY} bytes")
    return b"\x02" + body.hex().upper().encode() + b"\x03" + b"%04X" % crc16(body)


def decode_frame(frame: bytes) -> bytes:
    """The body of exactly one whole frame (checked: hex digits, bounds, CRC).

    Raises:
        PinPadFrameError: The bytes are not one valid frame.
    """
    if not isinstance(frame, bytes | bytearray) or len(frame) > MAX_FRAME:
        raise PinPadFrameError("too long")
    frame = bytes(frame)
    if len(frame) < 2 + CRC_DIGITS + 2 or frame[0] != STX or frame[-CRC_DIGITS - 1] != ETX:
        raise PinPadFrameError("a frame is STX hex ETX crc")
    digits, crc = frame[1 : -CRC_DIGITS - 1], frame[-CRC_DIGITS:]
    if not _is_hex(digits) or not _is_hex(crc) or len(digits) % 2:
        raise PinPadFrameError("body and CRC are upper-case hex digits, two per byte")
    body = bytes.fromhex(digits.decode("ascii"))
    if int(crc, 16) != crc16(body):
        raise PinPadFrameError("CRC mismatch")
    return body


def _is_hex(data: bytes) -> bool:
    return all(b in _HEX_DIGITS for b in data)


def _check_byte(name: str, value: int, low: int = 0, high: int = 0xFF) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise PinPadEncodeError(name, f"an integer {low}-{high}")


@dataclass(frozen=True, slots=True)
class Request:
    """One command, host to pad.

    ::

        body:  +-----+-----+-----------+
               | SEQ | CMD | DATA ...  |      SEQ 01-FF, CMD a Command code
               +-----+-----+-----------+
        frame: STX  hex(body)  ETX  hex(CRC-16 of body)

    Attributes:
        seq: 1-255; the reply echoes it, so a late reply is never taken for
            another command's.
        command: What the pad is asked to do.
        data: The command's parameters (see :mod:`protocols.pinpad.commands`);
            may hold an account number, so it is not in the ``repr``.
    """

    seq: int
    command: Command
    data: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        """Refuse requests that cannot be framed."""
        _check_byte("seq", self.seq, 1, MAX_SEQ)
        if not isinstance(self.command, Command):
            raise PinPadEncodeError("command", "a Command")
        if len(self.data) > MAX_BODY - MIN_REQUEST_BODY:
            raise PinPadEncodeError("data", f"at most {MAX_BODY - MIN_REQUEST_BODY} bytes")

    @property
    def body(self) -> bytes:
        """``SEQ CMD DATA``."""
        return bytes((self.seq, self.command)) + self.data

    def to_bytes(self) -> bytes:
        """Encode as one frame."""
        return encode_frame(self.body)

    @classmethod
    def from_body(cls, body: bytes) -> Request:
        """Decode a request body.

        Raises:
            PinPadFrameError: Too short, SEQ 0, or an unknown command code.
        """
        if len(body) < MIN_REQUEST_BODY or body[0] == 0:
            raise PinPadFrameError("a request body is SEQ (1-255) CMD DATA")
        try:
            command = Command(body[1])
        except ValueError:
            raise PinPadFrameError("unknown command code") from None
        return cls(body[0], command, bytes(body[2:]))

    @classmethod
    def from_bytes(cls, frame: bytes) -> Request:
        """Decode exactly one request frame."""
        return cls.from_body(decode_frame(frame))


@dataclass(frozen=True, slots=True)
class Reply:
    """The pad's answer to one request.

    ::

        body:  +-----+-----+--------+-----------+
               | SEQ | CMD | STATUS | DATA ...  |   SEQ and CMD echo the request
               +-----+-----+--------+-----------+
        frame: STX  hex(body)  ETX  hex(CRC-16 of body)

    Attributes:
        seq: The request's SEQ.
        command: The request's command.
        status: How it ended.
        data: Result data when ``status`` is OK (empty otherwise); may hold a
            PIN block, so it is not in the ``repr``.
    """

    seq: int
    command: Command
    status: Status
    data: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        """Refuse replies that cannot be framed."""
        _check_byte("seq", self.seq, 1, MAX_SEQ)
        if not isinstance(self.command, Command) or not isinstance(self.status, Status):
            raise PinPadEncodeError("command", "a Command and a Status")
        if len(self.data) > MAX_BODY - MIN_REPLY_BODY:
            raise PinPadEncodeError("data", f"at most {MAX_BODY - MIN_REPLY_BODY} bytes")

    @property
    def body(self) -> bytes:
        """``SEQ CMD STATUS DATA``."""
        return bytes((self.seq, self.command, self.status)) + self.data

    def to_bytes(self) -> bytes:
        """Encode as one frame."""
        return encode_frame(self.body)

    @classmethod
    def from_bytes(cls, frame: bytes) -> Reply:
        """Decode exactly one reply frame."""
        message = parse_pad_message(decode_frame(frame))
        if not isinstance(message, Reply):
            raise PinPadFrameError("a key event, not a reply")
        return message


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """The customer pressed a key during an entry; the pad tells how many digits it holds.

    ::

        body:  +----+----+----+--------+
               | 00 | 80 | 00 | DIGITS |    DIGITS 0-12 (never which digits)
               +----+----+----+--------+

    Attributes:
        digits: Digits entered so far in the current entry (0 after 更正/clear).
    """

    digits: int

    def __post_init__(self) -> None:
        """Refuse counts out of range."""
        _check_byte("digits", self.digits, 0, 12)

    @property
    def body(self) -> bytes:
        """``00 80 00 DIGITS``."""
        return bytes((0, KEY_EVENT, 0, self.digits))

    def to_bytes(self) -> bytes:
        """Encode as one frame."""
        return encode_frame(self.body)

    @classmethod
    def from_bytes(cls, frame: bytes) -> KeyEvent:
        """Decode exactly one key event frame."""
        message = parse_pad_message(decode_frame(frame))
        if not isinstance(message, KeyEvent):
            raise PinPadFrameError("a reply, not a key event")
        return message


PadMessage: TypeAlias = Reply | KeyEvent

_KEY_EVENT_BODY: Final = 4


def parse_pad_message(body: bytes) -> PadMessage:
    """Decode a pad-to-host body: a :class:`Reply` or a :class:`KeyEvent`.

    Raises:
        PinPadFrameError: Not a valid reply or key event body.
    """
    if len(body) >= MIN_REPLY_BODY and body[1] == KEY_EVENT:
        if len(body) != _KEY_EVENT_BODY or body[0] != 0 or body[2] != 0 or body[3] > 12:  # noqa: PLR2004 (max digits)
            raise PinPadFrameError("a key event body is 00 80 00 DIGITS (0-12)")
        return KeyEvent(body[3])
    if len(body) < MIN_REPLY_BODY or body[0] == 0:
        raise PinPadFrameError("a reply body is SEQ (1-255) CMD STATUS DATA")
    try:
        command, status = Command(body[1]), Status(body[2])
    except ValueError:
        raise PinPadFrameError("unknown command or status code") from None
    return Reply(body[0], command, status, bytes(body[3:]))
