"""What a printer and an encoder offer, wherever they are.

:class:`~devices.printer.PrinterDriver` (local) and
:class:`~devices.agent.client.RemotePrinter` (through an agent) both satisfy
:class:`Printer`; :class:`~devices.encoder.PcscEncoder`,
:class:`~devices.encoder.InProcessEncoder` and
:class:`~devices.agent.client.RemoteEncoder` all satisfy :class:`Encoder`, whose
channels are :class:`~devices.encoder.CardChannel` objects. Both raise the same
typed errors (``devices.printer.errors``, ``devices.encoder.errors``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from protocols.printer.commands import EncodingStation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devices.encoder.channel import CardChannel, TransmissionProtocol
    from protocols.printer.commands import PrinterStatus
    from protocols.printer.frames import Depth, Panel, Reply, Request

__all__ = ["Encoder", "Printer"]


class Printer(Protocol):
    """A card printer: one command at a time, typed errors, timeouts."""

    @property
    def connected(self) -> bool:
        """Whether commands can reach the printer now."""
        ...

    async def command(self, request: Request) -> Reply:
        """Send one command and return its reply."""
        ...

    async def status(self) -> PrinterStatus:
        """Read every sensor, the card position and the ribbon."""
        ...

    async def firmware_version(self) -> str:
        """The printer's firmware version text."""
        ...

    async def insert_card(self, station: EncodingStation = EncodingStation.CONTACT) -> None:
        """Take a card from the feeder to a station."""
        ...

    async def print_card(self, panels: Sequence[tuple[Panel, Depth, bytes]]) -> None:
        """Print one card from its panels, as one transaction."""
        ...

    async def eject_card(self) -> None:
        """Eject the card to the output."""
        ...

    async def reject_card(self) -> None:
        """Move the card to the reject box."""
        ...

    async def clear_error(self) -> None:
        """Clear a mechanical error."""
        ...


class Encoder(Protocol):
    """Chip encoders: a channel to the card in a named reader."""

    async def connect(
        self, reader: str, protocols: tuple[TransmissionProtocol, ...] = ("T=0", "T=1")
    ) -> CardChannel:
        """Connect to the card in ``reader``."""
        ...
