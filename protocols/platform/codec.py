"""The platform dialects' codecs: JSON and SOAP/XML documents of request items.

Both dialects carry the same :class:`~protocols.platform.messages.Request`
and :class:`~protocols.platform.messages.Result` items; they differ in syntax,
in operation names and in result codes. Decoders raise only
:class:`~protocols.platform.errors.MessageDecodeError`, whatever the bytes.

JSON (one province speaks ``saveCardOpen`` / ``saveCardCompleted`` / ``saveCardActive``)::

    {
        "requests": [
            {
                "service": "saveCardOpen",
                "msgId": "M1",
                "repeat": "0",
                "data": {"AAC002": "...", "AAC003": "...", "AAB301": "652300"},
            }
        ]
    }
    {"responses": [{"msgId": "M1", "code": "0", "msg": "成功", "data": {"AAZ500": "..."}}]}

SOAP 1.1 (another speaks ``applyNewCard`` / ``getCardData`` / ``returnCardData`` /
``enableCard`` / ``reportLostCard``)::

    <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
      <requests><request service="applyNewCard" msgId="M1" repeat="0">
        <AAC002>...</AAC002><AAB301>652300</AAB301></request></requests>
    </soap:Body></soap:Envelope>

    ... <responses><response msgId="M1"><resultCode>1</resultCode>
        <resultMsg>成功</resultMsg><data><AAZ500>...</AAZ500></data></response></responses> ...

Documents with a DOCTYPE are refused before parsing (no entity expansion). A
JSON document must be RFC 8259 JSON (no ``NaN``, no number beyond a float, no
lone surrogate: see :mod:`protocols._strict_json`). An XML document is UTF-8,
as the dialect's content type says: one that declares another encoding is
refused (``bad_encoding``), and the parser never looks a declared encoding up
among Python's codecs (unknown names, ``rot13``, ``unicode_escape``...).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Final, Protocol
from xml.etree import ElementTree as ET

from protocols import _strict_json
from protocols.platform.errors import MessageDecodeError, MessageEncodeError
from protocols.platform.messages import (
    MAX_DOCUMENT_SIZE,
    MAX_ITEMS,
    PlatformOperation,
    Request,
    Result,
    Status,
    check_field_name,
    decode_fields,
    decode_message_id,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "JSON_DIALECT",
    "SOAP_DIALECT",
    "Codec",
    "JsonCodec",
    "SoapCodec",
]

SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
#: The encoding an XML declaration names (it can only come first, after a BOM).
_DECLARED_ENCODING: Final = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?<\?xml\s[^>]*?encoding\s*=\s*["']([^"']*)["']"""
)
#: A character XML 1.0 cannot carry, not even as a reference (section 2.2, ``Char``).
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DECODE_ERRORS: Final = (ValueError, TypeError, RecursionError, ET.ParseError)


class Codec(Protocol):
    """Encodes and decodes documents of request items and of results."""

    @property
    def name(self) -> str:
        """The dialect's name (``json``, ``soap``)."""
        ...

    @property
    def content_type(self) -> str:
        """The media type of the (enveloped) document's plaintext."""
        ...

    def encode_requests(self, items: Sequence[Request]) -> bytes:
        """Encode request items into one document."""
        ...

    def decode_requests(self, data: bytes) -> list[Request]:
        """Decode a request document."""
        ...

    def encode_results(self, items: Sequence[Result]) -> bytes:
        """Encode results into one document."""
        ...

    def decode_results(self, data: bytes) -> list[Result]:
        """Decode a result document."""
        ...


def _invert(table: Mapping[str, str], what: str) -> dict[str, str]:
    inverse = {v: k for k, v in table.items()}
    if len(inverse) != len(table):
        raise ValueError(f"{what} names are not unique")
    return inverse


class _Tables:
    """PlatformOperation names and result codes of one dialect, both ways."""

    def __init__(self, services: Mapping[str, str], codes: Mapping[Status, str]) -> None:
        self.services = dict(services)
        self.operations = _invert(services, "service")
        self.codes = dict(codes)
        self.statuses = {code: status for status, code in codes.items()}

    def service(self, operation: str) -> str:
        try:
            return self.services[operation]
        except KeyError:
            raise MessageEncodeError(f"operation {operation!r} has no service name") from None

    def operation(self, service: object) -> str:
        if not isinstance(service, str) or service not in self.operations:
            raise MessageDecodeError("unknown_service")
        return self.operations[service]

    def status(self, code: object) -> Status:
        if not isinstance(code, str):
            raise MessageDecodeError("bad_code")
        # An unknown code is an error answer, not an undecodable document.
        return self.statuses.get(code, Status.ERROR)


