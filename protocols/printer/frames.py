"""Frames of the Evolis-style printer command language.

Requests go host to printer, replies printer to host. Every frame is a frozen
dataclass with ``to_bytes()`` and ``from_bytes()``; ``from_bytes`` takes exactly
one whole frame and raises :class:`~protocols.printer.errors.PrinterFrameError`
otherwise. The byte layouts are in each class's docstring and in
``docs/protocols/printer.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from protocols.printer.errors import PrinterEncodeError, PrinterFrameError

__all__ = [
    "ACK",
    "CR",
    "ERROR_TEXTS",
    "ESC",
    "MAX_COMMAND_LENGTH",
    "MAX_REPLY_LENGTH",
    "NACK",
    "PANEL_HEIGHT",
    "PANEL_WIDTH",
    "Ack",
    "Depth",
    "ErrorCode",
    "Nack",
    "Panel",
    "Reply",
    "Request",
    "TextReply",
    "download_size",
    "error_code_of_text",
    "panel_size",
]

ESC = 0x1B  # start character of a request
CR = 0x0D  # stop character of a request and of a text reply
ACK = 0x06  # ACK/NACK serial mode: command accepted
NACK = 0x15  # ACK/NACK serial mode: command refused, one code byte follows
SEPARATOR = b";"

PANEL_WIDTH = 1016  # pixels along the printing direction, 300 dpi (guide section 2)
PANEL_HEIGHT = 648  # pixels across the card
MAX_COMMAND_LENGTH = 512  # bytes of a request line, payload excluded
MAX_REPLY_LENGTH = 256  # bytes of a text reply, CR excluded

_COMMAND_RE = re.compile(r"[A-Za-z]{1,16}")
_PRINTABLE = frozenset(range(0x20, 0x7F))


class ErrorCode(StrEnum):
    """Error codes: the NACK code byte, and the same meaning as ``ERR`` texts.

    ``1``, ``2``, ``T``, ``C``, ``F`` and ``R`` are the printer's own ACK/NACK
    codes; ``B``, ``N`` and the catch-all ``?`` are this project's additions
    (see ``docs/protocols/printer.md``).
    """

    COMMAND = "1"
    PARAMETER = "2"
    MECHANICAL = "T"
    COVER_OPEN = "C"
    FEEDER_EMPTY = "F"
    RIBBON = "R"
    REJECT_BOX_FULL = "B"
    NO_CARD = "N"
    UNKNOWN = "?"

    @classmethod
    def of(cls, code: str) -> ErrorCode:
        """The code for a NACK code character; :attr:`UNKNOWN` for any other."""
        try:
            return cls(code)
        except ValueError:
            return cls.UNKNOWN


ERROR_TEXTS: dict[ErrorCode, str] = {
    ErrorCode.COMMAND: "ERR CMD",
    ErrorCode.PARAMETER: "ERR PARAM",
    ErrorCode.MECHANICAL: "ERR MECHANICAL",
    ErrorCode.COVER_OPEN: "ERR COVER OPEN",
    ErrorCode.FEEDER_EMPTY: "ERR FEEDER EMPTY",
    ErrorCode.RIBBON: "ERR RIBBON",
    ErrorCode.REJECT_BOX_FULL: "ERR REJECT BOX FULL",
    ErrorCode.NO_CARD: "ERR NO CARD",
    ErrorCode.UNKNOWN: "ERR",
}
_TEXT_CODES = {text: code for code, text in ERROR_TEXTS.items()}
_TEXT_CODES["ERR RIB DETECTION"] = ErrorCode.RIBBON  # no ribbon detected (Rrt family)


def error_code_of_text(text: str) -> ErrorCode | None:
    """The error a text-mode reply reports, or ``None`` when it is not an error.

    A reply is an error when it is ``ERR`` or starts with ``ERR `` or ``ERROR``;
    an error text not in :data:`ERROR_TEXTS` is :attr:`ErrorCode.UNKNOWN`.
    """
    if text == "ERR" or text.startswith(("ERR ", "ERROR")):
        return _TEXT_CODES.get(text, ErrorCode.UNKNOWN)
    return None


class Panel(StrEnum):
    """Ribbon panels a bitmap is downloaded for (``Db`` first parameter)."""

    YELLOW = "y"
    MAGENTA = "m"
    CYAN = "c"
    BLACK = "k"
    OVERLAY = "o"


class Depth(IntEnum):
    """Grey levels of a downloaded panel (``Db`` second parameter)."""

    LEVELS_2 = 2
    LEVELS_32 = 32
    LEVELS_64 = 64
    LEVELS_128 = 128
    LEVELS_256 = 256

    @property
    def bits(self) -> int:
        """Bits per pixel on the wire."""
        return {2: 1, 32: 5, 64: 6, 128: 7, 256: 8}[self.value]


def panel_size(depth: Depth) -> int:
    """Bytes of one whole 1016x648 panel at ``depth``, pixels packed MSB first."""
    return PANEL_WIDTH * PANEL_HEIGHT * depth.bits // 8


def _check_text(field: str, value: str, *, allow_separator: bool, max_length: int) -> None:
    raw = value.encode("ascii", errors="replace")
    if len(raw) > max_length:
        raise PrinterEncodeError(field, f"longer than {max_length} bytes")
    if not value.isascii() or any(b not in _PRINTABLE for b in raw):
        raise PrinterEncodeError(field, "only printable ASCII (0x20-0x7E) is allowed")
    if not allow_separator and ";" in value:
        raise PrinterEncodeError(field, "';' separates parameters")


@dataclass(frozen=True, slots=True)
class Request:
    """One command, host to printer.

    ::

        +-----+---------+---+----+---+-----+---+----+-------------+----+
        | ESC | command | ; | p1 | ; | ... | ; | pn | [; payload] | CR |
        +-----+---------+---+----+---+-----+---+----+-------------+----+
          1B    letters       printable ASCII        Db only        0D

    Only ``Db`` (download a panel bitmap) carries a binary payload: its length
    is fixed by its parameters (``Db;<panel>;<depth>;`` + :func:`panel_size`
    bytes), so CR and ESC bytes inside it are data.

    Attributes:
        command: 1 to 16 ASCII letters, e.g. ``"Rse"``.
        params: Printable ASCII parameters without ``;``.
        data: The ``Db`` payload; empty for every other command.
    """

    command: str
    params: tuple[str, ...] = ()
    data: bytes = b""

    def __post_init__(self) -> None:
        """Refuse requests the printer could not frame."""
        if not _COMMAND_RE.fullmatch(self.command):
            raise PrinterEncodeError("command", "1 to 16 ASCII letters")
        for param in self.params:
            _check_text("param", param, allow_separator=False, max_length=MAX_COMMAND_LENGTH)
        line = len(self.command) + sum(len(p) + 1 for p in self.params) + 2
        if line > MAX_COMMAND_LENGTH:
            raise PrinterEncodeError("params", f"request line longer than {MAX_COMMAND_LENGTH}")
        if self.command == "Db":
            expected = download_size(self.params)
            if expected is None:
                raise PrinterEncodeError("params", "Db takes a panel (y m c k o) and a depth")
            if len(self.data) != expected:
                raise PrinterEncodeError("data", f"a panel at this depth is {expected} bytes")
        elif self.data:
            raise PrinterEncodeError("data", "only Db carries a payload")

    @property
    def label(self) -> str:
        """The command and its parameters, without payload (for logs and errors)."""
        return ";".join((self.command, *self.params))

    def to_bytes(self) -> bytes:
        """Encode as ``ESC cmd;p1;...;pn[;payload] CR``."""
        head = self.label.encode("ascii")
        if self.command == "Db":
            return b"\x1b" + head + SEPARATOR + self.data + b"\r"
        return b"\x1b" + head + b"\r"

    @classmethod
    def from_bytes(cls, frame: bytes) -> Request:
        """Decode exactly one request frame (with its ESC and CR)."""
        if len(frame) < 3 or frame[0] != ESC or frame[-1] != CR:  # noqa: PLR2004 (ESC x CR)
            raise PrinterFrameError("a request is ESC ... CR")
        body = frame[1:-1]
        if body.startswith(b"Db;"):
            parts = body.split(SEPARATOR, 3)
            if len(parts) != 4:  # noqa: PLR2004 (Db, panel, depth, payload)
                raise PrinterFrameError("Db needs a panel, a depth and a payload")
            params = tuple(p.decode("ascii", errors="replace") for p in parts[1:3])
            expected = download_size(params)
            if expected is None or len(parts[3]) != expected:
                raise PrinterFrameError("Db payload does not match its panel and depth")
            return cls("Db", params, bytes(parts[3]))
        if len(body) > MAX_COMMAND_LENGTH or any(b not in _PRINTABLE for b in body):
            raise PrinterFrameError("a request line is printable ASCII")
        fields = body.decode("ascii").split(";")
        try:
            return cls(fields[0], tuple(fields[1:]))
        except PrinterEncodeError as exc:
            raise PrinterFrameError(exc.reason) from None


def download_size(params: tuple[str, ...]) -> int | None:
    """Payload size for ``Db`` parameters (panel, depth), or ``None`` when not valid."""
    if len(params) != 2 or params[0] not in Panel._value2member_map_:  # noqa: PLR2004
        return None
    if not params[1].isdigit() or int(params[1]) not in Depth._value2member_map_:
        return None
    return panel_size(Depth(int(params[1])))


@dataclass(frozen=True, slots=True)
class TextReply:
    """A text reply, printer to host (``OK``, ``CARD``, ``5,00 Volts``, ``ERR ...``).

    ::

        +----------------------+----+
        | text (1-256 bytes)   | CR |
        +----------------------+----+
          printable ASCII        0D

    Attributes:
        text: The reply without its CR.
    """

    text: str

    def __post_init__(self) -> None:
        """Refuse texts that cannot be framed."""
        if not self.text:
            raise PrinterEncodeError("text", "a text reply is not empty")
        _check_text("text", self.text, allow_separator=True, max_length=MAX_REPLY_LENGTH)

    @property
    def error(self) -> ErrorCode | None:
        """The error this reply reports (``ERR ...``), or ``None``."""
        return error_code_of_text(self.text)

    def to_bytes(self) -> bytes:
        """Encode as ``text CR``."""
        return self.text.encode("ascii") + b"\r"

    @classmethod
    def from_bytes(cls, frame: bytes) -> TextReply:
        """Decode exactly one text reply (with its CR)."""
        if len(frame) < 2 or frame[-1] != CR:  # noqa: PLR2004 (one character and CR)
            raise PrinterFrameError("a text reply is text CR")
        body = frame[:-1]
        if len(body) > MAX_REPLY_LENGTH or any(b not in _PRINTABLE for b in body):
            raise PrinterFrameError("a text reply is at most 256 printable ASCII bytes")
        return cls(body.decode("ascii"))


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK/NACK serial mode: the command was accepted and done.

    ::

        +-----+
        | ACK |
        +-----+
          06
    """

    @property
    def error(self) -> ErrorCode | None:
        """Always ``None``: an ACK reports no error."""
        return None

    def to_bytes(self) -> bytes:
        """Encode as the single ACK byte."""
        return bytes((ACK,))

    @classmethod
    def from_bytes(cls, frame: bytes) -> Ack:
        """Decode exactly one ACK byte."""
        if frame != bytes((ACK,)):
            raise PrinterFrameError("an ACK is the single byte 06")
        return cls()


