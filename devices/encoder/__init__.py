"""Chip encoders: the PC/SC driver (pyscard via pcscd) and an in-process twin.

Both give :class:`CardChannel` objects and report :data:`ReaderEvent` objects
to a listener; :class:`SocialSecurityApplication` speaks the card application
over either.
"""

from devices.encoder.application import SocialSecurityApplication
from devices.encoder.channel import (
    CardChannel,
    CardInserted,
    CardRemoved,
    EventListener,
    ReaderAdded,
    ReaderEvent,
    ReaderRemoved,
    ServiceLost,
    ServiceRestored,
    TransmissionProtocol,
    exchange,
)
from devices.encoder.errors import (
    CardAbsentError,
    EncoderConnectionError,
    EncoderError,
    EncoderProtocolError,
    EncoderTimeoutError,
    ReaderUnavailableError,
    ServiceUnavailableError,
)
from devices.encoder.inprocess import (
    InProcessChannel,
    InProcessEncoder,
    VirtualCard,
    protocol_from_atr,
)
from devices.encoder.pcsc import PcscChannel, PcscEncoder

__all__ = [
    "CardAbsentError",
    "CardChannel",
    "CardInserted",
    "CardRemoved",
    "EncoderConnectionError",
    "EncoderError",
    "EncoderProtocolError",
    "EncoderTimeoutError",
    "EventListener",
    "InProcessChannel",
    "InProcessEncoder",
    "PcscChannel",
    "PcscEncoder",
    "ReaderAdded",
    "ReaderEvent",
    "ReaderRemoved",
    "ReaderUnavailableError",
    "ServiceLost",
    "ServiceRestored",
    "ServiceUnavailableError",
    "SocialSecurityApplication",
    "TransmissionProtocol",
    "VirtualCard",
    "exchange",
    "protocol_from_atr",
]
