"""Hypothesis: on any bytes the printer codec raises nothing but PrinterProtocolError."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.printer import commands
from protocols.printer.decoder import NEED_DATA, ReplyDecoder, RequestDecoder
from protocols.printer.errors import PrinterProtocolError
from protocols.printer.frames import (
    MAX_COMMAND_LENGTH,
    MAX_REPLY_LENGTH,
    Ack,
    Depth,
    Nack,
    Request,
    TextReply,
    panel_size,
)
from protocols.printer.state import Completed, PrinterClient

if TYPE_CHECKING:
    from collections.abc import Callable

# Bytes that matter to the framing, mixed with anything.
framing = st.sampled_from([b"\x1b", b"\r", b"\x06", b"\x15", b";", b"Db;k;2;", b"OK", b"Sis"])
chunks = st.lists(st.one_of(st.binary(max_size=40), framing), max_size=40)

PARSERS: list[Callable[[str], object]] = [
    commands.parse_voltage,
    commands.parse_count,
    commands.parse_card_position,
    commands.parse_reject_box_full,
]
FRAMES: list[Callable[[bytes], object]] = [
    Request.from_bytes,
    TextReply.from_bytes,
    Ack.from_bytes,
    Nack.from_bytes,
]


@given(chunks)
def test_reply_decoder_never_raises_and_stays_bounded(parts: list[bytes]) -> None:
    """Any byte stream, cut anywhere, decodes without raising and within bounds."""
    decoder = ReplyDecoder()
    for part in parts:
        decoder.receive_data(part)
        assert decoder.buffered <= MAX_REPLY_LENGTH + 1
        while decoder.next_event() is not NEED_DATA:
            pass


@given(chunks)
def test_request_decoder_never_raises_and_stays_bounded(parts: list[bytes]) -> None:
    """The printer side decodes any stream without raising and within bounds."""
    decoder = RequestDecoder()
    for part in parts:
        decoder.receive_data(part)
        assert decoder.buffered <= MAX_COMMAND_LENGTH + panel_size(Depth.LEVELS_256)
        while decoder.next_event() is not NEED_DATA:
            pass


@given(st.binary(max_size=80))
def test_frame_constructors_raise_only_protocol_errors(data: bytes) -> None:
    """``from_bytes`` of every frame: a frame or a PrinterProtocolError."""
    for parse in FRAMES:
        with contextlib.suppress(PrinterProtocolError):
            parse(data)


@given(st.text(max_size=40))
def test_reply_parsers_raise_only_protocol_errors(text: str) -> None:
    """Reply parsers: a value or a PrinterProtocolError, for any text."""
    for parse in PARSERS:
        with contextlib.suppress(PrinterProtocolError):
            parse(text)


@given(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=4), st.binary(max_size=8))
def test_request_constructor_raises_only_protocol_errors(
    command: str, params: list[str], data: bytes
) -> None:
    """Building a request from anything: a request or a PrinterProtocolError."""
    try:
        request = Request(command, tuple(params), data)
    except PrinterProtocolError:
        return
    assert Request.from_bytes(request.to_bytes()) == request


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60)


@settings(max_examples=50)
@given(st.lists(printable, min_size=1, max_size=5), st.data())
def test_text_replies_survive_any_split(texts: list[str], data: st.DataObject) -> None:
    """Valid replies decode to themselves however the stream is cut."""
    stream = b"".join(TextReply(t).to_bytes() for t in texts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = ReplyDecoder()
    start = 0
    for cut in [*cuts, len(stream)]:
        decoder.receive_data(stream[start:cut])
        start = cut
    decoded = []
    while (event := decoder.next_event()) is not NEED_DATA:
        decoded.append(event)
    assert decoded == [TextReply(t) for t in texts]


@given(st.binary(max_size=60))
def test_client_never_raises_on_received_bytes(data: bytes) -> None:
    """The host connection turns any reply bytes into events, never exceptions."""
    client = PrinterClient()
    client.send(commands.read_card_position(), now=0.0)
    client.receive_data(data)
    completed = 0
    while (event := client.next_event()) is not NEED_DATA:
        completed += isinstance(event, Completed)
    assert completed <= 1
