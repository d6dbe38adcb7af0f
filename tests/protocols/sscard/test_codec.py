"""The card application codec: TLV, records, PINs, status words; and the card crypto."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import sscard
from protocols.apdu import CommandApdu, ResponseApdu
from protocols.sscard import (
    CardGeneration,
    HolderData,
    IssuerData,
    PinBlockedError,
    SscardDecodeError,
    SscardEncodeError,
    SscardError,
    WrongPinError,
)
from security import cardcrypto
from security.cardcrypto import CardCryptoError
from simulators.card.cli import DEMO_MASTER_KEYS, demo_holder, demo_issuer

CARD_ID = "330100D156000005000000000000000A"


def test_command_golden_bytes() -> None:
    """The commands are the bytes integrators send."""
    assert sscard.select_application().to_bytes().hex().upper() == (
        "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
    )
    assert sscard.read_record(5, 1).to_bytes().hex().upper() == "00B2012C00"
    assert sscard.read_record(6, 8).to_bytes().hex().upper() == "00B2083400"
    assert sscard.get_challenge().to_bytes().hex().upper() == "0084000008"
    assert sscard.verify("123456").to_bytes().hex().upper() == "0020000003123456"
    assert sscard.change_pin("123456", "24680").to_bytes().hex().upper() == (
        "805E010007123456FF24680F"
    )
    assert sscard.update_record(7, b"\x07\x01A").to_bytes().hex().upper() == "00DC070403070141"
    assert sscard.pin_unlock(b"\x01\x02\x03\x04").to_bytes().hex().upper() == "842400000401020304"


def test_aid_is_the_gbk_name() -> None:
    """The application name is "sx1.sh.社会保障" in GBK."""
    assert "sx1.sh.社会保障".encode("gbk") == sscard.AID


def test_records_round_trip_and_gbk_name() -> None:
    """EF05 and EF06 encode to one TLV per record and decode back; the name is GBK."""
    issuer, holder = demo_issuer(3), demo_holder(3)
    records = holder.to_records()
    assert records[0x09][:2] == b"\x09\x1e"
    assert records[0x09][2:6] == "张三".encode("gbk")
    assert IssuerData.from_records(issuer.to_records()) == issuer
    assert HolderData.from_records(records) == holder
    assert issuer.region == "330100"
    assert issuer.to_records()[0x05] == bytes.fromhex("050420260105")


def test_generation_from_version() -> None:
    """Version 3.00 is third generation (SM4), 2.00 second (3DES); others are refused."""
    assert sscard.generation_from_version("3.00") is CardGeneration.THIRD
    assert sscard.generation_from_version("2.00") is CardGeneration.SECOND
    assert sscard.algorithm_for(CardGeneration.THIRD) == "sm4"
    assert sscard.algorithm_for(CardGeneration.SECOND) == "3des"
    for bad in ("4.00", "3", "x.00", "30.0"):
        with pytest.raises(SscardDecodeError):
            sscard.generation_from_version(bad)


@pytest.mark.parametrize(
    "holder",
    [
        HolderData("33010619900101123X", "𠀀", "1", "01", dt.date(1990, 1, 1)),
        HolderData("33010619900101123X", "张" * 16, "1", "01", dt.date(1990, 1, 1)),
        HolderData("33010619900101123X", "张三", "1", "1", dt.date(1990, 1, 1)),
        HolderData("33010619900101", "张三", "1", "01", dt.date(1990, 1, 1)),
    ],
)
def test_bad_values_refused(holder: HolderData) -> None:
    """Non-GBK or too-long names and wrong-length fields raise SscardEncodeError."""
    with pytest.raises(SscardEncodeError):
        holder.to_records()


def test_pin_codec() -> None:
    """PINs pack as F-padded BCD and unpack back; bad PINs are refused."""
    assert sscard.encode_pin("12345") == bytes.fromhex("12345F")
    assert sscard.decode_pin(bytes.fromhex("12345F")) == "12345"
    assert sscard.decode_pin(b"\x12") is None
    with pytest.raises(SscardEncodeError):
        sscard.encode_pin("12a456")


def test_status_words_map_to_errors() -> None:
    """63Cx carries the tries left; 63C0 and 6983 mean locked; 9000 passes."""
    with pytest.raises(WrongPinError) as info:
        sscard.check(ResponseApdu(b"", 0x63C2), "verify")
    assert info.value.tries_left == 2
    for sw in (0x63C0, 0x6983):
        with pytest.raises(PinBlockedError):
            sscard.check(ResponseApdu(b"", sw), "verify")
    assert sscard.check(ResponseApdu(b"ok", 0x9000), "x") == b"ok"


@given(st.binary(max_size=300))
def test_tlv_decoder_raises_only_sscard_errors(data: bytes) -> None:
    """Any bytes decode to TLVs or raise an SscardError, nothing else."""
    try:
        items = sscard.decode_tlvs(data)
    except SscardError:
        return
    for tag, value in items:
        assert sscard.decode_tlvs(sscard.encode_tlv(tag, value)) == [(tag, value)]


@given(st.sampled_from(sorted(sscard.FIELDS)), st.binary(max_size=40))
def test_field_decoder_raises_only_sscard_errors(tag: int, value: bytes) -> None:
    """Any value for any field decodes or raises an SscardError."""
    with contextlib.suppress(SscardError):
        sscard.decode_field(sscard.FIELDS[tag], value)


@pytest.mark.parametrize("algorithm", ["sm4", "3des"])
def test_card_keys_are_diversified(algorithm: sscard.CardAlgorithm) -> None:
    """Keys differ per card and per purpose, and are 16 bytes."""
    one = cardcrypto.derive_card_keys(DEMO_MASTER_KEYS, CARD_ID, algorithm)
    other = cardcrypto.derive_card_keys(DEMO_MASTER_KEYS, CARD_ID[:-1] + "B", algorithm)
    assert one != other
    assert len({one.external_auth, one.pin_reset, one.pin_unlock, one.app_maintenance}) == 4
    assert all(len(k) == 16 for k in (one.external_auth, other.pin_reset))
    assert "external_auth=" not in repr(one)


@pytest.mark.parametrize("algorithm", ["sm4", "3des"])
def test_mac_and_pin_round_trip(algorithm: sscard.CardAlgorithm) -> None:
    """A MAC-ed command verifies; a changed byte does not; a PIN enciphers and back."""
    key, challenge = bytes(range(16)), bytes(range(8))
    enciphered = cardcrypto.encipher_pin(key, "246801", algorithm)
    assert cardcrypto.decipher_pin(key, enciphered, algorithm) == "246801"
    mac = cardcrypto.mac_command(key, challenge, (0x84, 0x24, 1, 0), enciphered, algorithm)
    command = sscard.pin_reset(enciphered, mac)
    assert cardcrypto.verify_command_mac(key, challenge, command, algorithm)
    tampered = CommandApdu(0x84, 0x24, 0, 0, command.data)
    assert not cardcrypto.verify_command_mac(key, challenge, tampered, algorithm)
    assert not cardcrypto.verify_command_mac(key, bytes(8), command, algorithm)
    with pytest.raises(CardCryptoError):
        cardcrypto.decipher_pin(bytes(16), enciphered, algorithm)


def test_sm4_constructions_follow_the_documented_formulas() -> None:
    """SM4 diversification, cryptogram and MAC are the formulas in docs/protocols/sscard.md."""
    from security.sm4 import iso9797_m2_pad, sm4_cbc_mac, sm4_ecb_encrypt  # noqa: PLC0415

    master = DEMO_MASTER_KEYS.external_auth
    d = bytes.fromhex(CARD_ID)[-8:]
    key = cardcrypto.diversify_key(master, CARD_ID, "sm4")
    assert key == sm4_ecb_encrypt(master, d + bytes(b ^ 0xFF for b in d))
    challenge = bytes.fromhex("0102030405060708")
    assert (
        cardcrypto.external_auth_cryptogram(key, challenge, "sm4")
        == (sm4_ecb_encrypt(key, challenge + bytes(8))[:8])
    )
    data = bytes.fromhex("8424000004")
    assert (
        cardcrypto.command_mac(key, challenge, data, "sm4")
        == (sm4_cbc_mac(key, iso9797_m2_pad(data), challenge + bytes(8))[:4])
    )


def test_retail_mac_with_equal_halves_is_des_cbc_mac() -> None:
    """With KL = KR the 3DES retail MAC is plain single-DES CBC-MAC (a known identity)."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers import Cipher, modes  # noqa: PLC0415

    half = bytes.fromhex("0123456789ABCDEF")
    challenge = bytes(8)
    data = b"retail mac over several blocks"
    padded = data + b"\x80" + bytes(-(len(data) + 1) % 8)
    encryptor = Cipher(TripleDES(half * 3), modes.CBC(challenge)).encryptor()
    expected = (encryptor.update(padded) + encryptor.finalize())[-8:][:4]
    assert cardcrypto.command_mac(half * 2, challenge, data, "3des") == expected


def test_dates_before_year_1000_round_trip() -> None:
    """A date field encodes with a four-digit year, whatever the platform's strftime does."""
    spec = sscard.FIELDS[0x05]
    record = sscard.encode_field(spec, dt.date(1, 1, 1))
    assert record == bytes.fromhex("05040001" + "0101")
    assert sscard.decode_field(spec, record[2:]) == dt.date(1, 1, 1)


@pytest.mark.parametrize("value", [b"A1234567\x00", b"A\x1b2345678", b"A1234567\x7f"])
def test_ascii_fields_with_control_bytes_are_refused(value: bytes) -> None:
    """The decoder takes what the encoder writes: printable ASCII only."""
    with pytest.raises(SscardDecodeError):
        sscard.decode_field(sscard.FIELDS[0x07], value)
