"""The card side of vsmartcard's vpcd socket protocol: one card in a virtual reader.

pcscd loads the ``vpcd`` reader driver, which listens on TCP (Debian's
configuration: 127.0.0.1:35963 for the first reader, 35964 for the second).
A virtual card connects to it; while connected, the reader holds a card.

::

    every message, both ways:  +--------------------+------------------+
                               | length (u16, BE)   | payload          |
                               +--------------------+------------------+
    reader -> card, 1 byte:    00 power off, 01 power on, 02 reset, 04 get ATR
    card -> reader:            the ATR (answer to 04 only; the others get none)
    reader -> card, longer:    a command APDU
    card -> reader:            response data + SW1 SW2

vpcd writes the length and the payload in separate segments, so with delayed
ACKs every APDU would wait ~40 ms: ``TCP_QUICKACK`` is set before each receive.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import TYPE_CHECKING, Final, Protocol

import structlog

if TYPE_CHECKING:
    import threading

__all__ = [
    "CONTROL_ATR",
    "CONTROL_OFF",
    "CONTROL_ON",
    "CONTROL_RESET",
    "MAX_MESSAGE",
    "VPCD_PORT",
    "VirtualCard",
    "VpcdDecoder",
    "encode_message",
    "serve_vpcd",
]

log = structlog.get_logger(__name__)

#: Port of the first vpcd reader in Debian's /etc/reader.conf.d/vpcd.
VPCD_PORT: Final = 35963
CONTROL_OFF: Final = 0x00
CONTROL_ON: Final = 0x01
CONTROL_RESET: Final = 0x02
CONTROL_ATR: Final = 0x04
#: Largest message: an extended APDU with 65,535 data bytes and Le.
MAX_MESSAGE: Final = 65_544
_LENGTH: Final = struct.Struct(">H")
_POLL_SECONDS: Final = 0.2


class VirtualCard(Protocol):
    """What vpcd needs of a card."""

    @property
    def atr(self) -> bytes:
        """The answer to reset."""
        ...

    def power_on(self) -> None:
        """Power the card."""
        ...

    def power_off(self) -> None:
        """Remove power."""
        ...

    def reset(self) -> None:
        """Warm reset."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU."""
        ...


def encode_message(payload: bytes) -> bytes:
    """Frame one payload: 2-byte big-endian length, then the payload."""
    return _LENGTH.pack(len(payload)) + payload


class VpcdDecoder:
    """Incremental decoder of vpcd messages (bytes in, whole payloads out)."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every payload now complete.

        Raises:
            ValueError: A length is zero or larger than :data:`MAX_MESSAGE`.
        """
        self._buffer += data
        out: list[bytes] = []
        while len(self._buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._buffer)
            if not 0 < size <= MAX_MESSAGE:
                msg = f"vpcd message length {size} out of range"
                raise ValueError(msg)
            if len(self._buffer) < _LENGTH.size + size:
                break
            out.append(bytes(self._buffer[_LENGTH.size : _LENGTH.size + size]))
            del self._buffer[: _LENGTH.size + size]
        return out


def _answer(card: VirtualCard, payload: bytes) -> bytes | None:
    if len(payload) == 1:
        control = payload[0]
        if control == CONTROL_ATR:
            return card.atr
        if control == CONTROL_ON:
            card.power_on()
        elif control == CONTROL_OFF:
            card.power_off()
        elif control == CONTROL_RESET:
            card.reset()
        return None
    response = card.transmit(payload)
    log.debug("vpcd_apdu", header=payload[:4].hex(), sw=response[-2:].hex())
    return response


def _quickack(sock: socket.socket) -> None:
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def _serve_connection(sock: socket.socket, card: VirtualCard, stop: threading.Event) -> None:
    decoder = VpcdDecoder()
    sock.settimeout(_POLL_SECONDS)
    while not stop.is_set():
        _quickack(sock)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        if not data:
            return
        for payload in decoder.feed(data):
            answer = _answer(card, payload)
            if answer is not None:
                sock.sendall(encode_message(answer))


def serve_vpcd(
    card: VirtualCard,
    stop: threading.Event,
    *,
    host: str = "127.0.0.1",
    port: int = VPCD_PORT,
    retry_seconds: float = 0.5,
) -> None:
    """Keep ``card`` inserted in the vpcd reader at ``host:port`` until ``stop`` is set.

    Blocks (run it on its own thread). When pcscd is not there or goes away
    (restart), it connects again every ``retry_seconds``. Setting ``stop``
    removes the card within ~0.2 s.
    """
    while not stop.is_set():
        try:
            sock = socket.create_connection((host, port), timeout=1.0)
        except OSError:
            stop.wait(retry_seconds)
            continue
        log.info("vpcd_card_inserted", host=host, port=port)
        try:
            with sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _serve_connection(sock, card, stop)
        except (OSError, ValueError) as exc:
            log.info("vpcd_link_lost", error=type(exc).__name__)
        card.power_off()
        log.info("vpcd_card_removed", host=host, port=port)
        if not stop.is_set():
            stop.wait(retry_seconds)
