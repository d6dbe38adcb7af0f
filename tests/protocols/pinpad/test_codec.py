"""The PIN pad codec: golden frames, round trips, resynchronisation, the client state."""

from __future__ import annotations

import pytest

from protocols.pinpad import commands
from protocols.pinpad.commands import (
    Call,
    EncipheredPin,
    EntryParams,
    LoadKeyParams,
    PadInfo,
    parse_info,
    parse_kcv,
    parse_pin,
    parse_show,
)
from protocols.pinpad.decoder import (
    NEED_DATA,
    BadRequest,
    Discarded,
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
    MAX_BODY,
    Command,
    KeyAlgorithm,
    KeyEvent,
    Prompt,
    Reply,
    Request,
    Status,
    crc16,
    decode_frame,
    encode_frame,
)
from protocols.pinpad.state import TRANSITIONS, ClientState, Completed, PinPadClient, Unsolicited

ACCOUNT = "6217000010001234567"

# Golden frames (CRC-16/CCITT-FALSE, check value 0x29B1 over "123456789").
GOLDEN: list[tuple[Request | Reply | KeyEvent, bytes]] = [
    (Request(1, Command.INFO), b"\x020101\x033E1F"),
    (Request(7, Command.SHOW, bytes([Prompt.SUCCESS])), b"\x02070506\x03D63F"),
    (Reply(7, Command.SHOW, Status.OK), b"\x02070500\x03B6F9"),
    (KeyEvent(3), b"\x0200800003\x038FF9"),
    (Reply(4, Command.READ_PIN, Status.CANCELLED), b"\x02040301\x03552E"),
    (
        Request(
            4,
            Command.READ_PIN,
            EntryParams(Prompt.ENTER, 0, 6, 6, 35, ACCOUNT).to_data(Command.READ_PIN),
        ),
        b"\x020403010006062336323137303030303130303031323334353637\x035850",
    ),
]

MESSAGES: list[Request | Reply | KeyEvent] = [
    Request(1, Command.INFO),
    Request(255, Command.ABORT),
    Request(9, Command.LOAD_KEY, LoadKeyParams(KeyAlgorithm.SM4, bytes(16), "ABCDEF").to_data()),
    Request(
        3,
        Command.READ_NEW_PIN,
        EntryParams(Prompt.ENTER_NEW, 4, 4, 12, 255, "1", attempts=3).to_data(Command.READ_NEW_PIN),
    ),
    Reply(3, Command.READ_NEW_PIN, Status.OK, bytes(3) + b"\x0d\x02\x03" * 5 + b"\x01"),
    Reply(
        1,
        Command.INFO,
        Status.OK,
        PadInfo(tmk_loaded=True, key_algorithm=None, key_check_value=None, text="X").to_data(),
    ),
    Reply(200, Command.ABORT, Status.BUSY),
    KeyEvent(0),
    KeyEvent(12),
]


def test_crc_check_value() -> None:
    """CRC-16/CCITT-FALSE of the standard check string is 0x29B1."""
    assert crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize(("message", "frame"), GOLDEN)
def test_golden_frames(message: Request | Reply | KeyEvent, frame: bytes) -> None:
    """Each message encodes to its golden frame and decodes back from it."""
    assert message.to_bytes() == frame
    assert type(message).from_bytes(frame) == message


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trip(message: Request | Reply | KeyEvent) -> None:
    """Every message survives to_bytes/from_bytes."""
    assert type(message).from_bytes(message.to_bytes()) == message


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x020101\x03",
        b"\x020101\x033E1E",  # CRC off by one
        b"\x02010\x033E1F",  # odd digits
        b"\x020101\x033e1f",  # lower-case CRC
        b"\x03" + b"0101\x023E1F",
        b"\x02" + b"00" * (MAX_BODY + 1) + b"\x030000",
    ],
)
def test_bad_frames(frame: bytes) -> None:
    """from_bytes refuses what is not one whole valid frame, with a frame error."""
    with pytest.raises(PinPadFrameError):
        decode_frame(frame)


