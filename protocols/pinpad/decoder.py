"""Incremental decoders: pad messages on the host side, requests on the pad side.

Both follow the h11 shape: ``receive_data(bytes)`` feeds any number of bytes
(one at a time or many frames at once), ``next_event()`` returns the next
decoded message, a :class:`Discarded` report, or :data:`NEED_DATA`. Neither
ever raises on received bytes: what cannot be framed is skipped and reported
as :class:`Discarded` (a count and a reason, never the bytes: a frame may hold
a PIN block), and decoding resumes at the next STX, which cannot occur inside
a frame. Every buffer is bounded: a frame by
:data:`~protocols.pinpad.frames.MAX_FRAME`, the event queue by
:data:`MAX_PENDING_EVENTS`.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from protocols.pinpad.errors import PinPadFrameError
from protocols.pinpad.frames import (
    CRC_DIGITS,
    ETX,
    MAX_BODY,
    MIN_REQUEST_BODY,
    STX,
    Command,
    KeyEvent,
    Reply,
    Request,
    crc16,
    parse_pad_message,
)

__all__ = [
    "MAX_PENDING_EVENTS",
    "NEED_DATA",
    "BadRequest",
    "Discarded",
    "NeedData",
    "PadMessageDecoder",
    "RequestDecoder",
]

MAX_PENDING_EVENTS: Final = 64  # decoded events held until next_event() takes them

# A per-direction parser of one framed body and the count of its wire bytes.
_BodyHandler: TypeAlias = Callable[[bytes, int], None]

_HEX_VALUES: Final = {c: int(chr(c), 16) for c in b"0123456789ABCDEF"}


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "need_data"


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Discarded:
    """Bytes skipped to resynchronise (consecutive skips of one kind are merged).

    Attributes:
        count: How many bytes were skipped.
        reason: ``garbage`` (a byte outside a frame, or a non-hex byte inside
            one), ``interrupted`` (a partial frame cut by a new STX),
            ``too_long`` (a body over its bound), ``odd_digits`` (a body of an
            odd number of hex digits), ``bad_checksum`` (CRC mismatch),
            ``bad_message`` (a well-framed body that is no message of this
            direction) or ``overflow`` (events not taken in time).
    """

    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class BadRequest:
    """Pad side: a well-framed request with an unknown command code.

    The pad answers it with ``UNKNOWN_COMMAND`` (it knows the SEQ to echo).

    Attributes:
        seq: The request's SEQ.
        code: The unknown command byte.
    """

    seq: int
    code: int


class _State(enum.Enum):
    BETWEEN = "between"  # waiting for STX
    BODY = "body"  # hex digits up to ETX
    CRC = "crc"  # four hex digits after ETX
    SKIP = "skip"  # a spoiled frame: skip up to the next STX


class _FrameDecoder:
    """STX hex ETX crc framing; emits bodies whose CRC matches, and skip reports."""

    def __init__(self) -> None:
        self._events: deque[object] = deque()
        self._state = _State.BETWEEN
        self._digits = bytearray()
        self._crc = bytearray()
        self._skip_reason = "garbage"

    @property
    def buffered(self) -> int:
        """Bytes held in a partial frame (bounded by ``MAX_FRAME``)."""
        if self._state is _State.BETWEEN or self._state is _State.SKIP:
            return 0
        return 1 + len(self._digits) + (1 if self._state is _State.CRC else 0) + len(self._crc)

    def reset(self) -> None:
        self._events.clear()
        self._state = _State.BETWEEN
        self._digits.clear()
        self._crc.clear()

    def pop(self) -> object:
        return self._events.popleft() if self._events else NEED_DATA

    def emit(self, event: object) -> None:
        if len(self._events) >= MAX_PENDING_EVENTS - 1:
            self.discard(_size(event), "overflow", force=True)
        else:
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

    def feed(self, data: bytes, on_body: _BodyHandler) -> None:
        for byte in data:
            self._feed(byte, on_body)

    def _feed(self, byte: int, on_body: _BodyHandler) -> None:
        if byte == STX:
            if self._state is _State.BODY or self._state is _State.CRC:
                self.discard(self.buffered, "interrupted")
            self._start()
            return
        state = self._state
        if state is _State.BETWEEN:
            self.discard(1, "garbage")
        elif state is _State.SKIP:
            self.discard(1, self._skip_reason)
        elif state is _State.BODY:
            self._body_byte(byte)
        elif byte in _HEX_VALUES:
            self._crc.append(byte)
            if len(self._crc) == CRC_DIGITS:
                self._finish(on_body)
        else:
            self._spoil(self.buffered + 1, "garbage")

    def _start(self) -> None:
        self._state = _State.BODY
        self._digits.clear()
        self._crc.clear()

    def _body_byte(self, byte: int) -> None:
        if byte in _HEX_VALUES:
            if len(self._digits) >= 2 * MAX_BODY:
                self._spoil(self.buffered + 1, "too_long")
            else:
                self._digits.append(byte)
        elif byte == ETX:
            if len(self._digits) % 2 or not self._digits:
                self._spoil(self.buffered + 1, "odd_digits")
            else:
                self._state = _State.CRC
        else:
            self._spoil(self.buffered + 1, "garbage")

    def _spoil(self, count: int, reason: str) -> None:
        self.discard(count, reason)
        self._digits.clear()
        self._crc.clear()
        self._state, self._skip_reason = _State.SKIP, reason

    def _finish(self, on_body: _BodyHandler) -> None:
        count = self.buffered
        body = bytes.fromhex(self._digits.decode("ascii"))
        crc = int(self._crc.decode("ascii"), 16)
        self._digits.clear()
        self._crc.clear()
        self._state = _State.BETWEEN
        if crc != crc16(body):
            self.discard(count, "bad_checksum")
        else:
            on_body(body, count)


def _size(event: object) -> int:
    if isinstance(event, Request | Reply | KeyEvent):
        return len(event.to_bytes())
    return 0


class PadMessageDecoder:
    """Host side: pad bytes in, :class:`~protocols.pinpad.frames.Reply` / ``KeyEvent`` out."""

    def __init__(self) -> None:
        """Start between frames."""
        self._frames = _FrameDecoder()

    @property
    def buffered(self) -> int:
        """Bytes held in a partial frame."""
        return self._frames.buffered

    def reset(self) -> None:
        """Forget any partial frame and pending event (after a reconnect)."""
        self._frames.reset()

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; decoded events queue up for :meth:`next_event`."""
        self._frames.feed(data, self._on_body)

    def next_event(self) -> Reply | KeyEvent | Discarded | NeedData:
        """The next decoded message or skip report, or :data:`NEED_DATA`."""
        event = self._frames.pop()
        assert isinstance(event, Reply | KeyEvent | Discarded | NeedData)  # noqa: S101
        return event

    def _on_body(self, body: bytes, count: int) -> None:
        try:
            message = parse_pad_message(body)
        except PinPadFrameError:
            self._frames.discard(count, "bad_message")
            return
        self._frames.emit(message)


class RequestDecoder:
    """Pad side: host bytes in, :class:`~protocols.pinpad.frames.Request` out."""

    def __init__(self) -> None:
        """Start between frames."""
        self._frames = _FrameDecoder()

    @property
    def buffered(self) -> int:
        """Bytes held in a partial frame."""
        return self._frames.buffered

    def reset(self) -> None:
        """Forget any partial frame and pending event."""
        self._frames.reset()

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; decoded events queue up for :meth:`next_event`."""
        self._frames.feed(data, self._on_body)

    def next_event(self) -> Request | BadRequest | Discarded | NeedData:
        """The next decoded request, unknown-command report or skip report."""
        event = self._frames.pop()
        assert isinstance(event, Request | BadRequest | Discarded | NeedData)  # noqa: S101
        return event

    def _on_body(self, body: bytes, count: int) -> None:
        if len(body) < MIN_REQUEST_BODY or body[0] == 0:
            self._frames.discard(count, "bad_message")
            return
        try:
            command = Command(body[1])
        except ValueError:
            self._frames.emit(BadRequest(body[0], body[1]))
            return
        self._frames.emit(Request(body[0], command, bytes(body[2:])))