@dataclass(frozen=True, slots=True)
class Nack:
    """ACK/NACK serial mode: the command failed; one code byte says why.

    ::

        +------+------+
        | NACK | code |
        +------+------+
          15     ASCII 0x21-0x7E (see ErrorCode)

    Attributes:
        code: The code character exactly as received.
    """

    code: str

    def __post_init__(self) -> None:
        """Refuse a code that is not one visible ASCII character."""
        if len(self.code) != 1 or not ("!" <= self.code <= "~"):
            raise PrinterEncodeError("code", "one visible ASCII character")

    @property
    def error(self) -> ErrorCode:
        """The error this NACK reports (unknown codes are :attr:`ErrorCode.UNKNOWN`)."""
        return ErrorCode.of(self.code)

    def to_bytes(self) -> bytes:
        """Encode as NACK and the code byte."""
        return bytes((NACK, ord(self.code)))

    @classmethod
    def from_bytes(cls, frame: bytes) -> Nack:
        """Decode exactly one NACK frame."""
        if len(frame) != 2 or frame[0] != NACK or not (0x21 <= frame[1] <= 0x7E):  # noqa: PLR2004
            raise PrinterFrameError("a NACK is 15 and one visible ASCII code byte")
        return cls(chr(frame[1]))


Reply = TextReply | Ack | Nack