def test_frames_of_the_wrong_direction_are_refused() -> None:
    """A reply is no request, a key event no reply, SEQ 0 no request or reply."""
    with pytest.raises(PinPadFrameError):
        Reply.from_bytes(KeyEvent(1).to_bytes())
    with pytest.raises(PinPadFrameError):
        KeyEvent.from_bytes(Reply(1, Command.INFO, Status.OK).to_bytes())
    with pytest.raises(PinPadFrameError):
        Request.from_bytes(encode_frame(b"\x00\x01"))
    with pytest.raises(PinPadFrameError):
        Request.from_bytes(encode_frame(b"\x01\x7f"))
    with pytest.raises(PinPadFrameError):
        Reply.from_bytes(encode_frame(b"\x01\x01\x55"))


def test_encode_refuses_what_cannot_be_framed() -> None:
    """SEQ 0, oversize data and empty bodies are local misuse."""
    with pytest.raises(PinPadEncodeError):
        Request(0, Command.INFO)
    with pytest.raises(PinPadEncodeError):
        Request(1, Command.INFO, bytes(MAX_BODY))
    with pytest.raises(PinPadEncodeError):
        encode_frame(b"")
    with pytest.raises(PinPadEncodeError):
        KeyEvent(13)


def test_reprs_hide_data() -> None:
    """Request and reply data (accounts, PIN blocks) never show in a repr."""
    request = GOLDEN[-1][0]
    assert ACCOUNT not in repr(request)
    assert "3632" not in repr(request)
    reply = Reply(1, Command.READ_PIN, Status.OK, b"\xaa\xbb\xcc" + b"\x12\x34" * 4)
    assert "1234" not in repr(reply)
    assert "\\x12" not in repr(reply)
    assert "1234" not in repr(EncipheredPin("AABBCC", b"\x12\x34" * 4))
    assert ACCOUNT not in repr(EntryParams(Prompt.ENTER, 0, 6, 6, 30, ACCOUNT))
    assert "0000" not in repr(LoadKeyParams(KeyAlgorithm.AES_128, bytes(16), "ABCDEF"))
    assert "data" not in repr(Call(Command.SHOW, b"\x01"))


def test_entry_params_bounds() -> None:
    """Formats, lengths, timeout, attempts and account are checked before sending."""
    EntryParams(Prompt.ENTER, 0, 6, 6, 1, ACCOUNT)
    changes: tuple[dict[str, object], ...] = (
        {"timeout": 0},
        {"timeout": 256},
        {"account": "123456789012"},  # format 0 needs 13+
        {"account": "1" * 20},
        {"account": "12345678901234x"},
        {"attempts": 0},
        {"attempts": 10},
    )
    for change in changes:
        settings: dict[str, object] = {
            "prompt": Prompt.ENTER,
            "pin_block_format": 0,
            "min_length": 6,
            "max_length": 6,
            "timeout": 30,
            "account": ACCOUNT,
            **change,
        }
        with pytest.raises(PinPadEncodeError):
            EntryParams(**settings)  # type: ignore[arg-type]
    with pytest.raises(PinPadEncodeError):
        EntryParams(Prompt.ENTER, 1, 6, 6, 30, ACCOUNT)
    with pytest.raises(PinPadEncodeError):
        EntryParams(Prompt.ENTER, 0, 7, 6, 30, ACCOUNT)
    with pytest.raises(PinPadEncodeError):
        EntryParams(Prompt.ENTER, 0, 3, 6, 30, ACCOUNT)
    assert EntryParams(Prompt.ENTER, 4, 4, 4, 30, "1").account == "1"


@pytest.mark.parametrize("command", [Command.READ_PIN, Command.READ_NEW_PIN])
def test_entry_params_round_trip(command: Command) -> None:
    """The pad parses what the host built."""
    params = EntryParams(Prompt.ENTER_OLD, 3, 4, 12, 99, ACCOUNT, attempts=2)
    parsed = EntryParams.from_data(command, params.to_data(command))
    expected = (
        params
        if command is Command.READ_NEW_PIN
        else EntryParams(Prompt.ENTER_OLD, 3, 4, 12, 99, ACCOUNT)
    )
    assert parsed == expected
    with pytest.raises(PinPadParameterError):
        EntryParams.from_data(command, params.to_data(command)[:5])
    with pytest.raises(PinPadParameterError):
        EntryParams.from_data(command, b"\x09" + params.to_data(command)[1:])


