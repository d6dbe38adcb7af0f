"""ISO/IEC 7816-4 APDUs (sans-I/O): command and response codec, T=0 answer chaining.

>>> CommandApdu(0x00, 0x84, 0x00, 0x00, le=8).to_bytes().hex()
'0084000008'
>>> ResponseApdu.from_bytes(bytes.fromhex("9000")).ok
True
"""

from protocols.apdu.errors import ApduDecodeError, ApduEncodeError, ApduError, ExchangeError
from protocols.apdu.frames import (
    MAX_EXTENDED_DATA,
    MAX_EXTENDED_LE,
    MAX_SHORT_DATA,
    MAX_SHORT_LE,
    SW_OK,
    CommandApdu,
    ResponseApdu,
)
from protocols.apdu.state import (
    DEFAULT_MAX_ROUNDS,
    GET_RESPONSE_INS,
    TRANSITIONS,
    Action,
    AnswerKind,
    ExchangeState,
    T0Exchange,
    classify,
    get_response,
)

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "GET_RESPONSE_INS",
    "MAX_EXTENDED_DATA",
    "MAX_EXTENDED_LE",
    "MAX_SHORT_DATA",
    "MAX_SHORT_LE",
    "SW_OK",
    "TRANSITIONS",
    "Action",
    "AnswerKind",
    "ApduDecodeError",
    "ApduEncodeError",
    "ApduError",
    "CommandApdu",
    "ExchangeError",
    "ExchangeState",
    "ResponseApdu",
    "T0Exchange",
    "classify",
    "get_response",
]
