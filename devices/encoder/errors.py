"""Errors of the chip encoder drivers, and the translation of PC/SC errors.

:class:`EncoderError` is the root; its families say what a caller does next:
:class:`EncoderTimeoutError` (retry later), :class:`EncoderConnectionError`
(the service, the reader or the card is gone: wait for the monitor's events),
:class:`EncoderProtocolError` (the card's answer makes no sense). pyscard's
errors and result codes become these at the boundary, in
:func:`pcsc_error` and :func:`map_pcsc_errors`; nothing else of pyscard leaks.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "CardAbsentError",
    "EncoderConnectionError",
    "EncoderError",
    "EncoderProtocolError",
    "EncoderTimeoutError",
    "ReaderUnavailableError",
    "ServiceUnavailableError",
    "map_pcsc_errors",
    "pcsc_error",
]

# PC/SC result codes (pcsc-lite pcsclite.h), as unsigned 32-bit values.
SCARD_E_CANCELLED: Final = 0x80100002
SCARD_E_INVALID_HANDLE: Final = 0x80100003
SCARD_E_UNKNOWN_READER: Final = 0x80100009
SCARD_E_TIMEOUT: Final = 0x8010000A
SCARD_E_SHARING_VIOLATION: Final = 0x8010000B
SCARD_E_NO_SMARTCARD: Final = 0x8010000C
SCARD_E_PROTO_MISMATCH: Final = 0x8010000F
SCARD_F_COMM_ERROR: Final = 0x80100013
SCARD_E_NOT_TRANSACTED: Final = 0x80100016
SCARD_E_READER_UNAVAILABLE: Final = 0x80100017
SCARD_E_NO_SERVICE: Final = 0x8010001D
SCARD_E_SERVICE_STOPPED: Final = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE: Final = 0x8010002E
SCARD_W_UNRESPONSIVE_CARD: Final = 0x80100066
SCARD_W_UNPOWERED_CARD: Final = 0x80100067
SCARD_W_RESET_CARD: Final = 0x80100068
SCARD_W_REMOVED_CARD: Final = 0x80100069

#: Result codes meaning pcscd itself is gone: a new context is needed.
SERVICE_LOST: Final = frozenset(
    {SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_E_INVALID_HANDLE, SCARD_F_COMM_ERROR}
)
_READER_LOST: Final = frozenset(
    {SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE, SCARD_E_NO_READERS_AVAILABLE}
)
_CARD_LOST: Final = frozenset(
    {
        SCARD_E_NO_SMARTCARD,
        SCARD_W_REMOVED_CARD,
        SCARD_W_RESET_CARD,
        SCARD_W_UNPOWERED_CARD,
        SCARD_W_UNRESPONSIVE_CARD,
        SCARD_E_NOT_TRANSACTED,
    }
)


class EncoderError(Exception):
    """Root of the encoder driver errors.

    Attributes:
        code: Stable machine-readable code.
        reader: The reader concerned, when known.
        pcsc_code: The PC/SC result code behind it, when there is one.
    """

    code: ClassVar[str] = "encoder.error"

    def __init__(
        self, message: str, *, reader: str | None = None, pcsc_code: int | None = None
    ) -> None:
        """Record the reader and the PC/SC result code."""
        super().__init__(message)
        self.reader = reader
        self.pcsc_code = pcsc_code


class EncoderTimeoutError(EncoderError):
    """A call to the reader did not finish in time."""

    code: ClassVar[str] = "encoder.timeout"


class EncoderConnectionError(EncoderError):
    """The PC/SC service, the reader or the card is not there."""

    code: ClassVar[str] = "encoder.connection"


class ServiceUnavailableError(EncoderConnectionError):
    """pcscd is not running or has stopped."""

    code: ClassVar[str] = "encoder.service_unavailable"


class ReaderUnavailableError(EncoderConnectionError):
    """The reader is unknown or was unplugged."""

    code: ClassVar[str] = "encoder.reader_unavailable"


class CardAbsentError(EncoderConnectionError):
    """No card in the reader, or it was removed or reset during the call."""

    code: ClassVar[str] = "encoder.card_absent"


class EncoderProtocolError(EncoderError):
    """The card's answer is malformed or the exchange went wrong."""

    code: ClassVar[str] = "encoder.protocol"


def pcsc_error(result: int, operation: str, reader: str | None = None) -> EncoderError:
    """The error for a PC/SC result code returned by ``operation``."""
    code = result & 0xFFFFFFFF
    message = f"{operation} failed with PC/SC code {code:08X}"
    family: type[EncoderError]
    if code in SERVICE_LOST:
        family = ServiceUnavailableError
    elif code in _READER_LOST:
        family = ReaderUnavailableError
    elif code in _CARD_LOST:
        family = CardAbsentError
    elif code == SCARD_E_TIMEOUT:
        family = EncoderTimeoutError
    elif code == SCARD_E_SHARING_VIOLATION:
        family = EncoderConnectionError
    else:
        family = EncoderError
    return family(message, reader=reader, pcsc_code=code)


@contextlib.contextmanager
def map_pcsc_errors(operation: str, reader: str | None = None) -> Iterator[None]:
    """Turn anything pyscard raises into an :class:`EncoderError` (our errors pass)."""
    try:
        yield
    except EncoderError:
        raise
    except Exception as exc:  # pyscard raises SWIG errors, SystemError, TypeError
        raise EncoderError(f"{operation} failed: {type(exc).__name__}", reader=reader) from exc
