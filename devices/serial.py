"""Byte links chosen by URL: a serial device or a TCP socket.

``/dev/ttyUSB0`` (any absolute path) opens a serial port, 8N1, no flow control,
no modem lines (a pty has none), opened exclusively so that no second opener
steals bytes; ``socket://host:port`` opens TCP to a networked printer that
speaks the same command language. Either way the caller gets an
:class:`asyncio.Transport` and its own :class:`asyncio.Protocol`.

pyserial blocks: the port is opened (and its output discarded before closing)
on a worker thread with :func:`asyncio.to_thread`, never on the event loop.
The transport is pyserial-asyncio 0.6's ``SerialTransport``; the ``-fast``
fork spins on large writes (see ``docs/architecture.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import serial
import serial_asyncio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LinkError", "LinkProtocol", "close_link", "is_serial_url", "open_link"]

P = TypeVar("P", bound=asyncio.Protocol)

SOCKET_SCHEME = "socket"


class LinkError(ConnectionError):
    """A link could not be opened (or its URL is not one we know).

    Attributes:
        url: The URL that was tried.
    """

    def __init__(self, url: str, reason: str) -> None:
        """Record the URL and why it failed."""
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def is_serial_url(url: str) -> bool:
    """Whether ``url`` names a serial device (an absolute path)."""
    return url.startswith("/")


def _open_serial_port(path: str, baudrate: int) -> serial.Serial:
    """Open and configure a serial port (blocking: run it on a thread)."""
    port = serial.serial_for_url(
        path,
        baudrate=baudrate,
        bytesize=serial.EIGHTBITS,
        parity=serial.PARITY_NONE,
        stopbits=serial.STOPBITS_ONE,
        xonxoff=False,
        rtscts=False,
        dsrdtr=False,
        exclusive=True,
        do_not_open=True,
    )
    port.open()
    port.reset_input_buffer()
    return port


class LinkProtocol(asyncio.Protocol):
    """The asyncio side of one link: hands received bytes and the loss to its driver."""

    def __init__(
        self, on_data: Callable[[bytes], None], on_lost: Callable[[Exception | None], None]
    ) -> None:
        """Call ``on_data`` with each chunk received and ``on_lost`` once when the link ends."""
        self._on_data = on_data
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        """Pass the bytes on."""
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Pass the loss on."""
        self._on_lost(exc)


async def open_link(
    url: str,
    protocol_factory: Callable[[], P],
    *,
    baudrate: int = 115_200,
) -> tuple[asyncio.Transport, P]:
    """Open the link ``url`` names and connect ``protocol_factory()`` to it.

    Raises:
        LinkError: the URL is not understood or the device/host is unreachable.
    """
    loop = asyncio.get_running_loop()
    if is_serial_url(url):
        try:
            port = await asyncio.to_thread(_open_serial_port, url, baudrate)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(url, f"cannot open serial port ({type(exc).__name__})") from exc
        transport, protocol = await serial_asyncio.connection_for_serial(
            loop, protocol_factory, port
        )
        return transport, protocol
    parts = urlsplit(url)
    if parts.scheme != SOCKET_SCHEME or not parts.hostname or parts.port is None:
        raise LinkError(url, "expected an absolute device path or socket://host:port")
    try:
        tcp, tcp_protocol = await loop.create_connection(
            protocol_factory, parts.hostname, parts.port
        )
    except OSError as exc:
        raise LinkError(url, f"cannot connect ({type(exc).__name__})") from exc
    return tcp, tcp_protocol


async def close_link(transport: asyncio.BaseTransport) -> None:
    """Close a link at once, dropping unsent output.

    A serial port's pending output is discarded on a worker thread first, so
    that closing it (which pyserial-asyncio does on the loop) has nothing to
    drain and cannot block. The protocol's ``connection_lost`` follows soon
    after, on the loop.
    """
    port = transport.get_extra_info("serial")
    if isinstance(port, serial.SerialBase):
        # A device already gone fails here; aborting below still cleans up.
        with contextlib.suppress(serial.SerialException, OSError, AttributeError, TypeError):
            await asyncio.to_thread(port.reset_output_buffer)
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()
