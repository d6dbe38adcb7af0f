"""Incremental decoders: replies on the host side, requests on the printer side.

Both follow the h11 shape: ``receive_data(bytes)`` feeds any number of bytes
(one at a time or a megabyte at once), ``next_event()`` returns the next decoded
frame, a :class:`Discarded` report, or :data:`NEED_DATA`. Neither ever raises on
received bytes: what cannot be framed is skipped and reported as
:class:`Discarded`, and decoding resumes at the next frame boundary (a CR, an
ACK or NACK byte, or an ESC). Every buffer is bounded: a text line by
:data:`~protocols.printer.frames.MAX_REPLY_LENGTH` or
:data:`~protocols.printer.frames.MAX_COMMAND_LENGTH`, a ``Db`` payload by the
size of one panel, the event queue by :data:`MAX_PENDING_EVENTS`.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Final

from protocols.printer.errors import PrinterEncodeError
from protocols.printer.frames import (
    ACK,
    CR,
    ESC,
    MAX_COMMAND_LENGTH,
    MAX_REPLY_LENGTH,
    NACK,
    Ack,
    Nack,
    Reply,
    Request,
    TextReply,
    download_size,
)

__all__ = [
    "MAX_PENDING_EVENTS",
    "NEED_DATA",
    "Discarded",
    "NeedData",
    "ReplyDecoder",
    "RequestDecoder",
]

MAX_PENDING_EVENTS = 256  # decoded events held until next_event() takes them

_PRINTABLE_LOW, _PRINTABLE_HIGH = 0x20, 0x7E
_CODE_LOW = 0x21
_DB_HEADER_SEPARATORS = 3  # "Db;<panel>;<depth>;" then the payload


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "need_data"


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Discarded:
    """Bytes skipped to resynchronise (consecutive skips of one kind are merged).

    Attributes:
        count: How many bytes were skipped.
        reason: ``garbage`` (a byte no frame can hold), ``too_long`` (a line over
            its bound), ``interrupted`` (a partial frame cut by a new one),
            ``bad_nack_code``, ``empty_line``, ``bad_request`` (a request line
            that is not a valid command), ``bad_download_header``,
            ``missing_terminator`` (no CR after a ``Db`` payload) or ``overflow``
            (events not taken in time).
    """

    count: int
    reason: str


class _EventQueue:
    """Pending events, bounded; skips of one reason in a row merge into one."""

    def __init__(self) -> None:
        self._events: deque[object] = deque()

    def emit(self, event: object) -> None:
        if len(self._events) >= MAX_PENDING_EVENTS - 1:
            size = _size_of(event)
            self.discard(size, "overflow", force=True)
            return
        self._events.append(event)

    def discard(self, count: int, reason: str, *, force: bool = False) -> None:
        if count <= 0:
            return
        last = self._events[-1] if self._events else None
        if isinstance(last, Discarded) and last.reason == reason:
            self._events[-1] = Discarded(last.count + count, reason)
        elif force or len(self._events) < MAX_PENDING_EVENTS - 1:
            self._events.append(Discarded(count, reason))
        else:
            self.discard(count, "overflow", force=True)

    def pop(self) -> object:
        return self._events.popleft() if self._events else NEED_DATA

    def clear(self) -> None:
        self._events.clear()


def _size_of(event: object) -> int:
    if isinstance(event, (Request, TextReply, Ack, Nack)):
        return len(event.to_bytes())
    return 0


class ReplyDecoder:
    """Host side: printer bytes in, :class:`TextReply` / :class:`Ack` / :class:`Nack` out.

    Framing: ACK is one byte; NACK is two (NACK, code); any other reply is
    printable ASCII up to a CR. A byte that fits none of these is garbage: alone
    it is skipped; inside a text line it spoils the line, which is skipped up to
    its CR (or up to the next ACK/NACK byte).
    """

    def __init__(self) -> None:
        """Start between frames."""
        self._queue = _EventQueue()
        self._line = bytearray()
        self._skipping: str | None = None
        self._nack_pending = False

    @property
    def buffered(self) -> int:
        """Bytes held in a partial frame (bounded by ``MAX_REPLY_LENGTH + 1``)."""
        return len(self._line) + int(self._nack_pending)

    def reset(self) -> None:
        """Forget any partial frame and pending event (after a reconnect)."""
        self._queue.clear()
        self._line.clear()
        self._skipping = None
        self._nack_pending = False

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; decoded events queue up for :meth:`next_event`."""
        for byte in data:
            self._feed(byte)

    def next_event(self) -> Reply | Discarded | NeedData:
        """The next decoded reply or skip report, or :data:`NEED_DATA`."""
        event = self._queue.pop()
        assert isinstance(event, (TextReply, Ack, Nack, Discarded, NeedData))  # noqa: S101
        return event

    def _feed(self, byte: int) -> None:
        if self._nack_pending and self._take_nack_code(byte):
            return
        if self._skipping is not None and self._skip(byte):
            return
        if byte in (ACK, NACK):
            self._queue.discard(len(self._line), "interrupted")
            self._line.clear()
            if byte == ACK:
                self._queue.emit(Ack())
            else:
                self._nack_pending = True
        elif byte == CR:
            if self._line:
                self._queue.emit(TextReply(self._line.decode("ascii")))
                self._line.clear()
            else:
                self._queue.discard(1, "empty_line")
        elif _PRINTABLE_LOW <= byte <= _PRINTABLE_HIGH:
            self._append(byte)
        elif self._line:
            self._queue.discard(len(self._line) + 1, "garbage")
            self._line.clear()
            self._skipping = "garbage"
        else:
            self._queue.discard(1, "garbage")

    def _take_nack_code(self, byte: int) -> bool:
        """Handle the byte after a NACK; True when it was the code."""
        self._nack_pending = False
        if _CODE_LOW <= byte <= _PRINTABLE_HIGH:
            self._queue.emit(Nack(chr(byte)))
            return True
        self._queue.discard(1, "bad_nack_code")
        return False

    def _skip(self, byte: int) -> bool:
        """Skip a spoiled line up to its CR; True when ``byte`` was skipped."""
        if byte in (ACK, NACK):
            self._skipping = None
            return False
        self._queue.discard(1, self._skipping or "garbage")
        if byte == CR:
            self._skipping = None
        return True

    def _append(self, byte: int) -> None:
        if len(self._line) >= MAX_REPLY_LENGTH:
            self._queue.discard(len(self._line) + 1, "too_long")
            self._line.clear()
            self._skipping = "too_long"
        else:
            self._line.append(byte)


