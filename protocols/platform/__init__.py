# ruff: noqa: A005 - protocols.platform, not the standard library's platform
"""Provincial platform messages (sans-I/O): the neutral model and two dialect codecs.

The model is :mod:`protocols.platform.messages`; the JSON and SOAP/XML codecs
are :mod:`protocols.platform.codec`. Documents travel inside the security
envelope (docs/protocols/envelope.md); docs/protocols/platform.md describes both.
"""

from protocols.platform.codec import JSON_DIALECT, SOAP_DIALECT, Codec, JsonCodec, SoapCodec
from protocols.platform.errors import MessageDecodeError, MessageEncodeError, MessageError
from protocols.platform.messages import (
    FIELDS,
    KEY_SERVICE,
    MAX_DOCUMENT_SIZE,
    MAX_ITEMS,
    QUEUEABLE,
    PlatformOperation,
    Request,
    Result,
    Status,
)

__all__ = [
    "FIELDS",
    "JSON_DIALECT",
    "KEY_SERVICE",
    "MAX_DOCUMENT_SIZE",
    "MAX_ITEMS",
    "QUEUEABLE",
    "SOAP_DIALECT",
    "Codec",
    "JsonCodec",
    "MessageDecodeError",
    "MessageEncodeError",
    "MessageError",
    "PlatformOperation",
    "Request",
    "Result",
    "SoapCodec",
    "Status",
]
