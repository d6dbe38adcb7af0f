"""Platform and bank codecs: round trips, golden documents, only their own error on any bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.bank import BANK_DIALECT
from protocols.platform import (
    JSON_DIALECT,
    SOAP_DIALECT,
    Codec,
    MessageDecodeError,
    MessageEncodeError,
    PlatformOperation,
    Request,
    Result,
    Status,
)

CODECS = pytest.mark.parametrize("codec", [JSON_DIALECT, SOAP_DIALECT], ids=["json", "soap"])
ALL_CODECS = pytest.mark.parametrize(
    "codec", [JSON_DIALECT, SOAP_DIALECT, BANK_DIALECT], ids=["json", "soap", "bank"]
)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,31}", fullmatch=True)
# XML 1.0 text without the characters it normalises or forbids (controls, CR).
values = st.text(
    st.characters(min_codepoint=0x20, exclude_categories=["Cs"], exclude_characters="\x7f"),
    max_size=40,
)
ids = st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True)
requests = st.builds(
    Request,
    operation=st.sampled_from(list(PlatformOperation)),
    message_id=ids,
    repeat=st.booleans(),
    fields=st.dictionaries(names, values, max_size=5),
)
results = st.builds(
    Result,
    message_id=ids,
    status=st.sampled_from(list(Status)),
    message=values,
    fields=st.dictionaries(names, values, max_size=5),
)


@CODECS
@given(items=st.lists(requests, min_size=1, max_size=4), answers=st.lists(results, min_size=1))
def test_round_trip(codec: Codec, items: list[Request], answers: list[Result]) -> None:
    """Requests and results decode to what was encoded."""
    assert codec.decode_requests(codec.encode_requests(items)) == items
    assert codec.decode_results(codec.encode_results(answers)) == answers


@ALL_CODECS
@given(data=st.binary(max_size=300))
def test_only_decode_error_on_any_bytes(codec: Codec, data: bytes) -> None:
    """Arbitrary bytes raise MessageDecodeError or decode; nothing else."""
    for decode in (codec.decode_requests, codec.decode_results):
        with contextlib.suppress(MessageDecodeError):
            decode(data)


@ALL_CODECS
@given(text=st.text(max_size=200))
def test_only_decode_error_on_near_documents(codec: Codec, text: str) -> None:
    """Text wrapped like a document also raises only MessageDecodeError."""
    for wrapped in (
        '{"requests":[' + text + "]}",
        '{"responses":[{"msgId":"M","code":"0","data":' + text + "}]}",
        (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            f"<soap:Body><requests>{text}</requests></soap:Body></soap:Envelope>"
        ),
    ):
        for decode in (codec.decode_requests, codec.decode_results):
            with contextlib.suppress(MessageDecodeError):
                decode(wrapped.encode())


def test_golden_documents() -> None:
    """The dialects' service names, codes and layouts, byte for byte."""
    item = Request(PlatformOperation.APPLY, "M1", repeat=True, fields={"AAC002": "x"})
    assert JSON_DIALECT.encode_requests([item]) == (
        b'{"requests":[{"service":"saveCardOpen","msgId":"M1","repeat":"1","data":{"AAC002":"x"}}]}'
    )
    assert SOAP_DIALECT.encode_requests([item]).endswith(
        b'<soap:Body><requests><request service="applyNewCard" msgId="M1" repeat="1">'
        b"<AAC002>x</AAC002></request></requests></soap:Body></soap:Envelope>"
    )
    done = Result("M1", Status.ALREADY_APPLIED, "已存在有效申请")
    assert b'"code":"1001"' in JSON_DIALECT.encode_results([done])
    assert b"<resultCode>-101</resultCode>" in SOAP_DIALECT.encode_results([done])
    assert b'"retCode":"000001"' in BANK_DIALECT.encode_results([done])


def test_doctype_and_bad_input_are_refused() -> None:
    """Entity declarations never reach the XML parser; bad names are refused on encode."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>'
    )
    with pytest.raises(MessageDecodeError) as info:
        SOAP_DIALECT.decode_requests(bomb)
    assert info.value.reason == "forbidden_markup"
    with pytest.raises(MessageEncodeError):
        Request(PlatformOperation.APPLY, "M1", fields={"1bad": "x"})
    with pytest.raises(MessageEncodeError):
        JSON_DIALECT.encode_requests([])
    unknown = b'{"responses":[{"msgId":"M","code":"E-NEW","msg":"?","data":{}}]}'
    assert JSON_DIALECT.decode_results(unknown)[0].status is Status.ERROR


@pytest.mark.parametrize("encoding", ["x-nope", "rot13", "unicode_escape", "latin-1", "gbk"])
def test_xml_declaring_another_encoding_is_refused(encoding: str) -> None:
    """A SOAP document is UTF-8: another declared encoding is bad_encoding, never looked up."""
    document = SOAP_DIALECT.encode_requests([Request(PlatformOperation.APPLY, "M1")])
    odd = document.replace(b"encoding='utf-8'", f'encoding="{encoding}"'.encode())
    with pytest.raises(MessageDecodeError) as info:
        SOAP_DIALECT.decode_requests(odd)
    assert info.value.reason == "bad_encoding"


@pytest.mark.parametrize(
    "document",
    [
        b'{"responses":[{"msgId":"M1","code":"0","msg":"\\ud800"}]}',
        b'{"responses":[{"msgId":"M1","code":"0","msg":"\xed\xa0\x80"}]}',
        b'{"responses":[{"msgId":"M1","code":"0","msg":"","data":{"AAZ500":"\\udfff"}}]}',
        b'{"responses":[{"msgId":"M1","code":"0","msg":"","x":1e400}]}',
    ],
)
def test_json_that_would_not_encode_again_is_refused(document: bytes) -> None:
    """Lone surrogates (escaped or as UTF-8 bytes) and numbers beyond a float are not JSON."""
    with pytest.raises(MessageDecodeError) as info:
        JSON_DIALECT.decode_results(document)
    assert info.value.reason == "not_json"


def test_soap_text_keeps_carriage_returns_and_refuses_controls() -> None:
    """A CR in text travels as a reference; a character XML cannot carry is refused."""
    result = Result("M1", Status.OK, "第一行\r\n第二行", {"AAC003": "a\rb"})
    document = SOAP_DIALECT.encode_results([result])
    assert b"&#13;" in document
    assert SOAP_DIALECT.decode_results(document) == [result]
    with pytest.raises(MessageEncodeError):
        SOAP_DIALECT.encode_results([Result("M1", Status.OK, "bell\x07")])