class RequestDecoder:
    """Printer side: host bytes in, :class:`Request` out.

    A request starts at ESC, or (as the programming guide allows) with a letter
    right after a CR or at the start of the stream. A ``Db`` header
    (``Db;<panel>;<depth>;``) switches to reading exactly one panel of payload,
    which must be followed by CR. A line that is not a valid command is
    reported as ``Discarded(reason="bad_request")`` so that the printer can
    answer it with a command error.
    """

    def __init__(self) -> None:
        """Start at the start of a stream (a command may begin without ESC)."""
        self._queue = _EventQueue()
        self._line = bytearray()
        self._in_line = False
        self._lead = 0  # 1 when the current line began with ESC
        self._line_start = True
        self._skipping: str | None = None
        self._header: tuple[str, ...] = ()
        self._payload = bytearray()
        self._remaining = 0
        self._expect_cr = False

    @property
    def buffered(self) -> int:
        """Bytes held in a partial frame (bounded by one panel plus a line)."""
        return len(self._line) + len(self._payload)

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; decoded events queue up for :meth:`next_event`."""
        view = memoryview(data)
        i, n = 0, len(view)
        while i < n:
            if self._remaining:
                take = min(self._remaining, n - i)
                self._payload += view[i : i + take]
                self._remaining -= take
                i += take
                self._expect_cr = not self._remaining
                continue
            self._feed(view[i])
            i += 1

    def next_event(self) -> Request | Discarded | NeedData:
        """The next decoded request or skip report, or :data:`NEED_DATA`."""
        event = self._queue.pop()
        assert isinstance(event, (Request, Discarded, NeedData))  # noqa: S101
        return event

    def _feed(self, byte: int) -> None:
        if self._expect_cr and self._finish_payload(byte):
            return
        if byte == ESC:
            if self._in_line:
                self._queue.discard(self._lead + len(self._line), "interrupted")
            self._line.clear()
            self._in_line, self._skipping, self._lead = True, None, 1
            return
        if self._skipping is not None:
            self._queue.discard(1, self._skipping)
            if byte == CR:
                self._skipping, self._line_start = None, True
            return
        if not self._in_line:
            self._between_lines(byte)
        else:
            self._in_line_byte(byte)

    def _in_line_byte(self, byte: int) -> None:
        if byte == CR:
            self._end_line()
        elif not _PRINTABLE_LOW <= byte <= _PRINTABLE_HIGH:
            self._spoil(self._lead + len(self._line) + 1, "garbage")
        elif len(self._line) >= MAX_COMMAND_LENGTH:
            self._spoil(self._lead + len(self._line) + 1, "too_long")
        else:
            self._line.append(byte)
            if byte == ord(";") and self._line.startswith(b"Db;"):
                self._maybe_start_payload()

    def _finish_payload(self, byte: int) -> bool:
        """Handle the byte after a ``Db`` payload; True when it was the CR."""
        self._expect_cr = False
        if byte == CR:
            self._queue.emit(Request("Db", self._header, bytes(self._payload)))
            self._payload.clear()
            self._line_start = True
            return True
        self._queue.discard(len(self._payload), "missing_terminator")
        self._payload.clear()
        return False

    def _between_lines(self, byte: int) -> None:
        if self._line_start and (0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A):  # noqa: PLR2004 (A-Z a-z)
            self._in_line, self._lead = True, 0
            self._line.append(byte)
        elif byte == CR:
            self._queue.discard(1, "empty_line")
            self._line_start = True
        else:
            self._queue.discard(1, "garbage")
            self._line_start = False

    def _spoil(self, count: int, reason: str) -> None:
        self._queue.discard(count, reason)
        self._line.clear()
        self._in_line = False
        self._skipping = reason

    def _end_line(self) -> None:
        fields = self._line.decode("ascii").split(";")
        count = self._lead + len(self._line) + 1
        self._line.clear()
        self._in_line, self._line_start = False, True
        try:
            request = Request(fields[0], tuple(fields[1:]))
        except PrinterEncodeError:
            self._queue.discard(count, "bad_request")
            return
        self._queue.emit(request)

    def _maybe_start_payload(self) -> None:
        if self._line.count(b";") < _DB_HEADER_SEPARATORS:
            return
        params = tuple(self._line.decode("ascii").split(";")[1:3])
        size = download_size(params)
        if size is None:
            self._spoil(self._lead + len(self._line), "bad_download_header")
            return
        self._header = params
        self._remaining = size
        self._line.clear()
        self._in_line = self._line_start = False
