"""The printer command codec: golden bytes, byte-at-a-time input, resync, bounds."""

from __future__ import annotations

import pytest

from protocols.printer import commands
from protocols.printer.commands import (
    CardPosition,
    EncodingStation,
    SerialMode,
    Timeouts,
    parse_card_position,
    parse_count,
    parse_reject_box_full,
    parse_status,
    parse_voltage,
)
from protocols.printer.decoder import (
    MAX_PENDING_EVENTS,
    NEED_DATA,
    Discarded,
    ReplyDecoder,
    RequestDecoder,
)
from protocols.printer.errors import (
    PrinterEncodeError,
    PrinterFrameError,
    PrinterReplyError,
    PrinterStateError,
)
from protocols.printer.frames import (
    MAX_COMMAND_LENGTH,
    MAX_REPLY_LENGTH,
    Ack,
    Depth,
    ErrorCode,
    Nack,
    Panel,
    Request,
    TextReply,
    error_code_of_text,
    panel_size,
)
from protocols.printer.state import ClientState, Completed, PrinterClient, Unsolicited

GOLDEN_REQUESTS = [
    (commands.read_sensor(commands.Sensor.FEEDER), b"\x1bRse;f\r"),
    (commands.read_sensor(commands.Sensor.FEEDER_NEAR_EMPTY), b"\x1bRse;n\r"),
    (commands.read_sensor(commands.Sensor.COVER), b"\x1bRse;o\r"),
    (commands.read_sensor(commands.Sensor.BEZEL), b"\x1bRse;b\r"),
    (commands.read_card_position(), b"\x1bRlr;p\r"),
    (commands.read_reject_box(), b"\x1bRlr;h\r"),
    (commands.read_ribbon_type(), b"\x1bRrt\r"),
    (commands.read_ribbon_remaining(), b"\x1bRrt;count\r"),
    (commands.read_ribbon_capacity(), b"\x1bRrt;qty\r"),
    (commands.read_firmware_version(), b"\x1bRfv\r"),
    (commands.insert_card(EncodingStation.CONTACT), b"\x1bSis\r"),
    (commands.insert_card(EncodingStation.CONTACTLESS), b"\x1bSic\r"),
    (commands.start_sequence(), b"\x1bSs\r"),
    (commands.end_sequence(), b"\x1bSe\r"),
    (commands.eject_card(), b"\x1bSeb\r"),
    (commands.reject_card(), b"\x1bSer\r"),
    (commands.clear_error(), b"\x1bSrs\r"),
    (
        commands.set_serial_mode(SerialMode.ACK_NACK, 115_200),
        b"\x1bPcom;1;115200;N;8;1;ACK/NACK\r",
    ),
    (commands.set_error_mode(commands.ErrorMode.SOFTWARE), b"\x1bPem;2\r"),
    (commands.set_feeder_insertion(), b"\x1bPcim;F\r"),
    (commands.set_eject_after_print(eject=False), b"\x1bPneab;E\r"),
    (commands.set_reject_to_box(), b"\x1bPcrm;D\r"),
]


