"""Clear ISO 9564 PIN block fields: published vectors, refusals, fuzzing, import boundary."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security import pinblock
from security.pinblock import PinBlockError, PinBlockFault, PinBlockFormat

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[2]


def _xor_hex(left: str, right: str) -> str:
    return (
        bytes(a ^ b for a, b in zip(bytes.fromhex(left), bytes.fromhex(right), strict=True))
        .hex()
        .upper()
    )


@pytest.mark.parametrize(
    ("pin", "pan", "block"),
    [
        # ISO 9564 format 0 example (Wikipedia "ISO 9564"; ID TECH and EFTlab PIN block pages).
        ("1234", "43219876543210987", "0412AC89ABCDEF67"),
        # knovichikhin/psec tests/test_pinblock.py test_encode_pinblock_iso_0.
        ("1234", "5555555551234567", "041261AAAAEDCBA9"),
        ("123456789012", "5555555551234567", "0C1261032D8226A9"),
        # devindtools.com PIN block calculator walkthrough (PIN 123456, card 4451234567890129).
        ("123456", "4451234567890129", "06122662A9876FED"),
    ],
)
def test_format0_published_vectors(pin: str, pan: str, block: str) -> None:
    """Format 0 builds the published clear blocks and parses them back."""
    assert pinblock.build_format0(pin, pan).hex().upper() == block
    assert pinblock.parse_format0(bytes.fromhex(block), pan) == pin


def test_format0_widened_for_sm4() -> None:
    """The 16-byte SM4 layout matches a published Chinese PIN pad example."""
    # blog.csdn.net/M_Kerry/article/details/104625499 ("SM4 ECB + ANSI X9.8 with PAN").
    block = pinblock.build_format0("123654", "6230606601007726888", block_size=16)
    assert block.hex().upper() == "06123654FFFFFFFFFFFF99FEFF88D977"
    assert pinblock.parse_format0(block, "6230606601007726888") == "123654"


def test_format3_fill_is_random_a_to_f() -> None:
    """Format 3 fills with A-F from the random source; zero bytes give all A."""
    block = pinblock.build_format3("1234", "5555555551234567", random=bytes)
    assert _xor_hex(block.hex(), "0000555555123456") == "341234AAAAAAAAAA"
    assert pinblock.parse_format3(block, "5555555551234567") == "1234"
    wide = pinblock.build_format3("1234", "5555555551234567", block_size=16, random=bytes)
    assert len(wide) == 16
    assert pinblock.parse_format3(wide, "5555555551234567") == "1234"


def test_format3_default_random_varies() -> None:
    """With the default source two format 3 blocks for the same PIN differ."""
    blocks = {pinblock.build_format3("1234", "5555555551234567") for _ in range(8)}
    assert len(blocks) > 1
    for block in blocks:
        fill = _xor_hex(block.hex(), "0000555555123456")[6:]
        assert set(fill) <= set("ABCDEF")


def test_format3_published_decode_vector() -> None:
    """Format 3 parses psec's published block."""
    # knovichikhin/psec tests/test_pinblock.py test_decode_pinblock_iso_3.
    assert pinblock.parse_format3(bytes.fromhex("341261AAAAEDCBA9"), "5555555551234567") == "1234"


def test_format3_random_source_that_never_fits_is_an_error() -> None:
    """A source giving only bytes >= 252 cannot fill without bias: PinBlockError."""
    with pytest.raises(PinBlockError) as caught:
        pinblock.build_format3("1234", "5555555551234567", random=lambda n: b"\xff" * n)
    assert caught.value.fault is PinBlockFault.RANDOM


def test_format4_fields_match_published_vectors() -> None:
    """Format 4 PIN and PAN fields match ANSI X9.24-3 and psec examples."""
    # ANSI X9.24-3:2017 supplementary test vectors (AES PIN block format 4), as quoted in
    # openemv/tr31 (Leon Lynch) pinblock_format4_test.c.
    field = pinblock.build_format4_pin_field("1234", random=lambda n: bytes(range(n)))
    assert field.hex().upper() == "441234AAAAAAAAAA0001020304050607"
    assert pinblock.build_format4_pan_field("4111111111111111").hex().upper() == (
        "44111111111111111000000000000000"
    )
    # Same source, short PAN left-padded to 12 digits.
    assert pinblock.build_format4_pan_field("123456789").hex().upper() == (
        "00001234567890000000000000000000"
    )
    # knovichikhin/psec tests/test_pinblock.py test_encode_pan_field_iso_4.
    assert pinblock.build_format4_pan_field("112233445566778899").hex().upper() == (
        "61122334455667788990000000000000"
    )
    # knovichikhin/psec tests/test_pinblock.py test_decode_pin_field_iso_4.
    field = bytes.fromhex("441234AAAAAAAAAA548ED7FD65495950")
    assert pinblock.parse_format4_pin_field(field) == "1234"


def test_format4_random_half_comes_from_the_source() -> None:
    """The second half of the format 4 PIN field is the random source's 8 bytes."""
    calls: list[int] = []

    def source(n: int) -> bytes:
        calls.append(n)
        return b"\x5a" * n

    field = pinblock.build_format4_pin_field("987654", random=source)
    assert calls == [8]
    assert field[8:] == b"\x5a" * 8
    assert pinblock.parse_format4_pin_field(field) == "987654"


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "١٢٣٤", " 1234", ""])
def test_pin_length_and_digits_are_enforced(pin: str) -> None:
    """PINs are 4-12 ASCII digits in every format; errors never echo the PIN."""
    builders: list[Callable[[], bytes]] = [
        lambda: pinblock.build_format0(pin, "5555555551234567"),
        lambda: pinblock.build_format3(pin, "5555555551234567"),
        lambda: pinblock.build_format4_pin_field(pin),
    ]
    for build in builders:
        with pytest.raises(PinBlockError) as caught:
            build()
        assert caught.value.fault is PinBlockFault.PIN
        if pin.strip():
            assert pin not in str(caught.value)


