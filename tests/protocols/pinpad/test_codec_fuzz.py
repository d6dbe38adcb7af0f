"""Hypothesis: on any bytes the PIN pad codec raises nothing but PinPadCodecError."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from protocols.pinpad import commands
from protocols.pinpad.commands import EntryParams, LoadKeyParams
from protocols.pinpad.decoder import NEED_DATA, PadMessageDecoder, RequestDecoder
from protocols.pinpad.errors import PinPadCodecError
from protocols.pinpad.frames import (
    MAX_FRAME,
    Command,
    KeyEvent,
    Reply,
    Request,
    Status,
    decode_frame,
    encode_frame,
)
from protocols.pinpad.state import PinPadClient

if TYPE_CHECKING:
    from collections.abc import Callable

# Bytes that matter to the framing, mixed with anything.
framing = st.sampled_from(
    [b"\x02", b"\x03", b"00", b"0103", b"FFFF", Reply(1, Command.INFO, Status.OK).to_bytes()]
)
chunks = st.lists(st.one_of(st.binary(max_size=40), framing), max_size=40)

FRAMES: list[Callable[[bytes], object]] = [
    decode_frame,
    Request.from_bytes,
    Reply.from_bytes,
    KeyEvent.from_bytes,
]
DATA_PARSERS: list[Callable[[bytes], object]] = [
    commands.parse_info,
    commands.parse_kcv,
    commands.parse_show,
    LoadKeyParams.from_data,
    lambda data: commands.parse_pin(Command.READ_PIN, data),
    lambda data: EntryParams.from_data(Command.READ_PIN, data),
    lambda data: EntryParams.from_data(Command.READ_NEW_PIN, data),
]


@given(chunks)
def test_pad_message_decoder_never_raises_and_stays_bounded(parts: list[bytes]) -> None:
    """Any byte stream, cut anywhere, decodes without raising and within bounds."""
    decoder = PadMessageDecoder()
    for part in parts:
        decoder.receive_data(part)
        assert decoder.buffered <= MAX_FRAME
        while decoder.next_event() is not NEED_DATA:
            pass


@given(chunks)
def test_request_decoder_never_raises_and_stays_bounded(parts: list[bytes]) -> None:
    """The pad side decodes any stream without raising and within bounds."""
    decoder = RequestDecoder()
    for part in parts:
        decoder.receive_data(part)
        assert decoder.buffered <= MAX_FRAME
        while decoder.next_event() is not NEED_DATA:
            pass


@given(st.binary(max_size=300))
def test_frame_constructors_raise_only_codec_errors(data: bytes) -> None:
    """from_bytes on any bytes returns a message or raises PinPadCodecError."""
    for parse in FRAMES:
        with contextlib.suppress(PinPadCodecError):
            parse(data)


@given(st.binary(min_size=1, max_size=120))
def test_framed_bodies_raise_only_codec_errors(body: bytes) -> None:
    """Any body in a valid frame parses or raises PinPadCodecError, in both directions."""
    frame = encode_frame(body)
    assert decode_frame(frame) == body
    for parse in FRAMES[1:]:
        with contextlib.suppress(PinPadCodecError):
            parse(frame)


@given(st.binary(max_size=80))
def test_data_parsers_raise_only_codec_errors(data: bytes) -> None:
    """Request and reply data parsers return a value or raise PinPadCodecError."""
    for parse in DATA_PARSERS:
        with contextlib.suppress(PinPadCodecError):
            parse(data)


@given(st.binary(max_size=60), st.binary(max_size=60), st.integers(1, 255))
def test_frames_survive_garbage_around_them(before: bytes, after: bytes, seq: int) -> None:
    """A whole reply after any garbage is decoded once garbage can no longer hold it."""
    reply = Reply(seq, Command.SHOW, Status.OK)
    decoder = PadMessageDecoder()
    # A STX ends any partial frame, so the reply after it always comes out.
    decoder.receive_data(before + reply.to_bytes() + after)
    events = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    assert reply in events


@given(chunks)
def test_client_never_raises_on_received_bytes(parts: list[bytes]) -> None:
    """The host connection takes any bytes, in any state."""
    client = PinPadClient()
    client.send(commands.info())
    for part in parts:
        client.receive_data(part)
        while client.next_event() is not NEED_DATA:
            pass