def black_panel() -> bytes:
    """A 1-bit panel whose bytes include CR and ESC (they are data, not framing)."""
    size = panel_size(Depth.LEVELS_2)
    return (b"\r\x1b\x06\x15" * (size // 4 + 1))[:size]


@pytest.mark.parametrize(("request_", "golden"), GOLDEN_REQUESTS, ids=lambda v: repr(v)[:30])
def test_request_golden_bytes_and_round_trip(request_: Request, golden: bytes) -> None:
    """Every command the issuance flow sends has fixed bytes and decodes back."""
    assert request_.to_bytes() == golden
    assert Request.from_bytes(golden) == request_


def test_download_panel_golden_layout() -> None:
    """``Db;k;2;`` + 82,296 payload bytes + CR; the payload may hold CR and ESC."""
    data = black_panel()
    frame = commands.download_panel(Panel.BLACK, Depth.LEVELS_2, data).to_bytes()
    assert frame[:8] == b"\x1bDb;k;2;"
    assert len(frame) == 8 + 1016 * 648 // 8 + 1
    assert frame[-1:] == b"\r"
    assert Request.from_bytes(frame).data == data


@pytest.mark.parametrize(
    ("depth", "size"),
    [
        (Depth.LEVELS_2, 82_296),
        (Depth.LEVELS_32, 411_480),
        (Depth.LEVELS_64, 493_776),
        (Depth.LEVELS_128, 576_072),
        (Depth.LEVELS_256, 658_368),
    ],
)
def test_panel_sizes(depth: Depth, size: int) -> None:
    """A 1016x648 panel's size follows from its bits per pixel."""
    assert panel_size(depth) == size


@pytest.mark.parametrize(
    ("reply", "golden"),
    [
        (TextReply("OK"), b"OK\r"),
        (TextReply("5,00 Volts"), b"5,00 Volts\r"),
        (TextReply("SMART CARD"), b"SMART CARD\r"),
        (Ack(), b"\x06"),
        (Nack("T"), b"\x15T"),
        (Nack("1"), b"\x151"),
    ],
)
def test_reply_golden_bytes_and_round_trip(reply: TextReply | Ack | Nack, golden: bytes) -> None:
    """Replies have fixed bytes, decode back, and decode from the stream."""
    assert reply.to_bytes() == golden
    assert type(reply).from_bytes(golden) == reply
    decoder = ReplyDecoder()
    decoder.receive_data(golden)
    assert decoder.next_event() == reply
    assert decoder.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Request("R2"), "command"),
        (lambda: Request(""), "command"),
        (lambda: Request("Rse", ("a;b",)), "param"),
        (lambda: Request("Rse", ("é",)), "param"),
        (lambda: Request("Rse", ("\r",)), "param"),
        (lambda: Request("Sis", (), b"x"), "data"),
        (lambda: Request("Db", ("k", "2"), b"short"), "data"),
        (lambda: Request("Db", ("z", "2"), b""), "params"),
        (lambda: Request("Rse", ("x" * MAX_COMMAND_LENGTH,)), "params"),
        (lambda: TextReply(""), "text"),
        (lambda: Nack("\x00"), "code"),
    ],
)
def test_encode_refuses_bad_fields(make: object, field: str) -> None:
    """Local misuse is a PrinterEncodeError naming the field."""
    assert callable(make)
    with pytest.raises(PrinterEncodeError) as info:
        make()
    assert info.value.field == field


@pytest.mark.parametrize(
    "frame", [b"", b"Sis\r", b"\x1bSis", b"\x1bS\x00s\r", b"\x1bDb;k;2;abc\r", b"\x1b9\r"]
)
def test_request_from_bytes_refuses_non_frames(frame: bytes) -> None:
    """``from_bytes`` wants exactly one whole frame."""
    with pytest.raises(PrinterFrameError):
        Request.from_bytes(frame)


def drain(decoder: ReplyDecoder | RequestDecoder | PrinterClient) -> list[object]:
    """Every pending event."""
    events: list[object] = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    return events


STREAM = b"OK\r\x06\x15T5,00 Volts\rSMART CARD\r\x151ERR COVER OPEN\r"
EXPECTED = [
    TextReply("OK"),
    Ack(),
    Nack("T"),
    TextReply("5,00 Volts"),
    TextReply("SMART CARD"),
    Nack("1"),
    TextReply("ERR COVER OPEN"),
]


def test_replies_byte_at_a_time_equal_bulk() -> None:
    """Feeding one byte at a time decodes exactly what one bulk feed decodes."""
    bulk, single = ReplyDecoder(), ReplyDecoder()
    bulk.receive_data(STREAM)
    for byte in STREAM:
        single.receive_data(bytes((byte,)))
    assert drain(bulk) == EXPECTED
    assert drain(single) == EXPECTED


def test_garbage_before_and_between_replies_resyncs() -> None:
    """Non-printable garbage around replies is skipped and reported, replies survive."""
    noise = b"\x00\xff\x13\x80"
    decoder = ReplyDecoder()
    decoder.receive_data(noise + b"OK\r" + noise + b"\x06" + noise + b"CARD\r\n")
    events = drain(decoder)
    assert [e for e in events if not isinstance(e, Discarded)] == [
        TextReply("OK"),
        Ack(),
        TextReply("CARD"),
    ]
    assert sum(e.count for e in events if isinstance(e, Discarded)) == 3 * len(noise) + 1


def test_garbage_inside_a_reply_spoils_only_that_reply() -> None:
    """A garbage byte mid-line drops the line up to its CR; the next reply decodes."""
    decoder = ReplyDecoder()
    decoder.receive_data(b"CA\x00RD\rOK\r")
    assert drain(decoder) == [Discarded(6, "garbage"), TextReply("OK")]