def test_load_key_params() -> None:
    """LOAD_KEY data round-trips; wrong lengths and algorithms are refused."""
    params = LoadKeyParams(KeyAlgorithm.TDES_2KEY, bytes(range(16)), "0A1B2C")
    assert params.to_data().hex() == "01" + bytes(range(16)).hex() + "0a1b2c"
    assert LoadKeyParams.from_data(params.to_data()) == params
    for data in (b"", b"\x04" + bytes(19), b"\x01" + bytes(18)):
        with pytest.raises(PinPadParameterError):
            LoadKeyParams.from_data(data)
    with pytest.raises(PinPadEncodeError):
        LoadKeyParams(KeyAlgorithm.SM4, bytes(8), "0A1B2C")
    with pytest.raises(PinPadEncodeError):
        LoadKeyParams(KeyAlgorithm.SM4, bytes(16), "0a1b2c")


def test_info_and_reply_parsers() -> None:
    """INFO, LOAD_KEY and PIN replies parse; malformed data is a reply error."""
    info = PadInfo(
        tmk_loaded=True, key_algorithm=KeyAlgorithm.SM4, key_check_value="ABCDEF", text="EPP 2"
    )
    assert parse_info(info.to_data()) == info
    empty = PadInfo(tmk_loaded=False, key_algorithm=None, key_check_value=None, text="")
    assert parse_info(empty.to_data()) == empty
    for data in (
        b"",
        b"\x04\x00\x00\x00\x00",
        b"\x02\x09\x00\x00\x00",
        b"\x00\x00\x00\x00\x00\x01",
    ):
        with pytest.raises(PinPadReplyError):
            parse_info(data)
    assert parse_kcv(b"\x01\x02\x03") == "010203"
    with pytest.raises(PinPadReplyError):
        parse_kcv(b"\x01")
    pin = parse_pin(Command.READ_PIN, b"\xab\xcd\xef" + bytes(8))
    assert pin == EncipheredPin("ABCDEF", bytes(8))
    assert pin.to_data() == b"\xab\xcd\xef" + bytes(8)
    with pytest.raises(PinPadReplyError):
        parse_pin(Command.READ_PIN, bytes(3 + 12))
    assert parse_show(b"\x06") is Prompt.SUCCESS
    with pytest.raises(PinPadParameterError):
        parse_show(b"\x66")
    assert commands.show(Prompt.IDLE) == Call(Command.SHOW, b"\x00")
    assert Prompt.ENTER.text == "请输入密码"


def _all_events(decoder: PadMessageDecoder | RequestDecoder) -> list[object]:
    events: list[object] = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def test_byte_at_a_time_with_garbage_around() -> None:
    """Frames fed one byte at a time among garbage come out whole; garbage is counted."""
    stream = b"\xff\x00" + KeyEvent(1).to_bytes() + b"zz\r\n" + GOLDEN[2][1] + b"\x03"
    decoder = PadMessageDecoder()
    events: list[object] = []
    for byte in stream:
        decoder.receive_data(bytes([byte]))
        for event in _all_events(decoder):
            last = events[-1] if events else None
            if isinstance(event, Discarded) and isinstance(last, Discarded):
                events[-1] = Discarded(last.count + event.count, event.reason)
            else:
                events.append(event)
    assert events == [
        Discarded(2, "garbage"),
        KeyEvent(1),
        Discarded(4, "garbage"),
        GOLDEN[2][0],
        Discarded(1, "garbage"),
    ]
    assert decoder.buffered == 0


