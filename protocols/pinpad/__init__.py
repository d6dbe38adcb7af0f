"""Sans-I/O codec of the encrypting PIN pad (密码键盘) serial protocol.

Frames are ``STX hex(body) ETX crc``; requests carry a SEQ the reply echoes;
the pad enciphers PIN blocks under its PIN key and never sends a PIN in clear.
See ``docs/protocols/pinpad.md``.
"""

from protocols.pinpad.commands import (
    KCV_LENGTH,
    MAX_PIN_LENGTH,
    MIN_PIN_LENGTH,
    Call,
    EncipheredPin,
    EntryParams,
    LoadKeyParams,
    PadInfo,
    Timeouts,
    parse_info,
    parse_kcv,
    parse_pin,
    parse_show,
)
from protocols.pinpad.decoder import (
    NEED_DATA,
    BadRequest,
    Discarded,
    NeedData,
    PadMessageDecoder,
    RequestDecoder,
)
from protocols.pinpad.errors import (
    PinPadCodecError,
    PinPadEncodeError,
    PinPadFrameError,
    PinPadParameterError,
    PinPadReplyError,
    PinPadStateError,
)
from protocols.pinpad.frames import (
    Command,
    KeyAlgorithm,
    KeyEvent,
    PadMessage,
    Prompt,
    Reply,
    Request,
    Status,
    crc16,
    decode_frame,
    encode_frame,
)
from protocols.pinpad.state import ClientState, Completed, PinPadClient, Unsolicited

__all__ = [
    "KCV_LENGTH",
    "MAX_PIN_LENGTH",
    "MIN_PIN_LENGTH",
    "NEED_DATA",
    "BadRequest",
    "Call",
    "ClientState",
    "Command",
    "Completed",
    "Discarded",
    "EncipheredPin",
    "EntryParams",
    "KeyAlgorithm",
    "KeyEvent",
    "LoadKeyParams",
    "NeedData",
    "PadInfo",
    "PadMessage",
    "PadMessageDecoder",
    "PinPadClient",
    "PinPadCodecError",
    "PinPadEncodeError",
    "PinPadFrameError",
    "PinPadParameterError",
    "PinPadReplyError",
    "PinPadStateError",
    "Prompt",
    "Reply",
    "Request",
    "RequestDecoder",
    "Status",
    "Timeouts",
    "Unsolicited",
    "crc16",
    "decode_frame",
    "encode_frame",
    "parse_info",
    "parse_kcv",
    "parse_pin",
    "parse_show",
]
