"""Sans-I/O codec of the Evolis-style card printer command language.

Requests are ``ESC cmd;p1;...;pn CR`` (``Db`` adds a binary panel payload);
replies are text lines ending in CR, or, in ACK/NACK serial mode, ACK or NACK
and an error code. See ``docs/protocols/printer.md``.
"""

from protocols.printer.commands import (
    CardPosition,
    CommandKind,
    EncodingStation,
    ErrorMode,
    PrinterStatus,
    Sensor,
    SerialMode,
    Timeouts,
    command_kind,
    parse_status,
    setup_requests,
    status_requests,
)
from protocols.printer.decoder import (
    NEED_DATA,
    Discarded,
    NeedData,
    ReplyDecoder,
    RequestDecoder,
)
from protocols.printer.errors import (
    PrinterEncodeError,
    PrinterFrameError,
    PrinterProtocolError,
    PrinterReplyError,
    PrinterStateError,
)
from protocols.printer.frames import (
    PANEL_HEIGHT,
    PANEL_WIDTH,
    Ack,
    Depth,
    ErrorCode,
    Nack,
    Panel,
    Reply,
    Request,
    TextReply,
    panel_size,
)
from protocols.printer.state import ClientState, Completed, PrinterClient, Unsolicited

__all__ = [
    "NEED_DATA",
    "PANEL_HEIGHT",
    "PANEL_WIDTH",
    "Ack",
    "CardPosition",
    "ClientState",
    "CommandKind",
    "Completed",
    "Depth",
    "Discarded",
    "EncodingStation",
    "ErrorCode",
    "ErrorMode",
    "Nack",
    "NeedData",
    "Panel",
    "PrinterClient",
    "PrinterEncodeError",
    "PrinterFrameError",
    "PrinterProtocolError",
    "PrinterReplyError",
    "PrinterStateError",
    "PrinterStatus",
    "Reply",
    "ReplyDecoder",
    "Request",
    "RequestDecoder",
    "Sensor",
    "SerialMode",
    "TextReply",
    "Timeouts",
    "Unsolicited",
    "command_kind",
    "panel_size",
    "parse_status",
    "setup_requests",
    "status_requests",
]