def test_resync_on_damage() -> None:
    """A cut frame, a bad CRC, a non-hex byte, odd digits and a body too long are skipped."""
    good = Reply(2, Command.INFO, Status.NO_KEY).to_bytes()
    bad_crc = good[:-1] + (b"0" if good[-1:] != b"0" else b"1")
    stream = (
        good[:5]  # cut by the next STX
        + good
        + bad_crc
        + b"\x0201G1\x030000"
        + b"\x02010\x030000"
        + b"\x02"
        + b"00" * (MAX_BODY + 1)
        + b"\x030000"
        + encode_frame(b"\x00\x01\x00")  # SEQ 0 that is no key event
        + good
    )
    decoder = PadMessageDecoder()
    decoder.receive_data(stream)
    events = _all_events(decoder)
    replies = [e for e in events if isinstance(e, Reply)]
    reasons = [e.reason for e in events if isinstance(e, Discarded)]
    assert replies == [Reply(2, Command.INFO, Status.NO_KEY)] * 2
    assert reasons == [
        "interrupted",
        "bad_checksum",
        "garbage",
        "odd_digits",
        "too_long",
        "bad_message",
    ]


def test_request_decoder_reports_unknown_commands() -> None:
    """The pad side: known requests, and an unknown command it must answer."""
    decoder = RequestDecoder()
    decoder.receive_data(GOLDEN[0][1] + encode_frame(b"\x05\x77\x01") + encode_frame(b"\x00\x01"))
    assert _all_events(decoder) == [
        Request(1, Command.INFO),
        BadRequest(5, 0x77),
        Discarded(10, "bad_message"),
    ]
    decoder.receive_data(b"\x0201")
    assert decoder.buffered == 3
    decoder.reset()
    assert decoder.buffered == 0


def test_event_queue_is_bounded() -> None:
    """Events not taken in time are counted as overflow, not kept without end."""
    decoder = PadMessageDecoder()
    decoder.receive_data(KeyEvent(1).to_bytes() * 200)
    events = _all_events(decoder)
    assert len(events) <= 64
    overflow = [e for e in events if isinstance(e, Discarded)]
    assert overflow
    assert overflow[-1].reason == "overflow"


def test_client_matches_replies_by_seq() -> None:
    """Replies complete their own request; a late reply is unsolicited."""
    client = PinPadClient()
    states = [client.state]
    entry = client.send(commands.read_pin(EntryParams(Prompt.ENTER, 0, 6, 6, 30, ACCOUNT)))
    states.append(client.state)
    with pytest.raises(PinPadStateError):
        client.send(commands.show(Prompt.IDLE))
    abort = client.send(commands.abort())
    states.append(client.state)
    assert (entry.seq, abort.seq) == (1, 2)
    assert states == [ClientState.IDLE, ClientState.ENTRY, ClientState.ABORTING]
    client.receive_data(KeyEvent(2).to_bytes())
    client.receive_data(Reply(entry.seq, Command.READ_PIN, Status.ABORTED).to_bytes())
    assert client.next_event() == KeyEvent(2)
    done = client.next_event()
    assert isinstance(done, Completed)
    assert done.reply.status is Status.ABORTED
    assert client.state is ClientState.AWAITING_REPLY
    assert client.abandon(abort.seq) == abort
    client.receive_data(Reply(abort.seq, Command.ABORT, Status.OK).to_bytes())
    assert client.next_event() == Unsolicited(Reply(abort.seq, Command.ABORT, Status.OK))
    info = client.send(commands.info())
    client.receive_data(Reply(info.seq, Command.SHOW, Status.OK).to_bytes())
    assert isinstance(client.next_event(), Unsolicited)  # right SEQ, wrong command
    assert client.in_flight == (info,)
    client.reset()
    assert not client.in_flight


def test_client_sequence_wraps_and_skips_in_flight() -> None:
    """SEQ runs 1-255 and wraps to 1, never 0."""
    client = PinPadClient()
    seqs = []
    for _ in range(300):
        request = client.send(commands.info())
        seqs.append(request.seq)
        client.abandon(request.seq)
    assert seqs[:3] == [1, 2, 3]
    assert seqs[254:257] == [255, 1, 2]
    assert 0 not in seqs


def test_transition_table_is_closed() -> None:
    """Every state the table leads to is a state; sends from elsewhere are refused."""
    assert set(TRANSITIONS.values()) <= set(ClientState)
    assert (ClientState.ABORTING, "abort") not in TRANSITIONS
    assert issubclass(PinPadStateError, PinPadCodecError)
