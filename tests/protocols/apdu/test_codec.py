"""APDU codec: golden vectors, round trips, and "only ApduError" on any bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.apdu import (
    ApduDecodeError,
    ApduEncodeError,
    ApduError,
    CommandApdu,
    ResponseApdu,
)

SELECT = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"

GOLDEN: list[tuple[str, CommandApdu]] = [
    ("00A40400", CommandApdu(0x00, 0xA4, 0x04, 0x00)),
    ("0084000008", CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)),
    ("00B2012C00", CommandApdu(0x00, 0xB2, 0x01, 0x2C, le=256)),
    ("00B2083400", CommandApdu(0x00, 0xB2, 0x08, 0x34, le=256)),
    (SELECT, CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex(SELECT[10:]))),
    ("0020000003123456", CommandApdu(0x00, 0x20, 0x00, 0x00, bytes.fromhex("123456"))),
    ("00A4040002EF0500", CommandApdu(0x00, 0xA4, 0x04, 0x00, b"\xef\x05", 256)),
    ("00B00000000100", CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256, extended=True)),
    ("00B00000000000", CommandApdu(0x00, 0xB0, 0x00, 0x00, le=65536)),
    ("80E2000000000201020000", CommandApdu(0x80, 0xE2, 0, 0, b"\x01\x02", 65536)),
    ("80E20000000002AABB", CommandApdu(0x80, 0xE2, 0, 0, b"\xaa\xbb", extended=True)),
]

COMMANDS = st.builds(
    CommandApdu,
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=300),
    le=st.none() | st.integers(1, 65536),
    extended=st.booleans(),
)


@pytest.mark.parametrize(("wire", "command"), GOLDEN)
def test_golden_vectors(wire: str, command: CommandApdu) -> None:
    """Known commands encode to their known bytes and decode back."""
    assert command.to_bytes().hex().upper() == wire
    assert CommandApdu.from_bytes(bytes.fromhex(wire)) == command


def test_extended_chosen_when_needed() -> None:
    """Data over 255 bytes or Le over 256 switches to the extended form."""
    command = CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(256))
    assert command.extended
    assert command.to_bytes()[4:7] == b"\x00\x01\x00"
    assert CommandApdu(0, 0xB0, 0, 0, le=257).to_bytes() == bytes.fromhex("00B00000000101")


def test_response_golden() -> None:
    """A response splits into data and status word."""
    response = ResponseApdu.from_bytes(bytes.fromhex("01029000"))
    assert response == ResponseApdu(b"\x01\x02", 0x9000)
    assert response.ok
    assert (response.sw1, response.sw2) == (0x90, 0x00)
    assert ResponseApdu.from_bytes(b"\x63\xc2").to_bytes() == b"\x63\xc2"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("cla", {"cla": 256}),
        ("p2", {"p2": -1}),
        ("le", {"le": 0}),
        ("le", {"le": 65537}),
        ("data", {"data": bytes(65536)}),
    ],
)
def test_encoder_refuses_out_of_range(field: str, kwargs: dict[str, int | bytes]) -> None:
    """Out-of-range fields raise ApduEncodeError naming the field."""
    base: dict[str, int | bytes] = {"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0}
    base.update(kwargs)
    with pytest.raises(ApduEncodeError) as info:
        CommandApdu(**base)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "00",
        "00A404",
        "00A4040005AABB",
        "00A404000000",
        "00A4040000000001",
        "00A40400000003AABB",
    ],
)
def test_decoder_refuses_malformed(wire: str) -> None:
    """Bytes that fit no ISO 7816-3 case raise ApduDecodeError."""
    with pytest.raises(ApduDecodeError):
        CommandApdu.from_bytes(bytes.fromhex(wire))


def test_short_response_refused() -> None:
    """A response without SW1 SW2 is refused."""
    with pytest.raises(ApduDecodeError) as info:
        ResponseApdu.from_bytes(b"\x90")
    assert info.value.length == 1


@given(COMMANDS)
def test_round_trip(command: CommandApdu) -> None:
    """Every command decodes to itself."""
    assert CommandApdu.from_bytes(command.to_bytes()) == command


@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_apdu_errors(data: bytes) -> None:
    """Any bytes either decode (and re-encode to themselves) or raise an ApduError."""
    try:
        command = CommandApdu.from_bytes(data)
    except ApduError:
        pass
    else:
        assert command.to_bytes() == data
    try:
        response = ResponseApdu.from_bytes(data)
    except ApduError:
        pass
    else:
        assert response.to_bytes() == data
