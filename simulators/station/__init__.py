"""An issuance station: a simulated printer whose cards carry simulated chips.

:class:`CardPath` (sans-I/O) follows the printer model's card and moves blank
chips from the feeder to the contact station, the output tray and the reject
box; :class:`StationSimulator` serves the printer on a pty and puts the chip at
the contact station into a reader (in process, or pcscd's vpcd reader).
"""

from simulators.station.path import CardPath, ChipEvent, ChipIn, ChipOut, StationCard, card_summary
from simulators.station.server import ReaderCard, StationConfig, StationSimulator
from simulators.station.vpcd import VpcdSlot, reader_for_port

__all__ = [
    "CardPath",
    "ChipEvent",
    "ChipIn",
    "ChipOut",
    "ReaderCard",
    "StationCard",
    "StationConfig",
    "StationSimulator",
    "VpcdSlot",
    "card_summary",
    "reader_for_port",
]