def _check_size(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageDecodeError("not_bytes")
    if len(data) > MAX_DOCUMENT_SIZE:
        raise MessageDecodeError("too_large")


def _check_count(items: Sequence[object]) -> None:
    if not 1 <= len(items) <= MAX_ITEMS:
        raise MessageEncodeError(f"a document holds 1 to {MAX_ITEMS} items")


# ------------------------------------------------------------------ JSON
class JsonCodec:
    """A JSON dialect; key names and tables are parameters (the bank reuses it)."""

    content_type = "application/json"

    def __init__(  # noqa: PLR0913 - the dialect's vocabulary, all keyword-only
        self,
        *,
        name: str,
        services: Mapping[str, str],
        codes: Mapping[Status, str],
        operation_key: str = "service",
        id_key: str = "msgId",
        code_key: str = "code",
        text_key: str = "msg",
    ) -> None:
        """Use ``services`` (operation -> service name) and ``codes`` (status -> code)."""
        self.name = name
        self._tables = _Tables(services, codes)
        self._op_key = operation_key
        self._id_key = id_key
        self._code_key = code_key
        self._text_key = text_key

    def encode_requests(self, items: Sequence[Request]) -> bytes:
        """Encode request items (``{"requests": [...]}``)."""
        _check_count(items)
        doc = {
            "requests": [
                {
                    self._op_key: self._tables.service(item.operation),
                    self._id_key: item.message_id,
                    "repeat": "1" if item.repeat else "0",
                    "data": item.fields,
                }
                for item in items
            ]
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def encode_results(self, items: Sequence[Result]) -> bytes:
        """Encode results (``{"responses": [...]}``)."""
        _check_count(items)
        doc = {
            "responses": [
                {
                    self._id_key: item.message_id,
                    self._code_key: self._tables.codes[item.status],
                    self._text_key: item.message,
                    "data": item.fields,
                }
                for item in items
            ]
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def _items(self, data: bytes, key: str) -> list[dict[str, object]]:
        _check_size(data)
        try:
            doc = _strict_json.loads_bytes(bytes(data))
        except _DECODE_ERRORS:
            raise MessageDecodeError("not_json") from None
        items = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise MessageDecodeError("bad_document", f"expected 1 to {MAX_ITEMS} {key}")
        if not all(isinstance(item, dict) for item in items):
            raise MessageDecodeError("bad_item")
        return items

    def decode_requests(self, data: bytes) -> list[Request]:
        """Decode a request document."""
        found = []
        for item in self._items(data, "requests"):
            repeat = item.get("repeat")
            if repeat not in ("0", "1"):
                raise MessageDecodeError("bad_repeat")
            found.append(
                Request(
                    operation=self._tables.operation(item.get(self._op_key)),
                    message_id=decode_message_id(item.get(self._id_key)),
                    repeat=repeat == "1",
                    fields=decode_fields(item.get("data", {})),
                )
            )
        return found

    def decode_results(self, data: bytes) -> list[Result]:
        """Decode a result document."""
        found = []
        for item in self._items(data, "responses"):
            text = item.get(self._text_key, "")
            if not isinstance(text, str):
                raise MessageDecodeError("bad_text")
            found.append(
                Result(
                    message_id=decode_message_id(item.get(self._id_key)),
                    status=self._tables.status(item.get(self._code_key)),
                    message=text,
                    fields=decode_fields(item.get("data", {})),
                )
            )
        return found


# ------------------------------------------------------------------ SOAP
def _text(element: ET.Element) -> str:
    return element.text or ""


def _xml_text(value: str) -> str:
    """``value`` if XML 1.0 can carry it (no control characters, no lone surrogates)."""
    if _NOT_XML_CHAR.search(value):
        raise MessageEncodeError("text holds a character XML cannot carry")
    return value


class SoapCodec:
    """A SOAP 1.1 dialect: one ``requests`` element in the body, fields as elements."""

    content_type = "text/xml; charset=utf-8"

    def __init__(
        self, *, name: str, services: Mapping[str, str], codes: Mapping[Status, str]
    ) -> None:
        """Use ``services`` (operation -> service name) and ``codes`` (status -> code)."""
        self.name = name
        self._tables = _Tables(services, codes)

    @staticmethod
    def _envelope(payload: ET.Element) -> bytes:
        envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
        ET.SubElement(envelope, f"{{{SOAP_NS}}}Body").append(payload)
        ET.register_namespace("soap", SOAP_NS)
        data: bytes = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
        # ElementTree writes a CR in text as it is, and a parser reads it as LF
        # (XML 1.0, 2.11); as a reference it stays a CR. No markup holds one.
        return data.replace(b"\r", b"&#13;")

    @staticmethod
    def _fields(parent: ET.Element, fields: Mapping[str, str]) -> None:
        for key, value in fields.items():
            ET.SubElement(parent, check_field_name(key)).text = _xml_text(value)

    def encode_requests(self, items: Sequence[Request]) -> bytes:
        """Encode request items."""
        _check_count(items)
        root = ET.Element("requests")
        for item in items:
            element = ET.SubElement(
                root,
                "request",
                service=self._tables.service(item.operation),
                msgId=item.message_id,
                repeat="1" if item.repeat else "0",
            )
            self._fields(element, item.fields)
        return self._envelope(root)

    def encode_results(self, items: Sequence[Result]) -> bytes:
        """Encode results."""
        _check_count(items)
        root = ET.Element("responses")
        for item in items:
            element = ET.SubElement(root, "response", msgId=item.message_id)
            ET.SubElement(element, "resultCode").text = self._tables.codes[item.status]
            ET.SubElement(element, "resultMsg").text = _xml_text(item.message)
            self._fields(ET.SubElement(element, "data"), item.fields)
        return self._envelope(root)

    @staticmethod
    def _body_items(data: bytes, container: str, item: str) -> list[ET.Element]:
        _check_size(data)
        raw = bytes(data)
        if b"<!" in raw:  # DOCTYPE, ENTITY, CDATA, comments: none are needed
            raise MessageDecodeError("forbidden_markup")
        declared = _DECLARED_ENCODING.match(raw)
        if declared is not None and declared.group(1).lower() != b"utf-8":
            raise MessageDecodeError("bad_encoding")
        # An explicit encoding overrides the declaration: expat reads UTF-8 (or
        # UTF-16 after its BOM) itself and never asks Python for a codec by name.
        # No DTD can reach the parser (above), hence no entity expansion.
        parser = ET.XMLParser(encoding="utf-8")  # noqa: S314
        try:
            root = ET.fromstring(raw, parser)  # noqa: S314
        except _DECODE_ERRORS:
            raise MessageDecodeError("not_xml") from None
        body = root.find(f"{{{SOAP_NS}}}Body") if root.tag == f"{{{SOAP_NS}}}Envelope" else None
        holder = body.find(container) if body is not None else None
        if holder is None:
            raise MessageDecodeError("bad_document", f"no soap:Body/{container}")
        elements = list(holder)
        if not 1 <= len(elements) <= MAX_ITEMS or any(e.tag != item for e in elements):
            raise MessageDecodeError("bad_document", f"expected 1 to {MAX_ITEMS} {item}")
        return elements

    @staticmethod
    def _decode_fields(parent: ET.Element | None) -> dict[str, str]:
        if parent is None:
            return {}
        if any(len(child) for child in parent):
            raise MessageDecodeError("bad_fields", "nested field")
        return decode_fields({child.tag: _text(child) for child in parent})

    def decode_requests(self, data: bytes) -> list[Request]:
        """Decode a request document."""
        found = []
        for element in self._body_items(data, "requests", "request"):
            repeat = element.get("repeat")
            if repeat not in ("0", "1"):
                raise MessageDecodeError("bad_repeat")
            found.append(
                Request(
                    operation=self._tables.operation(element.get("service")),
                    message_id=decode_message_id(element.get("msgId")),
                    repeat=repeat == "1",
                    fields=self._decode_fields(element),
                )
            )
        return found

    def decode_results(self, data: bytes) -> list[Result]:
        """Decode a result document."""
        found = []
        for element in self._body_items(data, "responses", "response"):
            code = element.find("resultCode")
            text = element.find("resultMsg")
            found.append(
                Result(
                    message_id=decode_message_id(element.get("msgId")),
                    status=self._tables.status(_text(code) if code is not None else None),
                    message=_text(text) if text is not None else "",
                    fields=self._decode_fields(element.find("data")),
                )
            )
        return found


# ------------------------------------------------------------ the dialects
_JSON_SERVICES: Final[dict[str, str]] = {
    PlatformOperation.APPLY: "saveCardOpen",
    PlatformOperation.GET_CARD_DATA: "queryCardData",
    PlatformOperation.RETURN_DATA: "saveCardCompleted",
    PlatformOperation.ENABLE: "saveCardActive",
    PlatformOperation.QUERY_STATUS: "queryCardState",
    PlatformOperation.REPORT_LOSS: "saveCardLoss",
    PlatformOperation.CANCEL_LOSS: "saveCardUnloss",
    PlatformOperation.CANCEL_CARD: "saveCardCancel",
    PlatformOperation.ROLLBACK_CANCEL: "saveCardCancelBack",
    PlatformOperation.CHANGE_INFO: "savePersonChange",
    PlatformOperation.ELECTRONIC_CARD: "saveElecCard",
    PlatformOperation.PIN_RESET_AUTH: "applyPinReset",
    PlatformOperation.UNLOCK_AUTH: "applyPinUnlock",
    PlatformOperation.EXTERNAL_AUTH: "keyExternalAuth",
    PlatformOperation.SECURE_COMMAND: "keySecureCommand",
    PlatformOperation.CARD_EVENT: "saveCardEvent",
    PlatformOperation.LOSS_NOTICE: "pushCardLoss",
    PlatformOperation.ONLINE_APPLICATION: "pushOnlineApply",
    PlatformOperation.DAY_SUMMARY: "queryDaySummary",
}
_JSON_CODES: Final = {
    Status.OK: "0",
    Status.ALREADY_APPLIED: "1001",
    Status.NOT_FOUND: "2001",
    Status.INVALID_STATE: "2002",
    Status.INVALID_REQUEST: "4000",
    Status.REFUSED: "3001",
    Status.ERROR: "9999",
}
_SOAP_SERVICES: Final[dict[str, str]] = {
    PlatformOperation.APPLY: "applyNewCard",
    PlatformOperation.GET_CARD_DATA: "getCardData",
    PlatformOperation.RETURN_DATA: "returnCardData",
    PlatformOperation.ENABLE: "enableCard",
    PlatformOperation.QUERY_STATUS: "queryCardStatus",
    PlatformOperation.REPORT_LOSS: "reportLostCard",
    PlatformOperation.CANCEL_LOSS: "cancelLostCard",
    PlatformOperation.CANCEL_CARD: "cancelCard",
    PlatformOperation.ROLLBACK_CANCEL: "rollbackCardCancel",
    PlatformOperation.CHANGE_INFO: "modifyPersonInfo",
    PlatformOperation.ELECTRONIC_CARD: "applyElectronicCard",
    PlatformOperation.PIN_RESET_AUTH: "authorizePinReset",
    PlatformOperation.UNLOCK_AUTH: "authorizePinUnlock",
    PlatformOperation.EXTERNAL_AUTH: "getExternalAuthData",
    PlatformOperation.SECURE_COMMAND: "getSecureCommand",
    PlatformOperation.CARD_EVENT: "reportCardEvent",
    PlatformOperation.LOSS_NOTICE: "notifyCardLoss",
    PlatformOperation.ONLINE_APPLICATION: "notifyOnlineApplication",
    PlatformOperation.DAY_SUMMARY: "getDaySummary",
}
_SOAP_CODES: Final = {
    Status.OK: "1",
    Status.ALREADY_APPLIED: "-101",
    Status.NOT_FOUND: "-201",
    Status.INVALID_STATE: "-202",
    Status.INVALID_REQUEST: "-400",
    Status.REFUSED: "-301",
    Status.ERROR: "-1",
}

#: The JSON dialect (saveCardOpen / saveCardCompleted / saveCardActive ...).
JSON_DIALECT: Final = JsonCodec(name="json", services=_JSON_SERVICES, codes=_JSON_CODES)
#: The SOAP dialect (applyNewCard / getCardData / returnCardData / enableCard ...).
SOAP_DIALECT: Final = SoapCodec(name="soap", services=_SOAP_SERVICES, codes=_SOAP_CODES)