@pytest.mark.parametrize("pan", ["555555555123", "5555555551234A", "1" * 20, ""])
def test_bad_pans_are_refused(pan: str) -> None:
    """Formats 0/3 need 13-19 digits; format 4 needs 1-19 digits."""
    with pytest.raises(PinBlockError) as caught:
        pinblock.build_format0("1234", pan)
    assert caught.value.fault is PinBlockFault.PAN
    if not (pan.isdigit() and 0 < len(pan) <= 19):
        with pytest.raises(PinBlockError):
            pinblock.build_format4_pan_field(pan)


@pytest.mark.parametrize(
    ("block", "fault"),
    [
        # Invalid blocks from knovichikhin/psec tests/test_pinblock.py, PAN 5555555551234567.
        ("241261AAAAEDCBA9", PinBlockFault.CONTROL),
        ("041261AAAAEDCB", PinBlockFault.BLOCK_SIZE),
        ("0F1261AAAAEDCBA9", PinBlockFault.LENGTH),
        ("021261AAAAEDCBA9", PinBlockFault.LENGTH),
        ("041261AAAAEDCBAA", PinBlockFault.FILL),
        ("051261AAAAEDCBA9", PinBlockFault.DIGITS),
    ],
)
def test_format0_decode_faults(block: str, fault: PinBlockFault) -> None:
    """Malformed format 0 blocks raise PinBlockError with the fault, not the digits."""
    with pytest.raises(PinBlockError) as caught:
        pinblock.parse_format0(bytes.fromhex(block), "5555555551234567")
    assert caught.value.fault is fault
    assert caught.value.pin_block_format is PinBlockFormat.ISO_0
    assert "1234" not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "fault"),
    [
        # Invalid PIN fields from knovichikhin/psec tests/test_pinblock.py.
        ("541234AAAAAAAAAA548ED7FD65495950", PinBlockFault.CONTROL),
        ("43123AAAAAAAAAAA548ED7FD65495950", PinBlockFault.LENGTH),
        ("441234ABCDEFABCD548ED7FD65495950", PinBlockFault.FILL),
        ("4412D4AAAAAAAAAA548ED7FD65495950", PinBlockFault.DIGITS),
        ("441234AAAAAAAAAA548ED7FD6549595000", PinBlockFault.BLOCK_SIZE),
    ],
)
def test_format4_decode_faults(field: str, fault: PinBlockFault) -> None:
    """Malformed format 4 PIN fields raise PinBlockError with the fault."""
    with pytest.raises(PinBlockError) as caught:
        pinblock.parse_format4_pin_field(bytes.fromhex(field))
    assert caught.value.fault is fault


@given(data=st.binary(max_size=40), pan=st.text(max_size=25))
def test_decoders_raise_only_pin_block_error(data: bytes, pan: str) -> None:
    """On arbitrary bytes and PANs the decoders return digits or raise PinBlockError only."""
    decoders: list[Callable[[], str]] = [
        lambda: pinblock.parse_format0(data, pan),
        lambda: pinblock.parse_format3(data, pan),
        lambda: pinblock.parse_format4_pin_field(data),
    ]
    for decode in decoders:
        try:
            pin = decode()
        except PinBlockError:
            continue
        assert pin.isdigit()
        assert 4 <= len(pin) <= 12


@given(pin=st.text(max_size=16), pan=st.text(max_size=25))
def test_builders_raise_only_pin_block_error(pin: str, pan: str) -> None:
    """On arbitrary text the builders return a block or raise PinBlockError only."""
    builders: list[Callable[[], bytes]] = [
        lambda: pinblock.build_format0(pin, pan),
        lambda: pinblock.build_format3(pin, pan),
        lambda: pinblock.build_format4_pin_field(pin),
        lambda: pinblock.build_format4_pan_field(pan),
    ]
    for build in builders:
        with contextlib.suppress(PinBlockError):
            assert len(build()) in (8, 16)


@given(
    pin=st.from_regex(r"[0-9]{4,12}", fullmatch=True),
    pan=st.from_regex(r"[0-9]{13,19}", fullmatch=True),
    size=st.sampled_from([8, 16]),
)
def test_formats_0_and_3_round_trip(pin: str, pan: str, size: int) -> None:
    """Every valid PIN and PAN survive build then parse in formats 0 and 3."""
    assert pinblock.parse_format0(pinblock.build_format0(pin, pan, block_size=size), pan) == pin
    block3 = pinblock.build_format3(pin, pan, block_size=size)
    assert pinblock.parse_format3(block3, pan) == pin


def test_only_the_key_store_imports_pinblock() -> None:
    """No daemon module outside security/keystore imports security.pinblock."""
    offenders = []
    for package in ("gateway", "production", "devices", "protocols", "security", "simulators"):
        for path in (REPO / package).rglob("*.py"):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith("security/keystore/") or relative == "security/pinblock.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                if any(n == "security.pinblock" for n in names):
                    offenders.append(relative)
    assert offenders == []