def test_ack_interrupts_a_partial_line() -> None:
    """An ACK byte ends a partial text line (reported) and is decoded."""
    decoder = ReplyDecoder()
    decoder.receive_data(b"par\x06\x15\x00\x15R")
    assert drain(decoder) == [
        Discarded(3, "interrupted"),
        Ack(),
        Discarded(1, "bad_nack_code"),
        Discarded(1, "garbage"),
        Nack("R"),
    ]


def test_reply_buffer_is_bounded() -> None:
    """A megabyte without CR never holds more than one reply's worth of bytes."""
    decoder = ReplyDecoder()
    for _ in range(100):
        decoder.receive_data(b"A" * 10_000)
        assert decoder.buffered <= MAX_REPLY_LENGTH + 1
    decoder.receive_data(b"\rOK\r")
    assert drain(decoder) == [Discarded(1_000_001, "too_long"), TextReply("OK")]


def test_event_queue_is_bounded() -> None:
    """Events nobody takes are capped; the excess is counted as overflow."""
    decoder = ReplyDecoder()
    decoder.receive_data(b"OK\r" * 10_000)
    events = drain(decoder)
    assert len(events) == MAX_PENDING_EVENTS
    assert events[-1] == Discarded(3 * (10_000 - MAX_PENDING_EVENTS + 1), "overflow")


def test_requests_byte_at_a_time_with_payload() -> None:
    """The printer side decodes commands and a Db payload fed one byte at a time."""
    panel = commands.download_panel(Panel.BLACK, Depth.LEVELS_2, black_panel())
    stream = b"\x1bSs\r" + panel.to_bytes() + b"\x1bSe\rRse;f\r"
    decoder = RequestDecoder()
    for byte in stream:
        decoder.receive_data(bytes((byte,)))
    assert drain(decoder) == [
        commands.start_sequence(),
        panel,
        commands.end_sequence(),
        commands.read_sensor(commands.Sensor.FEEDER),
    ]


def test_requests_resync_after_garbage() -> None:
    """Garbage before and between commands is skipped; ESC restarts a command."""
    decoder = RequestDecoder()
    decoder.receive_data(b"\x00\xff\x1bSis\r\x80\x80\x1bSe\x1bSeb\r")
    assert drain(decoder) == [
        Discarded(2, "garbage"),
        commands.insert_card(),
        Discarded(2, "garbage"),
        Discarded(3, "interrupted"),
        commands.eject_card(),
    ]


def test_request_decoder_reports_bad_lines_and_headers() -> None:
    """Invalid commands, Db headers and a missing payload CR are reported, not raised."""
    decoder = RequestDecoder()
    payload = black_panel()
    decoder.receive_data(b"\x1bS1s\r\x1bDb;z;2;\r")
    decoder.receive_data(b"\x1bDb;k;2;" + payload + b"X\x1bSeb\r")
    assert drain(decoder) == [
        Discarded(5, "bad_request"),
        Discarded(9, "bad_download_header"),
        Discarded(len(payload), "missing_terminator"),
        Discarded(1, "garbage"),
        commands.eject_card(),
    ]


def test_request_buffer_is_bounded() -> None:
    """A command line without CR never holds more than the line bound."""
    decoder = RequestDecoder()
    decoder.receive_data(b"\x1b" + b"R" * 100_000)
    assert decoder.buffered <= MAX_COMMAND_LENGTH
    decoder.receive_data(b"\r\x1bRfv\r")
    assert drain(decoder)[-1] == commands.read_firmware_version()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("OK", None),
        ("CARD", None),
        ("ERR CMD", ErrorCode.COMMAND),
        ("ERR PARAM", ErrorCode.PARAMETER),
        ("ERR MECHANICAL", ErrorCode.MECHANICAL),
        ("ERR COVER OPEN", ErrorCode.COVER_OPEN),
        ("ERR FEEDER EMPTY", ErrorCode.FEEDER_EMPTY),
        ("ERR RIBBON", ErrorCode.RIBBON),
        ("ERR RIB DETECTION", ErrorCode.RIBBON),
        ("ERR REJECT BOX FULL", ErrorCode.REJECT_BOX_FULL),
        ("ERR NO CARD", ErrorCode.NO_CARD),
        ("ERROR 42", ErrorCode.UNKNOWN),
        ("ERRATA", None),
    ],
)
def test_error_texts(text: str, code: ErrorCode | None) -> None:
    """Text-mode error replies map onto the NACK codes."""
    assert error_code_of_text(text) is code


