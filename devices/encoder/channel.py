"""What every encoder driver offers: reader events, card channels, one APDU exchange.

A :class:`CardChannel` is a connection to the card in one reader. Both the
PC/SC driver and the in-process driver give the same interface, and both run
each command through :func:`exchange`, which applies the T=0 answer chaining
(``61xx`` → GET RESPONSE, ``6Cxx`` → resend) of :mod:`protocols.apdu`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

import structlog

from devices.encoder.errors import EncoderProtocolError
from protocols.apdu import ApduError, CommandApdu, ResponseApdu, T0Exchange

__all__ = [
    "CardChannel",
    "CardInserted",
    "CardRemoved",
    "EventListener",
    "ReaderAdded",
    "ReaderEvent",
    "ReaderRemoved",
    "ServiceLost",
    "ServiceRestored",
    "TransmissionProtocol",
    "exchange",
]

log = structlog.get_logger(__name__)

TransmissionProtocol = Literal["T=0", "T=1"]


@dataclass(frozen=True, slots=True)
class ReaderAdded:
    """A reader appeared (at start, after plugging, or after pcscd came back)."""

    reader: str


@dataclass(frozen=True, slots=True)
class ReaderRemoved:
    """A reader went away (unplugged, or pcscd stopped)."""

    reader: str


@dataclass(frozen=True, slots=True)
class CardInserted:
    """A card is in ``reader``; ``atr`` is its answer to reset."""

    reader: str
    atr: bytes


@dataclass(frozen=True, slots=True)
class CardRemoved:
    """The card left ``reader``."""

    reader: str


@dataclass(frozen=True, slots=True)
class ServiceLost:
    """The PC/SC service went away; the driver keeps trying to get it back."""


@dataclass(frozen=True, slots=True)
class ServiceRestored:
    """The PC/SC service is back (a new context is established)."""


#: Everything a driver reports about readers and cards.
ReaderEvent: TypeAlias = (
    ReaderAdded | ReaderRemoved | CardInserted | CardRemoved | ServiceLost | ServiceRestored
)
#: Receives every event, on the event loop; it must not block.
EventListener: TypeAlias = Callable[[ReaderEvent], None]


class CardChannel(Protocol):
    """A connection to the card in one reader."""

    @property
    def reader(self) -> str:
        """The reader's name."""
        ...

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        ...

    @property
    def protocol(self) -> TransmissionProtocol:
        """The active transmission protocol."""
        ...

    async def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Send one command; ``61xx``/``6Cxx`` are handled, the final answer returned."""
        ...

    async def transmit_raw(self, apdu: bytes) -> bytes:
        """Send bytes as they are and return the card's bytes as they are."""
        ...

    async def close(self) -> None:
        """Release the connection (the card stays powered)."""
        ...


async def exchange(
    transmit_raw: Callable[[bytes], Awaitable[bytes]], command: CommandApdu, reader: str
) -> ResponseApdu:
    """Run one command to its final answer through the T=0 state machine.

    Raises:
        EncoderProtocolError: An answer is malformed or chaining does not end.
        EncoderError: From ``transmit_raw``.
    """
    machine = T0Exchange(command)
    step: CommandApdu | ResponseApdu = machine.start()
    try:
        while isinstance(step, CommandApdu):
            raw = await transmit_raw(step.to_bytes())
            answer = ResponseApdu.from_bytes(raw)
            log.debug(
                "apdu",
                reader=reader,
                header=step.header.hex(),
                lc=len(step.data),
                sw=f"{answer.sw:04X}",
                answer_length=len(answer.data),
            )
            step = machine.receive(answer)
    except ApduError as exc:
        raise EncoderProtocolError(f"card exchange failed: {exc.code}", reader=reader) from exc
    return step