def test_nack_codes() -> None:
    """Known NACK codes keep their meaning; others are UNKNOWN."""
    assert Nack("F").error is ErrorCode.FEEDER_EMPTY
    assert Nack("Z").error is ErrorCode.UNKNOWN
    assert Ack().error is None


def test_reply_parsers() -> None:
    """Sensor voltages, counts, positions and the reject box parse or refuse."""
    assert parse_voltage("5,00 Volts") == 5.0
    assert parse_voltage("0.17 Volts") == pytest.approx(0.17)
    assert commands.format_voltage(4.85) == "4,85 Volts"
    assert parse_count("187") == 187
    assert parse_card_position("CONTACTLESS CARD") is CardPosition.CONTACTLESS
    assert parse_reject_box_full("CARD") is True
    assert parse_reject_box_full("NO CARD") is False
    for parse, text in [
        (parse_voltage, "5 V"),
        (parse_count, "-1"),
        (parse_card_position, "MAYBE"),
        (parse_reject_box_full, "FULL"),
    ]:
        with pytest.raises(PrinterReplyError):
            parse(text)


def test_parse_status() -> None:
    """The status reads combine into one PrinterStatus."""
    replies: dict[str, str | None] = {
        "Rse;f": "5,00 Volts",
        "Rse;n": "0,20 Volts",
        "Rse;o": "5,00 Volts",
        "Rse;b": "0,20 Volts",
        "Rlr;h": "NO CARD",
        "Rlr;p": "OK",
        "Rrt": "YMCKO",
        "Rrt;count": "12",
    }
    status = parse_status(replies)
    assert status.feeder_loaded
    assert status.feeder_near_empty
    assert not status.cover_open
    assert status.ribbon_remaining == 12
    assert status.ready
    replies["Rrt"] = replies["Rrt;count"] = None
    assert not parse_status(replies).ready
    del replies["Rse;f"]
    with pytest.raises(PrinterReplyError):
        parse_status(replies)


def test_setup_list() -> None:
    """Serial mode first on a serial link; no Pcom on TCP."""
    serial = commands.setup_requests()
    assert [r.label for r in serial] == [
        "Pcom;1;115200;N;8;1;ACK/NACK",
        "Pem;2",
        "Pcim;F",
        "Pneab;E",
        "Pcrm;D",
    ]
    assert commands.setup_requests(serial_link=False)[0].command == "Pem"


def test_timeouts_by_kind_and_payload() -> None:
    """Each kind of command has its timeout; a payload adds its transfer time."""
    timeouts = Timeouts(read=1, parameter=2, motion=3, print=4, download=5, transfer_rate=1000)
    assert timeouts.for_request(commands.read_card_position()) == 1
    assert timeouts.for_request(commands.set_reject_to_box()) == 2
    assert timeouts.for_request(commands.insert_card()) == 3
    assert timeouts.for_request(commands.end_sequence()) == 4
    panel = commands.download_panel(Panel.OVERLAY, Depth.LEVELS_2, black_panel())
    assert timeouts.for_request(panel) == 5 + 82.296


def test_client_one_command_in_flight() -> None:
    """The host connection pairs replies with commands, one at a time."""
    client = PrinterClient(Timeouts(read=2))
    assert client.send(commands.read_card_position(), now=10.0) == b"\x1bRlr;p\r"
    assert client.state is ClientState.AWAITING_REPLY
    assert client.deadline == 12.0
    with pytest.raises(PrinterStateError):
        client.send(commands.insert_card(), now=10.5)
    assert not client.expired(11.9)
    assert client.expired(12.0)
    client.receive_data(b"\xffSMART")
    assert drain(client) == [Discarded(1, "garbage")]
    client.receive_data(b" CARD\rOK\r")
    assert drain(client) == [
        Completed(commands.read_card_position(), TextReply("SMART CARD")),
        Unsolicited(TextReply("OK")),
    ]
    assert client.state.value == "idle"


def test_client_abandon_and_reset() -> None:
    """A timed-out command is abandoned; abandoning when idle is misuse."""
    client = PrinterClient()
    client.send(commands.insert_card(), now=0.0)
    client.receive_data(b"O")
    assert client.abandon() == commands.insert_card()
    with pytest.raises(PrinterStateError):
        client.abandon()
    client.reset()
    client.receive_data(b"K\r")
    assert drain(client) == [Unsolicited(TextReply("K"))]
